"""Faults and abuse (issue 8): permissions. Every admin command in the table is refused to a member on every
adapter and changes nothing; votes from the wrong place are refused; forget-me erases exactly one member."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.commands.spec import COMMANDS
from bot.events import Actor, ButtonPressed, MessagePosted, Place
from bot.questions.model import Bank
from bot.render import Reply
from bot.runtime import Runtime
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.tables import metadata
from tests.conftest import start_runtime
from tests.fake_discord import fake_discord as fake_discord
from tests.fake_slack import fake_slack_fixture  # noqa: F401
from tests.shell_helpers import open_terminal
from tests.test_discord_adapter import Server, post_now, replied, running, server, setup_channel  # noqa: F401
from tests.test_slack_adapter import Workspace, said, ws  # noqa: F401

pytestmark = pytest.mark.faults

ADMIN_COMMANDS = [c.path[2] for c in COMMANDS if c.admin]
REFUSED = "only this server's admins"
ARGS = {"setup": "time=10:00 cap=1"}


async def snapshot(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out = {}
    async with rt.engine.read() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_the_table_has_admin_commands() -> None:
    assert set(ADMIN_COMMANDS) >= {"setup", "show", "pause", "resume", "post-now", "reveal-now", "close-now", "skip"}


@pytest.mark.parametrize("name", ADMIN_COMMANDS)
async def test_every_admin_command_is_refused_to_a_member_in_the_shell(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime], name: str
) -> None:
    # The shell's admins are the names under admins.shell in the config ("host" by default's config here).
    t = await open_terminal(sqlite_url, bank, clock, runtimes, admins={"shell": ["host"]})
    await t.type("/quiz admin post-now")
    before, sent = await snapshot(t.runtime), len(t.platform.sent)
    await t.type("/as mallory")
    out = await t.type(f"/quiz admin {name} {ARGS.get(name, '')}")
    assert REFUSED in out
    assert await snapshot(t.runtime) == before and len(t.platform.sent) == sent


@pytest.mark.parametrize("name", ADMIN_COMMANDS)
async def test_every_admin_command_is_refused_to_a_member_on_discord(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
    name: str,
) -> None:
    """A member without Manage Server: Discord hides /quiz-admin from them, but a server can change that."""
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    await post_now(fake, s)
    before, posts = await snapshot(rt), len(fake.requests_to("POST", r"/channels/\d+/messages"))
    options = {"time": "10:00", "cap": 1} if name == "setup" else {}
    out = await replied(fake, await fake.slash(s.guild, s.channel, s.ann, f"quiz-admin {name}", options))
    assert any(REFUSED in t for t in out.texts())
    assert await snapshot(rt) == before
    assert len(fake.requests_to("POST", r"/channels/\d+/messages")) == posts


@pytest.mark.parametrize("name", ADMIN_COMMANDS)
async def test_every_admin_command_is_refused_to_a_member_on_slack(ws: Workspace, name: str) -> None:  # noqa: F811
    w = ws
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    await said(w, await w.slack.slash("/quiz", "admin post-now", w.admin, w.channel))
    before, posts = await snapshot(w.runtime), len(w.fake.calls_to("chat.postMessage"))
    out = await said(w, await w.slack.slash("/quiz", f"admin {name} {ARGS.get(name, '')}", w.ann, w.channel))
    assert REFUSED in out
    assert await snapshot(w.runtime) == before
    assert len(w.fake.calls_to("chat.postMessage")) == posts


# -- votes from the wrong place ---------------------------------------------------------------------------


async def _revealed_round(made: list[Runtime], url: str, bank: Bank, clock: ManualClock) -> tuple[Runtime, Any, Place]:
    rt, _ = await start_runtime(made, url, bank, clock)
    place = Place("shell", "local", "general", None, "general")
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, place, ChannelSettings(), clock.now())
        random = Place("shell", "local", "random", None, "random")
        await channel_store.save(conn, random, ChannelSettings(), clock.now())
    await rt.engine.post_now(ch)
    async with rt.engine.read() as conn:
        [rnd] = await round_store.active(conn, ch.id)
    thread = Place("shell", "local", "general", rnd.thread_id)
    for who in ("ann", "ben"):
        await rt.core.handle(MessagePosted(Actor("shell", "local", who, who), thread, f"m-{who}", f"{who}'s answer"))
    await rt.engine.reveal(rnd.id, early=True)
    return rt, rnd, thread


async def _vote(rt: Runtime, actor: Actor, place: Place, custom_id: str) -> str:
    [r] = await rt.core.handle(ButtonPressed(actor, place, custom_id))
    assert isinstance(r, Reply)
    return r.message.plain


async def _answer_id(rt: Runtime, rnd: Any, who: str) -> int:
    from bot.store.tables import answers, members

    async with rt.engine.read() as conn:
        q = select(answers.c.id).join(members, members.c.id == answers.c.member_id)
        return int((await conn.execute(q.where(members.c.user_id == who, answers.c.round_id == rnd.id))).scalar_one())


async def test_votes_for_oneself_twice_or_from_another_space_are_refused(
    db_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    rt, rnd, thread = await _revealed_round(runtimes, db_url, bank, clock)
    ann_answer = await _answer_id(rt, rnd, "ann")
    ann, ben = Actor("shell", "local", "ann", "ann"), Actor("shell", "local", "ben", "ben")
    vote = f"vote:{rnd.id}:{ann_answer}"
    assert "can't vote for your own" in await _vote(rt, ann, thread, vote)
    assert "Vote recorded" in await _vote(rt, ben, thread, vote)
    assert "already voted" in await _vote(rt, ben, thread, vote)
    before = await snapshot(rt)
    # The same button pressed from another workspace/server, or another platform, finds no round.
    elsewhere = Place("shell", "other-space", "general", rnd.thread_id)
    eve = Actor("shell", "other-space", "eve", "eve")
    assert "can't find that round" in await _vote(rt, eve, elsewhere, vote)
    slack = Place("slack", "T1", "general", rnd.thread_id)
    assert "can't find that round" in await _vote(rt, Actor("slack", "T1", "eve", "eve"), slack, vote)
    assert "broken" in await _vote(rt, eve, thread, f"vote:{rnd.id}:not-a-number")
    assert await snapshot(rt) == before


async def test_a_vote_from_another_channel_of_the_same_space_is_refused(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    rt, rnd, _ = await _revealed_round(runtimes, sqlite_url, bank, clock)
    ann_answer = await _answer_id(rt, rnd, "ann")
    other_channel = Place("shell", "local", "random", None, "random")
    out = await _vote(rt, Actor("shell", "local", "ben", "ben"), other_channel, f"vote:{rnd.id}:{ann_answer}")
    assert "Vote recorded" not in out


# -- forget-me --------------------------------------------------------------------------------------------


async def test_forget_me_erases_exactly_that_member(
    db_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    from datetime import timedelta

    rt, rnd, thread = await _revealed_round(runtimes, db_url, bank, clock)
    people = {who: Actor("shell", "local", who, who) for who in ("ann", "ben", "cat")}
    ann_a, ben_a = await _answer_id(rt, rnd, "ann"), await _answer_id(rt, rnd, "ben")
    await _vote(rt, people["ben"], thread, f"vote:{rnd.id}:{ann_a}")
    await _vote(rt, people["ann"], thread, f"vote:{rnd.id}:{ben_a}")
    await _vote(rt, people["cat"], thread, f"vote:{rnd.id}:{ann_a}")
    await _vote(rt, people["cat"], thread, f"vote:{rnd.id}:{ben_a}")
    clock.advance(timedelta(hours=1))
    await rt.engine.close(rnd.id, early=True)
    q = next(iter(bank.questions))
    for who in ("ann", "ben"):
        await rt.core.handle(ButtonPressed(people[who], thread, f"practice:rate:{q}:got"))
    before = await snapshot(rt)
    async with rt.engine.read() as conn:
        ann = await channel_store.find_member(conn, "shell", "local", "ann")
    assert ann is not None

    [r] = await rt.core.handle(ButtonPressed(people["ann"], thread, "forget:confirm"))
    assert isinstance(r, Reply) and "erased 1 answers, 3 votes" in r.message.plain
    after = await snapshot(rt)

    # What must be gone: ann's rows, her votes and the votes on her answer, and nothing else.
    cols = {t.name: [c.name for c in t.columns] for t in metadata.sorted_tables}

    def mine(table: str, row: tuple[Any, ...]) -> bool:
        r = dict(zip(cols[table], row, strict=True))
        if table == "members":
            return bool(r["id"] == ann.id)
        if table == "votes":
            return bool(r["voter_id"] == ann.id or r["answer_id"] == ann_a)
        return bool(r.get("member_id") == ann.id)

    expected = {t: [row for row in rows if not mine(t, row)] for t, rows in before.items()}
    assert after == expected
    assert sum(len(v) for v in before.values()) > sum(len(v) for v in after.values())
    # A second request finds nothing to erase.
    [again] = await rt.core.handle(ButtonPressed(people["ann"], thread, "forget:confirm"))
    assert isinstance(again, Reply) and "no data" in again.message.plain
