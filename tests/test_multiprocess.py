"""Several real `interview-bot` processes on one PostgreSQL: one is killed mid-transition, and the other
finishes the round after the lease expires, with nothing posted twice and nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.events import Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.tables import answers, ledger, rounds
from tests.fake_discord import FakeDiscord
from tests.fake_discord import fake_discord as fake_discord

MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def set_clock(path: Path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)  # atomic: a process never reads half a timestamp


def embed_text(message: dict) -> str:  # type: ignore[type-arg]
    return " ".join(
        [message.get("content") or ""] + [f"{e.get('title')} {e.get('description')}" for e in message.get("embeds", [])]
    )


async def test_two_processes_one_killed_mid_reveal(fake_discord: FakeDiscord, pg_url: str, tmp_path: Path) -> None:
    fake = fake_discord
    owner, ann, ben = (fake.snowflake() for _ in range(3))
    guild = fake.add_guild("Club", owner)
    channel = fake.add_channel(guild, "daily")
    for uid, name in ((owner, "olga"), (ann, "ann"), (ben, "ben")):
        fake.add_member(guild, uid, name)

    clock = tmp_path / "now"
    set_clock(clock, MONDAY)
    config = tmp_path / "bot.yaml"
    config.write_text("timing:\n  sweep_seconds: 1\n  lease_seconds: 5\nlog_level: INFO\n")
    db = create_engine(pg_url)
    await migrate.upgrade(db)
    async with db.begin() as conn:
        await channel_store.save(conn, Place("discord", guild, channel, None, "daily"), ChannelSettings(), MONDAY)

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": pg_url,
        "DISCORD_TOKEN": "fake.bot.token",
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "INTERVIEW_BOT_CLOCK_FILE": str(clock),
        "INTERVIEW_BOT_CONFIG": str(config),
    }
    # Blocking opens in an async test are fine here: two small local files, closed in the finally below.
    logs = [open(tmp_path / f"bot{i}.log", "wb") for i in range(2)]  # noqa: ASYNC230
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--platform", "discord", env=env, stdout=log, stderr=log
        )
        for log in logs
    ]

    async def scalar(query) -> int:  # type: ignore[no-untyped-def]
        async with db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def until(check, within: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        for _ in range(int(within / 0.1)):
            if await check():
                return
            await asyncio.sleep(0.1)
        logs_text = "\n".join((tmp_path / f"bot{i}.log").read_text() for i in range(2))
        async with db.connect() as conn:
            state = (await conn.execute(select(rounds.c.state, rounds.c.lease_owner, rounds.c.lease_until))).all()
        raise AssertionError(f"{check.__name__} timed out; rounds: {state}; logs:\n{logs_text}")

    try:

        async def both_connected() -> bool:
            return len(fake.identifies) >= 2

        await until(both_connected)

        # 09:00: both processes see the post fall due; exactly one posts it.
        set_clock(clock, MONDAY + timedelta(hours=1, seconds=5))

        async def posted() -> bool:
            return len(fake.messages(channel)) >= 1

        await until(posted)
        await asyncio.sleep(2.5)  # both have swept again by now
        [post] = fake.messages(channel)
        thread = fake.thread_of(post["id"])
        assert thread is not None

        await fake.user_message(thread, ann, "Ann's answer")
        await fake.user_message(thread, ben, "Ben's answer")

        async def two_answers() -> bool:
            return await scalar(select(func.count()).select_from(answers)) == 2

        await until(two_answers)

        # 17:00: whoever claims the reveal is rate-limited for two minutes on its first message: kill it there.
        fake.fail_next("POST", rf"/channels/{thread}/messages", 429, retry_after=120)
        set_clock(clock, MONDAY + timedelta(hours=9, seconds=5))

        async def revealing() -> bool:
            return await scalar(select(func.count()).select_from(rounds).where(rounds.c.state == "revealing")) == 1

        await until(revealing)
        async with db.connect() as conn:
            owner_id = (await conn.execute(select(rounds.c.lease_owner))).scalar_one()
        pid = int(owner_id.split(":")[1])
        victim = next(p for p in procs if p.pid == pid)
        victim.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(victim.wait(), 10) == -signal.SIGKILL

        # The survivor takes the reveal over once the dead process's lease (5 s of bot time) has run out.
        set_clock(clock, MONDAY + timedelta(hours=9, seconds=20))

        async def revealed() -> bool:
            return await scalar(select(func.count()).select_from(rounds).where(rounds.c.state == "revealed")) == 1

        await until(revealed)
        in_thread = [embed_text(m) for m in fake.messages(thread)]
        assert sum("Reference answer" in t for t in in_thread) == 1
        assert sum("Vote" in t for t in in_thread) == 1

        # Tuesday 07:00: voting closes once; points are written once.
        set_clock(clock, MONDAY + timedelta(hours=23, minutes=1))  # the reveal was at 17:00:20, +14 h

        async def closed() -> bool:
            return await scalar(select(func.count()).select_from(rounds).where(rounds.c.state == "closed")) == 1

        await until(closed)
        await asyncio.sleep(1.5)
        assert sum("Round closed" in embed_text(m) for m in fake.messages(thread)) == 1
        assert await scalar(select(func.count()).select_from(ledger).where(ledger.c.reason == "participation")) == 2
        assert len(fake.messages(channel)) == 1  # never a second question
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
                try:
                    await asyncio.wait_for(p.wait(), 10)
                except TimeoutError:
                    p.kill()
                    await p.wait()
        for log in logs:
            log.close()
        await db.dispose()
