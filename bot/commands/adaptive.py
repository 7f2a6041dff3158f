"""Adaptive practice commands: choosing the next practice question, rating it, /quiz review and /quiz remind.

Kept out of handlers.py so the scheduling side of practice lives in one place; handlers.py and app.py call in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bot import messages
from bot.commands.parse import usage_text
from bot.commands.spec import BY_PATH
from bot.engine import Engine
from bot.events import Actor, Command
from bot.practice.reminders import next_fire
from bot.practice.skills import SCORE_MEANING, SURE_REVIEWS, TREND_MIN_REVIEWS, TopicSkill, weakest
from bot.questions.model import Question
from bot.questions.select import choose
from bot.render import Field, Message, Reply, Response
from bot.schedule import format_local
from bot.settings import check_timezone, parse_hhmm
from bot.store import cards as card_store
from bot.store import channels as channel_store
from bot.store import reminders as reminder_store
from bot.store import scores as score_store
from bot.store.reminders import Reminder

RATING_WORDS = {"got": "got it", "partly": "partly", "missed": "missed it"}
WEEK = timedelta(days=7)


def _say(text: str, title: str | None = None) -> list[Response]:
    return [Reply(messages.say(text, title))]


async def _timezone(conn: AsyncConnection, engine: Engine, member_id: int | None) -> str:
    """How to show a member times: their reminder's timezone if they set one, else the configured default."""
    if member_id is not None and (r := await reminder_store.get(conn, member_id)) is not None:
        return r.timezone
    return engine.config.channel_defaults.timezone


def _matches(q: Question, topic: str | None, difficulty: str | None) -> bool:
    return (topic is None or q.topic == topic) and (difficulty is None or q.difficulty == difficulty)


async def serve(engine: Engine, actor: Actor, topic: str | None, difficulty: str | None) -> list[Response]:
    """The next practice question: the most overdue review, else a question never seen, else (nothing due, all
    seen) the one due soonest as extra practice. ``topic`` (an id) and ``difficulty`` narrow all three."""
    bank = engine.bank
    now = engine.now()
    # Read-only: the member is only recorded when they rate a question.
    async with engine.read() as conn:
        member = await channel_store.find_member(conn, actor.platform, actor.space_id, actor.user_id)
        schedule = await card_store.schedule(conn, member.id) if member else {}
        tz = await _timezone(conn, engine, member.id if member else None)
    # Due questions come from anything in the bank the member has met, legacy ones from a daily round included.
    carded = sorted(
        (when, qid)
        for qid, when in schedule.items()
        if (q := bank.get(qid)) is not None and _matches(q, topic, difficulty)
    )
    due = [(when, qid) for when, qid in carded if when <= now]
    label: str
    if due:
        when, qid = due[0]
        q = bank.get(qid)
        more = f" ({len(due) - 1} more due after this one)" if len(due) > 1 else ""
        label = f"Review: due since {format_local(when, tz)}{more}"
    else:
        fresh = [q for q in bank.in_order() if not q.legacy and _matches(q, topic, difficulty) and q.id not in schedule]
        q = choose(fresh, ("easy", "medium", "hard"), {}, engine.rng)
        label = "New: not practised or answered by you yet"
        if q is None and carded:
            when, qid = carded[0]
            q = bank.get(qid)
            label = (
                f"Extra practice: nothing is due, and you have seen every question here (due {format_local(when, tz)})"
            )
    if q is None:
        return _say("No questions match that. Try another topic or difficulty (see `/quiz topics`).")
    msg = messages.practice_question(q, engine.topic_title(q.topic))
    return [Reply(replace(msg, fields=(*msg.fields, Field("Schedule", label))))]


async def rate(engine: Engine, actor: Actor, q: Question, outcome: str) -> list[Response]:
    """A self-rating from the practice buttons: schedule the question's next review and say when it is."""
    now = engine.now()
    async with engine.tx() as conn:
        member = await channel_store.ensure_member(conn, actor, now)
        rated = await card_store.rate(conn, member.id, q.id, outcome, now)
        if rated.recorded:
            await score_store.record_practice(conn, member.id, q.id, outcome, now)
        tz = await _timezone(conn, engine, member.id)
    when = format_local(rated.after.due, tz)
    if not rated.recorded:
        return _say(f"You already rated this question; it comes back for review {when}. Nothing changed.")
    days = max(1, round((rated.after.due - now) / timedelta(days=1)))
    return _say(
        f"Noted: {RATING_WORDS[outcome]}. It comes back for review in {days} day{'s' if days != 1 else ''} "
        f"({when}). `/quiz practice` for another, or press Another one."
    )


