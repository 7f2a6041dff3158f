"""The discord.py client: gateway events and interactions in, core replies out.

Two tables keep it thin: Discord payload -> bot.events event (the handlers below), and bot.render message ->
Discord call (render.py). All decisions are the core's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands

from adapters.discord.components import CoreButton, CoreSelect
from adapters.discord.platform import DiscordPlatform, classified
from adapters.discord.render import to_kwargs, without_image
from bot.events import (
    Actor,
    ButtonPressed,
    Command,
    FormSubmitted,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    Place,
)
from bot.models import Answer, Channel, Round
from bot.render import Message, OpenForm, React, Reply, Response
from bot.runtime import Runtime

log = logging.getLogger(__name__)

PLATFORM = "discord"
REACTIONS = {"recorded": "✅", "updated": "✏️", "refused": "🚫"}
# Messages read back per open thread on (re)connect; a round's answer window sees far fewer.
CATCH_UP_LIMIT = 1000


def intents() -> discord.Intents:
    i = discord.Intents.default()
    i.message_content = True  # privileged: answers are the text of thread replies
    return i


class QuizBot(discord.AutoShardedClient):
    def __init__(
        self,
        runtime: Runtime,
        platform: DiscordPlatform,
        *,
        shard_ids: list[int] | None = None,
        shard_count: int | None = None,
        start_scheduler: bool = True,
        **client_options: Any,
    ) -> None:
        super().__init__(
            intents=intents(),
            # Nothing the bot sends may ping anyone unless a message opts in explicitly.
            allowed_mentions=discord.AllowedMentions.none(),
            shard_ids=shard_ids,
            shard_count=shard_count,
            **client_options,
        )
        self.runtime = runtime
        self.core = runtime.core
        self.platform = platform
        platform.client = self
        self.start_scheduler = start_scheduler
        self.tree = app_commands.CommandTree(self)
        self._background: set[asyncio.Task[Any]] = set()
        # Shards whose events may have been lost (a new session) and whose threads are not read back yet.
        self._caught_up: set[int] = set()
        from adapters.discord.commands import register

        register(self.tree, self)

    def serves_guild(self, guild_id: int) -> bool:
        if self.shard_ids is None or not self.shard_count:
            return True
        return ((guild_id >> 22) % self.shard_count) in self.shard_ids

    async def setup_hook(self) -> None:
        # setup_hook runs once per process; a shard's READY can come again after every reconnect.
        self.add_dynamic_items(CoreButton, CoreSelect)
        # No reveal until the threads have been read back (on_shard_ready): answers posted while no process
        # was listening must reach the ballot.
        self.runtime.engine.hold_reveals(PLATFORM)
        if self.start_scheduler:
            await self.runtime.scheduler.start()

    async def on_shard_ready(self, shard_id: int) -> None:
        # READY follows a new session: at start, or when Discord would not resume the old one. Gateway events
        # are never replayed to a new session, so whatever members did while no process was listening (the
        # bot was down, or died before handling a message) is read back from the open rounds' threads.
        self._caught_up.discard(shard_id)
        task = asyncio.create_task(self._catch_up_shard(shard_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        # What members do until the shard is back may never reach us as events: hold reveals until it resumes
        # (Discord replays the gap) or its new session has been caught up.
        self._caught_up.discard(shard_id)
        self.runtime.engine.hold_reveals(PLATFORM)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self._caught_up.add(shard_id)
        await self._release_if_caught_up()

    async def _catch_up_shard(self, shard_id: int) -> None:
        await self.catch_up(shard_id)
        self._caught_up.add(shard_id)
        await self._release_if_caught_up()

    async def _release_if_caught_up(self) -> None:
        if not self.shards or any(sid not in self._caught_up for sid in self.shards):
            return
        if self.runtime.engine.reveals_held(PLATFORM):
            self.runtime.engine.release_reveals(PLATFORM)
            if self.start_scheduler:
                await self.runtime.scheduler.wake()  # the reveals that waited for us are due now

    async def catch_up(self, shard_id: int | None = None) -> int:
        """Hand the core every answer, edit and deletion in open rounds' threads that it has not seen (in one
        shard's servers, or all of ours). Safe to repeat and to run beside live events: the core takes each
        member's first message once."""
        handled = 0
        try:
            opened = await self.runtime.engine.open_threads(PLATFORM)
        except Exception:
            log.exception("could not list open rounds to catch up on")
            return 0
        for ch, rnd, recorded in opened:
            guild_id = int(ch.space_id)
            if not self.serves_guild(guild_id):
                continue
            if shard_id is not None and self.shard_count and (guild_id >> 22) % self.shard_count != shard_id:
                continue
            try:
                handled += await self._catch_up_thread(ch, rnd, recorded)
            except Exception as exc:  # one unreadable thread must not stop the others
                log.warning("could not catch up on the thread of round %s in %s: %s", rnd.id, ch.label, exc)
        if handled:
            log.info("caught up: %d missed messages, edits or deletions taken in", handled)
        return handled

    async def _catch_up_thread(self, ch: Channel, rnd: Round, recorded: list[Answer]) -> int:
        assert rnd.thread_id is not None
        thread_id = int(rnd.thread_id)
        thread = self.get_channel(thread_id) or await self.fetch_channel(thread_id)
        if not isinstance(thread, discord.Thread):
            return 0
        history = [m async for m in thread.history(limit=CATCH_UP_LIMIT, oldest_first=True)]
        members = [
            m
            for m in history
            if not m.author.bot and m.type in (discord.MessageType.default, discord.MessageType.reply)
        ]
        place = await self.place_for(thread_id, int(ch.space_id))
        by_message = {a.message_id: a for a in recorded if a.message_id}
        present = {str(m.id) for m in members}
        handled = 0
        if len(history) < CATCH_UP_LIMIT:  # the whole thread was read, so a missing message really is gone
            for message_id in by_message.keys() - present:
                await self.core.handle(MessageDeleted(place, message_id))
                handled += 1
        deadline = rnd.reveal_at
        for m in members:
            known = by_message.get(str(m.id))
            actor = self.actor(m.author, int(ch.space_id))
            if known is None:
                if deadline is not None and m.created_at > deadline:
                    continue  # posted after the answer window, while we were away: not an answer
                responses = await self.core.handle(MessagePosted(actor, place, str(m.id), m.content))
            elif known.text != m.content:
                if deadline is not None and m.edited_at is not None and m.edited_at > deadline:
                    continue  # edited after the window closed: the answer stays as it was in time
                responses = await self.core.handle(MessageEdited(actor, place, str(m.id), m.content))
            elif not any(r.me and str(r.emoji) == REACTIONS["recorded"] for r in m.reactions):
                # Recorded by a process that died before it could say so.
                responses = [React("recorded")]
            else:
                continue
            if responses:
                handled += 1
                await self._react(m, responses)
        return handled

    # -- identities ---------------------------------------------------------------------------------------

    @staticmethod
    def actor(user: discord.abc.User | None, guild_id: int, *, is_admin: bool = False) -> Actor:
        if user is None:
            return Actor(PLATFORM, str(guild_id), "0", "unknown")
        return Actor(PLATFORM, str(guild_id), str(user.id), user.display_name, is_admin=is_admin, is_bot=user.bot)

    def interaction_actor(self, interaction: discord.Interaction[Any]) -> Actor:
        # interaction.permissions are the invoker's resolved permissions, sent by Discord with the interaction.
        admin = bool(interaction.permissions.manage_guild or interaction.permissions.administrator)
        return self.actor(interaction.user, interaction.guild_id or 0, is_admin=admin)

    async def place_for(self, channel_id: int, guild_id: int) -> Place:
        """Where something happened: a thread is reported with its parent channel, as the core keys rounds."""
        channel = self.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.fetch_channel(channel_id)
            except discord.HTTPException:
                return Place(PLATFORM, str(guild_id), str(channel_id))
        if isinstance(channel, discord.Thread):
            parent = channel.parent
            return Place(
                PLATFORM, str(guild_id), str(channel.parent_id), str(channel.id), parent.name if parent else None
            )
        return Place(PLATFORM, str(guild_id), str(channel_id), None, getattr(channel, "name", None))

    # -- messages in round threads ------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or not isinstance(message.channel, discord.Thread):
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        place = await self.place_for(message.channel.id, message.guild.id)
        actor = self.actor(message.author, message.guild.id)
        # NUL is the one character PostgreSQL cannot keep in text; Discord shows nothing for it either.
        text = message.content.replace("\x00", "")
        responses = await self.core.handle(MessagePosted(actor, place, str(message.id), text))
        await self._react(message, responses)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        content = payload.data.get("content")
        if payload.guild_id is None or content is None:
            return  # not in a server, or an embed-only update (link previews), not an edit by the member
        author = payload.data.get("author") or {}
        place = await self.place_for(payload.channel_id, payload.guild_id)
        if place.thread_id is None:
            return
        actor = Actor(
            PLATFORM,
            str(payload.guild_id),
            str(author.get("id", "0")),
            str(author.get("global_name") or author.get("username") or "member"),
            is_bot=bool(author.get("bot")),
        )
        responses = await self.core.handle(
            MessageEdited(actor, place, str(payload.message_id), str(content).replace("\x00", ""))
        )
        target = payload.cached_message or self._partial(payload.channel_id, payload.message_id)
        if target is not None:
            await self._react(target, responses)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        place = await self.place_for(payload.channel_id, payload.guild_id)
        if place.thread_id is not None:
            await self.core.handle(MessageDeleted(place, str(payload.message_id)))

    def _partial(self, channel_id: int, message_id: int) -> discord.PartialMessage | None:
        channel = self.get_channel(channel_id)
        return channel.get_partial_message(message_id) if isinstance(channel, discord.Thread) else None

    async def _react(self, message: discord.Message | discord.PartialMessage, responses: Sequence[Response]) -> None:
        for r in responses:
            if isinstance(r, React) and r.emoji in REACTIONS:
                try:
                    await classified(lambda e=REACTIONS[r.emoji]: message.add_reaction(e))  # type: ignore[misc]
                except Exception as exc:  # a missing reaction costs nothing: the answer is recorded
                    log.info("could not react to message %s: %s", message.id, exc)

    # -- interactions -------------------------------------------------------------------------------------

    async def run_command(
        self, interaction: discord.Interaction[Any], path: tuple[str, ...], options: dict[str, Any]
    ) -> None:
        if interaction.guild_id is None:
            await interaction.response.send_message("Use me in a server channel.", ephemeral=True)
            return
        public = path == ("quiz", "leaderboard")
        # Acknowledge within Discord's 3 seconds; the work and the reply follow.
        await interaction.response.defer(ephemeral=not public, thinking=True)
        place = await self.place_for(interaction.channel_id or 0, interaction.guild_id)
        opts = {k: str(v) for k, v in options.items() if v is not None}
        responses = await self.core.handle(Command(self.interaction_actor(interaction), place, path, opts))
        await self.respond(interaction, responses, ephemeral_default=not public)

    async def component_pressed(
        self, interaction: discord.Interaction[Any], custom_id: str, values: tuple[str, ...]
    ) -> None:
        if interaction.guild_id is None:
            return
        place = await self.place_for(interaction.channel_id or 0, interaction.guild_id)
        event = ButtonPressed(self.interaction_actor(interaction), place, custom_id, values)
        await self.respond(interaction, await self.core.handle(event))

    async def form_submitted(
        self, interaction: discord.Interaction[Any], custom_id: str, values: dict[str, str]
    ) -> None:
        if interaction.guild_id is None:
            return
        place = await self.place_for(interaction.channel_id or 0, interaction.guild_id)
        event = FormSubmitted(self.interaction_actor(interaction), place, custom_id, values)
        await self.respond(interaction, await self.core.handle(event))

    async def respond(
        self, interaction: discord.Interaction[Any], responses: Sequence[Response], *, ephemeral_default: bool = True
    ) -> None:
        for r in responses:
            if isinstance(r, OpenForm) and not interaction.response.is_done():
                await interaction.response.send_modal(QuizModal(self, r))
            elif isinstance(r, Reply):
                ephemeral = r.ephemeral and ephemeral_default
                try:
                    await self._reply(interaction, r.message, ephemeral)
                except discord.HTTPException as exc:
                    if r.message.image is None:
                        raise
                    # Ephemeral replies can carry files on Discord; if this one could not, the text still goes.
                    log.warning("could not reply with the picture, replying with the text alone: %s", exc)
                    await self._reply(interaction, without_image(r.message), ephemeral)
        if not interaction.response.is_done():
            await interaction.response.defer()  # nothing to say: acknowledge so Discord shows no failure

    @staticmethod
    async def _reply(interaction: discord.Interaction[Any], message: Message, ephemeral: bool) -> None:
        kwargs = to_kwargs(message)
        if interaction.response.is_done():
            await interaction.followup.send(ephemeral=ephemeral, **kwargs)
        else:
            await interaction.response.send_message(ephemeral=ephemeral, **kwargs)


class QuizModal(discord.ui.Modal):
    """A form the core asked for (a blind answer). Its submission goes back to the core as FormSubmitted."""

    def __init__(self, bot: QuizBot, form: OpenForm) -> None:
        super().__init__(title=form.title[:45], custom_id=form.custom_id, timeout=None)
        self.bot = bot
        for f in form.fields[:5]:
            self.add_item(
                discord.ui.TextInput(
                    label=f.label[:45],
                    custom_id=f.custom_id,
                    placeholder=f.placeholder[:100] or None,
                    style=discord.TextStyle.paragraph if f.multiline else discord.TextStyle.short,
                    max_length=min(f.max_length, 4000),
                )
            )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        values = {item.custom_id: item.value for item in self.children if isinstance(item, discord.ui.TextInput)}
        await self.bot.form_submitted(interaction, self.custom_id, values)
