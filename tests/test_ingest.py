"""Group commit (bot/ingest.py) and the one-trip SQLite driver (bot/store/sqlite_driver.py).

Batches must give exactly what one event at a time gives: first answer wins, deleted stays deleted, the vote
cap holds across votes of one batch, a bad event fails alone. Run on both databases."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from bot.events import Actor, ButtonPressed, MessageDeleted, MessagePosted, Place
from bot.models import Round
from bot.render import React, Reply
from bot.runtime import Runtime
from bot.settings import ChannelSettings
from bot.store import answers as answer_store
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.db import create_engine
from bot.store.tables import answers, members, votes
from tests.conftest import start_runtime

CHANNEL = Place("shell", "local", "general", None, "general")


def person(i: int, name: str | None = None) -> Actor:
    return Actor("shell", "local", f"u{i}", name or f"member {i}")


async def open_round(rt: Runtime, cap: int = 2) -> tuple[Round, Place]:
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, CHANNEL, ChannelSettings(vote_cap=cap), rt.engine.now())
    await rt.engine.post_now(ch)
    async with rt.engine.tx() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    return rnd, Place("shell", "local", "general", rnd.thread_id)


async def count(rt: Runtime, table: Any) -> int:
    async with rt.engine.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def plain(responses: list[Any]) -> str:
    return " ".join(r.message.plain for r in responses if isinstance(r, Reply))


async def test_a_batch_keeps_each_members_first_answer_and_the_freshest_name(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd, thread = await open_round(rt)
    # Delivered together, so they share a batch: member 1 twice (first message wins, as one at a time),
    # member 2 once, and a message in no round's thread.
    events = [
        MessagePosted(person(1, "Ann"), thread, "m1", "first answer"),
        MessagePosted(person(1, "Ann B."), thread, "m2", "second thought"),
        MessagePosted(person(2), thread, "m3", "another answer"),
        MessagePosted(person(3), Place("shell", "local", "general", "no-such-thread"), "m4", "lost?"),
    ]
    out = await asyncio.gather(*(rt.core.handle(e) for e in events))
    assert out == [[React("recorded")], [], [React("recorded")], []]
    async with rt.engine.read() as conn:
        got = {a.user_id: a.text for a in await answer_store.for_round(conn, rnd.id)}
        name = (await conn.execute(select(members.c.display_name).where(members.c.user_id == "u1"))).scalar_one()
    assert got == {"u1": "first answer", "u2": "another answer"}
    assert name == "Ann B."  # the last name seen in the batch
    # Delivered again (a platform retry): nothing changes.
    again = await asyncio.gather(*(rt.core.handle(e) for e in events))
    assert again == [[], [], [], []]
    assert await count(rt, answers) == 2


async def test_a_deletion_that_overtook_its_message_wins_inside_a_batch(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd, thread = await open_round(rt)
    await rt.core.handle(MessageDeleted(thread, "m1"))
    out = await asyncio.gather(
        rt.core.handle(MessagePosted(person(1), thread, "m1", "deleted before it arrived")),
        rt.core.handle(MessagePosted(person(2), thread, "m2", "kept")),
    )
    assert out == [[], [React("recorded")]]
    async with rt.engine.read() as conn:
        assert [a.text for a in await answer_store.for_round(conn, rnd.id)] == ["kept"]


async def test_the_vote_cap_holds_across_votes_of_one_batch(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd, thread = await open_round(rt, cap=2)
    await asyncio.gather(*(rt.core.handle(MessagePosted(person(i), thread, f"m{i}", f"answer {i}")) for i in range(5)))
    await rt.engine.reveal(rnd.id, early=True)
    async with rt.engine.read() as conn:
        ids = {a.user_id: a.id for a in await answer_store.for_round(conn, rnd.id)}
    voter = person(0)
    presses = [
        ButtonPressed(voter, thread, f"vote:{rnd.id}:{ids['u1']}"),
        ButtonPressed(voter, thread, f"vote:{rnd.id}:{ids['u1']}"),  # twice for the same answer
        ButtonPressed(voter, thread, f"vote:{rnd.id}:{ids['u2']}"),
        ButtonPressed(voter, thread, f"vote:{rnd.id}:{ids['u3']}"),  # over the cap of 2
        ButtonPressed(voter, thread, f"vote:{rnd.id}:{ids['u0']}"),  # their own
        ButtonPressed(voter, thread, f"vote:{rnd.id}:999999"),  # not on the ballot
        ButtonPressed(voter, Place("slack", "T1", "C1", None), f"vote:{rnd.id}:{ids['u4']}"),  # another platform
    ]
    replies = [plain(r) for r in await asyncio.gather(*(rt.core.handle(p) for p in presses))]
    assert "Vote recorded" in replies[0] and "1 vote left" in replies[0]
    assert "already voted" in replies[1]
    assert "Vote recorded" in replies[2] and "0 votes left" in replies[2]
    assert "all 2 of your votes" in replies[3]
    assert "own answer" in replies[4]
    assert "not on this round's ballot" in replies[5]
    assert "can't find that round" in replies[6]
    assert await count(rt, votes) == 2


async def test_one_bad_event_fails_alone_and_the_rest_of_its_batch_is_written(
    db_url, bank, clock, runtimes, monkeypatch
):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    _, thread = await open_round(rt)
    real = answer_store.add_many

    async def add_many(conn: Any, rows: Any) -> Any:
        # Fault injection: the database refuses any batch that holds this one answer.
        if any(r.text == "poison" for r in rows):
            raise IntegrityError("INSERT", {}, Exception("refused for the test"))
        return await real(conn, rows)

    monkeypatch.setattr(answer_store, "add_many", add_many)
    texts = ["poison" if i == 3 else f"answer {i}" for i in range(6)]
    posts = [MessagePosted(person(i), thread, f"m{i}", t) for i, t in enumerate(texts)]
    out = await asyncio.gather(*(rt.core.handle(p) for p in posts))
    assert [o == [React("recorded")] for o in out] == [True, True, True, False, True, True]
    assert "went wrong" in plain(out[3])  # the member is told, the others are not affected
    assert await count(rt, answers) == 5


async def test_shutdown_writes_what_was_queued(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    _, thread = await open_round(rt)
    posts = [MessagePosted(person(i), thread, f"m{i}", f"answer {i}") for i in range(20)]
    pending = [asyncio.ensure_future(rt.core.handle(p)) for p in posts]
    await asyncio.sleep(0)  # queued, not yet written
    await rt.core.ingest.drain()
    assert await count(rt, answers) == 20
    assert all(p.done() for p in pending)


# -- the one-trip SQLite driver ---------------------------------------------------------------------------------


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """How many times each kind of call crossed to aiosqlite's database thread."""
    seen: collections.Counter[str] = collections.Counter()
    real = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kw: Any) -> Any:
        seen[getattr(fn, "__name__", "?")] += 1
        return await real(self, fn, *args, **kw)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return seen


