"""The Discord adapter end to end: the real discord.py client against the fake Discord server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.discord.client import QuizBot
from adapters.discord.platform import DiscordPlatform
from bot.clock import ManualClock
from bot.questions.model import Bank
from bot.runtime import Runtime, build
from bot.store.db import create_engine
from bot.store.tables import answers, channels, ledger, members, reminders
from tests.conftest import make_config
from tests.fake_discord import FakeDiscord
from tests.fake_discord import fake_discord as fake_discord

TOKEN = "fake.bot.token"


@dataclass
class Server:
    fake: FakeDiscord
    guild: str
    channel: str
    admin: str
    ann: str
    ben: str
    cat: str


@pytest.fixture
def server(fake_discord: FakeDiscord) -> Server:
    f = fake_discord
    owner, admin, ann, ben, cat = (f.snowflake() for _ in range(5))
    guild = f.add_guild("Interview Club", owner)
    channel = f.add_channel(guild, "daily-questions")
    f.add_member(guild, owner, "olga")
    f.add_member(guild, admin, "ada", admin=True)
    for uid, name in ((ann, "ann"), (ben, "ben"), (cat, "cat")):
        f.add_member(guild, uid, name)
    return Server(f, guild, channel, admin, ann, ben, cat)


@dataclass
class Bot:
    runtime: Runtime
    client: QuizBot
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self.task, 5)
        await self.runtime.close()


async def start_bot(fake: FakeDiscord, url: str, bank: Bank, clock: ManualClock) -> Bot:
    platform = DiscordPlatform()
    rt = await build(make_config(url), {"discord": platform}, clock=clock, bank=bank, db=create_engine(url))
    client = QuizBot(rt, platform, guild_ready_timeout=0.05)
    await client.login(TOKEN)
    task = asyncio.create_task(client.connect())
    await fake.wait_for(lambda: client.is_ready())
    return Bot(rt, client, task)


@pytest.fixture
async def running(server: Server, tmp_path: Path, bank: Bank, clock: ManualClock) -> AsyncIterator[dict[str, Any]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'discord.db'}"
    with server.fake.patch_discord_py():
        bot = await start_bot(server.fake, url, bank, clock)
        await bot.client.tree.sync()  # what `interview-bot commands sync` does
        state: dict[str, Any] = {"bot": bot, "url": url}
        try:
            yield state
        finally:
            await state["bot"].stop()


def embed_text(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for e in message.get("embeds") or []:
        parts += [e.get("title") or "", e.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in e.get("fields") or []]
    return "\n".join(parts)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components") or [] for c in row.get("components", [])]


async def replied(fake: FakeDiscord, interaction: Any) -> Any:
    """Wait until the bot has said something in reply: commands defer first, then follow up."""
    await fake.wait_for(lambda: interaction.texts())
    return interaction


async def scalar(rt: Runtime, query: Any) -> Any:
    async with rt.engine.tx() as conn:
        return (await conn.execute(query)).scalar_one()


async def points(rt: Runtime, user_id: str) -> int:
    q = (
        select(func.coalesce(func.sum(ledger.c.points), 0))
        .select_from(ledger.join(members, members.c.id == ledger.c.member_id))
        .where(members.c.user_id == user_id)
    )
    return int(await scalar(rt, q))


async def test_full_cycle_on_discord(server: Server, running: dict[str, Any], bank: Bank, clock: ManualClock) -> None:
    fake, s = server.fake, server
    bot: Bot = running["bot"]
    rt = bot.runtime

    # A member is refused; an admin sets the channel up.
    refused = await replied(fake, await fake.slash(s.guild, s.channel, s.ann, "quiz-admin setup", {"time": "09:00"}))
    assert any("only this server's admins" in t for t in refused.ephemeral_texts())
    options = {"time": "09:00", "timezone": "Europe/London", "cap": 1}
    done = await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin setup", options))
    assert any("Daily question set up" in t for t in done.ephemeral_texts()), done.responses

    # 09:00: the question is posted as an embed with a thread.
    clock.advance(timedelta(hours=1))
    await rt.engine.tick()
    [post] = fake.messages(s.channel)
    assert "Question of the day" in embed_text(post)
    thread = fake.thread_of(post["id"])
    assert thread is not None

    # Three members answer; ben edits; cat deletes hers. Ann's answer tries to ping everyone.
    await fake.user_message(thread, s.ann, "@everyone Ann's answer: gradients vanish")
    ben_mid = await fake.user_message(thread, s.ben, "Ben's first try")
    cat_mid = await fake.user_message(thread, s.cat, "Cat's answer")

    async def answer_count() -> bool:
        return bool(await scalar(rt, select(func.count()).select_from(answers)) == 3)

    await fake.wait_for(answer_count)
    await fake.user_edit(thread, ben_mid, "Ben's better answer")
    await fake.user_delete(thread, cat_mid)

    async def settled() -> bool:
        n = await scalar(rt, select(func.count()).select_from(answers))
        texts = await scalar(rt, select(func.group_concat(answers.c.text)))
        return bool(n == 2 and "Ben's better answer" in (texts or ""))

    await fake.wait_for(settled)
    assert fake.requests_to("PUT", r"/channels/\d+/messages/\d+/reactions/.+/@me")  # ✅ on recorded answers

    # 17:00: reference answer and ballot in the thread; nothing the bot sent can ping.
    clock.advance(timedelta(hours=8))
    await rt.engine.tick()
    in_thread = fake.messages(thread)
    assert any("Reference answer" in embed_text(m) for m in in_thread)
    ballot = next(m for m in in_thread if buttons(m))
    text = embed_text(ballot)
    assert "Ben's better answer" in text and "Cat's answer" not in text
    assert "@everyone" not in text  # broken with a zero-width space
    assert all(m.get("allowed_mentions") == {"parse": []} for m in fake.messages(s.channel) + in_thread)
    vote = {b["label"].split(": ", 1)[1]: b["custom_id"] for b in buttons(ballot)}

    # Restart the bot in the middle of voting: the old ballot's buttons still work.
    await bot.stop()
    bot = await start_bot(fake, running["url"], bank, clock)
    running["bot"] = bot
    rt = bot.runtime

    async def press(user: str, name: str) -> str:
        i = await replied(fake, await fake.click(thread, ballot["id"], user, vote[name]))
        return " ".join(i.ephemeral_texts())

    assert "can't vote for your own" in await press(s.ann, "ann")
    assert "Vote recorded for ann's answer" in await press(s.ben, "ann")
    assert "already voted" in await press(s.ben, "ann")
    assert "Vote recorded for ann's answer" in await press(s.cat, "ann")
    assert "used all 1 of your votes" in await press(s.cat, "ben")

    # Tuesday 07:00: voting closes, results are posted, points follow the defaults.
    clock.advance(timedelta(hours=14))
    await rt.engine.tick()
    assert any("Round closed: results" in embed_text(m) for m in fake.messages(thread))
    assert await points(rt, s.ann) == 10 + 2 * 5 + 15
    assert await points(rt, s.ben) == 10
    assert "closed" in await press(s.ben, "ben")

    board = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz leaderboard", {"period": "week"}))
    text = " ".join(board.texts())
    assert text.index("ann") < text.index("ben") and "35 points" in text
    assert not board.original_ephemeral  # the leaderboard is for everyone


async def setup_channel(fake: FakeDiscord, s: Server, **options: Any) -> None:
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin setup", options))


async def post_now(fake: FakeDiscord, s: Server) -> Any:
    return await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin post-now", {}))


async def test_blind_mode_uses_a_button_and_a_modal(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    await setup_channel(fake, s, mode="blind")
    await post_now(fake, s)
    [post] = fake.messages(s.channel)
    [answer_button] = buttons(post)
    opened = await fake.click(s.channel, post["id"], s.ann, answer_button["custom_id"])
    await fake.wait_for(lambda: opened.modal)
    field = opened.modal["components"][0]
    field_id = (field.get("component") or field["components"][0])["custom_id"]
    sent = await replied(
        fake, await fake.submit_modal(s.channel, s.ann, opened.modal["custom_id"], {field_id: "@here ann's secret"})
    )
    assert any("saved" in t for t in sent.ephemeral_texts())
    assert len(fake.messages(s.channel)) == 1  # nothing public yet
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin reveal-now", {}))
    thread = fake.thread_of(post["id"])
    published = [embed_text(m) for m in fake.messages(thread)]
    assert any("ann's secret" in t and "@here" not in t for t in published)


async def test_lost_permission_pauses_the_channel_and_tells_the_owner(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    await setup_channel(fake, s)
    fake.deny_send(s.channel)
    out = await post_now(fake, s)
    assert any("Nothing was posted" in t or "Posted" not in t for t in out.ephemeral_texts())
    rt: Runtime = running["bot"].runtime
    async with rt.engine.tx() as conn:
        from bot.store import channels as channel_store

        ch = await channel_store.find(conn, "discord", s.guild, s.channel)
    assert ch is not None and not ch.enabled and "403" in (ch.paused_reason or "")
    guild_owner = next(r.json for r in fake.requests_to("POST", r"/users/@me/channels"))["recipient_id"]
    dms = fake.dms(guild_owner)
    assert dms and "paused the daily question" in embed_text(dms[-1])


async def test_setup_refuses_a_channel_the_bot_cannot_post_in(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    fake.deny_send(s.channel)
    await fake.wait_for(lambda: True)
    out = await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin setup", {"time": "10:00"}))
    [text] = out.ephemeral_texts()
    assert "missing the Send Messages and Send Messages in Threads permissions" in text, text
    assert "not saved" in text
    rt: Runtime = running["bot"].runtime
    assert await scalar(rt, select(func.count()).select_from(channels)) == 0


async def test_practice_and_forget_me_buttons(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    q = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz practice", {"difficulty": "easy"}))
    assert q.original_ephemeral and any("Practice question" in t for t in q.texts())
    reply = q.responses[-1]  # the follow-up that carries the buttons
    message_id = reply["message_id"]
    show = next(c for row in reply["data"]["components"] for c in row["components"])
    shown = await replied(fake, await fake.click(s.channel, message_id, s.ben, show["custom_id"]))
    assert any("Reference answer" in t for t in shown.texts())
    forget = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz forget-me", {}))
    confirm = next(c for row in forget.responses[-1]["data"]["components"] for c in row["components"])
    forget_id = forget.responses[-1]["message_id"]
    done = await replied(fake, await fake.click(s.channel, forget_id, s.ben, confirm["custom_id"]))
    assert any("erased" in t or "no data" in t for t in done.ephemeral_texts())


async def test_answers_survive_a_dropped_gateway(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    await post_now(fake, s)
    thread = fake.thread_of(fake.messages(s.channel)[0]["id"])
    await fake.drop_gateway()
    await fake.user_message(thread, s.ann, "answer sent while the gateway reconnects")

    async def stored() -> bool:
        return bool(await scalar(rt, select(func.count()).select_from(answers)) == 1)

    await fake.wait_for(stored)
    assert fake.resumes >= 1 and len(fake.identifies) == 1  # resumed, not a new session


async def test_main_explains_a_missing_message_content_intent(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.discord import main
    from bot.config import load_config

    fake_discord.require_message_content_approval = True
    monkeypatch.setenv("DISCORD_API_BASE", fake_discord.api_base)
    monkeypatch.setenv("DISCORD_GATEWAY_URL", fake_discord.gateway_url)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.chdir(tmp_path)
    with fake_discord.patch_discord_py():  # restores what main() sets from the environment
        assert await asyncio.wait_for(main(load_config()), 20) == 2
    err = capsys.readouterr().err
    assert "MESSAGE CONTENT INTENT" in err and TOKEN not in err

    monkeypatch.delenv("DISCORD_TOKEN")
    assert await main(load_config()) == 2
    assert "set DISCORD_TOKEN" in capsys.readouterr().err


async def test_rate_limited_post_succeeds_and_a_deleted_channel_pauses(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    await setup_channel(fake, s)
    fake.fail_next("POST", rf"/channels/{s.channel}/messages", 429, retry_after=0.01)
    out = await post_now(fake, s)
    assert any("Posted" in t for t in out.ephemeral_texts())
    assert len(fake.requests_to("POST", rf"/channels/{s.channel}/messages")) == 2  # one 429, one success
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin skip", {}))
    fake.delete_channel(s.channel)
    rt: Runtime = running["bot"].runtime
    from bot.store import channels as channel_store

    async with rt.engine.tx() as conn:
        ch = await channel_store.find(conn, "discord", s.guild, s.channel)
    assert ch is not None
    await rt.engine.post_now(ch)
    async with rt.engine.tx() as conn:
        ch = await channel_store.find(conn, "discord", s.guild, s.channel)
    assert ch is not None and not ch.enabled and "404" in (ch.paused_reason or "")


async def test_shard_ranges_split_guilds_between_processes(
    fake_discord: FakeDiscord, tmp_path: Path, bank: Bank, clock: ManualClock
) -> None:
    fake = fake_discord
    fake.recommended_shards = 2
    guilds: dict[int, str] = {}
    for attempt in range(20):  # one guild on each shard: shard = (guild_id >> 22) % 2
        fake.snowflake()  # each add_guild takes an even number of ids: shift the timestamp's parity
        gid = fake.add_guild(f"g{attempt}", fake.snowflake())
        guilds.setdefault((int(gid) >> 22) % 2, gid)
        if len(guilds) == 2:
            break
    assert len(guilds) == 2
    channels = {shard: fake.add_channel(gid, "daily") for shard, gid in guilds.items()}
    url = f"sqlite+aiosqlite:///{tmp_path / 'shards.db'}"
    bots = []
    with fake.patch_discord_py():
        for shard in (0, 1):
            platform = DiscordPlatform()
            rt = await build(make_config(url), {"discord": platform}, clock=clock, bank=bank, db=create_engine(url))
            client = QuizBot(rt, platform, shard_ids=[shard], shard_count=2, guild_ready_timeout=0.05)
            await client.login(TOKEN)
            bots.append(Bot(rt, client, asyncio.create_task(client.connect())))
        try:
            await fake.wait_for(lambda: all(b.client.is_ready() for b in bots), timeout=15)
            from bot.events import Place
            from bot.settings import ChannelSettings
            from bot.store import channels as channel_store

            async with bots[0].runtime.engine.tx() as conn:
                for shard, gid in guilds.items():
                    place = Place("discord", gid, channels[shard], None, "daily")
                    await channel_store.save(conn, place, ChannelSettings(), clock.now())
            clock.advance(timedelta(hours=1))
            await asyncio.gather(*(b.runtime.engine.tick() for b in bots))
            for shard in (0, 1):
                assert len(fake.messages(channels[shard])) == 1  # each posted once, by its own shard's process
            owned = [[c.space_id for c in await b.runtime.engine.my_channels()] for b in bots]
            assert owned == [[guilds[0]], [guilds[1]]]
        finally:
            for b in bots:
                await b.stop()


async def test_command_sync_registers_both_groups_with_admin_hidden(
    fake_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.discord import sync_commands
    from bot.config import load_config

    monkeypatch.setenv("DISCORD_API_BASE", fake_discord.api_base)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.chdir(tmp_path)
    with fake_discord.patch_discord_py():
        assert await sync_commands(load_config()) == 0
    assert "synced 2 global commands" in capsys.readouterr().out
    by_name = {c["name"]: c for c in fake_discord.commands}
    assert set(by_name) == {"quiz", "quiz-admin"}
    assert str(by_name["quiz-admin"]["default_member_permissions"]) == str(discord_manage_guild())
    subcommands = {o["name"] for o in by_name["quiz"]["options"]}
    assert subcommands == {"practice", "leaderboard", "stats", "topics", "forget-me", "help", "review", "remind"}


def discord_manage_guild() -> int:
    import discord

    return discord.Permissions(manage_guild=True).value


async def test_autocomplete_for_topics_and_timezones(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    topics = await fake.autocomplete(s.guild, s.channel, s.ann, "quiz practice", {"topic": "conv"}, "topic")
    await fake.wait_for(lambda: topics.choices())
    assert [c["value"] for c in topics.choices()] == ["cnn"]
    zones = await fake.autocomplete(s.guild, s.channel, s.admin, "quiz-admin setup", {"timezone": "berl"}, "timezone")
    await fake.wait_for(lambda: zones.choices())
    assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in zones.choices()


# -- review reminders by direct message --------------------------------------------------------------------


def components(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in reply["data"].get("components") or [] for c in row["components"]]


async def reminder_rows(rt: Runtime) -> list[Any]:
    async with rt.engine.read() as conn:
        return list((await conn.execute(select(reminders))).all())


async def test_discord_reminder_is_a_dm_and_closed_dms_turn_it_off(
    server: Server, running: dict[str, Any], clock: ManualClock
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    # ben practises a question and misses it: due for review tomorrow.
    q = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz practice", {"topic": "cnn"}))
    assert any("New" in t for t in q.texts())
    shown = await replied(
        fake,
        await fake.click(s.channel, q.responses[-1]["message_id"], s.ben, components(q.responses[-1])[0]["custom_id"]),
    )
    missed = next(c for c in components(shown.responses[-1]) if c["custom_id"].endswith(":missed"))
    rated = await replied(
        fake, await fake.click(s.channel, shown.responses[-1]["message_id"], s.ben, missed["custom_id"])
    )
    assert any("comes back for review in 1 day" in t for t in rated.texts())
    for who in (s.ben, s.cat):
        out = await replied(
            fake, await fake.slash(s.guild, s.channel, who, "quiz remind", {"time": "09:00", "timezone": "UTC"})
        )
        assert any("Reminder set" in t for t in out.ephemeral_texts()), out.responses
    review = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz review", {}))
    assert any("daily at 09:00 UTC" in t for t in review.texts())

    clock.advance(timedelta(days=1, hours=1))  # Tuesday 09:00 UTC: ben has a review due, cat has nothing
    await rt.engine.tick()
    [dm] = fake.dms(s.ben)
    assert "Practice reminder" in embed_text(dm) and "1 practice question due" in embed_text(dm)
    assert dm["allowed_mentions"] == {"parse": []}  # a DM can never ping anyone either
    assert fake.dms(s.cat) == []

    # cat misses a question too, but has closed DMs: Discord answers 403 with code 50007.
    q = await replied(fake, await fake.slash(s.guild, s.channel, s.cat, "quiz practice", {}))
    shown = await replied(
        fake,
        await fake.click(s.channel, q.responses[-1]["message_id"], s.cat, components(q.responses[-1])[0]["custom_id"]),
    )
    missed = next(c for c in components(shown.responses[-1]) if c["custom_id"].endswith(":missed"))
    await replied(fake, await fake.click(s.channel, shown.responses[-1]["message_id"], s.cat, missed["custom_id"]))
    off = await replied(fake, await fake.slash(s.guild, s.channel, s.ben, "quiz remind", {"action": "off"}))
    assert any("Reminder off" in t for t in off.texts())
    fake.fail_next(
        "POST", r"/channels/\d+/messages", 403, {"code": 50007, "message": "Cannot send messages to this user"}
    )
    clock.advance(timedelta(days=1))
    await rt.engine.tick()  # fails for cat, recorded; the tick itself carries on
    [row] = [r for r in await reminder_rows(rt) if r.next_at is None and r.last_error]
    assert "403" in row.last_error and row.failures == 1
    status = await replied(fake, await fake.slash(s.guild, s.channel, s.cat, "quiz remind", {}))
    assert any("could not send you a direct message" in t for t in status.texts())
    clock.advance(timedelta(days=1))
    await rt.engine.tick()
    assert len(fake.dms(s.ben)) == 1 and fake.dms(s.cat) == []  # nobody is retried or messaged after "off"
