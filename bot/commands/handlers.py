"""What each /quiz command does. Handlers return neutral replies; adapters render them."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from bot import cards, messages
from bot.commands import adaptive
from bot.commands.parse import parse_duration, usage_text
from bot.commands.spec import BY_PATH, COMMANDS
from bot.engine import Engine
from bot.events import Actor, Command, Place
from bot.models import Channel, Member, RoundState
from bot.ports import PlatformError
from bot.practice.skills import SCORE_MEANING, TopicSkill, skills_for
from bot.progress import topic_rows
from bot.render import Button, Field, Image, Message, Reply, Response, Style, UserText
from bot.schedule import format_local, next_leaderboard_slot, next_post_slot
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store import scores as score_store
from bot.streaks import streaks_for

log = logging.getLogger(__name__)

Handler = Callable[["Commands", Command], Awaitable[list[Response]]]


def reply(text: str, title: str | None = None, **kw: Any) -> list[Response]:
    return [Reply(Message(title=title, parts=(text,), **kw))]


class Commands:
    def __init__(self, engine: Engine, on_change: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.engine = engine
        self.on_change = on_change

    def is_admin(self, actor: Actor) -> bool:
        return actor.is_admin or actor.user_id in self.engine.config.admins.get(actor.platform, [])

    async def run(self, cmd: Command) -> list[Response]:
        spec = BY_PATH.get(cmd.path)
        if spec is None:
            return reply(f"Unknown command `/{' '.join(cmd.path)}`. Try `/quiz help`.")
        if spec.admin and not self.is_admin(cmd.actor):
            return reply(
                "Sorry, only this server's admins can do that (Manage Server on Discord, workspace admins on Slack, "
                "or people listed under `admins` in the bot's config)."
            )
        handler = _HANDLERS[spec.path]
        try:
            return await handler(self, cmd)
        except UsageError as exc:
            return reply(f"{exc}\n\n{usage_text(spec)}")

    async def _changed(self, channel_pk: int) -> None:
        if self.on_change is not None:
            await self.on_change(channel_pk)

    async def _channel(self, place: Place) -> Channel | None:
        async with self.engine.read() as conn:
            return await channel_store.find(conn, place.platform, place.space_id, place.channel_id)


class UsageError(Exception):
    pass


async def _require_channel(c: Commands, place: Place) -> Channel:
    ch = await c._channel(place)
    if ch is None:
        raise UsageError("This channel has no daily question yet. An admin can start one with `/quiz admin setup`.")
    return ch


async def help_(c: Commands, cmd: Command) -> list[Response]:
    lines = [
        "Every day I post one interview question here and open a thread. Answer in the thread; when the answer "
        "window ends I reveal a reference answer and you vote for the best answers. Answers, votes and streaks "
        "earn points; every week I post a leaderboard.\n"
    ]
    for spec in COMMANDS:
        if spec.admin and not c.is_admin(cmd.actor):
            continue
        lines.append(f"- `{spec.usage()}`: {spec.summary}")
    return reply("\n".join(lines), title="interview-bot")


async def topics(c: Commands, cmd: Command) -> list[Response]:
    bank = c.engine.bank
    by_topic = bank.by_topic()
    lines = []
    for tid, title in sorted(bank.topics.items()):
        qs = by_topic.get(tid, [])
        if not qs:
            continue
        levels = {d: sum(1 for q in qs if q.difficulty == d) for d in ("easy", "medium", "hard")}
        lines.append(
            f"- `{tid}` {title}: {len(qs)} ({levels['easy']} easy, {levels['medium']} medium, {levels['hard']} hard)"
        )
    total = len(bank.questions)
    return reply("\n".join(lines) + f"\n\n{total} questions in all.", title="Topics")


async def practice(c: Commands, cmd: Command) -> list[Response]:
    return await practice_reply(c, cmd.actor, cmd.options.get("topic"), cmd.options.get("difficulty"))


async def practice_reply(c: Commands, actor: Actor, topic: str | None, difficulty: str | None) -> list[Response]:
    bank = c.engine.bank
    tid = None
    if topic and topic not in ("*", "all", "any"):
        tid = bank.resolve_topic(topic)
        if tid is None:
            raise UsageError(f"There is no topic `{topic}`. Topics: {', '.join(sorted(bank.topics))}.")
    if difficulty and difficulty not in ("easy", "medium", "hard"):
        raise UsageError(f"Difficulty is easy, medium or hard, not `{difficulty}`.")
    # Due reviews first, then new questions: the spaced-repetition schedule decides (bot/commands/adaptive.py).
    return await adaptive.serve(c.engine, actor, tid, difficulty)


async def review(c: Commands, cmd: Command) -> list[Response]:
    return await adaptive.review(c.engine, cmd)


async def remind(c: Commands, cmd: Command) -> list[Response]:
    return await adaptive.remind(c.engine, cmd)


def _period(cmd: Command, tz: str, now: Any) -> tuple[str, str]:
    """The label and standings key of the period asked for, in the channel's timezone."""
    period = cmd.options.get("period", "week")
    if period == "week":
        return "this week", score_store.week_key(now, tz)
    if period == "month":
        return "this month", score_store.month_key(now, tz)
    return "all time", "all"


