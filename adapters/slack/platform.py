"""The core's outbound port on Slack: post, thread, tell admins; Slack's errors classified."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import to_message
from bot.models import Channel
from bot.ports import PlatformError, Sent
from bot.render import Message

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that retrying cannot fix: the bot was removed, the channel is gone, or the app lost its grant.
PERMANENT = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "account_inactive",
        "token_revoked",
        "invalid_auth",
        "not_authed",
        "missing_scope",
        "restricted_action",
        "team_access_not_granted",
        "no_permission",
        "ekm_access_denied",
    }
)

ClientFor = Callable[[str], Awaitable[AsyncWebClient]]


async def classified(call: Callable[[], Awaitable[T]]) -> T:
    """slack_sdk retries 429s itself (the rate-limit retry handler); what still fails is classified here."""
    try:
        return await call()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        raise PlatformError(f"Slack said {error}", permanent=error in PERMANENT) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PlatformError(f"connection problem: {exc}") from exc


class SlackPlatform:
    name = "slack"

    def __init__(self, client_for: ClientFor, admins: list[str] | None = None) -> None:
        # One workspace: always the same client. Many (OAuth): the installation's bot token per team.
        self.client_for = client_for
        self.admins = admins or []

    def owns(self, channel: Channel) -> bool:
        return True

    async def send(
        self, channel: Channel, message: Message, thread_id: str | None = None, *, key: str | None = None
    ) -> Sent:
        client = await self.client_for(channel.space_id)
        kwargs: dict[str, Any] = {"channel": channel.channel_id, "unfurl_links": False, "unfurl_media": False}
        if thread_id:
            kwargs["thread_ts"] = thread_id
        response = await classified(lambda: client.chat_postMessage(**kwargs, **to_message(message)))
        ts = str(response["ts"])
        # On Slack a thread is the replies to a message: its id is the parent's ts.
        return Sent(ts, ts if message.thread_name else None)

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        """A direct message to whoever set the channel up, and to the configured admins."""
        recipients = [u for u in [channel.contact_user_id, *self.admins] if u]
        if not recipients:
            raise PlatformError("nobody to tell: no contact for this channel and no admins configured")
        client = await self.client_for(channel.space_id)
        payload = to_message(message)
        payload["text"] = f"interview-bot, <#{channel.channel_id}>: {payload['text']}"
        for user in dict.fromkeys(recipients):
            await classified(lambda u=user: client.chat_postMessage(channel=u, **payload))  # type: ignore[misc]
