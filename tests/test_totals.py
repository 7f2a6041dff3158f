"""The running totals always equal the ledger's sums: retried awards add nothing, forget-me removes them."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from bot.events import Actor, Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import scores
from bot.store.tables import ledger, member_totals, rounds
from tests.conftest import start_runtime


async def totals_match(conn) -> bool:  # type: ignore[no-untyped-def]
    from_ledger = {
        (r.channel_id, r.member_id): int(r.p)
        for r in (
            await conn.execute(
                select(ledger.c.channel_id, ledger.c.member_id, func.sum(ledger.c.points).label("p")).group_by(
                    ledger.c.channel_id, ledger.c.member_id
                )
            )
        ).all()
    }
    kept = {(r.channel_id, r.member_id): r.points for r in (await conn.execute(select(member_totals))).all()}
    return from_ledger == kept


async def test_totals_follow_the_ledger_through_retries_and_forgetting(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rng = random.Random(3)
    async with rt.engine.tx() as conn:
        chans = [
            (await channel_store.save(conn, Place("shell", "local", f"c{i}"), ChannelSettings(), clock.now()))[0]
            for i in range(2)
        ]
        people = [
            await channel_store.ensure_member(conn, Actor("shell", "local", f"u{i}", f"u{i}"), clock.now())
            for i in range(6)
        ]
        round_ids = []
        for i in range(12):
            res = await conn.execute(
                rounds.insert()
                .values(
                    channel_id=chans[i % 2].id,
                    slot=f"s{i}",
                    scheduled=True,
                    state="closed",
                    answer_mode="thread",
                    vote_cap=3,
                    due_at=clock.now(),
                )
                .returning(rounds.c.id)
            )
            round_ids.append(res.scalar_one())
    for step in range(60):
        rid = rng.choice(round_ids)
        ch = chans[round_ids.index(rid) % 2]
        batch = [
            scores.Award(
                m.id, ch.id, rid, rng.choice(["participation", "votes", "top_answer", "streak"]), rng.randint(1, 20)
            )
            for m in rng.sample(people, 3)
        ]
        clock.advance(timedelta(minutes=1))
        async with rt.engine.tx() as conn:
            await scores.award(conn, batch, clock.now())
            if step % 3 == 0:
                await scores.award(conn, batch, clock.now())  # a retried close: writes nothing new
            assert await totals_match(conn)
    async with rt.engine.tx() as conn:
        await scores.forget(conn, people[0].id)
        assert await totals_match(conn)
        board = await scores.leaderboard(conn, [chans[0].id], None, None)
        await scores.rebuild_totals(conn)
        assert await totals_match(conn)
        assert await scores.leaderboard(conn, [chans[0].id], None, None) == board
        # All time read from the totals equals a period that covers everything, read from the ledger.
        everything = await scores.leaderboard(conn, [chans[0].id], clock.now() - timedelta(days=365), None)
        assert [(s.member_id, s.points) for s in everything] == [(s.member_id, s.points) for s in board]
