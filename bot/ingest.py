"""Group commit for the busiest writes: answers posted in a round's thread, and votes.

On a busy morning members answer and vote at the same moment. Written one transaction per event, each costs a
handful of statements and a commit, and on SQLite every statement is a hand-off to the database thread: the
bot topped out at a few hundred events a second. Here events wait in one queue; a single writer takes
everything queued and applies it set-wise in one transaction (one look-up of the rounds, one member upsert,
one insert), then answers each caller. While it writes, the next batch gathers, so batches grow with the load
and an idle bot still answers at once (a batch of one).

The rules are the same as one event at a time, applied in arrival order inside the batch. A batch that fails
is retried one event at a time, so one bad event only fails itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.events import Actor, Place
from bot.models import Round, RoundState
from bot.store import answers as answer_store
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store import seen
from bot.store.answers import NewAnswer, VoteOutcome, VoteRequest

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

MAX_BATCH = 256  # bounds a transaction's length and its statements' parameter count


@dataclass(frozen=True)
class AnswerIn:
    place: Place  # in a thread
    actor: Actor
    message_id: str
    text: str
    now: datetime


@dataclass(frozen=True)
class VoteIn:
    place: Place
    actor: Actor
    round_id: int
    answer_id: int
    now: datetime


@dataclass(frozen=True)
class VoteDone:
    """A vote's fate: refused before the rules were asked (``refused`` says why), or the rules' outcome."""

    refused: str | None = None
    outcome: VoteOutcome | None = None
    cap: int = 0


@dataclass(frozen=True)
class SeenIn:
    """A platform's event id, to drop its redeliveries (Slack retries an event it thinks we missed)."""

    platform: str
    event_id: str
    now: datetime


Item = AnswerIn | VoteIn | SeenIn
Result = bool | VoteDone


def tombstone(place: Place, message_id: str) -> str:
    """The seen_events id that marks a deleted answer message, so a late delivery cannot bring it back."""
    return f"deleted:{place.space_id}:{place.thread_id}:{message_id}"[:128]