def _reminder_line(r: Reminder | None) -> str:
    if r is None:
        return "off. `/quiz remind time=08:30 timezone=Europe/Berlin` sends you a direct message when reviews are due."
    if r.next_at is not None:
        return f"daily at {r.at_time} {r.timezone}, on days you have reviews due. `/quiz remind off` stops it."
    if r.last_error:
        return (
            f"off: I could not send you a direct message ({r.last_error[:200]}). Allow direct messages from this "
            "server's members, then `/quiz remind on`."
        )
    return f"off (it was {r.at_time} {r.timezone}). `/quiz remind on` restarts it."


async def review(engine: Engine, cmd: Command) -> list[Response]:
    """How many reviews are due now and over the next seven days, per topic."""
    a = cmd.actor
    now = engine.now()
    async with engine.read() as conn:
        member = await channel_store.find_member(conn, a.platform, a.space_id, a.user_id)
        schedule = await card_store.schedule(conn, member.id) if member else {}
        reminder = await reminder_store.get(conn, member.id) if member else None
        tz = await _timezone(conn, engine, member.id if member else None)
    now_by_topic, week_by_topic = _due_by_topic(engine, schedule, now)
    fields = [Field("Reminder", _reminder_line(reminder))]
    if not schedule:
        text = (
            "Nothing to review yet. Rate a practice question (`/quiz practice`) or answer a daily question, and I "
            "will bring it back just before you are likely to forget it."
        )
        return [Reply(Message(title="Reviews", parts=(text,), fields=tuple(fields)))]
    n_now, n_week = sum(now_by_topic.values()), sum(week_by_topic.values())
    text = f"Due now: **{n_now}**. Due over the next 7 days: **{n_week}** more."
    if n_now:
        text += " Run `/quiz practice` (optionally with a topic): due questions come first, most overdue first."
    else:
        upcoming = min((w for qid, w in schedule.items() if engine.bank.get(qid)), default=None)
        if upcoming is not None:
            text += f" The next one is due {format_local(upcoming, tz)}."
    topics = sorted(set(now_by_topic) | set(week_by_topic), key=lambda t: (-now_by_topic.get(t, 0), t))
    lines = [
        f"- {engine.topic_title(t)}: {now_by_topic.get(t, 0)} now, {week_by_topic.get(t, 0)} in the next 7 days"
        for t in topics
    ]
    if lines:
        fields.insert(0, Field("By topic", "\n".join(lines[:15]) + ("\n…" if len(lines) > 15 else "")))
    return [Reply(Message(title="Reviews", parts=(text,), fields=tuple(fields)))]


