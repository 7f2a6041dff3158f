"""Duplicate and out-of-order deliveries leave the same state as one delivery in order."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.events import Actor, MessageDeleted, MessageEdited, MessagePosted, Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.tables import answers
from tests.conftest import start_runtime

ANN = Actor("shell", "local", "ann", "ann")


async def open_round(rt):  # type: ignore[no-untyped-def]
    place = Place("shell", "local", "general", None, "general")
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, place, ChannelSettings(), rt.engine.now())
    await rt.engine.post_now(ch)
    async with rt.engine.tx() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    return Place("shell", "local", "general", rnd.thread_id)


async def stored(rt) -> list[str]:  # type: ignore[no-untyped-def]
    async with rt.engine.tx() as conn:
        return sorted(r.text for r in (await conn.execute(select(answers.c.text))).all())


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (("post", "edit"), ["edited"]),
        (("post", "delete"), []),
        (("post", "edit", "delete"), []),
    ],
)
async def test_every_order_and_duplication_gives_the_in_order_result(
    sqlite_url, bank, clock, runtimes, events, expected
):  # type: ignore[no-untyped-def]
    """Each scenario in every order, each event delivered once or twice: always the in-order outcome."""
    for order in itertools.permutations(events):
        for doubled in itertools.product((1, 2), repeat=len(order)):
            rt, _ = await start_runtime(runtimes, sqlite_url, bank, clock)
            clock.advance(timedelta(days=1))  # a fresh day and round for each run
            place = await open_round(rt)
            make = {
                "post": MessagePosted(ANN, place, "m1", "original"),
                "edit": MessageEdited(ANN, place, "m1", "edited"),
                "delete": MessageDeleted(place, "m1"),
            }
            for name, times in zip(order, doubled, strict=True):
                for _ in range(times):
                    await rt.core.handle(make[name])
            got = [t for t in await stored(rt) if t in ("original", "edited")]
            # Each run has its own round; only the newest round's answer matters for this run.
            async with rt.engine.tx() as conn:
                rnd = await round_store.for_thread(conn, "shell", "local", "general", place.thread_id or "")
                assert rnd is not None
                mine = sorted(
                    r.text
                    for r in (await conn.execute(select(answers.c.text).where(answers.c.round_id == rnd.id))).all()
                )
            assert mine == expected, (order, doubled, got)
