"""The fake Discord must satisfy the real discord.py client, or adapter tests built on it prove nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import pytest_asyncio
from discord import app_commands

from tests.fake_discord import FakeDiscord
from tests.fake_discord import fake_discord as fake_discord

TOKEN = "fake.bot.token"


class RecordingClient(discord.Client):
    """Keeps every event discord.py dispatches, so tests can wait on what the library actually parsed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: dict[str, list[Any]] = {}
        self.tree = app_commands.CommandTree(self)

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        self.seen.setdefault(event, []).append(args[0] if len(args) == 1 else args)
        super().dispatch(event, *args, **kwargs)


@dataclass
class World:
    fake: FakeDiscord
    guild_id: str
    channel_id: str
    user_id: str
    admin_id: str


@dataclass
class Running:
    world: World
    client: RecordingClient


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    admin_id = fake_discord.snowflake()
    user_id = fake_discord.snowflake()
    # A separate owner, so the admin's permissions come from the admin role rather than ownership.
    guild_id = fake_discord.add_guild("Interview Club", fake_discord.snowflake())
    channel_id = fake_discord.add_channel(guild_id, "daily-questions")
    fake_discord.add_member(guild_id, admin_id, "ada", admin=True)
    fake_discord.add_member(guild_id, user_id, "grace")
    return World(fake_discord, guild_id, channel_id, user_id, admin_id)


async def start_client(fake: FakeDiscord, intents: discord.Intents) -> tuple[RecordingClient, asyncio.Task[None]]:
    # guild_ready_timeout: discord.py otherwise waits 2s after the last GUILD_CREATE before on_ready.
    client = RecordingClient(intents=intents, guild_ready_timeout=0.05)
    await client.login(TOKEN)
    task = asyncio.create_task(client.connect())
    return client, task


async def stop_client(client: discord.Client, task: asyncio.Task[None]) -> None:
    await client.close()
    await asyncio.wait_for(task, 5)


@pytest_asyncio.fixture
async def running(world: World) -> AsyncIterator[Running]:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True  # without it Discord sends (and discord.py caches) only the bot's own member
    with world.fake.patch_discord_py():
        client, task = await start_client(world.fake, intents)
        try:
            await world.fake.wait_for(lambda: client.seen.get("ready"))
            yield Running(world, client)
        finally:
            await stop_client(client, task)


