"""The core's outbound port on Discord: post, open threads, tell admins; platform errors classified."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import discord

from adapters.discord.render import to_kwargs, without_image
from bot.events import Place
from bot.models import Channel
from bot.ports import PlatformError, Sent
from bot.render import Message

if TYPE_CHECKING:
    from adapters.discord.client import QuizBot

log = logging.getLogger(__name__)
T = TypeVar("T")
# Discord's error code for starting a second thread on one message.
THREAD_ALREADY_CREATED = 160004


async def classified(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Discord call; raise PlatformError saying whether retrying can ever help.

    discord.py already waits out 429s and retries 5xx a few times; what still fails here is either
    permanent (the bot lost access, or the channel is gone) or worth another try on the next sweep."""
    try:
        return await call()
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise platform_error(exc) from exc


def platform_error(exc: discord.HTTPException | aiohttp.ClientError | TimeoutError | OSError) -> PlatformError:
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return PlatformError(f"{exc.status} {exc.text or type(exc).__name__}", permanent=True)
    if isinstance(exc, discord.HTTPException):
        return PlatformError(f"HTTP {exc.status}: {exc.text}")
    return PlatformError(f"connection problem: {exc}")


# What a daily question needs in its channel (a thread inherits the channel's permissions), and what for.
# Attach Files is not here: a post whose picture is refused goes out as text alone.
NEEDED = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),  # the question and the weekly leaderboard
    ("embed_links", "Embed Links"),  # every post is an embed
    ("create_public_threads", "Create Public Threads"),  # each question opens its answer thread
    ("send_messages_in_threads", "Send Messages in Threads"),  # the reveal, the ballot, the results
    ("read_message_history", "Read Message History"),  # reading back answers missed while offline; reacting
    ("add_reactions", "Add Reactions"),  # the ✅ that tells a member their answer counted
)

# Channels of other kinds, as an admin would call them: none can hold a question with its thread.
_KINDS = {
    discord.ChannelType.voice: "a voice channel",
    discord.ChannelType.stage_voice: "a stage channel",
    discord.ChannelType.category: "a category",
    discord.ChannelType.forum: "a forum",
    discord.ChannelType.media: "a media channel",
    discord.ChannelType.public_thread: "a thread",
    discord.ChannelType.private_thread: "a thread",
    discord.ChannelType.news_thread: "a thread",
}