async def leaderboard(c: Commands, cmd: Command) -> list[Response]:
    now = c.engine.now()
    ch = await c._channel(cmd.place)
    tz = ch.settings.timezone if ch else c.engine.config.channel_defaults.timezone
    label, period = _period(cmd, tz, now)
    if cmd.options.get("scope", "channel") == "server" or ch is None:
        scope, where = score_store.space_scope(cmd.place.platform, cmd.place.space_id), "all channels"
    else:
        scope, where = score_store.channel_scope(ch.id), ch.label
    async with c.engine.read() as conn:
        rows = await score_store.leaderboard(conn, scope, period, limit=10)
        me_member = await channel_store.find_member(conn, cmd.actor.platform, cmd.actor.space_id, cmd.actor.user_id)
        me = await score_store.standing_of(conn, scope, period, me_member.id) if me_member else None
    msg = messages.standings(
        f"Leaderboard, {label} ({where})", rows, me, "No points yet in this period: answer today's question!"
    )
    return [Reply(msg, ephemeral=False)]


async def stats(c: Commands, cmd: Command) -> list[Response]:
    ch = await c._channel(cmd.place)
    # Read-only, so stats never queue behind writers; someone not yet known gets zeros, not a new record.
    async with c.engine.read() as conn:
        if "member" in cmd.options:
            member = await channel_store.find_member_by_name(
                conn, cmd.place.platform, cmd.place.space_id, cmd.options["member"]
            )
            if member is None:
                return reply(f"I have no record of `{cmd.options['member'][:80]}` here yet.")
        else:
            a = cmd.actor
            member = await channel_store.find_member(conn, a.platform, a.space_id, a.user_id) or Member(
                -1, a.platform, a.space_id, a.user_id, a.display_name
            )
        ids = [ch.id] if ch else await channel_store.in_space(conn, cmd.place.platform, cmd.place.space_id)
        counts = await score_store.counts(conn, member.id, ids)
        # Per-topic skills and the chart include private practice self-ratings: the member's own stats only.
        own = member.user_id == cmd.actor.user_id
        want_chart = own and c.engine.config.images and member.id > 0 and _yes_no(cmd.options.get("chart", "yes"))
        scope = (
            score_store.channel_scope(ch.id) if ch else score_store.space_scope(cmd.place.platform, cmd.place.space_id)
        )
        standing = await score_store.standing_of(conn, scope, "all", member.id)
        # In a channel, that channel's streak; elsewhere (Slack's App Home), the best of the member's channels.
        pairs = [await streaks_for(conn, cid, member.id) for cid in ids]
        current = max((p[0] for p in pairs), default=0)
        best = max((p[1] for p in pairs), default=0)
        skills = await skills_for(conn, member.id, c.engine.bank, c.engine.now()) if own and member.id > 0 else []
    fields = (
        Field("Answers", str(counts.answers), inline=True),
        Field("Votes received", str(counts.votes_received), inline=True),
        Field("Top answers", str(counts.top_answers), inline=True),
        Field("Points", str(counts.points), inline=True),
        Field("Streak", f"{current} (best {best})", inline=True),
        Field("Rank", f"#{standing.rank}" if standing else "not ranked yet", inline=True),
        Field("Practice questions rated", str(counts.practice), inline=True),
        *adaptive.skill_fields(skills),
    )
    # The chart draws the very rows the text lists (same order, same scores), never a second computation.
    image = await _progress_chart(member, skills) if want_chart else None
    return [
        Reply(Message(title="Stats", parts=("Stats for ", UserText(member.display_name)), fields=fields, image=image))
    ]


