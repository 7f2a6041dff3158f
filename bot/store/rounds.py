"""Rounds and claims: where exactly-once is decided.

Every transition is a compare-and-set on one row. Posting inserts the round row for (channel, slot); the
unique key means only one process can. Reveal and close move the row into a "-ing" state under a lease;
whoever wins the UPDATE does the platform work, and if it dies, the lease runs out and anyone may take over.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import ACTIVE_STATES, HELD_STATES, Round, RoundState
from bot.questions.select import Usage
from bot.store.dialect import insert, insert_for, prebuilt
from bot.store.tables import channels, claims, rounds


def _round(row: Any) -> Round:
    return Round(
        id=row.id,
        channel_id=row.channel_id,
        slot=row.slot,
        scheduled=row.scheduled,
        question_id=row.question_id,
        state=RoundState(row.state),
        answer_mode=row.answer_mode,
        vote_cap=row.vote_cap,
        due_at=row.due_at,
        posted_at=row.posted_at,
        reveal_at=row.reveal_at,
        close_at=row.close_at,
        revealed_at=row.revealed_at,
        closed_at=row.closed_at,
        message_id=row.message_id,
        thread_id=row.thread_id,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        note=row.note,
    )


async def create(conn: AsyncConnection, **values: Any) -> int | None:
    """Insert a round for (channel_id, slot); None if that slot already has one (someone else claimed it)."""
    stmt = (
        insert(conn, rounds)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel_id", "slot"])
        .returning(rounds.c.id)
    )
    row = (await conn.execute(stmt)).first()
    return int(row.id) if row else None


async def get(conn: AsyncConnection, round_id: int, *, lock: bool = False) -> Round | None:
    q = select(rounds).where(rounds.c.id == round_id)
    if lock:
        # Serialises votes and answers against the close on PostgreSQL; SQLite's BEGIN IMMEDIATE already does.
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    return _round(row) if row else None


async def active(conn: AsyncConnection, channel_pk: int) -> list[Round]:
    q = (
        select(rounds)
        .where(rounds.c.channel_id == channel_pk, rounds.c.state.in_([s.value for s in ACTIVE_STATES]))
        .order_by(rounds.c.id)
    )
    return [_round(r) for r in (await conn.execute(q)).all()]


async def latest(conn: AsyncConnection, channel_pk: int) -> Round | None:
    q = (
        select(rounds)
        .where(rounds.c.channel_id == channel_pk, rounds.c.state.in_([s.value for s in HELD_STATES]))
        .order_by(rounds.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(q)).first()
    return _round(row) if row else None


async def slots_like(conn: AsyncConnection, channel_pk: int, prefix: str) -> list[str]:
    q = select(rounds.c.slot).where(rounds.c.channel_id == channel_pk, rounds.c.slot.startswith(prefix))
    return [r.slot for r in (await conn.execute(q)).all()]


async def take(
    conn: AsyncConnection,
    round_id: int,
    from_states: Iterable[RoundState],
    busy: RoundState,
    owner: str,
    now: datetime,
    lease_until: datetime,
) -> Round | None:
    """Move a round from one of ``from_states`` into ``busy`` under our lease, or take over an expired lease
    on ``busy``. Returns the round as it now is, or None when another process holds it or it moved on."""
    stmt = (
        update(rounds)
        .where(
            rounds.c.id == round_id,
            or_(
                rounds.c.state.in_([s.value for s in from_states]),
                and_(rounds.c.state == busy.value, or_(rounds.c.lease_until.is_(None), rounds.c.lease_until < now)),
            ),
        )
        .values(state=busy.value, lease_owner=owner, lease_until=lease_until)
        .returning(rounds.c.id)
    )
    if (await conn.execute(stmt)).first() is None:
        return None
    return await get(conn, round_id)


async def finish(
    conn: AsyncConnection, round_id: int, busy: RoundState, done: RoundState, owner: str, **values: Any
) -> bool:
    """Leave a busy state we hold. False means our lease was taken over: the other process finishes."""
    stmt = (
        update(rounds)
        .where(rounds.c.id == round_id, rounds.c.state == busy.value, rounds.c.lease_owner == owner)
        .values(state=done.value, lease_owner=None, lease_until=None, **values)
        .returning(rounds.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def force_state(
    conn: AsyncConnection, round_id: int, from_states: Iterable[RoundState], to: RoundState, **values: Any
) -> bool:
    stmt = (
        update(rounds)
        .where(rounds.c.id == round_id, rounds.c.state.in_([s.value for s in from_states]))
        .values(state=to.value, lease_owner=None, lease_until=None, **values)
        .returning(rounds.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def held_round_ids(
    conn: AsyncConnection, channel_pk: int, up_to_id: int | None = None, limit: int | None = None
) -> list[int]:
    """The channel's rounds that really ran, newest first: the sequence a streak runs along."""
    q = select(rounds.c.id).where(rounds.c.channel_id == channel_pk, rounds.c.state.in_([s.value for s in HELD_STATES]))
    if up_to_id is not None:
        q = q.where(rounds.c.id <= up_to_id)
    q = q.order_by(rounds.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return [r.id for r in (await conn.execute(q)).all()]


async def claim(
    conn: AsyncConnection, channel_pk: int, kind: str, period: str, owner: str, now: datetime, lease_until: datetime
) -> Literal["new", "taken over"] | None:
    """Claim a one-off transition (the weekly leaderboard post) for a period. None if it is not ours to do;
    "taken over" when an earlier claim never finished, so its platform work may have happened already."""
    stmt = (
        insert(conn, claims)
        .values(channel_id=channel_pk, kind=kind, period=period, owner=owner, lease_until=lease_until)
        .on_conflict_do_nothing(index_elements=["channel_id", "kind", "period"])
        .returning(claims.c.id)
    )
    if (await conn.execute(stmt)).first() is not None:
        return "new"
    # Someone claimed it before: take it over only if they never finished and their lease ran out.
    stmt2 = (
        update(claims)
        .where(
            claims.c.channel_id == channel_pk,
            claims.c.kind == kind,
            claims.c.period == period,
            claims.c.done_at.is_(None),
            claims.c.lease_until < now,
        )
        .values(owner=owner, lease_until=lease_until)
        .returning(claims.c.id)
    )
    return "taken over" if (await conn.execute(stmt2)).first() is not None else None


async def claim_done(conn: AsyncConnection, channel_pk: int, kind: str, period: str, now: datetime) -> None:
    await conn.execute(
        update(claims)
        .where(claims.c.channel_id == channel_pk, claims.c.kind == kind, claims.c.period == period)
        .values(done_at=now)
    )


# -- batched forms, for sweeping thousands of channels at once ------------------------------------------------


async def due(conn: AsyncConnection, now: datetime) -> list[Round]:
    """Every round that needs a step now: overdue reveals and closes, and busy states whose lease ran out."""
    busy = [RoundState.POSTING.value, RoundState.REVEALING.value, RoundState.CLOSING.value]
    q = (
        select(rounds)
        .where(
            or_(
                and_(rounds.c.state == RoundState.OPEN.value, rounds.c.reveal_at <= now),
                and_(rounds.c.state == RoundState.REVEALED.value, rounds.c.close_at <= now),
                and_(rounds.c.state.in_(busy), or_(rounds.c.lease_until.is_(None), rounds.c.lease_until < now)),
            )
        )
        .order_by(rounds.c.id)
    )
    return [_round(r) for r in (await conn.execute(q)).all()]


async def existing_slots(conn: AsyncConnection, slots: Iterable[str]) -> set[tuple[int, str]]:
    """Which (channel, slot) pairs already have a round, for the given slot keys (dates)."""
    keys = sorted(set(slots))
    if not keys:
        return set()
    q = select(rounds.c.channel_id, rounds.c.slot).where(rounds.c.slot.in_(keys))
    return {(r.channel_id, r.slot) for r in (await conn.execute(q)).all()}


async def active_before(conn: AsyncConnection, newest: dict[int, int]) -> list[int]:
    """Ids of rounds still active in these channels that are older than the given round of each channel (channel
    id -> round id): what must finish before a new round starts. Only the ids travel back: on a fresh morning
    with thousands of channels the answer is usually empty, and building a round per channel to find that out
    was a tenth of the fan-out's time."""
    if not newest:
        return []
    # "Older than the newest of all" narrows in SQL (the rounds just created drop out); the per-channel
    # comparison is made below.
    q = select(rounds.c.id, rounds.c.channel_id).where(
        rounds.c.state.in_([s.value for s in ACTIVE_STATES]),
        rounds.c.channel_id.in_(list(newest)),
        rounds.c.id < max(newest.values()),
    )
    return [r.id for r in (await conn.execute(q)).all() if r.id < newest[r.channel_id]]


async def usage_in(conn: AsyncConnection, channel_ids: Iterable[int]) -> dict[int, dict[str, Usage]]:
    ids = list(channel_ids)
    out: dict[int, dict[str, Usage]] = {i: {} for i in ids}
    if not ids:
        return out
    q = (
        select(rounds.c.channel_id, rounds.c.question_id, func.count().label("n"), func.max(rounds.c.id).label("last"))
        .where(
            rounds.c.channel_id.in_(ids),
            rounds.c.question_id.is_not(None),
            rounds.c.state.in_([s.value for s in HELD_STATES]),
        )
        .group_by(rounds.c.channel_id, rounds.c.question_id)
    )
    for r in (await conn.execute(q)).all():
        out[r.channel_id][r.question_id] = Usage(int(r.n), int(r.last))
    return out


async def create_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert rounds for many (channel, slot) pairs at once; returns {channel_id: round_id} for the ones we won."""
    if not rows:
        return {}
    # One cached statement run with many parameter sets: SQLAlchemy batches it ("insertmanyvalues") into
    # multi-row INSERTs itself, instead of compiling a new 500-row statement for every chunk.
    columns = sorted({k for r in rows for k in r})
    params = [{c: r.get(c) for c in columns} for r in rows]
    return {r.channel_id: r.id for r in (await conn.execute(_CREATE(conn), params)).all()}


_CREATE = prebuilt(
    lambda dialect: insert_for(dialect, rounds)
    .on_conflict_do_nothing(index_elements=["channel_id", "slot"])
    .returning(rounds.c.id, rounds.c.channel_id)
)


async def claimed_periods(
    conn: AsyncConnection, kind: str, periods: Iterable[str], now: datetime
) -> set[tuple[int, str]]:
    """The (channel, period) pairs among ``periods`` that need nothing from us: done, or claimed under a lease
    that still runs. A claim whose holder died (or whose platform call failed) is left out once its lease has
    run out, so the next sweep takes it over (``claim``) instead of leaving the period undone for good."""
    keys = sorted(set(periods))
    if not keys:
        return set()
    q = select(claims.c.channel_id, claims.c.period).where(
        claims.c.kind == kind,
        claims.c.period.in_(keys),
        or_(claims.c.done_at.is_not(None), claims.c.lease_until >= now),
    )
    return {(r.channel_id, r.period) for r in (await conn.execute(q)).all()}


async def next_deadline(conn: AsyncConnection) -> datetime | None:
    """The earliest reveal, close or lease expiry among active rounds."""
    q = select(
        func.min(rounds.c.reveal_at).filter(rounds.c.state == RoundState.OPEN.value),
        func.min(rounds.c.close_at).filter(rounds.c.state == RoundState.REVEALED.value),
        func.min(rounds.c.lease_until).filter(
            rounds.c.state.in_([RoundState.POSTING.value, RoundState.REVEALING.value, RoundState.CLOSING.value])
        ),
    )
    row = (await conn.execute(q)).one()
    found = [t for t in row if t is not None]
    if not found:
        return None
    # MIN over a UtcDateTime column comes back untyped on SQLite (a string): normalise.
    return min(_as_utc(t) for t in found)


def _as_utc(value: Any) -> datetime:
    from datetime import UTC

    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


async def finish_many(conn: AsyncConnection, owner: str, posted: list[dict[str, Any]]) -> int:
    """Record many posts at once: POSTING -> OPEN for each round we still hold. Each dict has rid, posted_at,
    reveal_at, close_at, message_id, thread_id. Returns how many were ours to record."""
    if not posted:
        return 0
    params = [{"b_owner": owner, **{f"b_{k}": v for k, v in p.items()}} for p in posted]
    result = await conn.execute(_FINISH, params)
    return int(result.rowcount or 0)


# Built once: the fan-out records its posts in fifty batches, and building the statement each time cost more
# than running it.
_FINISH = (
    update(rounds)
    .where(
        rounds.c.id == bindparam("b_rid"),
        rounds.c.state == RoundState.POSTING.value,
        rounds.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        state=RoundState.OPEN.value,
        lease_owner=None,
        lease_until=None,
        posted_at=bindparam("b_posted_at"),
        reveal_at=bindparam("b_reveal_at"),
        close_at=bindparam("b_close_at"),
        message_id=bindparam("b_message_id"),
        thread_id=bindparam("b_thread_id"),
    )
)


async def for_thread(
    conn: AsyncConnection, platform: str, space_id: str, channel_id: str, thread_id: str
) -> Round | None:
    """The newest round of a channel's thread, locked for this transaction: one query for what an answer needs."""
    q = (
        select(rounds)
        .join(channels, channels.c.id == rounds.c.channel_id)
        .where(
            channels.c.platform == platform,
            channels.c.space_id == space_id,
            channels.c.channel_id == channel_id,
            rounds.c.thread_id == thread_id,
        )
        .order_by(rounds.c.id.desc())
        .limit(1)
        .with_for_update(of=rounds)
    )
    row = (await conn.execute(q)).first()
    return _round(row) if row else None


ThreadKey = tuple[str, str, str, str]  # platform, space, channel, thread


# The group-commit look-ups (bot/ingest.py) are built once: constructing a statement and computing its cache
# key cost more Python time than SQLite spends running it. Lists go in as expanding parameters.
_FOR_THREADS = (
    select(
        rounds,
        channels.c.platform.label("ch_platform"),
        channels.c.space_id.label("ch_space"),
        channels.c.channel_id.label("ch_channel"),
    )
    .join(channels, channels.c.id == rounds.c.channel_id)
    .where(rounds.c.thread_id.in_(bindparam("thread_ids", expanding=True)))
    .order_by(rounds.c.id)
    .with_for_update(of=rounds)
)
_WITH_PLACES = (
    select(
        rounds,
        channels.c.platform.label("ch_platform"),
        channels.c.space_id.label("ch_space"),
        channels.c.channel_id.label("ch_channel"),
    )
    .join(channels, channels.c.id == rounds.c.channel_id)
    .where(rounds.c.id.in_(bindparam("round_ids", expanding=True)))
    .with_for_update(of=rounds)
)


async def for_threads(conn: AsyncConnection, keys: Collection[ThreadKey]) -> dict[ThreadKey, Round]:
    """for_thread for many threads in one query: the newest round of each, locked for this transaction."""
    if not keys:
        return {}
    out: dict[ThreadKey, Round] = {}
    for row in (await conn.execute(_FOR_THREADS, {"thread_ids": sorted({k[3] for k in keys})})).all():
        key = (row.ch_platform, row.ch_space, row.ch_channel, row.thread_id)
        if key in keys:
            out[key] = _round(row)  # rows come oldest first, so the newest round of a thread wins
    return out


async def with_places(conn: AsyncConnection, round_ids: Collection[int]) -> dict[int, tuple[Round, str, str, str]]:
    """Rounds by id, locked, with their channel's platform, space and platform channel id: one query."""
    if not round_ids:
        return {}
    rows = (await conn.execute(_WITH_PLACES, {"round_ids": sorted(set(round_ids))})).all()
    return {row.id: (_round(row), row.ch_platform, row.ch_space, row.ch_channel) for row in rows}


async def open_in_threads(conn: AsyncConnection, platform: str) -> list[Round]:
    """Rounds on a platform still taking answers as thread replies: what a reconnecting adapter checks for
    messages it missed while no process was listening."""
    q = (
        select(rounds)
        .join(channels, channels.c.id == rounds.c.channel_id)
        .where(
            channels.c.platform == platform,
            rounds.c.state == RoundState.OPEN.value,
            rounds.c.answer_mode == "thread",
            rounds.c.thread_id.is_not(None),
        )
        .order_by(rounds.c.id)
    )
    return [_round(r) for r in (await conn.execute(q)).all()]