class DiscordPlatform:
    name = "discord"

    def __init__(self) -> None:
        self.client: QuizBot | None = None

    @property
    def bot(self) -> QuizBot:
        if self.client is None:
            raise PlatformError("the Discord client is not running")
        return self.client

    def owns(self, channel: Channel) -> bool:
        return self.bot.serves_guild(int(channel.space_id))

    async def check_channel(self, place: Place) -> str | None:
        """From the gateway's cache of the server: the channel is a text channel and the bot's permissions there,
        overwrites included, hold everything in NEEDED. A channel not in the cache is fetched once."""
        guild = self.bot.get_guild(int(place.space_id))
        if guild is None or guild.unavailable or guild.me is None:
            raise PlatformError(f"server {place.space_id} is not loaded yet")
        cid = int(place.channel_id)
        label = f"#{place.channel_name or place.channel_id}"
        channel: Any = guild.get_channel_or_thread(cid)
        if channel is None:
            try:
                channel = await guild.fetch_channel(cid)
            except (discord.NotFound, discord.Forbidden, discord.InvalidData):
                # InvalidData: the id names a channel of another server.
                return (
                    f"I can't see {label}. If it is a private channel, add me to it (channel settings → "
                    "Permissions → add the interview-bot role) and try again."
                )
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise platform_error(exc) from exc
        label = f"#{getattr(channel, 'name', None) or place.channel_name or cid}"
        if not isinstance(channel, discord.TextChannel):  # announcement channels are TextChannels too
            kind = _KINDS.get(getattr(channel, "type", None), "not a text channel")  # type: ignore[arg-type]
            return f"{label} is {kind}: the daily question needs a text channel, where it can open a thread."
        perms = channel.permissions_for(guild.me)
        if not perms.view_channel:
            return (
                f"I can't see {label}. Give my role (interview-bot) View Channel there, or add me to it if it is "
                "private, and try again."
            )
        missing = [name for attr, name in NEEDED if not getattr(perms, attr)]
        if not perms.send_messages:
            # Discord takes Embed Links away with Send Messages, and gives it back with it: one thing to fix.
            missing = [name for name in missing if name != "Embed Links"]
        if missing:
            return (
                f"I can't run the daily question in {label}: I am missing {_join(missing)} there. Give my role "
                "those permissions (channel settings → Permissions) and try again."
            )
        return None

    async def _messageable(self, channel_id: int) -> Any:
        cached = self.bot.get_channel(channel_id)
        if cached is not None:
            return cached
        return await classified(lambda: self.bot.fetch_channel(channel_id))

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        target = await self._messageable(int(thread_id or channel.channel_id))
        kwargs = to_kwargs(message)
        if key is not None:
            # discord.py sends a nonce with enforce_nonce: Discord then returns the message it already created
            # with this nonce (a post whose process died before recording it) instead of posting it again.
            kwargs["nonce"] = key[:25]
        try:
            sent = await classified(lambda: target.send(**kwargs))
        except PlatformError as exc:
            if message.image is None:
                raise
            # The picture (a missing Attach Files permission, a size limit) must not cost the post: the text
            # says everything the picture shows. If the text alone fails too, that error is the one reported.
            log.warning("could not post with the picture in %s, posting the text alone: %s", channel.label, exc)
            message = without_image(message)
            kwargs = {**to_kwargs(message), **({"nonce": kwargs["nonce"]} if "nonce" in kwargs else {})}
            sent = await classified(lambda: target.send(**kwargs))
        if not message.thread_name:
            return Sent(str(sent.id))
        name = message.thread_name[:100]
        try:
            # The id comes from the REST response: the cached Thread only exists once THREAD_CREATE arrives.
            thread = await sent.create_thread(name=name, auto_archive_duration=1440)
        except discord.HTTPException as exc:
            if exc.code != THREAD_ALREADY_CREATED:
                raise platform_error(exc) from exc
            # The same post retried after a crash: its thread exists, and a thread started from a message has
            # the message's own id.
            return Sent(str(sent.id), str(sent.id))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise platform_error(exc) from exc
        return Sent(str(sent.id), str(thread.id))

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        """A direct message to the server's owner: the one admin we can always name and reach."""
        guild = self.bot.get_guild(int(channel.space_id))
        owner_id = guild.owner_id if guild else None
        if owner_id is None:
            raise PlatformError(f"cannot find the owner of server {channel.space_id}")
        user = self.bot.get_user(owner_id) or await classified(lambda: self.bot.fetch_user(owner_id))
        prefix = f"**interview-bot** in {guild.name if guild else 'your server'}, {channel.label}:\n"
        kwargs = to_kwargs(message)
        if "content" in kwargs:
            kwargs["content"] = prefix + kwargs["content"]
        else:
            kwargs["content"] = prefix.rstrip(":\n")
        await classified(lambda: user.send(**kwargs))

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        """Open (or reuse) the DM channel with the member, then post in it. A member who closed DMs from server
        members, or blocked the bot, gets Discord's 403 (code 50007), which ``classified`` makes permanent."""
        uid = int(user_id)
        user = self.bot.get_user(uid) or await classified(lambda: self.bot.fetch_user(uid))
        channel = user.dm_channel or await classified(user.create_dm)
        kwargs = to_kwargs(message)
        await classified(lambda: channel.send(**kwargs))


def _join(names: list[str]) -> str:
    if len(names) == 1:
        return f"the {names[0]} permission"
    return "the " + ", ".join(names[:-1]) + f" and {names[-1]} permissions"
