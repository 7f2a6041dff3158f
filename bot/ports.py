"""What the core needs from a platform adapter. ``adapters/base.py`` builds on this protocol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.events import Place
from bot.models import Channel
from bot.render import Message


@dataclass(frozen=True)
class Sent:
    message_id: str
    thread_id: str | None = None  # set when the message asked for a thread (Message.thread_name)


class PlatformError(Exception):
    """A platform call failed. ``permanent`` means retrying cannot help (missing permission, deleted channel):
    the core pauses the channel and tells its admins. Anything else is retried on the next sweep."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Platform(Protocol):
    name: str

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        """Post to the channel, or into a thread of it. Raises PlatformError.

        ``key`` (at most 25 characters) names this message for the platform's duplicate check, where it has one
        (Discord's enforced nonce, kept for a few minutes): a step retried after a crash that sends the same key
        again gets the first message back instead of posting a second one.

        ``maybe_sent_since`` says this keyed send repeats a step that an earlier attempt (perhaps by a process
        that died since) may already have carried out, no earlier than that time. A platform without a duplicate
        check of its own (Slack) then looks for the key among the messages since before posting; one whose key
        check already covers it (Discord) can ignore it."""
        ...

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        """Tell the people who run this channel something needs them (an empty pool, a lost permission)."""
        ...

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        """A direct (private) message to one member of a server/workspace, such as a review reminder. Raises
        PlatformError, ``permanent`` when the member cannot be reached this way (DMs closed, left, unknown)."""
        ...

    async def check_channel(self, place: Place) -> str | None:
        """Whether the bot can run a daily question in this channel: post there, open a thread and post in it.
        None when it can; otherwise what stands in the way, in words an admin can act on ("invite me with ...").

        Setup and resume ask before changing anything, so a channel is never saved only to be paused by its
        first post. Raises PlatformError when the platform could not be asked (a timeout, a 5xx): the admin is
        told to try again rather than the channel being accepted or refused on a guess."""
        ...

    def owns(self, channel: Channel) -> bool:
        """Whether this process serves the channel: a Discord process runs some shards, so some guilds only."""
        ...
