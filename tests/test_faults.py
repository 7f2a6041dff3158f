"""Faults and abuse (issue 8, first part): many concurrent writers on SQLite, and secrets never in the logs."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select

from bot.events import Actor, ButtonPressed, MessagePosted, Place
from bot.render import Reply
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.tables import answers, votes
from tests.conftest import start_runtime
from tests.fake_discord import fake_discord as fake_discord


async def test_200_concurrent_writers_on_sqlite_lose_nothing_and_never_see_a_lock_error(
    sqlite_url, bank, clock, runtimes, caplog
):  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, sqlite_url, bank, clock)
    place = Place("shell", "local", "general", None, "general")
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, place, ChannelSettings(vote_cap=3), clock.now())
    await rt.engine.post_now(ch)
    async with rt.engine.tx() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    thread = Place("shell", "local", "general", rnd.thread_id)
    people = [Actor("shell", "local", f"u{i}", f"u{i}") for i in range(200)]

    # 200 members answer at the same moment.
    results = await asyncio.gather(
        *(rt.core.handle(MessagePosted(p, thread, f"m{i}", f"answer {i}")) for i, p in enumerate(people))
    )
    assert all(r and r[0].__class__.__name__ == "React" for r in results)
    await rt.engine.reveal(rnd.id, early=True)
    async with rt.engine.tx() as conn:
        ids = [r.id for r in (await conn.execute(select(answers.c.id).order_by(answers.c.id))).all()]
    assert len(ids) == 200

    # Then all 200 vote at once, each for the next member's answer.
    replies = await asyncio.gather(
        *(rt.core.handle(ButtonPressed(p, thread, f"vote:{rnd.id}:{ids[(i + 1) % 200]}")) for i, p in enumerate(people))
    )
    texts = [r[0].message.plain for r in replies if isinstance(r[0], Reply)]
    assert all("Vote recorded" in t for t in texts), {t for t in texts if "Vote recorded" not in t}
    async with rt.engine.tx() as conn:
        assert (await conn.execute(select(func.count()).select_from(votes))).scalar_one() == 200
    assert not any("locked" in r.getMessage().lower() for r in caplog.records)


async def test_tokens_never_reach_the_logs(fake_discord, tmp_path, bank, clock, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    """A whole Discord cycle at DEBUG with a recognisable token: not one log line may contain it."""
    from adapters.discord.client import QuizBot
    from adapters.discord.platform import DiscordPlatform
    from bot.logs import RedactSecrets
    from bot.runtime import build
    from bot.store.db import create_engine
    from tests.conftest import make_config

    token = "MTEzNzQ5OTg4NzY1NDMyMTA5OA.Gx1234.abcdefghijklmnopqrstuvwxyz0123456789ab"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    caplog.set_level(logging.DEBUG)
    redact = RedactSecrets()  # what setup_logging installs on the bot's handler
    caplog.handler.addFilter(redact)
    f = fake_discord
    owner, admin = f.snowflake(), f.snowflake()
    guild = f.add_guild("g", owner)
    channel = f.add_channel(guild, "daily")
    f.add_member(guild, admin, "ada", admin=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    with f.patch_discord_py():
        platform = DiscordPlatform()
        rt = await build(make_config(url), {"discord": platform}, clock=clock, bank=bank, db=create_engine(url))
        bot = QuizBot(rt, platform, guild_ready_timeout=0.05)
        await bot.login(token)
        task = asyncio.create_task(bot.connect())
        try:
            await f.wait_for(lambda: bot.is_ready())
            await bot.tree.sync()
            i = await f.slash(guild, channel, admin, "quiz-admin setup", {})
            await f.wait_for(lambda: i.texts())
            i = await f.slash(guild, channel, admin, "quiz-admin post-now", {})
            await f.wait_for(lambda: i.texts())
        finally:
            await bot.close()
            await asyncio.wait_for(task, 5)
            await rt.close()
    assert caplog.records, "the run should have logged something"
    leaked = [
        r.getMessage() for r in caplog.records if token in r.getMessage() or token.split(".")[0] in r.getMessage()
    ]
    assert leaked == []
    # And the filter is what keeps it out: a message carrying the token is redacted.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", (token,), None)
    redact.filter(record)
    assert token not in record.getMessage()
