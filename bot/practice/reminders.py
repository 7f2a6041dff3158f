"""Daily reminders of due reviews, by direct message, at each member's chosen local time.

The engine's tick calls :func:`send_due`. Each reminder row carries its next firing in UTC, so finding the due
ones is one indexed query however many members and timezones there are; claiming them is one UPDATE with a
lease, so with several processes each reminder goes out once, and a process that dies mid-send leaves it to
be sent when the lease runs out. A direct message that fails is recorded, never retried the same day, and a
refusal that cannot change by itself (the member closed their DMs, left the server) turns the reminder off.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.ports import PlatformError
from bot.render import Message
from bot.schedule import local_instant
from bot.settings import parse_hhmm
from bot.store import cards as card_store
from bot.store import reminders as reminder_store
from bot.store.reminders import DueReminder, Outcome

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

# A reminder more than this late (the bot was down) is dropped for the day rather than sent at an odd hour.
LATE_GRACE = timedelta(hours=6)
# Transient failures in a row (outages, timeouts) before we stop trying and turn the reminder off.
MAX_FAILURES = 3
# Reminders handled per tick; more are left for the next tick, which the scheduler runs at once.
BATCH = 500


def next_fire(at_time: str, timezone: str, after: datetime, last_sent: datetime | None = None) -> datetime:
    """The first local ``at_time`` strictly after ``after``, on a later local day than the last reminder sent:
    moving the time later on a day that already had its reminder does not send a second one."""
    tz = ZoneInfo(timezone)
    at = parse_hhmm(at_time)
    day = after.astimezone(tz).date()
    sent_day = last_sent.astimezone(tz).date() if last_sent else None
    for offset in range(3):
        d = day + timedelta(days=offset)
        when = local_instant(d, at, tz)
        if when > after and (sent_day is None or d > sent_day):
            return when
    return local_instant(day + timedelta(days=3), at, tz)  # pragma: no cover - three days always hold one


def latest_fire(at_time: str, timezone: str, now: datetime) -> datetime:
    """The most recent local ``at_time`` at or before ``now``."""
    tz = ZoneInfo(timezone)
    at = parse_hhmm(at_time)
    day = now.astimezone(tz).date()
    for offset in range(3):
        when = local_instant(day - timedelta(days=offset), at, tz)
        if when <= now:
            return when
    return local_instant(day - timedelta(days=3), at, tz)  # pragma: no cover - three days always hold one


def message(due_questions: list[str], topic_of: dict[str, str]) -> Message:
    by_topic = Counter(topic_of[q] for q in due_questions)
    detail = ", ".join(f"{title} {n}" for title, n in sorted(by_topic.items(), key=lambda kv: (-kv[1], kv[0])))
    n = len(due_questions)
    return Message(
        title="Practice reminder",
        parts=(
            f"You have {n} practice question{'s' if n != 1 else ''} due for review ({detail}). "
            "Run `/quiz practice` to go through them: due questions come first.\n"
            "Change the time with `/quiz remind time=HH:MM`, or stop these messages with `/quiz remind off`.",
        ),
    )


async def send_due(engine: Engine) -> int:
    """Send every reminder that is due on the platforms this process serves. Returns direct messages sent."""
    now = engine.now()
    async with engine.read() as conn:
        found = await reminder_store.due(conn, engine.platforms, now, BATCH)
    if not found:
        return 0
    async with engine.tx() as conn:
        ids = [d.reminder.member_id for d in found]
        mine = await reminder_store.claim(conn, ids, engine.owner, now, engine.lease())
        claimed = [d for d in found if d.reminder.member_id in mine]
        due = await card_store.due_counts(conn, mine, now)
    # Only questions still in the bank count: a removed question can never be practised, so it must never remind.
    topic_of: dict[str, str] = {}
    for qid in {x for v in due.values() for x in v}:
        if (q := engine.bank.get(qid)) is not None:
            topic_of[qid] = engine.topic_title(q.topic)
    results: list[Outcome] = []

    async def one(d: DueReminder) -> None:
        r = d.reminder
        assert r.next_at is not None
        fire = latest_fire(r.at_time, r.timezone, now)
        following = next_fire(r.at_time, r.timezone, now, fire)  # the day of ``fire`` is dealt with either way
        questions = [q for q in due.get(r.member_id, []) if q in topic_of]
        # After downtime the stored time may be days old: what counts is whether today's time is recent enough.
        if not questions or now - fire > LATE_GRACE:
            results.append(Outcome(r.member_id, following))  # nothing to say today, or too late to say it
            return
        try:
            await engine.platforms[d.platform].send_direct(d.space_id, d.user_id, message(questions, topic_of))
        except Exception as exc:
            # A member's closed DMs, or an adapter bug, must not stop the other reminders or the sweep.
            permanent = isinstance(exc, PlatformError) and exc.permanent
            why = str(exc) if isinstance(exc, PlatformError) else f"{type(exc).__name__}: {exc}"
            stop = permanent or r.failures + 1 >= MAX_FAILURES
            log.warning(
                "could not send member %s their review reminder (%s); %s",
                r.member_id,
                why,
                "turning it off" if stop else "will try again tomorrow",
            )
            results.append(Outcome(r.member_id, None if stop else following, error=why))
            return
        results.append(Outcome(r.member_id, following, sent=True))

    from bot.engine import _each  # the engine's bounded gather: DMs overlap, the adapter paces them

    await _each(claimed, one)
    async with engine.tx() as conn:
        ours = await reminder_store.finish_many(conn, engine.owner, now, results)
    if ours < len(results):
        log.warning("%d review reminders were taken over after our lease ran out", len(results) - ours)
    sent_count = sum(1 for o in results if o.sent)
    if sent_count:
        log.info("sent %d review reminders", sent_count)
    return sent_count