async def test_each_statement_is_one_trip_and_reads_open_no_transaction(sqlite_url, trips):  # type: ignore[no-untyped-def]
    db = create_engine(sqlite_url)
    try:
        async with db.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        trips.clear()
        async with db.begin() as conn:
            r = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert r.rowcount == 1 and r.lastrowid == 1
            # BEGIN IMMEDIATE went with that first statement: the write lock is held, another writer must wait.
            other = sqlite3.connect(sqlite_url.split("///", 1)[1], timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
            await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])  # executemany
            rows = (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
            assert rows == ["a", "b", "c"]
        # Three statements (the first carrying BEGIN IMMEDIATE) and COMMIT: four trips, where the stock adapter
        # makes about fifteen.
        assert trips == {"_run": 3, "commit": 1}
        with pytest.raises(IntegrityError):
            async with db.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        async with db.connect() as conn:
            conn = await conn.execution_options(interview_bot_read_only=True)
            trips.clear()
            async with conn.begin():
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3
            assert trips == {"_run": 1}  # no BEGIN, no COMMIT: the read ran in autocommit mode
    finally:
        await db.dispose()


async def test_many_events_in_one_batch_cost_a_few_trips_not_a_few_per_event(sqlite_url, bank, clock, runtimes, trips):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, sqlite_url, bank, clock)
    _, thread = await open_round(rt)
    trips.clear()
    out = await asyncio.gather(
        *(rt.core.handle(MessagePosted(person(i), thread, f"m{i}", f"answer {i}")) for i in range(100))
    )
    assert all(o == [React("recorded")] for o in out)
    # One batch for the first event (the writer starts at once), one for the 99 that queued meanwhile:
    # each is rounds (with BEGIN), tombstones, members, answers and COMMIT.
    assert sum(trips.values()) <= 2 * 5, trips


async def test_redelivered_event_ids_are_new_once_even_within_one_batch(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    ids = ["Ev1", "Ev2", "Ev1", "Ev3", "Ev2"]
    first = await asyncio.gather(*(rt.core.first_delivery("slack", e) for e in ids))
    assert first == [True, True, False, True, False]
    again = await asyncio.gather(*(rt.core.first_delivery("slack", e) for e in ids))
    assert again == [False] * 5
    assert await rt.core.first_delivery("discord", "Ev1")  # ids are per platform


async def test_invisible_answers_are_not_answers_and_nul_is_dropped(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd, thread = await open_round(rt)
    invisible = "\u200b\u2060\ufeff \u202e\n"
    assert await rt.core.handle(MessagePosted(person(1), thread, "m1", invisible)) == []
    # PostgreSQL cannot store NUL in text: it is dropped, and the rest of the answer is kept (name too).
    assert await rt.core.handle(MessagePosted(person(2, "N\x00ame"), thread, "m2", "a\x00b")) == [React("recorded")]
    async with rt.engine.read() as conn:
        got = [(a.display_name, a.text) for a in await answer_store.for_round(conn, rnd.id)]
    assert got == [("Name", "ab")]


async def test_a_vote_counts_only_from_the_rounds_own_channel(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd, thread = await open_round(rt, cap=3)
    await asyncio.gather(*(rt.core.handle(MessagePosted(person(i), thread, f"m{i}", f"answer {i}")) for i in range(4)))
    await rt.engine.reveal(rnd.id, early=True)
    async with rt.engine.read() as conn:
        ids = {a.user_id: a.id for a in await answer_store.for_round(conn, rnd.id)}
    voter = person(0)
    elsewhere = Place("shell", "local", "random", None, "random")  # same space, another channel
    thread_alone = Place("shell", "local", rnd.thread_id or "", None)  # a thread an adapter could not place
    out = [
        plain(await rt.core.handle(ButtonPressed(voter, place, f"vote:{rnd.id}:{ids[who]}")))
        for place, who in ((elsewhere, "u1"), (thread, "u2"), (CHANNEL, "u3"), (thread_alone, "u1"))
    ]
    assert "can't find that round" in out[0]
    assert all("Vote recorded" in o for o in out[1:]), out
    assert await count(rt, votes) == 3