async def _progress_chart(member: Member, skills: list[TopicSkill]) -> Image | None:
    """The stats chart: one bar per topic the member met, weakest first. None when there is nothing to draw, or
    drawing failed (logged): the stats text says everything that matters without it."""
    rows = topic_rows(skills)
    if not rows:
        return None
    seen = sum(r.seen for r in rows)
    chart = cards.TopicChart(
        title="Progress by topic (weakest first)",
        member=f"{member.display_name} · {seen} question{'s' if seen != 1 else ''} seen",
        rows=rows,
        note=f"{SCORE_MEANING} Line under the bar: how much of the topic's questions you have seen.",
    )
    try:
        return await cards.topic_chart_image(chart)
    except Exception:
        log.exception("could not draw the progress chart; replying with the text alone")
        return None


async def forget_me(c: Commands, cmd: Command) -> list[Response]:
    return [
        Reply(
            Message(
                title="Erase your data?",
                parts=(
                    "This deletes every answer you gave, every vote you cast (and the votes on your answers), "
                    "your points and your practice history in this server. It cannot be undone.",
                ),
                buttons=(Button("forget:confirm", "Yes, erase my data", Style.DANGER),),
            )
        )
    ]


async def setup(c: Commands, cmd: Command) -> list[Response]:
    engine = c.engine
    place = cmd.place
    if "channel" in cmd.options:
        target, name = _channel_ref(cmd.options["channel"])
        place = Place(place.platform, place.space_id, target, None, cmd.options.get("channel_name") or name)
    existing = await c._channel(place)
    base = existing.settings if existing else engine.config.channel_defaults
    data = base.model_dump()
    o = cmd.options
    try:
        if "time" in o:
            data["post_time"] = o["time"]
        if "timezone" in o:
            data["timezone"] = o["timezone"]
        if "days" in o:
            data["weekdays"] = o["days"]
        if "topics" in o:
            data["topics"] = _topics(c, o["topics"])
        if "answer" in o:
            data["answer_window_minutes"] = parse_duration(o["answer"])
        if "voting" in o:
            data["voting_window_minutes"] = parse_duration(o["voting"])
        if "mode" in o:
            data["answer_mode"] = o["mode"]
        if "cap" in o:
            if not (o["cap"].isascii() and o["cap"].isdigit() and len(o["cap"]) <= 6):
                raise UsageError(f"`cap` is a whole number of votes from 1 to 25, not `{o['cap'][:40]}`.")
            data["vote_cap"] = int(o["cap"])
        if "plan" in o:
            data["difficulty_plan"] = o["plan"]
        if "legacy" in o:
            data["include_legacy"] = _yes_no(o["legacy"])
        if "leaderboard" in o:
            day, _, at = o["leaderboard"].replace(" ", "@").partition("@")
            data["leaderboard_weekday"] = day
            if at:
                data["leaderboard_time"] = at
        settings = ChannelSettings.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"- {'.'.join(str(p) for p in e['loc']) or 'settings'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise UsageError(f"That setup was not saved:\n{problems}") from None
    except ValueError as exc:
        raise UsageError(f"That setup was not saved: {exc}") from None
    # Last, once the options are known to be good: a typo is explained without a call to the platform.
    problem = await _cannot_run_in(c, place)
    if problem is not None:
        return reply(f"{problem}\n\nThat setup was not saved.")
    async with engine.tx() as conn:
        saved, created = await channel_store.save(conn, place, settings, engine.now(), contact=cmd.actor.user_id)
        # A change of schedule never triggers an immediate catch-up post for a time that already passed today.
        await channel_store.set_enabled(conn, saved.id, True, engine.now())
        ch = await channel_store.get(conn, saved.id)
    assert ch is not None
    await c._changed(ch.id)
    head = "Daily question set up" if created else "Settings saved"
    return [Reply(_show(c, ch, head), ephemeral=True)]


