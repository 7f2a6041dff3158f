"""The round lifecycle: post -> reveal -> close, the weekly leaderboard, and catching up after downtime.

Each step first claims its transition in the database (see ``store.rounds``) and only then talks to the
platform, so a crash, a restart or a second process can never make a step happen twice. A step that fails
on the platform is left under its lease and retried by the next sweep; one that can never succeed (the
bot lost access to the channel) pauses the channel and tells its admins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import messages
from bot.clock import Clock
from bot.config import Config
from bot.models import Channel, Round, RoundState
from bot.ports import Platform, PlatformError
from bot.questions.model import Bank, Question
from bot.questions.select import choose, eligible
from bot.render import Message
from bot.schedule import (
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
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store import scores as score_store
from bot.store.tables import seen_events
from bot.streaks import run_length

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

    # -- plumbing -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        async with self.db.begin() as conn:
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
        async with self.tx() as conn:
            return await channel_store.get(conn, pk)

    # -- the sweep ----------------------------------------------------------------------------------------

    async def my_channels(self) -> list[Channel]:
        """The channels this process serves: on its platforms, and (sharded Discord) in its shards' guilds."""
        async with self.tx() as conn:
            chans = await channel_store.all_channels(conn)
        return [c for c in chans if c.platform in self.platforms and self.platforms[c.platform].owns(c)]

    async def tick(self) -> None:
        """Do everything that is due in every channel we serve. Safe to call at any time, from any process."""
        for ch in await self.my_channels():
            await self.run_channel(ch.id)
        await self._prune_seen_events()

    async def _prune_seen_events(self) -> None:
        # Platforms redeliver within minutes (Slack: three tries over about an hour); a day is plenty.
        async with self.tx() as conn:
            await conn.execute(delete(seen_events).where(seen_events.c.seen_at < self.now() - timedelta(days=1)))

    async def run_channel(self, channel_pk: int) -> None:
        async with self.lock(channel_pk):
            ch = await self.channel(channel_pk)
            if ch is None or ch.platform not in self.platforms:
                return
            try:
                await self._advance_rounds(ch)
                if ch.enabled:
                    await self._maybe_post(ch)
                    await self._maybe_leaderboard(ch)
            except PlatformError as exc:
                # Transient: the step stays claimed under its lease and the next sweep retries it.
                log.warning("platform error in %s, will retry: %s", ch.label, exc)

    async def _advance_rounds(self, ch: Channel) -> None:
        now = self.now()
        async with self.tx() as conn:
            active = await round_store.active(conn, ch.id)
        for r in active:
            expired = r.lease_until is None or r.lease_until < now
            if r.state == RoundState.POSTING and expired:
                await self._resume_post(ch, r)
            elif (r.state == RoundState.OPEN and r.reveal_at and r.reveal_at <= now) or (
                r.state == RoundState.REVEALING and expired
            ):
                await self.reveal(r.id)
            elif (r.state == RoundState.REVEALED and r.close_at and r.close_at <= now) or (
                r.state == RoundState.CLOSING and expired
            ):
                await self.close(r.id)

    async def next_due(self, channel_pk: int) -> datetime | None:
        """When this channel next needs attention: what the scheduler sets its job for."""
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

    # -- posting ------------------------------------------------------------------------------------------

    async def _maybe_post(self, ch: Channel) -> None:
        now = self.now()
        slot = latest_post_slot(ch.settings, now)
        if slot is None or slot.at < ch.active_since:
            return
        async with self.tx() as conn:
            if await round_store.by_slot(conn, ch.id, slot.key) is not None:
                return
        grace = timedelta(minutes=self.config.timing.late_post_grace_minutes)
        if now - slot.at > grace:
            async with self.tx() as conn:
                created = await round_store.create(
                    conn,
                    channel_id=ch.id,
                    slot=slot.key,
                    scheduled=True,
                    state=RoundState.MISSED.value,
                    answer_mode=ch.settings.answer_mode,
                    vote_cap=ch.settings.vote_cap,
                    due_at=slot.at,
                    note=f"not posted: the bot was down until {now.isoformat(timespec='minutes')}",
                )
            if created:
                log.info(
                    "skipping the %s post in %s: %s late is past the grace period", slot.key, ch.label, now - slot.at
                )
            return
        await self.post(ch, slot_key=slot.key, scheduled=True, due_at=slot.at, weekday=slot.weekday)

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
        async with self.tx() as conn:
            usage = await round_store.question_usage(conn, ch.id)
            pool = eligible(self.bank, ch.settings)
            question = choose(pool, ch.settings.plan_for(weekday), usage, self.rng)
            common = {
                "channel_id": ch.id,
                "slot": slot_key,
                "scheduled": scheduled,
                "answer_mode": ch.settings.answer_mode,
                "vote_cap": ch.settings.vote_cap,
                "due_at": due_at,
            }
            if question is None:
                rid = await round_store.create(
                    conn, **common, state=RoundState.SKIPPED.value, note="no question matches the channel's topics"
                )
            else:
                rid = await round_store.create(
                    conn,
                    **common,
                    question_id=question.id,
                    state=RoundState.POSTING.value,
                    lease_owner=self.owner,
                    lease_until=self.lease(),
                )
        if rid is None:
            return PostOutcome(None, "exists", f"the {slot_key} round already exists")
        # One round at a time per channel: finish the rounds before this one. Only after winning the claim,
        # and only older rounds: another process may be posting this very slot, and its round is not ours to end.
        async with self.tx() as conn:
            earlier = [r.id for r in await round_store.active(conn, ch.id) if r.id < rid]
        for old_id in earlier:
            await self.finish_now(old_id)
        if question is None:
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
            return PostOutcome(rid, "empty-pool", "no question matches the channel's topics")
        async with self.tx() as conn:
            rnd = await round_store.get(conn, rid)
        assert rnd is not None
        return await self._publish(ch, rnd, question)

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
            await self._publish(ch, taken, question)

    async def _publish(self, ch: Channel, rnd: Round, q: Question) -> PostOutcome:
        now = self.now()
        reveal_at = now + timedelta(minutes=ch.settings.answer_window_minutes)
        shown = dataclasses.replace(rnd, reveal_at=reveal_at)
        try:
            sent = await self.platform(ch).send(ch, messages.daily_post(ch, shown, q, self.topic_title(q.topic)))
        except PlatformError as exc:
            if exc.permanent:
                await self._lost_channel(ch, rnd, str(exc))
                return PostOutcome(rnd.id, "failed", str(exc))
            raise
        async with self.tx() as conn:
            ok = await round_store.finish(
                conn,
                rnd.id,
                RoundState.POSTING,
                RoundState.OPEN,
                self.owner,
                posted_at=now,
                reveal_at=reveal_at,
                close_at=reveal_at + timedelta(minutes=ch.settings.voting_window_minutes),
                message_id=sent.message_id,
                thread_id=sent.thread_id or sent.message_id,
            )
        if not ok:
            log.warning("round %s: our posting lease was taken over; the question may appear twice", rnd.id)
        log.info("posted round %s (%s) in %s", rnd.id, q.id, ch.label)
        return PostOutcome(rnd.id, "posted")

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
            ballot_answers = await answer_store.number(conn, round_id)
            ch = await channel_store.get(conn, taken.channel_id)
        assert ch is not None
        q = self.bank.get(taken.question_id or "")
        thread = taken.thread_id
        close_at = now + timedelta(minutes=ch.settings.voting_window_minutes)
        try:
            if taken.answer_mode == "blind":
                for a in ballot_answers:
                    await self.platform(ch).send(ch, messages.published_answer(a), thread)
            if q is not None:
                await self.platform(ch).send(ch, messages.reveal(q), thread)
            else:
                await self.platform(ch).send(
                    ch, messages.say(f"The question {taken.question_id} is no longer in the bank."), thread
                )
            await self.platform(ch).send(
                ch, messages.ballot(taken, ballot_answers, close_at, ch.settings.timezone), thread
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

    async def close(self, round_id: int, *, early: bool = False) -> bool:
        now = self.now()
        async with self.tx() as conn:
            taken = await round_store.take(
                conn, round_id, [RoundState.REVEALED], RoundState.CLOSING, self.owner, now, self.lease()
            )
            if taken is None:
                return False
            ch = await channel_store.get(conn, taken.channel_id)
            assert ch is not None
            final = await answer_store.for_round(conn, round_id)
            streaks: dict[int, int] = {}
            if final:
                held = await round_store.held_round_ids(conn, ch.id, up_to_id=round_id)
                held = held[:STREAK_LOOKBACK]
                for a in final:
                    done = await answer_store.answered_rounds(conn, a.member_id, held)
                    streaks[a.member_id] = run_length(held, done)
            score = score_round(self.config.scoring, ch.id, round_id, final, streaks)
            # Written in the same transaction that closes voting: a vote either counted or was refused.
            await score_store.award(conn, score.awards, now)
        try:
            await self.platform(ch).send(
                ch, messages.results(final, score.totals, score.top_answer_ids, streaks), taken.thread_id
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

    async def _maybe_leaderboard(self, ch: Channel) -> None:
        now = self.now()
        slot = latest_leaderboard_slot(ch.settings, now)
        if slot is None or slot.at < ch.active_since:
            return
        if now - slot.at > timedelta(minutes=self.config.timing.late_leaderboard_grace_minutes):
            return
        async with self.tx() as conn:
            if not await round_store.claim(conn, ch.id, "leaderboard", slot.key, self.owner, now, self.lease()):
                return
            rows = await score_store.leaderboard(conn, [ch.id], slot.at - timedelta(days=7), slot.at, limit=10)
        msg = messages.standings(
            "Leaderboard: the last 7 days",
            rows,
            None,
            "No points in the last 7 days. Answer the next question to open the scoreboard!",
        )
        try:
            await self.platform(ch).send(ch, msg)
        except PlatformError as exc:
            if exc.permanent:
                await self._lost_channel(ch, None, str(exc))
                return
            raise
        async with self.tx() as conn:
            await round_store.claim_done(conn, ch.id, "leaderboard", slot.key, self.now())
