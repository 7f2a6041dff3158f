"""Streaks: consecutive rounds of a channel that a member answered.

A streak runs along the rounds that actually ran in the channel (posted, in the channel's own schedule and
timezone), not along calendar days: weekends off, a paused week or a day the bot was down do not break it,
but a round the member let pass does.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import answers as answer_store
from bot.store import rounds as round_store


def run_length(held_newest_first: list[int], answered: set[int]) -> int:
    """How many rounds in a row, from the newest, the member answered."""
    n = 0
    for rid in held_newest_first:
        if rid not in answered:
            break
        n += 1
    return n


def longest_run(held_newest_first: list[int], answered: set[int]) -> int:
    best = cur = 0
    for rid in held_newest_first:
        cur = cur + 1 if rid in answered else 0
        best = max(best, cur)
    return best


async def streaks_for(conn: AsyncConnection, channel_pk: int, member_id: int) -> tuple[int, int]:
    """(current, best). The running round does not break the current streak before its reveal."""
    held = await round_store.held_round_ids(conn, channel_pk)
    answered = await answer_store.answered_rounds(conn, member_id, held)
    latest = await round_store.latest(conn, channel_pk)
    current_ids = held
    if latest is not None and latest.state.value in ("posting", "open") and held and held[0] not in answered:
        current_ids = held[1:]
    return run_length(current_ids, answered), longest_run(held, answered)


async def current_streaks(
    conn: AsyncConnection, channel_pk: int, member_ids: list[int], lookback: int = 400
) -> dict[int, int]:
    """Each member's current streak in the channel, in three queries however many members: the weekly card.
    As in :func:`streaks_for`, a round still open for answers does not break a streak yet."""
    if not member_ids:
        return {}
    held = await round_store.held_round_ids(conn, channel_pk, limit=lookback)
    answered = await answer_store.answered_by(conn, member_ids, held)
    latest = await round_store.latest(conn, channel_pk)
    running = latest is not None and latest.state.value in ("posting", "open") and bool(held)
    out: dict[int, int] = {}
    for member, rounds_answered in answered.items():
        ids = held[1:] if running and held[0] not in rounds_answered else held
        out[member] = run_length(ids, rounds_answered)
    return out