async def _cannot_run_in(c: Commands, place: Place) -> str | None:
    """Why the bot cannot run a daily question in this channel, asked of the platform; None when it can.

    Saving a channel the bot cannot post in only defers the failure to the first post, hours later, which
    then pauses the channel: the admin who is here now is the one to tell."""
    platform = c.engine.platforms.get(place.platform)
    if platform is None:
        # Commands come from a platform this process runs; a test harness driving the core directly may not.
        return None
    where = f"#{place.channel_name or place.channel_id}"
    try:
        return await platform.check_channel(place)
    except PlatformError as exc:
        log.warning("could not check %s on %s: %s", where, place.platform, exc)
        if exc.permanent:
            return f"I couldn't check that I can post in {where}: {str(exc)[:200]}."
        return (
            f"I couldn't check that I can post in {where}: {place.platform} did not answer ({str(exc)[:200]}). "
            "Please try again in a minute."
        )


# A channel as typed: Slack's reference "<#C0123|general>", Discord's "<#1234>", "#general", or a bare id.
_CHANNEL_REF = re.compile(r"<#([A-Za-z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_ID = re.compile(r"[\w.-]{1,80}")


def _channel_ref(value: str) -> tuple[str, str]:
    v = value.strip()
    m = _CHANNEL_REF.fullmatch(v)
    if m:
        return m.group(1), m.group(2) or m.group(1)
    v = v.removeprefix("#")
    if not _CHANNEL_ID.fullmatch(v):
        raise UsageError(f"`{v[:80]}` is not a channel: name one like #general.")
    return v, v


def _topics(c: Commands, value: str) -> list[str]:
    if value.strip().lower() in ("all", "*", "any", ""):
        return []
    out = []
    for raw in value.replace(" ", ",").split(","):
        if not raw:
            continue
        tid = c.engine.bank.resolve_topic(raw)
        if tid is None:
            raise UsageError(f"There is no topic `{raw}`. Topics: {', '.join(sorted(c.engine.bank.topics))}.")
        out.append(tid)
    return sorted(set(out))


def _yes_no(value: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "y", "true", "on", "1"):
        return True
    if v in ("no", "n", "false", "off", "0"):
        return False
    raise UsageError(f"Say yes or no, not `{value}`.")


def _show(c: Commands, ch: Channel, title: str) -> Message:
    s = ch.settings
    now = c.engine.now()
    state = "on" if ch.enabled else f"paused{f' ({ch.paused_reason})' if ch.paused_reason else ''}"
    fields = [
        Field("Status", state, inline=True),
        Field("Post time", f"{s.post_time} {s.timezone}", inline=True),
        Field("Days", ", ".join(s.weekdays), inline=True),
        Field("Topics", ", ".join(s.topics) or "all", inline=True),
        Field("Answer window", _dur(s.answer_window_minutes), inline=True),
        Field("Voting window", _dur(s.voting_window_minutes), inline=True),
        Field("Answer mode", s.answer_mode, inline=True),
        Field("Votes per member", str(s.vote_cap), inline=True),
        Field("Weekly leaderboard", f"{s.leaderboard_weekday} {s.leaderboard_time}", inline=True),
    ]
    if ch.enabled:
        fields.append(Field("Next question", format_local(next_post_slot(s, now).at, s.timezone)))
        fields.append(Field("Next leaderboard", format_local(next_leaderboard_slot(s, now).at, s.timezone)))
    return Message(title=f"{title}: {ch.label}", fields=tuple(fields))


def _dur(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if m else f"{h}h"


async def show(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    msg = _show(c, ch, "Settings")
    async with c.engine.tx() as conn:
        running = await round_store.active(conn, ch.id)
    if running:
        r = running[0]
        extra = f"Running round: {r.slot}, {r.state.value}"
        if r.state == RoundState.OPEN and r.reveal_at:
            extra += f", reveal {format_local(r.reveal_at, ch.settings.timezone)}"
        if r.state == RoundState.REVEALED and r.close_at:
            extra += f", voting closes {format_local(r.close_at, ch.settings.timezone)}"
        msg = Message(title=msg.title, fields=(*msg.fields, Field("Now", extra)))
    return [Reply(msg)]


async def pause(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    if not ch.enabled:
        return reply("Daily questions are already paused here. `/quiz admin resume` starts them again.")
    async with c.engine.tx() as conn:
        await channel_store.set_enabled(
            conn, ch.id, False, c.engine.now(), reason=f"paused by {cmd.actor.display_name}"
        )
    await c._changed(ch.id)
    return reply("Paused. A round that is already running still reveals and closes. `/quiz admin resume` restarts.")


async def resume(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    if ch.enabled:
        return reply("Daily questions are already on here.")
    # Often paused because the bot lost access: resuming before that is fixed would only pause it again.
    problem = await _cannot_run_in(c, Place(ch.platform, ch.space_id, ch.channel_id, None, ch.name))
    if problem is not None:
        return reply(f"{problem}\n\nStill paused.")
    async with c.engine.tx() as conn:
        await channel_store.set_enabled(conn, ch.id, True, c.engine.now())
    await c._changed(ch.id)
    nxt = format_local(next_post_slot(ch.settings, c.engine.now()).at, ch.settings.timezone)
    return reply(f"Resumed. Next question: {nxt}.")


async def post_now(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    async with c.engine.lock(ch.id):
        outcome = await c.engine.post_now(ch)
    await c._changed(ch.id)
    if outcome.status == "posted":
        return reply("Posted.")
    if outcome.status == "empty-pool":
        return reply("No question matches this channel's topics, so nothing was posted. Change them with setup.")
    return reply(f"Nothing was posted: {outcome.detail or outcome.status}.")


async def _running(c: Commands, ch: Channel, states: tuple[RoundState, ...]) -> int | None:
    async with c.engine.tx() as conn:
        for r in await round_store.active(conn, ch.id):
            if r.state in states:
                return r.id
    return None


async def reveal_now(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    rid = await _running(c, ch, (RoundState.OPEN,))
    if rid is None:
        return reply("There is no round waiting for its reveal.")
    async with c.engine.lock(ch.id):
        done = await c.engine.reveal(rid, early=True)
    await c._changed(ch.id)
    return reply("Revealed: voting is open." if done else "Someone else is revealing it right now.")


async def close_now(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    rid = await _running(c, ch, (RoundState.REVEALED,))
    if rid is None:
        opened = await _running(c, ch, (RoundState.OPEN,))
        if opened is not None:
            return reply("The round is not revealed yet: `/quiz admin reveal-now` first.")
        return reply("There is no round with open voting.")
    async with c.engine.lock(ch.id):
        done = await c.engine.close(rid, early=True)
    await c._changed(ch.id)
    return reply("Closed: points are awarded." if done else "Someone else is closing it right now.")


async def skip(c: Commands, cmd: Command) -> list[Response]:
    ch = await _require_channel(c, cmd.place)
    async with c.engine.lock(ch.id):
        text = await c.engine.skip(ch)
    await c._changed(ch.id)
    return reply(text)


_HANDLERS: dict[tuple[str, ...], Handler] = {
    ("quiz", "help"): help_,
    ("quiz", "practice"): practice,
    ("quiz", "leaderboard"): leaderboard,
    ("quiz", "stats"): stats,
    ("quiz", "topics"): topics,
    ("quiz", "review"): review,
    ("quiz", "remind"): remind,
    ("quiz", "forget-me"): forget_me,
    ("quiz", "admin", "setup"): setup,
    ("quiz", "admin", "show"): show,
    ("quiz", "admin", "pause"): pause,
    ("quiz", "admin", "resume"): resume,
    ("quiz", "admin", "post-now"): post_now,
    ("quiz", "admin", "reveal-now"): reveal_now,
    ("quiz", "admin", "close-now"): close_now,
    ("quiz", "admin", "skip"): skip,
}
assert set(_HANDLERS) == {s.path for s in COMMANDS}, "every command in the table needs a handler"