class Ingest:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def answer(self, item: AnswerIn) -> bool:
        """True when this message became the member's answer (their first in an open round's thread)."""
        result = await self._submit(item)
        assert isinstance(result, bool)
        return result

    async def vote(self, item: VoteIn) -> VoteDone:
        result = await self._submit(item)
        assert isinstance(result, VoteDone)
        return result

    async def first_delivery(self, item: SeenIn) -> bool:
        """True the first time this event id arrives, in any process."""
        result = await self._submit(item)
        assert isinstance(result, bool)
        return result

    async def drain(self) -> None:
        """Wait until everything queued is written (on shutdown)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    def _submit(self, item: Item) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all(), name="ingest-writer")
        return fut

    async def _write_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._apply(items)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("a batch of %d events failed (%s); retrying them one at a time", len(batch), exc)
            for one in batch:
                await self._write([one])
            return
        for (_, fut), result in zip(batch, results, strict=True):
            _settle(fut, result)

    async def _apply(self, items: Sequence[Item]) -> list[Result]:
        out: list[Result | None] = [None] * len(items)
        answers = [(i, it) for i, it in enumerate(items) if isinstance(it, AnswerIn)]
        votes = [(i, it) for i, it in enumerate(items) if isinstance(it, VoteIn)]
        marks = [(i, it) for i, it in enumerate(items) if isinstance(it, SeenIn)]
        async with self.engine.tx() as conn:
            if marks:
                for (i, _), new in zip(marks, await _first_deliveries(conn, [m for _, m in marks]), strict=True):
                    out[i] = new
            if answers:
                for (i, _), added in zip(answers, await _answers(conn, [a for _, a in answers]), strict=True):
                    out[i] = added
            if votes:
                for (i, _), done in zip(votes, await _votes(conn, [v for _, v in votes]), strict=True):
                    out[i] = done
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]


def _settle(fut: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if fut.done():  # the caller gave up (cancelled); what was written stays written
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


def _same_channel(found: tuple[Round, str, str, str], place: Place) -> bool:
    """A vote counts only from the round's own channel (or its thread, when an adapter could not name the
    thread's parent): a ballot's button copied into another channel must not vote where members cannot see."""
    rnd, platform, space, channel = found
    return (platform, space) == (place.platform, place.space_id) and place.channel_id in (channel, rnd.thread_id)


async def _first_deliveries(conn: AsyncConnection, items: Sequence[SeenIn]) -> list[bool]:
    fresh = await seen.mark_many(conn, [(m.platform, m.event_id) for m in items], items[0].now)
    out = []
    for m in items:
        key = (m.platform, m.event_id[:128])
        out.append(key in fresh)
        fresh.discard(key)  # the same id twice in one batch: only the first is new
    return out


async def _answers(conn: AsyncConnection, items: Sequence[AnswerIn]) -> list[bool]:
    keys = {(a.place.platform, a.place.space_id, a.place.channel_id, a.place.thread_id or "") for a in items}
    found = await round_store.for_threads(conn, keys)
    # Only a round that still takes answers, in thread mode: from the reveal on, answers are frozen so the
    # ballot shows exactly what voters read.
    live = {
        k: r for k, r in found.items() if r.state == RoundState.OPEN and r.answer_mode == "thread"
    }
    candidates = [
        (n, a, live[k])
        for n, a in enumerate(items)
        if (k := (a.place.platform, a.place.space_id, a.place.channel_id, a.place.thread_id or "")) in live
    ]
    # Deleted before this (late) delivery of its creation arrived: stays deleted.
    dead: set[tuple[str, str]] = set()
    for platform in {a.place.platform for _, a, _ in candidates}:
        marks = [tombstone(a.place, a.message_id) for _, a, _ in candidates if a.place.platform == platform]
        dead |= {(platform, e) for e in await seen.marked_among(conn, platform, marks)}
    candidates = [
        c for c in candidates if (c[1].place.platform, tombstone(c[1].place, c[1].message_id)) not in dead
    ]
    ids = await channel_store.ensure_members(conn, [a.actor for _, a, _ in candidates], items[0].now)
    rows = [
        (n, NewAnswer(rnd.id, ids[(a.actor.platform, a.actor.space_id, a.actor.user_id)], a.message_id, a.text, a.now))
        for n, a, rnd in candidates
    ]
    inserted = await answer_store.add_many(conn, [r for _, r in rows])
    out = [False] * len(items)
    for n, r in rows:
        # Later messages by the same member are discussion; only their first one is the answer.
        if (r.round_id, r.member_id) in inserted:
            out[n] = True
            inserted.discard((r.round_id, r.member_id))
    return out


async def _votes(conn: AsyncConnection, items: Sequence[VoteIn]) -> list[VoteDone]:
    rounds = await round_store.with_places(conn, [v.round_id for v in items])
    out: list[VoteDone | None] = [None] * len(items)
    allowed: list[tuple[int, VoteIn]] = []
    for n, v in enumerate(items):
        found = rounds.get(v.round_id)
        if found is None or not _same_channel(found, v.place):
            out[n] = VoteDone("I can't find that round.")
        elif found[0].state in (RoundState.POSTING, RoundState.OPEN, RoundState.REVEALING):
            out[n] = VoteDone("Voting has not opened yet.")
        elif found[0].state != RoundState.REVEALED:
            out[n] = VoteDone("Voting on this round is closed.")
        else:
            allowed.append((n, v))
    if allowed:
        ids = await channel_store.ensure_members(conn, [v.actor for _, v in allowed], items[0].now)
        requests = [
            VoteRequest(
                v.round_id,
                v.answer_id,
                ids[(v.actor.platform, v.actor.space_id, v.actor.user_id)],
                rounds[v.round_id][0].vote_cap,
                v.now,
            )
            for _, v in allowed
        ]
        for (n, _), req, outcome in zip(
            allowed, requests, await answer_store.cast_many(conn, requests), strict=True
        ):
            out[n] = VoteDone(outcome=outcome, cap=req.cap)
    assert all(d is not None for d in out)
    return out  # type: ignore[return-value]
