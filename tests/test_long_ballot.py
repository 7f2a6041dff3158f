"""Ballots with more answers than one message's menus hold (Discord: five menus of 25; Slack: 100 options a
menu), through the real discord.py and slack-bolt stacks against the fakes, which check the platforms' limits
and let a member pick only what a menu offers: every answer is in some vote menu exactly once, votes on a later
ballot message count, keep working after a restart, and follow the usual rules."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from adapters.slack import web_client
from adapters.slack.app import build_app, web_app
from adapters.slack.platform import SlackPlatform
from bot.clock import ManualClock
from bot.questions.model import Bank
from bot.runtime import Runtime, build
from bot.store.db import create_engine
from bot.store.tables import answers, members, votes
from tests.conftest import make_config
from tests.fake_discord import fake_discord as fake_discord
from tests.fake_slack import SlackClient, fake_slack_fixture, flatten_text, serve_web_app  # noqa: F401
from tests.shell_helpers import open_terminal
from tests.test_discord_adapter import (  # noqa: F401
    Server,
    post_now,
    replied,
    running,
    server,
    setup_channel,
    start_bot,
)
from tests.test_slack_adapter import SECRET, Workspace, count, said, until, ws  # noqa: F401

NUMBER = re.compile(r"\*\*(\d+)\.\*\* ")  # "**130.** name" in the listing (Slack: "*130.* name")
SLACK_NUMBER = re.compile(r"(?<![*\w])\*(\d+)\.\* ")


async def by_position(rt: Runtime) -> dict[int, tuple[int, str]]:
    """Each answer's ballot number -> (answer id, author's platform user id)."""
    q = select(answers.c.position, answers.c.id, members.c.user_id).join(members, members.c.id == answers.c.member_id)
    async with rt.engine.read() as conn:
        return {int(p): (int(a), str(u)) for p, a, u in (await conn.execute(q)).all()}


async def vote_count(rt: Runtime, answer_id: int) -> int:
    async with rt.engine.read() as conn:
        q = select(func.count()).select_from(votes).where(votes.c.answer_id == answer_id)
        return int((await conn.execute(q)).scalar_one())


def discord_menus(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components") or [] for c in row.get("components", []) if c["type"] == 3]


def check_titles(titles: list[str]) -> None:
    pages = len(titles)
    assert pages > 1 and titles == [f"Vote: ballot {i}/{pages}" for i in range(1, pages + 1)], titles


@pytest.mark.parametrize("n", [130, 260])
async def test_every_answer_of_a_long_discord_ballot_is_votable_once_and_stays_so_after_a_restart(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
    bank: Bank,
    clock: ManualClock,
    n: int,
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s, cap=3)
    await post_now(fake, s)
    thread = fake.thread_of(fake.messages(s.channel)[0]["id"])
    assert thread is not None
    for i in range(1, n + 1):
        uid = fake.snowflake()
        fake.add_member(s.guild, uid, f"member{i}")
        await fake.user_message(thread, uid, f"answer number {i}")

    async def all_in() -> bool:
        return await count(rt, answers) == n

    await fake.wait_for(all_in, timeout=30)
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin reveal-now", {}))

    def ballots() -> list[dict[str, Any]]:
        return [m for m in fake.messages(thread) if discord_menus(m)]

    def complete() -> bool:
        found = ballots()
        return bool(found) and found[-1]["embeds"][0]["title"].endswith(f"/{len(found)}")

    await fake.wait_for(complete, timeout=15)
    found = ballots()
    check_titles([m["embeds"][0]["title"] for m in found])
    positions = await by_position(rt)
    # Every answer sits in exactly one menu of one ballot message; the fake held each message to Discord's
    # limits (five rows, 25 options a menu, 4,096 characters of description), or it would have refused it.
    where: dict[str, tuple[str, str]] = {}
    offered: Counter[str] = Counter()
    listed: Counter[int] = Counter()
    for m in found:
        description = m["embeds"][0]["description"]
        assert "shortened: too long for Discord" not in description  # the core's layout fitted; nothing was cut
        assert "Shortened to fit" in description  # and it says what it left out
        listed.update(int(x) for x in NUMBER.findall(description))
        for menu in discord_menus(m):
            for o in menu["options"]:
                offered[o["value"]] += 1
                where[o["value"]] = (m["id"], menu["custom_id"])
    assert sorted(offered) == sorted(str(a) for a, _ in positions.values()) and set(offered.values()) == {1}
    assert listed == Counter(range(1, n + 1))  # the text lists every number once too

    # Restart in the middle of voting: the menus of the later ballot messages still work.
    await running["bot"].stop()
    bot = await start_bot(fake, running["url"], bank, clock)
    running["bot"] = bot
    rt = bot.runtime

    async def pick(user: str, position: int) -> str:
        answer_id = str(positions[position][0])
        message_id, custom_id = where[answer_id]
        i = await replied(fake, await fake.click(thread, message_id, user, custom_id, [answer_id]))
        return " ".join(i.ephemeral_texts())

    voter = positions[1][1]
    second = found[1]
    first_on_second = min(int(o["label"].split(".")[0]) for menu in discord_menus(second) for o in menu["options"])
    assert where[str(positions[130][0])][0] == second["id"]  # #130 is on the second message, in both sizes
    assert "Vote recorded for member130's answer" in await pick(voter, 130)
    assert "already voted for member130's answer" in await pick(voter, 130)
    assert "can't vote for your own" in await pick(positions[130][1], 130)
    assert f"Vote recorded for member{first_on_second}'s answer" in await pick(voter, first_on_second)
    assert "Vote recorded for member2's answer" in await pick(voter, 2)  # and the first message's menus
    assert "used all 3 of your votes" in await pick(voter, 3)
    assert await vote_count(rt, positions[130][0]) == 1


async def serve_slack(w: Workspace, bank: Bank, clock: ManualClock, tmp_path: Path) -> tuple[Runtime, Any]:
    """A second bot process on the same database: the restart."""
    client = web_client(w.fake.bot_token, w.fake.api_url)

    async def client_for(_team: str) -> AsyncWebClient:
        return client

    url = f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}"  # the database the `ws` fixture's bot uses
    rt = await build(
        make_config(url), {"slack": SlackPlatform(client_for)}, clock=clock, bank=bank, db=create_engine(url)
    )
    return rt, build_app(rt, signing_secret=SECRET, client=client)


def slack_menus(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in message.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "static_select"
    ]


@pytest.mark.parametrize("n", [130, 260])
async def test_every_answer_of_a_long_slack_ballot_is_votable_once_and_stays_so_after_a_restart(
    ws: Workspace,  # noqa: F811
    bank: Bank,
    clock: ManualClock,
    tmp_path: Path,
    n: int,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup cap=3", w.admin, w.channel))
    await said(w, await w.slack.slash("/quiz", "admin post-now", w.admin, w.channel))
    [post] = f.messages(w.channel)
    for i in range(1, n + 1):
        user = f.add_user(f"member{i}")
        await w.slack.event(w.slack.message(w.channel, user, f"answer number {i}", thread_ts=post["ts"]))

    async def all_in() -> bool:
        return await count(w.runtime, answers) == n

    await until(all_in, within=30)
    await said(w, await w.slack.slash("/quiz", "admin reveal-now", w.admin, w.channel))
    found = [m for m in f.thread(w.channel, post["ts"]) if slack_menus(m)]
    check_titles([b["text"]["text"] for m in found for b in m["blocks"] if b["type"] == "header"])
    positions = await by_position(w.runtime)
    # One menu of at most 100 per message (the fake refuses more, and more than 50 blocks or 3,000 a section).
    where: dict[str, tuple[str, str]] = {}
    offered: Counter[str] = Counter()
    listed: Counter[int] = Counter()
    for m in found:
        [menu] = slack_menus(m)
        assert len(menu["options"]) <= 100
        for o in menu["options"]:
            offered[o["value"]] += 1
            where[o["value"]] = (m["ts"], menu["action_id"])
        text = flatten_text(m)
        assert "too long for Slack" not in text and "Shortened to fit" in text
        listed.update(int(x) for x in SLACK_NUMBER.findall(text))
    assert sorted(offered) == sorted(str(a) for a, _ in positions.values()) and set(offered.values()) == {1}
    assert listed == Counter(range(1, n + 1))

    # A new process serves the same workspace: the old ballot's menus still vote.
    rt, app = await serve_slack(w, bank, clock, tmp_path)
    try:
        async with serve_web_app(web_app(app)) as base:
            async with SlackClient(f"{base}/slack/events", SECRET, f) as slack:

                async def pick(user: str, position: int) -> str:
                    answer_id = str(positions[position][0])
                    ts, action_id = where[answer_id]
                    return await said(w, await slack.block_action(user, w.channel, action_id, answer_id, message_ts=ts))

                voter = positions[1][1]
                assert where[str(positions[130][0])][0] == found[1]["ts"]
                assert "Vote recorded for member130's answer" in await pick(voter, 130)
                assert "already voted for member130's answer" in await pick(voter, 130)
                assert "can't vote for your own" in await pick(positions[130][1], 130)
                assert "Vote recorded for member2's answer" in await pick(voter, 2)
                assert where[str(positions[100][0])][0] == found[1]["ts"]
                assert "Vote recorded for member100's answer" in await pick(voter, 100)
                assert "used all 3 of your votes" in await pick(voter, 3)
                assert await vote_count(rt, positions[130][0]) == 1
    finally:
        await rt.close()


async def test_the_shell_votes_by_answer_number_across_ballot_messages(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    await t.type("/quiz admin post-now")
    for i in range(1, 131):
        assert "answer recorded" in await t.type(f"/as member{i}", f"answer number {i}")
    out = await t.type("/as host", "/quiz admin reveal-now")
    assert "Vote: ballot 1/2" in out and "Vote: ballot 2/2" in out
    assert sorted(t.platform.ballot) == list(range(1, 131))
    assert "Vote recorded for member130's answer" in await t.type("/as member1", "/vote 130")
    assert "Vote recorded for member7's answer" in await t.type("/vote 7")
    assert "can't vote for your own" in await t.type("/as member130", "/vote 130")
    assert "1 to 130" in await t.type("/vote 131")
    positions = await by_position(t.runtime)
    assert await vote_count(t.runtime, positions[130][0]) == 1