async def test_patch_is_restored(fake_discord: FakeDiscord) -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    with fake_discord.patch_discord_py():
        assert discord.http.Route.BASE == fake_discord.api_base
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake_discord.gateway_url
    assert (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == before


async def test_messages_threads_edits_rate_limits_and_resume(running: Running) -> None:
    fake, client, w = running.world.fake, running.client, running.world
    guild = client.get_guild(int(w.guild_id))
    assert guild is not None and guild.name == "Interview Club"
    channel = guild.get_channel(int(w.channel_id))
    assert isinstance(channel, discord.TextChannel) and channel.name == "daily-questions"
    admin = guild.get_member(int(w.admin_id))
    user = guild.get_member(int(w.user_id))
    assert admin is not None and admin.guild_permissions.manage_guild
    assert user is not None and not user.guild_permissions.manage_guild
    assert client.user is not None and client.user.id == int(fake.bot_user_id)
    assert client.application_id == int(fake.application_id)

    sent = await channel.send("hi", allowed_mentions=discord.AllowedMentions.none())
    [posted] = fake.messages(w.channel_id)
    assert posted["content"] == "hi" and posted["id"] == str(sent.id)
    assert posted["allowed_mentions"] == {"parse": []}

    thread = await sent.create_thread(name="Answers for today")
    assert fake.thread_of(sent.id) == str(thread.id)
    await fake.wait_for(lambda: guild.get_thread(thread.id))

    mid = await fake.user_message(thread.id, w.user_id, "my answer is O(n log n)")
    on_message = await fake.wait_for(lambda: [m for m in client.seen.get("message", []) if m.id == int(mid)])
    assert on_message[0].content == "my answer is O(n log n)"
    assert on_message[0].channel == guild.get_thread(thread.id)
    assert isinstance(on_message[0].author, discord.Member)

    await fake.user_edit(thread.id, mid, "actually O(n)")
    edits = await fake.wait_for(lambda: client.seen.get("raw_message_edit"))
    assert edits[0].message_id == int(mid) and edits[0].message.content == "actually O(n)"

    await fake.user_delete(thread.id, mid)
    deletes = await fake.wait_for(lambda: client.seen.get("raw_message_delete"))
    assert deletes[0].message_id == int(mid)

    fake.fail_next("POST", r"/channels/\d+/messages", 429, retry_after=0.01)
    await channel.send("after a rate limit")
    assert len(fake.requests_to("POST", rf"/channels/{w.channel_id}/messages")) == 3
    assert [m["content"] for m in fake.messages(w.channel_id)] == ["hi", "after a rate limit"]

    await fake.drop_gateway()
    await fake.user_message(w.channel_id, w.user_id, "sent while the bot was away")
    await fake.wait_for(lambda: client.seen.get("resumed"))
    texts = await fake.wait_for(
        lambda: [m for m in client.seen.get("message", []) if m.content == "sent while the bot was away"]
    )
    assert texts and fake.resumes == 1 and len(fake.identifies) == 1


async def test_slash_command_replies_ephemeral(world: World) -> None:
    fake = world.fake
    with fake.patch_discord_py():
        client, task = await start_client(fake, discord.Intents.default())
        guild = discord.Object(int(world.guild_id))

        @client.tree.command(name="ping", description="Answer privately", guild=guild)
        @app_commands.describe(times="how many pongs")
        async def ping(interaction: discord.Interaction, times: int = 1) -> None:
            await interaction.response.send_message("pong " * times, ephemeral=True)

        admin = app_commands.Group(name="admin", description="Server settings")
        schedule = app_commands.Group(name="schedule", description="When questions post", parent=admin)

        @schedule.command(name="set", description="Set the posting time")
        @app_commands.choices(day=[app_commands.Choice(name="Monday", value="mon")])
        async def set_schedule(
            interaction: discord.Interaction, day: app_commands.Choice[str], channel: discord.TextChannel
        ) -> None:
            await interaction.response.send_message(f"{day.value} in {channel.mention}")

        client.tree.add_command(admin, guild=guild)

        try:
            await fake.wait_for(lambda: client.seen.get("ready"))
            synced = await client.tree.sync(guild=guild)
            assert sorted(c.name for c in synced) == ["admin", "ping"]
            assert sorted(c["name"] for c in fake.commands) == ["admin", "ping"]

            interaction = await fake.slash(world.guild_id, world.channel_id, world.user_id, "ping", {"times": 2})
            await fake.wait_for(lambda: interaction.responses)
            [response] = interaction.responses
            assert response["type"] == 4 and response["data"]["flags"] == 64
            assert interaction.ephemeral_texts() == ["pong pong "]
            assert fake.messages(world.channel_id) == []
            options = {"day": "mon", "channel": world.channel_id}
            nested = await fake.slash(world.guild_id, world.channel_id, world.admin_id, "admin schedule set", options)
            await fake.wait_for(lambda: nested.responses)
            assert nested.texts() == [f"mon in <#{world.channel_id}>"] and nested.ephemeral_texts() == []
            with pytest.raises(AssertionError, match="not one of its choices"):
                await fake.slash(
                    world.guild_id, world.channel_id, world.admin_id, "admin schedule set", {**options, "day": "sun"}
                )
            with pytest.raises(AssertionError, match="no synced slash command"):
                await fake.slash(world.guild_id, world.channel_id, world.user_id, "missing", {})
        finally:
            await stop_client(client, task)


class AnswerModal(discord.ui.Modal, title="Your answer"):
    # One input in the legacy action-row layout and one in the current Label layout: both must submit.
    answer: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(label="Answer", custom_id="answer")
    confidence: discord.ui.Label[AnswerModal] = discord.ui.Label(
        text="Confidence", component=discord.ui.TextInput(custom_id="confidence", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.confidence.component, discord.ui.TextInput)
        text = f"Recorded: {self.answer.value} ({self.confidence.component.value})"
        await interaction.response.send_message(text, ephemeral=True)


class AnswerView(discord.ui.View):
    @discord.ui.button(label="Answer", custom_id="open-answer")
    async def open(self, interaction: discord.Interaction, button: discord.ui.Button[AnswerView]) -> None:
        await interaction.response.send_modal(AnswerModal(custom_id="answer-modal"))


async def test_button_opens_modal_and_submission_reaches_bot(world: World) -> None:
    fake = world.fake
    with fake.patch_discord_py():
        client, task = await start_client(fake, discord.Intents.default())
        try:
            await fake.wait_for(lambda: client.seen.get("ready"))
            channel = client.get_channel(int(world.channel_id))
            assert isinstance(channel, discord.TextChannel)
            message = await channel.send("Today's question", view=AnswerView(timeout=None))

            click = await fake.click(world.channel_id, message.id, world.user_id, "open-answer")
            await fake.wait_for(lambda: click.modal)
            assert click.modal is not None and click.modal["title"] == "Your answer"

            values = {"answer": "a heap", "confidence": "high"}
            submit = await fake.submit_modal(world.channel_id, world.user_id, "answer-modal", values)
            await fake.wait_for(lambda: submit.responses)
            assert submit.ephemeral_texts() == ["Recorded: a heap (high)"]
            with pytest.raises(AssertionError, match="required"):
                await fake.submit_modal(world.channel_id, world.user_id, "answer-modal", {"confidence": "low"})
        finally:
            await stop_client(client, task)


async def test_content_is_blank_without_the_intent_and_refused_when_unapproved(world: World) -> None:
    fake = world.fake
    with fake.patch_discord_py():
        client, task = await start_client(fake, discord.Intents.default())
        try:
            await fake.wait_for(lambda: client.seen.get("ready"))
            await fake.user_message(world.channel_id, world.user_id, "secret")
            seen = await fake.wait_for(lambda: client.seen.get("message"))
            assert seen[0].content == ""
        finally:
            await stop_client(client, task)

        fake.require_message_content_approval = True
        client, task = await start_client(fake, discord.Intents.default() | discord.Intents(message_content=True))
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(task, 5)
        await client.close()


async def test_defer_followups_dms_and_unknown_routes(world: World) -> None:
    fake = world.fake
    with fake.patch_discord_py():
        client, task = await start_client(fake, discord.Intents.default())
        guild = discord.Object(int(world.guild_id))

        @client.tree.command(name="report", description="Slow public answer", guild=guild)
        async def report(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content="Weekly report", embed=discord.Embed(title="Top"))
            await interaction.followup.send("psst", ephemeral=True)

        try:
            await fake.wait_for(lambda: client.seen.get("ready"))
            await client.tree.sync(guild=guild)
            interaction = await fake.slash(world.guild_id, world.channel_id, world.admin_id, "report")
            await fake.wait_for(lambda: len(interaction.responses) == 3)
            assert [r["kind"] for r in interaction.responses] == ["callback", "edit_original", "followup"]
            assert interaction.texts() == ["Weekly report", "Top", "psst"]
            assert interaction.ephemeral_texts() == ["psst"]
            assert fake.messages(world.channel_id) == []  # interaction replies live on the Interaction

            user = await client.fetch_user(int(world.user_id))
            await user.send("your streak is 3")
            assert [m["content"] for m in fake.dms(world.user_id)] == ["your streak is 3"]
            await fake.user_dm(world.user_id, "thanks")
            dm = await fake.wait_for(lambda: [m for m in client.seen.get("message", []) if m.content == "thanks"])
            assert isinstance(dm[0].channel, discord.DMChannel)

            with pytest.raises(discord.NotFound):
                await client.http.request(discord.http.Route("GET", "/no/such/endpoint"))
            assert fake.requests[-1] == ("GET", "/no/such/endpoint", None)

            fake.deny_send(world.channel_id)
            channel = client.get_channel(int(world.channel_id))
            assert isinstance(channel, discord.TextChannel)
            with pytest.raises(discord.Forbidden) as denied:
                await channel.send("nope")
            assert denied.value.code == 50001
            fake.delete_channel(world.channel_id)
            with pytest.raises(discord.NotFound) as gone:
                await channel.send("nope")
            assert gone.value.code == 10003
        finally:
            await stop_client(client, task)


async def test_auto_sharded_client_gets_each_guild_on_its_shard(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    fake.recommended_shards = 2
    owner = fake.snowflake()
    guilds = [fake.add_guild(f"Guild {i}", owner) for i in range(2)]
    channels = [fake.add_channel(g, "general") for g in guilds]
    assert {(int(g) >> 22) % 2 for g in guilds} == {0, 1}
    with fake.patch_discord_py():
        client = NoWaitShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        got: list[discord.Message] = []
        ready = asyncio.Event()
        client.event(_named("on_ready", ready.set))
        client.event(_named("on_message", got.append))
        await client.login(TOKEN)
        task = asyncio.create_task(client.connect())
        try:
            await asyncio.wait_for(ready.wait(), 5)
            assert fake.connected_shards == [0, 1]
            assert sorted(g.id for g in client.guilds) == sorted(int(g) for g in guilds)
            for channel_id in channels:
                await fake.user_message(channel_id, owner, "hello")
            await fake.wait_for(lambda: len(got) == 2)
            assert sorted(m.guild.shard_id for m in got if m.guild) == [0, 1]
        finally:
            await stop_client(client, task)


class NoWaitShardedClient(discord.AutoShardedClient):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5s before every IDENTIFY but the first, to respect Discord's concurrency limit."""


def _named(name: str, fn: Any) -> Any:
    async def handler(*args: Any) -> None:
        fn(*args)

    handler.__name__ = name
    return handler


async def test_menus_hold_25_options_alone_in_a_row_and_offer_only_their_own(running: Running) -> None:
    fake, client, w = running.world.fake, running.client, running.world
    channel = client.get_channel(int(w.channel_id))
    assert isinstance(channel, discord.TextChannel)

    def view(n: int, rows: int = 1) -> discord.ui.View:
        v = discord.ui.View()
        for r in range(rows):
            options = [discord.SelectOption(label=f"answer {i}", value=str(i)) for i in range(n)]
            v.add_item(discord.ui.Select(custom_id=f"pick{r}", options=options))
        return v

    too_many = view(25)
    too_many.children[0].options.append(discord.SelectOption(label="one more", value="25"))  # type: ignore[attr-defined]
    with pytest.raises(discord.HTTPException, match="between 1 and 25"):
        await channel.send("x", view=too_many)
    sent = await channel.send("x", view=view(25, rows=5))
    with pytest.raises(AssertionError, match="does not offer"):
        await fake.click(w.channel_id, sent.id, w.user_id, "pick4", ["25"])
