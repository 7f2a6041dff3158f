"""Faults and abuse (issue 8) through the real adapters: hostile answers and names reach the fake platforms
only in a safe form (no mass mention, within the limits, fences balanced), and are stored whole."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from adapters.slack.render import escape
from bot.clock import ManualClock
from bot.events import Actor, MessagePosted, Place
from bot.questions.model import Bank
from bot.runtime import Runtime
from bot.store import rounds as round_store
from bot.store.tables import answers
from tests.conftest import start_runtime
from tests.fake_discord import fake_discord as fake_discord
from tests.fake_slack import fake_slack_fixture, flatten_text  # noqa: F401
from tests.shell_helpers import open_terminal
from tests.test_discord_adapter import Server, post_now, replied, running, server, setup_channel  # noqa: F401
from tests.test_slack_adapter import Workspace, count, said, until, ws  # noqa: F401

pytestmark = pytest.mark.faults

ANSWERS = [
    "@everyone @here look at mine",
    "<@123456789012345678> and <@&456789012345678901> and <@!123456789012345678>",
    "<!channel> <!here> <!everyone> <@U0123ABC>",
    "```python\nprint('a fence left open')",
    "**bold** __under__ ~~strike~~ ||spoiler|| > quote",
    "\u200bzero\u2060width\ufeff and \u202eright-to-left",
    "NUL\x00inside",
    "long " + "x" * 100_000,
]
NAMES = ["@everyone", "<@&456789012345678901>", "\u202eevil", "```", "**star**", "<!channel>", "ok", "`x`"]
DISCORD_MASS = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
SLACK_SPECIAL = re.compile(r"<[!@#][^>]*>")


def _discord_texts(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    out = [data.get("content") or ""]
    for e in data.get("embeds") or []:
        out += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        out += [f"{f.get('name')}\n{f.get('value')}" for f in e.get("fields") or []]
    return out


async def test_hostile_answers_and_names_on_discord_arrive_safe_and_are_stored_whole(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    await post_now(fake, s)
    thread = fake.thread_of(fake.messages(s.channel)[0]["id"])
    assert thread is not None
    people = []
    for name in NAMES:
        uid = fake.snowflake()
        fake.add_member(s.guild, uid, name)
        people.append(uid)
    for uid, text in zip(people, ANSWERS, strict=True):
        await fake.user_message(thread, uid, text)

    async def stored() -> bool:
        async with rt.engine.read() as conn:
            return len((await conn.execute(select(answers.c.id))).all()) == len(ANSWERS)

    await fake.wait_for(stored)
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin reveal-now", {}))
    await fake.wait_for(lambda: any("Vote" in str(m.get("embeds")) for m in fake.messages(thread)))
    async with rt.engine.read() as conn:
        texts = sorted(r[0] for r in (await conn.execute(select(answers.c.text))).all())
    assert texts == sorted(a.replace("\x00", "") for a in ANSWERS)  # whole, 100,000 characters too

    sent = [r for r in fake.requests if r.method in ("POST", "PATCH") and isinstance(r.json, dict)]
    assert sent
    for r in sent:
        for text in _discord_texts(r.json):
            assert not DISCORD_MASS.search(text), (r.path, text[:200])
            assert "\u202e" not in text
        data = r.json.get("data") if isinstance(r.json.get("data"), dict) else r.json
        allowed = data.get("allowed_mentions")
        if allowed is not None:
            assert allowed.get("parse") == [] and not allowed.get("users") and not allowed.get("roles")
    ballot = next(m for m in fake.messages(thread) if "Vote" in str(m.get("embeds")))
    assert ballot["embeds"][0]["description"].count("```") % 2 == 0
    # The fake applies Discord's limits, so everything above was accepted: no request came back 400.


async def test_hostile_answers_and_names_on_slack_arrive_safe_and_are_stored_whole(ws: Workspace) -> None:  # noqa: F811
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    await said(w, await w.slack.slash("/quiz", "admin post-now", w.admin, w.channel))
    [post] = f.messages(w.channel)
    people = [f.add_user(name) for name in NAMES]
    for user, text in zip(people, ANSWERS, strict=True):
        # Slack escapes & < > in what it delivers, except in its own mention syntax.
        delivered = text if text.startswith("<") else escape(text)
        await w.slack.event(w.slack.message(w.channel, user, delivered, thread_ts=post["ts"]))

    async def stored() -> bool:
        return await count(w.runtime, answers) == len(ANSWERS)

    await until(stored)
    await said(w, await w.slack.slash("/quiz", "admin reveal-now", w.admin, w.channel))
    async with w.runtime.engine.read() as conn:
        texts = sorted(r[0] for r in (await conn.execute(select(answers.c.text))).all())
    assert texts == sorted(a.replace("\x00", "") for a in ANSWERS)

    posts = f.calls_to("chat.postMessage") + f.calls_to("chat.postEphemeral")
    assert any("Vote" in flatten_text(p) for p in posts)
    for p in posts:
        assert not SLACK_SPECIAL.search(str(p.get("text") or "")), p.get("text")
        for block in p.get("blocks") or []:
            for t in _mrkdwn(block):
                assert not SLACK_SPECIAL.search(t), t[:200]
                assert t.count("```") % 2 == 0 and len(t) <= 3000
        assert len(p.get("blocks") or []) <= 50
    assert not any(name == "link_names" for p in posts for name in p)


def _mrkdwn(block: dict[str, Any]) -> list[str]:
    if block.get("type") == "section":
        return [block["text"]["text"]] if "text" in block else [x["text"] for x in block.get("fields", [])]
    if block.get("type") == "context":
        return [e.get("text", "") for e in block.get("elements", [])]
    return []


async def test_the_shell_refuses_invalid_utf8_and_drops_control_characters(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    await t.type("/quiz admin post-now")

    async def lines() -> Any:
        for raw in (b"caf\xe9 is not utf-8\n", b"\xff\xfe\n", b"an answer\x00 with NUL \x1b[31m\n"):
            yield raw

    start = len(t.out)
    await t.session.run(lines())
    out = "\n".join(t.out[start:])
    assert out.count("not valid UTF-8 text, so nothing was sent") == 2
    assert "answer recorded" in out
    async with t.runtime.engine.read() as conn:
        assert [r[0] for r in (await conn.execute(select(answers.c.text))).all()] == ["an answer with NUL [31m"]


async def test_an_invisible_answer_is_not_an_answer(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    rt, _ = await _round_open(runtimes, sqlite_url, bank, clock)
    thread = await _thread(rt)
    out = await rt.core.handle(MessagePosted(Actor("shell", "local", "z", "z"), thread, "m1", "\u200b\u2060\ufeff"))
    assert out == []


async def test_an_answer_with_nul_is_stored_on_postgresql(
    pg_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    rt, _ = await _round_open(runtimes, pg_url, bank, clock)
    thread = await _thread(rt)
    out = await rt.core.handle(MessagePosted(Actor("shell", "local", "n", "n"), thread, "m1", "a\x00b"))
    assert [type(r).__name__ for r in out] == ["React"]


async def _round_open(made: list[Runtime], url: str, bank: Bank, clock: ManualClock) -> Any:
    from bot.settings import ChannelSettings
    from bot.store import channels as channel_store

    rt, p = await start_runtime(made, url, bank, clock)
    place = Place("shell", "local", "general", None, "general")
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, place, ChannelSettings(), clock.now())
    await rt.engine.post_now(ch)
    return rt, p


async def _thread(rt: Runtime) -> Place:
    async with rt.engine.read() as conn:
        [rnd] = await round_store.active(conn, 1)
    return Place("shell", "local", "general", rnd.thread_id)