def _due_by_topic(
    engine: Engine, schedule: Mapping[str, datetime], now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    due_now: dict[str, int] = {}
    due_week: dict[str, int] = {}
    for qid, when in schedule.items():
        q = engine.bank.get(qid)
        if q is None:  # no longer in the bank: it can never be served, so it is never counted
            continue
        if when <= now:
            due_now[q.topic] = due_now.get(q.topic, 0) + 1
        elif when <= now + WEEK:
            due_week[q.topic] = due_week.get(q.topic, 0) + 1
    return due_now, due_week


async def remind(engine: Engine, cmd: Command) -> list[Response]:
    """Set, change, stop or restart the member's daily reminder; with no options, say how it stands."""
    o = cmd.options
    spec = BY_PATH[("quiz", "remind")]
    now = engine.now()

    def bad(problem: str) -> list[Response]:
        return _say(f"{problem} Your reminder was not changed.\n\n{usage_text(spec)}")

    action = o.get("action")
    if action == "off" and ("time" in o or "timezone" in o):
        return bad("`off` takes no time or timezone.")
    try:
        at_time = f"{parse_hhmm(o['time']):%H:%M}" if "time" in o else None
        timezone = check_timezone(o["timezone"]) if "timezone" in o else None
    except ValueError as exc:
        return bad(f"{exc}.")
    a = cmd.actor
    # Asking how it stands, or turning off what was never on, records nobody.
    async with engine.read() as conn:
        known = await channel_store.find_member(conn, a.platform, a.space_id, a.user_id)
        existing = await reminder_store.get(conn, known.id) if known else None
    if action is None and at_time is None and timezone is None:
        return [Reply(Message(title="Reminder", parts=(_reminder_line(existing),)))]
    if action == "off":
        if known is None or existing is None:
            return _say("Your reminder is already off.")
        async with engine.tx() as conn:
            if not await reminder_store.turn_off(conn, known.id, now):
                return _say("Your reminder is already off.")
        return _say("Reminder off: no more direct messages. `/quiz remind on` restarts it at the same time.")
    if at_time is None and existing is None:
        return bad("Say what time: for example `/quiz remind time=08:30 timezone=Europe/Berlin`.")
    async with engine.tx() as conn:
        member = await channel_store.ensure_member(conn, a, now)
        existing = await reminder_store.get(conn, member.id)
        at_time = at_time or (existing.at_time if existing else None)
        if at_time is None:  # turned on elsewhere and erased in between: nothing to restart
            return bad("Say what time: for example `/quiz remind time=08:30 timezone=Europe/Berlin`.")
        if timezone is None:
            ch = await channel_store.find(conn, cmd.place.platform, cmd.place.space_id, cmd.place.channel_id)
            timezone = (
                existing.timezone
                if existing
                else ch.settings.timezone
                if ch
                else engine.config.channel_defaults.timezone
            )
        first = next_fire(at_time, timezone, now, existing.last_sent_at if existing else None)
        await reminder_store.put(conn, member.id, at_time, timezone, first, now)
    return _say(
        f"Reminder set: on days you have reviews due, I will send you a direct message at {at_time} {timezone}. "
        f"The first check is {format_local(first, timezone)}. `/quiz remind off` stops it.\n"
        "If your direct messages are closed to this server's members, I cannot reach you: allow them to get it."
    )


TREND_MARK = {"up": "↑ improving", "down": "↓ slipping", "steady": "→ steady", "new": "no trend yet"}
SKILL_LINES = 6  # a Discord embed field holds 1,024 characters; six long lines and "… more" fit


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def skill_fields(rows: Sequence[TopicSkill]) -> tuple[Field, ...]:
    """The per-topic part of /quiz stats: one line per topic, weakest first, and the topic to practise next.
    The rows come from bot.practice.skills, like the chart's, so the two always agree."""
    if not rows:
        return ()
    lines = []
    for s in rows[:SKILL_LINES]:
        judged = TREND_MARK[s.trend] if s.sure else f"too few reviews to judge (fewer than {SURE_REVIEWS})"
        lines.append(
            f"- {s.title}: {s.percent}% over {_n(s.reviews, 'review')} of {_n(s.seen, 'question')} "
            f"({s.well} well · {s.partly} partly · {s.missed} missed), {judged}"
        )
    if len(rows) > SKILL_LINES:
        lines.append(f"… and {len(rows) - SKILL_LINES} more topics")
    fields = [
        Field("Skills by topic (weakest first)", "\n".join(lines)),
        Field("How the % is counted", f"{SCORE_MEANING} A trend needs {TREND_MIN_REVIEWS} reviews in the topic."),
    ]
    weak = weakest(rows)
    if weak is not None:
        command = f"`/quiz practice {weak.topic}`"
        if weak.sure:
            why = f"your lowest score, {weak.percent}% over {_n(weak.reviews, 'review')}"
        else:  # no topic has enough reviews: say the suggestion rests on very little
            why = (
                f"a first impression from only {_n(weak.reviews, 'review')}: no topic has {SURE_REVIEWS} reviews "
                "yet, so I cannot tell your weakest"
            )
        fields.append(Field("Practise next", f"{weak.title} ({why}): {command}"))
    return tuple(fields)
