"""The round lifecycle: post -> reveal -> close, the weekly leaderboard, and catching up after downtime.

Each step first claims its transition in the database (see ``store.rounds``) and only then talks to the
platform, so a crash, a restart or a second process can never make a step happen twice. A step that fails
on the platform is left under its lease and retried by the next sweep; one that can never succeed (the
bot lost access to the channel) pauses the channel and tells its admins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import cards, messages, rubric
from bot.clock import Clock
from bot.config import Config
from bot.models import Answer, Channel, Round, RoundState
from bot.ports import Platform, PlatformError
from bot.questions.model import Bank, Question
from bot.questions.select import choose, eligible
from bot.render import Message
from bot.schedule import (
    Slot,
    format_local,
    latest_leaderboard_slot,
    latest_post_slot,
    local_date,
    next_leaderboard_slot,
    next_post_slot,
)
from bot.scoring import score_round
from bot.settings import WEEKDAYS
from bot.store import answers as answer_store
from bot.store import cards as card_store
from bot.store import channels as channel_store
from bot.store import reminders as reminder_store
from bot.store import rounds as round_store
from bot.store import scores as score_store
from bot.store import seen
from bot.store.db import READ_ONLY
from bot.store.scores import Standing
from bot.streaks import current_streaks, run_length

log = logging.getLogger(__name__)

STREAK_LOOKBACK = 400  # rounds; enough for any bonus, and it bounds the query


@dataclass(frozen=True)
class PostOutcome:
    round_id: int | None
    status: str  # posted | exists | empty-pool | failed | busy
    detail: str = ""


class Engine:
    def __init__(
        self,
        db: AsyncEngine,
        bank: Bank,
        platforms: dict[str, Platform],
        clock: Clock,
        config: Config,
        *,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.bank = bank
        self.platforms = platforms
        self.clock = clock
        self.config = config
        self.rng = rng or random.Random()
        # Who holds a lease: unique per process, readable in the database when debugging.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self._locks: dict[int, asyncio.Lock] = {}
        self._write_gate = asyncio.Lock() if db.dialect.name == "sqlite" else None
        self._read_gate = asyncio.Semaphore(4) if db.dialect.name == "sqlite" else None
        self._matcher: rubric.Matcher | None = None  # built at the first reveal: it weighs the whole bank
        self._held: dict[str, float] = {}  # platform -> time.monotonic() when its hold on reveals lapses

    # -- plumbing -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that may write. On SQLite, writers in this process queue here, first come first
        served, rather than in SQLite's busy handler, which sleeps and retries unfairly and gave commands a
        long tail under load. Between processes SQLite's busy timeout still applies."""
        if self._write_gate is None:
            async with self.db.begin() as conn:
                yield conn
            return
        async with self._write_gate, self.db.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads: on SQLite it does not take the write lock. A few at a time: each
        runs in its own aiosqlite thread, and dozens at once only fight over the GIL and two cores."""
        if self._read_gate is None:
            async with self.db.connect() as conn:
                conn = await conn.execution_options(**{READ_ONLY: True})
                async with conn.begin():
                    yield conn
            return
        async with self._read_gate, self.db.connect() as conn:
            conn = await conn.execution_options(**{READ_ONLY: True})
            async with conn.begin():
                yield conn

    def now(self) -> datetime:
        return self.clock.now()

    def lease(self) -> datetime:
        return self.now() + timedelta(seconds=self.config.timing.lease_seconds)

    def lock(self, channel_pk: int) -> asyncio.Lock:
        return self._locks.setdefault(channel_pk, asyncio.Lock())

    def platform(self, channel: Channel) -> Platform:
        return self.platforms[channel.platform]

    def topic_title(self, topic: str) -> str:
        return self.bank.topics.get(topic, topic)

    async def channel(self, pk: int) -> Channel | None:
        async with self.read() as conn:
            return await channel_store.get(conn, pk)

    # -- holding reveals until an adapter has caught up ----------------------------------------------------

    def hold_reveals(self, platform: str, seconds: float | None = None) -> None:
        """Reveal nothing on this platform until ``release_reveals`` (or ``seconds`` of real time pass).

        A platform that does not replay what members did while no process was listening (Discord's gateway,
        Slack after its few retries) leaves their answers in the threads, where the adapter reads them back once
        connected. A process starting after a round's deadline would otherwise reveal it at its first sweep,
        before that read, and answers posted in time during the downtime would be shut out of the ballot. The
        hold lapses by itself, so an adapter that never connects cannot freeze the rounds."""
        self._held[platform] = time.monotonic() + (REVEAL_HOLD_SECONDS if seconds is None else seconds)

    def release_reveals(self, platform: str) -> None:
        self._held.pop(platform, None)

    def reveals_held(self, platform: str) -> bool:
        until = self._held.get(platform)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._held[platform]
            log.warning("%s did not report catching up in time; revealing rounds without waiting", platform)
            return False
        return True

    def _held_back(self, ch: Channel, r: Round) -> bool:
        # Only the reveal waits: a reveal already under way (REVEALING), posts and closes go ahead.
        return r.state == RoundState.OPEN and bool(self._held) and self.reveals_held(ch.platform)

    # -- the sweep ----------------------------------------------------------------------------------------

    async def my_channels(self) -> list[Channel]:
        """The channels this process serves: on its platforms, and (sharded Discord) in its shards' guilds."""
        async with self.read() as conn:
            chans = await channel_store.all_channels(conn)
        return [c for c in chans if c.platform in self.platforms and self.platforms[c.platform].owns(c)]

    async def tick(self) -> list[Channel]:
        """Do everything that is due in every channel we serve. Safe to call at any time, from any process.

        Batched, so ten thousand channels due in the same minute cost a handful of queries, not thousands:
        one query finds the rounds needing a step, slot times are computed once per distinct schedule, and
        the day's posts are claimed in bulk, sent concurrently and recorded together."""
        now = self.now()
        chans = {c.id: c for c in await self.my_channels()}
        async with self.read() as conn:
            waiting = [
                r
                for r in await round_store.due(conn, now)
                if r.channel_id in chans and not self._held_back(chans[r.channel_id], r)
            ]
        await _each(waiting, lambda r: self._step_guarded(chans[r.channel_id], r))
        enabled = [c for c in chans.values() if c.enabled]
        await self._post_due(enabled, now)
        await self._leaderboards_due(enabled, now)
        await self._reminders_due()
        await self._prune_seen_events()
        # The scheduler plans its next wake-up from these: reading 10,000 channels once per wake-up, not twice.
        # A channel this tick paused still appears enabled here; at worst that plans one early wake-up.
        return list(chans.values())

    async def _reminders_due(self) -> None:
        from bot.practice import reminders  # it needs the engine; imported here to keep the modules acyclic

        try:
            await reminders.send_due(self)
        except Exception:
            # Reminders are a courtesy: a failure there must never hold up posts, reveals and closes.
            log.exception("sending review reminders failed; the next sweep retries")

    async def _prune_seen_events(self) -> None:
        # Platforms redeliver within minutes (Slack: three tries over about an hour); a day is plenty.
        async with self.tx() as conn:
            await seen.prune(conn, self.now() - timedelta(days=1))

    async def _step_guarded(self, ch: Channel, r: Round) -> None:
        async with self.lock(ch.id):
            try:
                await self._step(ch, r)
            except PlatformError as exc:
                # Transient: the step stays claimed under its lease and the next sweep retries it.
                log.warning("platform error in %s, will retry: %s", ch.label, exc)

    async def _step(self, ch: Channel, r: Round) -> None:
        if r.state == RoundState.POSTING:
            await self._resume_post(ch, r)
        elif r.state in (RoundState.OPEN, RoundState.REVEALING):
            await self.reveal(r.id)
        elif r.state in (RoundState.REVEALED, RoundState.CLOSING):
            await self.close(r.id)

    async def next_due(self, channel_pk: int) -> datetime | None:
        """When this channel next needs attention."""
        ch = await self.channel(channel_pk)
        if ch is None:
            return None
        now = self.now()
        times: list[datetime] = []
        async with self.tx() as conn:
            for r in await round_store.active(conn, ch.id):
                if r.state == RoundState.OPEN and r.reveal_at:
                    times.append(r.reveal_at)
                elif r.state == RoundState.REVEALED and r.close_at:
                    times.append(r.close_at)
                elif r.lease_until:
                    times.append(r.lease_until)
        if ch.enabled:
            times.append(next_post_slot(ch.settings, now).at)
            times.append(next_leaderboard_slot(ch.settings, now).at)
        return min(times) if times else None

    async def next_wakeup(self, served: list[Channel] | None = None) -> datetime | None:
        """When anything in any channel we serve next needs attention: what the scheduler sleeps until.
        ``served``: the channels as the tick just read them, to save reading them again."""
        now = self.now()
        chans = [c for c in (served if served is not None else await self.my_channels()) if c.enabled]
        times: list[datetime] = []
        async with self.read() as conn:
            deadline = await round_store.next_deadline(conn)
        if deadline is not None:
            if any(self.reveals_held(p) for p in list(self._held)):
                # The earliest deadline may be a reveal being held back: look again shortly rather than at once
                # and again and again. Releasing the hold wakes the scheduler anyway.
                deadline = max(deadline, now + timedelta(seconds=REVEAL_HOLD_POLL_SECONDS))
            times.append(deadline)
        async with self.read() as conn:
            reminder = await reminder_store.next_time(conn, self.platforms)
        if reminder is not None:
            times.append(max(reminder, now))
        seen: set[tuple[str, str, tuple[str, ...], str, str]] = set()
        for ch in chans:
            s = ch.settings
            key = (s.post_time, s.timezone, tuple(s.weekdays), s.leaderboard_weekday, s.leaderboard_time)
            if key not in seen:
                seen.add(key)
                times.append(next_post_slot(s, now).at)
                times.append(next_leaderboard_slot(s, now).at)
        return min(times) if times else None

    async def open_threads(self, platform: str) -> list[tuple[Channel, Round, list[Answer]]]:
        """Every round on this platform still taking answers in its thread, with the answers recorded so far.

        A platform that does not replay what happened while no process was listening (Discord's gateway
        after a restart) compares these with each thread's history and hands in what was missed."""
        out: list[tuple[Channel, Round, list[Answer]]] = []
        async with self.read() as conn:
            for r in await round_store.open_in_threads(conn, platform):
                ch = await channel_store.get(conn, r.channel_id)
                if ch is not None:
                    out.append((ch, r, await answer_store.for_round(conn, r.id)))
        return out

    # -- posting ------------------------------------------------------------------------------------------

    async def _post_due(self, chans: list[Channel], now: datetime) -> None:
        """Post every channel's latest scheduled question that has no round yet; record too-late ones as missed."""
        slots: dict[tuple[str, str, tuple[str, ...]], Slot | None] = {}
        candidates: list[tuple[Channel, Slot]] = []
        for ch in chans:
            key = (ch.settings.post_time, ch.settings.timezone, tuple(ch.settings.weekdays))
            if key not in slots:
                slots[key] = latest_post_slot(ch.settings, now)
            slot = slots[key]
            if slot is not None and slot.at >= ch.active_since:
                candidates.append((ch, slot))
        if not candidates:
            return
        async with self.read() as conn:
            existing = await round_store.existing_slots(conn, {slot.key for _, slot in candidates})
        grace = timedelta(minutes=self.config.timing.late_post_grace_minutes)
        todo = [(ch, slot) for ch, slot in candidates if (ch.id, slot.key) not in existing]
        late = [(ch, slot) for ch, slot in todo if now - slot.at > grace]
        fresh = [PostItem(ch, slot.key, True, slot.at, slot.weekday) for ch, slot in todo if now - slot.at <= grace]
        if late:
            async with self.tx() as conn:
                rows = [
                    {
                        "channel_id": ch.id,
                        "slot": slot.key,
                        "scheduled": True,
                        "state": RoundState.MISSED.value,
                        "answer_mode": ch.settings.answer_mode,
                        "vote_cap": ch.settings.vote_cap,
                        "due_at": slot.at,
                        "note": f"not posted: the bot was down until {now.isoformat(timespec='minutes')}",
                    }
                    for ch, slot in late
                ]
                recorded = await round_store.create_many(conn, rows)
            if recorded:
                log.info("skipped %d daily posts that were more than %s late", len(recorded), grace)
        # In chunks: each chunk is claimed, sent and recorded well within one lease, however slow the platform.
        for start in range(0, len(fresh), POST_CHUNK):
            await self._post_many(fresh[start : start + POST_CHUNK])

    async def post_now(self, ch: Channel) -> PostOutcome:
        """An admin's "post now": today's round if it has not run yet, otherwise an extra round today."""
        now = self.now()
        today = local_date(now, ch.settings.timezone)
        weekday = WEEKDAYS[today.weekday()]
        key = today.isoformat()
        async with self.tx() as conn:
            taken = set(await round_store.slots_like(conn, ch.id, key))
        if key in taken:
            n = 2
            while f"{key}#{n}" in taken:
                n += 1
            key = f"{key}#{n}"
        return await self.post(ch, slot_key=key, scheduled=key == today.isoformat(), due_at=now, weekday=weekday)

    async def post(self, ch: Channel, *, slot_key: str, scheduled: bool, due_at: datetime, weekday: str) -> PostOutcome:
        [outcome] = await self._post_many([PostItem(ch, slot_key, scheduled, due_at, weekday)])
        return outcome

    async def _post_many(self, items: list[PostItem]) -> list[PostOutcome]:
        """Claim, send and record posts. Each is claimed by inserting its round: a slot another process
        already claimed is left to it. One outcome per item, in order."""
        outcomes: dict[int, PostOutcome] = {}
        pools: dict[tuple[tuple[str, ...], bool, tuple[str, ...]], list[Question]] = {}
        async with self.tx() as conn:
            usage = await round_store.usage_in(conn, [i.channel.id for i in items])
            chosen: dict[int, Question | None] = {}
            rows = []
            for i in items:
                s = i.channel.settings
                levels = tuple(s.plan_for(i.weekday))
                key = (tuple(s.topics), s.include_legacy, levels)
                if key not in pools:  # channels sharing topics and a day's plan share one pool
                    base = eligible(self.bank, s)
                    pools[key] = [q for q in base if q.difficulty in levels] or base
                q = choose(pools[key], levels, usage[i.channel.id], self.rng)
                chosen[i.channel.id] = q
                row: dict[str, object] = {
                    "channel_id": i.channel.id,
                    "slot": i.slot_key,
                    "scheduled": i.scheduled,
                    "answer_mode": s.answer_mode,
                    "vote_cap": s.vote_cap,
                    "due_at": i.due_at,
                }
                if q is None:
                    row.update(state=RoundState.SKIPPED.value, note="no question matches the channel's topics")
                else:
                    row.update(
                        question_id=q.id,
                        state=RoundState.POSTING.value,
                        lease_owner=self.owner,
                        lease_until=self.lease(),
                    )
                rows.append(row)
            won = await round_store.create_many(conn, rows)
            # One round at a time per channel: rounds older than the one we just claimed are finished first.
            # Only older ones: another process may be posting a newer round, and that is not ours to end.
            earlier = await round_store.active_before(conn, won)
        for old_id in earlier:
            await self.finish_now(old_id)

        records: list[dict[str, object]] = []

        async def send(i: PostItem) -> None:
            ch = i.channel
            rid = won.get(ch.id)
            if rid is None:
                outcomes[ch.id] = PostOutcome(None, "exists", f"the {i.slot_key} round already exists")
                return
            q = chosen[ch.id]
            if q is None:
                topics = ", ".join(ch.settings.topics) or "all topics"
                await self._notify(
                    ch,
                    messages.say(
                        f"No question could be posted in {ch.label}: the bank has no questions for {topics}"
                        f"{'' if ch.settings.include_legacy else ' (legacy questions excluded)'}. "
                        "Choose other topics with `/quiz admin setup topics=...` or add questions to the bank.",
                        title="Daily question skipped",
                    ),
                )
                outcomes[ch.id] = PostOutcome(rid, "empty-pool", "no question matches the channel's topics")
                return
            outcomes[ch.id], record = await self._send_post(ch, rid, i, q)
            if record is not None:
                records.append(record)

        # Sends overlap (the adapter paces them); the rounds they opened are recorded in one transaction.
        await _each(items, send)
        await self._record_posts(records)
        return [outcomes[i.channel.id] for i in items]

    async def _resume_post(self, ch: Channel, r: Round) -> None:
        """A post whose process died (or whose platform call failed) before it finished."""
        now = self.now()
        grace = timedelta(minutes=self.config.timing.late_post_grace_minutes)
        question = self.bank.get(r.question_id or "")
        if question is None or now - r.due_at > grace + timedelta(seconds=self.config.timing.lease_seconds):
            async with self.tx() as conn:
                await round_store.force_state(
                    conn, r.id, [RoundState.POSTING], RoundState.MISSED, note="posting never completed in time"
                )
            log.info("gave up posting round %s in %s: too late", r.id, ch.label)
            return
        async with self.tx() as conn:
            taken = await round_store.take(conn, r.id, [], RoundState.POSTING, self.owner, now, self.lease())
        if taken is not None:
            item = PostItem(ch, taken.slot, taken.scheduled, taken.due_at, "")
            # The earlier attempt may have reached the platform before it died or its call failed: the
            # adapter checks for the post's key since the round fell due before posting it again.
            _, record = await self._send_post(ch, taken.id, item, question, maybe_sent_since=taken.due_at)
            if record is not None:
                await self._record_posts([record])

    async def _send_post(
        self, ch: Channel, rid: int, item: PostItem, q: Question, *, maybe_sent_since: datetime | None = None
    ) -> tuple[PostOutcome, dict[str, object] | None]:
        """Send one daily post. Returns its outcome and, if it went out, the record that opens its round."""
        now = self.now()
        reveal_at = now + timedelta(minutes=ch.settings.answer_window_minutes)
        shown = Round(
            id=rid, channel_id=ch.id, slot=item.slot_key, scheduled=item.scheduled, question_id=q.id,
            state=RoundState.POSTING, answer_mode=ch.settings.answer_mode, vote_cap=ch.settings.vote_cap,
            due_at=item.due_at, posted_at=None, reveal_at=reveal_at, close_at=None, revealed_at=None,
            closed_at=None, message_id=None, thread_id=None, lease_owner=self.owner, lease_until=None, note=None,
        )  # fmt: skip
        try:
            sent = await self.platform(ch).send(
                ch,
                messages.daily_post(ch, shown, q, self.topic_title(q.topic)),
                key=f"p{rid}",
                maybe_sent_since=maybe_sent_since,
            )
        except PlatformError as exc:
            if exc.permanent:
                await self._lost_channel(ch, shown, str(exc))
            else:
                log.warning("could not post in %s, will retry: %s", ch.label, exc)
            return PostOutcome(rid, "failed", str(exc)), None
        record: dict[str, object] = {
            "rid": rid,
            "posted_at": now,
            "reveal_at": reveal_at,
            "close_at": reveal_at + timedelta(minutes=ch.settings.voting_window_minutes),
            "message_id": sent.message_id,
            "thread_id": sent.thread_id or sent.message_id,
        }
        return PostOutcome(rid, "posted"), record

    async def _record_posts(self, records: list[dict[str, object]]) -> None:
        if not records:
            return
        async with self.tx() as conn:
            mine = await round_store.finish_many(conn, self.owner, records)
        if mine < len(records):
            log.warning("%d posts were taken over by another process after our lease ran out", len(records) - mine)
        log.info("posted %d daily questions", mine)

    async def _lost_channel(self, ch: Channel, rnd: Round | None, why: str) -> None:
        log.error("cannot post in %s, pausing it: %s", ch.label, why)
        async with self.tx() as conn:
            if rnd is not None:
                await round_store.force_state(
                    conn,
                    rnd.id,
                    [
                        RoundState.POSTING,
                        RoundState.REVEALING,
                        RoundState.CLOSING,
                        RoundState.OPEN,
                        RoundState.REVEALED,
                    ],
                    RoundState.SKIPPED,
                    note=f"platform refused: {why}"[:500],
                )
            await channel_store.set_enabled(conn, ch.id, False, self.now(), reason=f"lost access: {why}"[:500])
        await self._notify(
            ch,
            messages.say(
                f"I could not post in {ch.label} ({why}), so I paused the daily question there. "
                "Give me back access (View Channel, Send Messages, Create Public Threads) and run "
                "`/quiz admin resume` in that channel.",
                title="Daily question paused",
            ),
        )

    async def _notify(self, ch: Channel, message: Message) -> None:
        try:
            await self.platform(ch).notify_admins(ch, message)
        except PlatformError as exc:
            log.error("could not notify the admins of %s: %s (message was: %s)", ch.label, exc, message.plain)

    # -- reveal and close ---------------------------------------------------------------------------------

    async def finish_now(self, round_id: int) -> None:
        """Reveal and close a round right away (before the next post, or on an admin's close-now)."""
        await self.reveal(round_id, early=True)
        await self.close(round_id, early=True)

    async def reveal(self, round_id: int, *, early: bool = False) -> bool:
        await self._ensure_matcher()  # slow once: before the claim, so it never eats into the lease
        now = self.now()
        async with self.tx() as conn:
            r = await round_store.get(conn, round_id)
            if r is None:
                return False
            if r.state == RoundState.POSTING and early:
                # Never posted (or never finished posting): nothing to reveal.
                await round_store.force_state(conn, r.id, [RoundState.POSTING], RoundState.SKIPPED, note="superseded")
                return False
            taken = await round_store.take(
                conn, round_id, [RoundState.OPEN], RoundState.REVEALING, self.owner, now, self.lease()
            )
            if taken is None:
                return False
            # Taking over a reveal whose lease ran out: some of its messages may be in the thread already.
            retry = _since(r) if r.state == RoundState.REVEALING else None
            ballot_answers = await answer_store.number(conn, round_id)
            ch = await channel_store.get(conn, taken.channel_id)
        assert ch is not None
        q = self.bank.get(taken.question_id or "")
        thread = taken.thread_id
        close_at = now + timedelta(minutes=ch.settings.voting_window_minutes)
        hints = await self._hints(q, ballot_answers) if q is not None else None
        try:
            if taken.answer_mode == "blind":
                for a in ballot_answers:
                    await self.platform(ch).send(
                        ch, messages.published_answer(a), thread, key=f"r{round_id}a{a.id}", maybe_sent_since=retry
                    )
            if q is not None:
                await self.platform(ch).send(
                    ch, messages.reveal(q), thread, key=f"r{round_id}q", maybe_sent_since=retry
                )
            else:
                await self.platform(ch).send(
                    ch,
                    messages.say(f"The question {taken.question_id} is no longer in the bank."),
                    thread,
                    key=f"r{round_id}q",
                    maybe_sent_since=retry,
                )
            # A long ballot spans several messages, each with its own key so a retried reveal posts none twice
            # (the first keeps the key a one-message ballot always had).
            pages = messages.ballot(taken, ballot_answers, close_at, ch.settings.timezone, hints)
            for n, page in enumerate(pages, start=1):
                await self.platform(ch).send(
                    ch, page, thread, key=f"r{round_id}b" + (str(n) if n > 1 else ""), maybe_sent_since=retry
                )
        except PlatformError as exc:
            if exc.permanent:
                await self._lost_channel(ch, taken, str(exc))
                return False
            raise
        async with self.tx() as conn:
            await round_store.finish(
                conn,
                round_id,
                RoundState.REVEALING,
                RoundState.REVEALED,
                self.owner,
                revealed_at=now,
                close_at=close_at,
            )
        log.info("revealed round %s in %s with %d answers", round_id, ch.label, len(ballot_answers))
        return True

    async def _ensure_matcher(self) -> None:
        """Build the rubric matcher in a worker thread: it weighs every word of the bank (about half a second).
        Should that fail, ballots go out without hints, and the next reveal tries again."""
        if self._matcher is not None or not self.config.hints.enabled:
            return
        opts = self.config.hints
        try:
            self._matcher = await asyncio.to_thread(
                rubric.matcher_for, self.bank, opts.embedding_model, opts.embedding_threshold
            )
        except Exception:
            log.exception("could not build the rubric matcher; ballots go out without hints")

    async def _hints(self, q: Question, answers: Sequence[Answer]) -> dict[int, rubric.Coverage] | None:
        """Rubric hints for the ballot, computed in a worker thread so other channels are not held up. A hint
        is a nicety: if anything goes wrong, the ballot goes out without hints rather than not at all."""
        if self._matcher is None or not answers:
            return None
        try:
            return await asyncio.to_thread(rubric.hints, self._matcher, q, {a.id: a.text for a in answers})
        except Exception:
            log.exception("rubric hints for question %s failed; the ballot goes out without them", q.id)
            return None

    async def close(self, round_id: int, *, early: bool = False) -> bool:
        now = self.now()
        async with self.tx() as conn:
            before = await round_store.get(conn, round_id)
            taken = await round_store.take(
                conn, round_id, [RoundState.REVEALED], RoundState.CLOSING, self.owner, now, self.lease()
            )
            if taken is None or before is None:
                return False
            # Taking over a close whose lease ran out: its results may be in the thread already.
            retry = _since(before) if before.state == RoundState.CLOSING else None
            ch = await channel_store.get(conn, taken.channel_id)
            assert ch is not None
            final = await answer_store.for_round(conn, round_id)
            streaks: dict[int, int] = {}
            if final:
                held = await round_store.held_round_ids(conn, ch.id, up_to_id=round_id, limit=STREAK_LOOKBACK)
                answered = await answer_store.answered_by(conn, [a.member_id for a in final], held)
                streaks = {m: run_length(held, rounds_answered) for m, rounds_answered in answered.items()}
            score = score_round(self.config.scoring, ch.id, round_id, final, streaks)
            # Written in the same transaction that closes voting: a vote either counted or was refused.
            await score_store.award(conn, score.awards, now)
            if taken.question_id:  # each answer also reviews its author's spaced-repetition card
                await card_store.record_round(conn, round_id, taken.question_id, final, score.top_answer_ids, now)
        try:
            await self.platform(ch).send(
                ch,
                messages.results(final, score.totals, score.top_answer_ids, streaks),
                taken.thread_id,
                key=f"c{round_id}",
                maybe_sent_since=retry,
            )
        except PlatformError as exc:
            if not exc.permanent:
                raise
            log.error("could not post results of round %s in %s: %s", round_id, ch.label, exc)
        async with self.tx() as conn:
            await round_store.finish(conn, round_id, RoundState.CLOSING, RoundState.CLOSED, self.owner, closed_at=now)
        log.info("closed round %s in %s", round_id, ch.label)
        return True

    async def skip(self, ch: Channel) -> str:
        """Skip the running round (no points), or if none runs, the next scheduled post."""
        now = self.now()
        async with self.tx() as conn:
            running = await round_store.active(conn, ch.id)
            for r in running:
                if await round_store.force_state(
                    conn,
                    r.id,
                    [RoundState.POSTING, RoundState.OPEN, RoundState.REVEALED],
                    RoundState.SKIPPED,
                    note="skipped by an admin",
                ):
                    return f"Skipped the running round ({r.slot}): no points are awarded for it."
            if running:
                return "The round is being revealed or closed right now; try again in a moment."
            nxt = next_post_slot(ch.settings, now)
            created = await round_store.create(
                conn,
                channel_id=ch.id,
                slot=nxt.key,
                scheduled=True,
                state=RoundState.SKIPPED.value,
                answer_mode=ch.settings.answer_mode,
                vote_cap=ch.settings.vote_cap,
                due_at=nxt.at,
                note="skipped in advance by an admin",
            )
        when = format_local(nxt.at, ch.settings.timezone)
        return f"The next daily question ({when}) will be skipped." if created else f"{when} is already skipped."

    # -- weekly leaderboard -------------------------------------------------------------------------------

    async def _leaderboards_due(self, chans: list[Channel], now: datetime) -> None:
        grace = timedelta(minutes=self.config.timing.late_leaderboard_grace_minutes)
        slots: dict[tuple[str, str, str], Slot | None] = {}
        candidates: list[tuple[Channel, Slot]] = []
        for ch in chans:
            key = (ch.settings.leaderboard_weekday, ch.settings.leaderboard_time, ch.settings.timezone)
            if key not in slots:
                slots[key] = latest_leaderboard_slot(ch.settings, now)
            slot = slots[key]
            if slot is not None and slot.at >= ch.active_since and now - slot.at <= grace:
                candidates.append((ch, slot))
        if not candidates:
            return
        async with self.read() as conn:
            done = await round_store.claimed_periods(conn, "leaderboard", {slot.key for _, slot in candidates}, now)
        todo = [(ch, slot) for ch, slot in candidates if (ch.id, slot.key) not in done]
        await _each(todo, lambda item: self._leaderboard(item[0], item[1]))

    async def _leaderboard(self, ch: Channel, slot: Slot) -> None:
        now = self.now()
        async with self.tx() as conn:
            claimed = await round_store.claim(conn, ch.id, "leaderboard", slot.key, self.owner, now, self.lease())
            if claimed is None:
                return
            rows = await score_store.leaderboard_between(conn, [ch.id], slot.at - timedelta(days=7), slot.at, limit=10)
        msg = messages.standings(
            "Leaderboard: the last 7 days",
            rows,
            None,
            "No points in the last 7 days. Answer the next question to open the scoreboard!",
        )
        msg = await self._with_card(ch, slot, rows, msg)
        try:
            # A claim taken over from an attempt that never finished: the board may be out already.
            retry = slot.at if claimed == "taken over" else None
            await self.platform(ch).send(ch, msg, key=f"l{ch.id}:{slot.key}", maybe_sent_since=retry)
        except PlatformError as exc:
            if exc.permanent:
                await self._lost_channel(ch, None, str(exc))
            else:
                log.warning("could not post the leaderboard in %s, will retry: %s", ch.label, exc)
            return
        async with self.tx() as conn:
            await round_store.claim_done(conn, ch.id, "leaderboard", slot.key, self.now())

    async def _with_card(self, ch: Channel, slot: Slot, rows: list[Standing], msg: Message) -> Message:
        """The weekly post with its picture: places, points and streaks as a card. The text already says it
        all, so a card that cannot be drawn is logged and the post goes out without it."""
        if not rows or not self.config.images:
            return msg
        try:
            async with self.read() as conn:
                streaks = await current_streaks(conn, ch.id, [r.member_id for r in rows], STREAK_LOOKBACK)
            tz = ZoneInfo(ch.settings.timezone)
            since, until = (slot.at - timedelta(days=7)).astimezone(tz), slot.at.astimezone(tz)
            card = cards.BoardCard(
                title="Weekly leaderboard",
                period=f"{since:%a %d %b} to {until:%a %d %b %Y} · {ch.label}",
                rows=tuple(cards.BoardRow(r.rank, r.display_name, r.points, streaks.get(r.member_id, 0)) for r in rows),
            )
            image = await cards.leaderboard_image(card, f"leaderboard-{slot.key}.png")
        except Exception:  # a picture is never worth losing the post over
            log.exception("could not draw the leaderboard card for %s; posting the text alone", ch.label)
            return msg
        return replace(msg, image=image)


# Posts claimed at once: sent and recorded well within one lease even at a platform's 50 requests/s.
# How long an adapter may take to read back its open threads after (re)starting before reveals go ahead anyway.
REVEAL_HOLD_SECONDS = 120.0
REVEAL_HOLD_POLL_SECONDS = 5
POST_CHUNK = 200
# Platform calls in flight at once during a sweep; the adapter's own rate limiting paces them.
CONCURRENCY = 32


@dataclass(frozen=True)
class PostItem:
    channel: Channel
    slot_key: str
    scheduled: bool
    due_at: datetime
    weekday: str


T = TypeVar("T")


def _since(r: Round) -> datetime:
    """The earliest a round's reveal or results can have gone out: not before its question was posted."""
    return r.posted_at or r.due_at


async def _each(items: Sequence[T], work: Callable[[T], Awaitable[None]], limit: int = CONCURRENCY) -> None:
    """Run work on every item, at most ``limit`` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(i) for i in items))
