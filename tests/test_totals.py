"""The standings always equal the ledger's sums, for every scope and period: retried awards add nothing,
forget-me removes them, and a rebuild from the ledger gives the same boards."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from bot.events import Actor, Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import scores
from bot.store.tables import ledger, rounds, standings
from tests.conftest import start_runtime


async def totals_match(conn) -> bool:  # type: ignore[no-untyped-def]
    """Every standing equals the sum of its ledger rows (channel and server scope; all time, week, month)."""
    rows = (
        await conn.execute(select(ledger.c.channel_id, ledger.c.member_id, ledger.c.points, ledger.c.created_at))
    ).all()
    expected: dict[tuple[str, str, int], int] = {}
    for r in rows:
        for scope in (scores.channel_scope(r.channel_id), scores.space_scope("shell", "local")):
            for period in ("all", scores.week_key(r.created_at, "UTC"), scores.month_key(r.created_at, "UTC")):
                expected[(scope, period, r.member_id)] = expected.get((scope, period, r.member_id), 0) + r.points
    kept = {(r.scope, r.period, r.member_id): r.points for r in (await conn.execute(select(standings))).all()}
    return expected == kept


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
    for step in range(60):  # spread over ten days, so several weeks and two months get standings
        rid = rng.choice(round_ids)
        ch = chans[round_ids.index(rid) % 2]
        batch = [
            scores.Award(
                m.id, ch.id, rid, rng.choice(["participation", "votes", "top_answer", "streak"]), rng.randint(1, 20)
            )
            for m in rng.sample(people, 3)
        ]
        clock.advance(timedelta(hours=4))
        async with rt.engine.tx() as conn:
            await scores.award(conn, batch, clock.now())
            if step % 3 == 0:
                await scores.award(conn, batch, clock.now())  # a retried close: writes nothing new
            assert await totals_match(conn)
    async with rt.engine.tx() as conn:
        await scores.forget(conn, people[0].id)
        assert await totals_match(conn)
        scope = scores.channel_scope(chans[0].id)
        board = await scores.leaderboard(conn, scope, "all")
        week = await scores.leaderboard(conn, scope, scores.week_key(clock.now(), "UTC"))
        ranks = [await scores.standing_of(conn, scope, "all", s.member_id) for s in board]
        await scores.rebuild_totals(conn)
        assert await totals_match(conn)
        assert await scores.leaderboard(conn, scope, "all") == board
        assert await scores.leaderboard(conn, scope, scores.week_key(clock.now(), "UTC")) == week
        assert ranks == board  # a member's own rank agrees with their place on the board
        # All time from the standings equals a window covering everything, summed from the ledger.
        everything = await scores.leaderboard_between(
            conn, [chans[0].id], clock.now() - timedelta(days=365), clock.now() + timedelta(days=1)
        )
        assert [(s.member_id, s.points) for s in everything] == [(s.member_id, s.points) for s in board]
