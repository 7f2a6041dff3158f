"""Slack catch-up after downtime (RELIABILITY.md fix 21): Slack stops redelivering an event after a few tries
over about an hour, so what members did in an open round's thread while no adapter ran is read back from the
thread at start (adapters/slack/catchup.py), through the real slack_sdk client against the fake Slack.

Messages are put into the fake's thread with ``apply_user_event`` alone: Slack's world changes, and no event
reaches the bot, as when it is down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters.slack import catchup
from adapters.slack.catchup import catch_up
from bot.clock import ManualClock
from bot.events import Actor, MessagePosted, Place
from bot.models import Answer
from bot.store import answers as answer_store
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from tests.fake_slack import fake_slack_fixture  # noqa: F401
from tests.test_slack_adapter import Workspace, said, ws  # noqa: F401


async def answers(w: Workspace) -> list[Answer]:
    async with w.runtime.engine.read() as conn:
        ch = await channel_store.find(conn, "slack", w.fake.team_id, w.channel)
        assert ch is not None
        [rnd] = await round_store.active(conn, ch.id)
        return await answer_store.for_round(conn, rnd.id)


def texts(found: list[Answer]) -> dict[str, tuple[str, str | None]]:
    return {a.user_id: (a.text, a.message_id) for a in found}


def reactions(f: Any, channel: str, ts: str) -> list[str]:
    msg = f.message(channel, ts) or {}
    return sorted(r["name"] for r in msg.get("reactions") or [] if f.bot_user_id in r["users"])


async def test_answers_edits_and_deletions_made_while_down_are_taken_in_once(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, f, rt = ws, ws.fake, ws.runtime
    monkeypatch.setattr(catchup, "PAGE", 2)  # so the thread is read over several pages
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    clock.set(clock.now().replace(hour=9, minute=0, second=0))
    await rt.engine.tick()
    [post] = f.messages(w.channel)
    thread = post["ts"]
    dan = f.add_user("dan")

    # While the bot runs: ann and ben answer.
    ann_msg = w.slack.message(w.channel, w.ann, "Ann's answer", thread_ts=thread)
    ben_msg = w.slack.message(w.channel, w.ben, "Ben's first try", thread_ts=thread)
    for m in (ann_msg, ben_msg):
        await w.slack.event(m)
    await f.wait_for(lambda: len(f.calls_to("reactions.add")) == 2)

    # A process records cat's answer and dies before its ✅.
    cat_msg = w.slack.message(w.channel, w.cat, "Cat's answer", thread_ts=thread)
    f.apply_user_event(cat_msg)
    actor = Actor("slack", f.team_id, w.cat, "cat")
    assert await rt.core.handle(
        MessagePosted(actor, Place("slack", f.team_id, w.channel, thread), cat_msg["ts"], "Cat's answer")
    )

    # Down: ben edits, ann deletes and answers again, dan answers (twice: his second message is discussion),
    # and a bot's message appears. No event reaches the bot.
    f.apply_user_event(w.slack.message_changed(w.channel, ben_msg["ts"], "Ben's <better> answer &amp; more"))
    f.apply_user_event(w.slack.message_deleted(w.channel, ann_msg["ts"]))
    ann_again = w.slack.message(w.channel, w.ann, "Ann, again", thread_ts=thread)
    dan_first = w.slack.message(w.channel, dan, "Dan's answer", thread_ts=thread)
    dan_second = w.slack.message(w.channel, dan, "and a remark", thread_ts=thread)
    other_bot = {**w.slack.message(w.channel, dan, "a bot's words", thread_ts=thread), "bot_id": "B999"}
    for m in (ann_again, dan_first, dan_second, other_bot):
        f.apply_user_event(m)
    reacts_before = len(f.calls_to("reactions.add"))

    # Start: the thread is read back.
    assert await catch_up(rt, rt.engine.platforms["slack"].client_for) == 5  # type: ignore[attr-defined]
    got = texts(await answers(w))
    assert got == {
        w.ann: ("Ann, again", ann_again["ts"]),
        w.ben: ("Ben's <better> answer & more", ben_msg["ts"]),
        w.cat: ("Cat's answer", cat_msg["ts"]),
        dan: ("Dan's answer", dan_first["ts"]),
    }
    assert reactions(f, w.channel, ann_again["ts"]) == ["white_check_mark"]
    assert reactions(f, w.channel, dan_first["ts"]) == ["white_check_mark"]
    assert reactions(f, w.channel, dan_second["ts"]) == []
    assert reactions(f, w.channel, cat_msg["ts"]) == ["white_check_mark"]  # the ✅ the dead process owed
    assert reactions(f, w.channel, ben_msg["ts"]) == ["pencil2", "white_check_mark"]
    assert len(f.calls_to("conversations.replies")) > 3  # paged

    # A second start changes nothing, nor does Slack's late redelivery of an event caught up on.
    reacts_after = len(f.calls_to("reactions.add"))
    assert reacts_after == reacts_before + 4
    assert await catch_up(rt, rt.engine.platforms["slack"].client_for) == 0  # type: ignore[attr-defined]
    await w.slack.event(dan_first)
    await w.slack.event(ann_msg)  # the deleted answer's creation, arriving late: it stays deleted
    assert texts(await answers(w)) == got
    assert len(f.calls_to("reactions.add")) == reacts_after


async def test_catch_up_reads_every_open_thread_and_survives_one_it_cannot_read(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f, rt = ws, ws.fake, ws.runtime
    other = f.add_channel("more-questions")
    for channel in (w.channel, other):
        await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, channel))
    clock.set(clock.now().replace(hour=9, minute=0, second=0))
    await rt.engine.tick()
    [first] = f.messages(w.channel)
    [second] = f.messages(other)
    f.apply_user_event(w.slack.message(w.channel, w.ann, "lost answer", thread_ts=first["ts"]))
    f.apply_user_event(w.slack.message(other, w.ben, "another lost answer", thread_ts=second["ts"]))
    f.remove_bot_from(w.channel)  # this thread cannot be read now

    assert await catch_up(rt, rt.engine.platforms["slack"].client_for) == 1  # type: ignore[attr-defined]
    assert await answers(w) == []
    [(_, _, found)] = [t for t in await rt.engine.open_threads("slack") if t[0].channel_id == other]
    assert [(a.user_id, a.text) for a in found] == [(w.ben, "another lost answer")]


async def test_what_was_posted_or_edited_after_the_deadline_is_not_taken_in(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    """Read back after the answer window: a first message from after the deadline is discussion, and an answer
    edited after it keeps the text it had in time (fix 27)."""
    w, f, rt = ws, ws.fake, ws.runtime
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    clock.set(clock.now().replace(hour=9, minute=0, second=0))
    await rt.engine.tick()
    [post] = f.messages(w.channel)
    thread = post["ts"]
    [(_, rnd, _)] = await rt.engine.open_threads("slack")
    assert rnd.reveal_at is not None

    ann_msg = w.slack.message(w.channel, w.ann, "Ann, live", thread_ts=thread)
    await w.slack.event(ann_msg)
    await f.wait_for(lambda: len(f.calls_to("reactions.add")) == 1)
    # Down from here. In time: Ben answers.
    clock.set(rnd.reveal_at - timedelta(minutes=5))
    ben_msg = w.slack.message(w.channel, w.ben, "Ben, in time", thread_ts=thread)
    f.apply_user_event(ben_msg)
    # Too late: Cat's first message, and Ann's edit.
    clock.set(rnd.reveal_at + timedelta(minutes=5))
    cat_msg = w.slack.message(w.channel, w.cat, "Cat, too late", thread_ts=thread)
    f.apply_user_event(cat_msg)
    f.apply_user_event(w.slack.message_changed(w.channel, ann_msg["ts"], "Ann, edited too late"))
    assert float(cat_msg["ts"]) > rnd.reveal_at.timestamp()  # the fake's times follow the test clock

    assert await catch_up(rt, rt.engine.platforms["slack"].client_for) == 1  # type: ignore[attr-defined]
    assert texts(await answers(w)) == {
        w.ann: ("Ann, live", ann_msg["ts"]),
        w.ben: ("Ben, in time", ben_msg["ts"]),
    }
    assert reactions(f, w.channel, cat_msg["ts"]) == []
