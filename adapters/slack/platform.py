"""The core's outbound port on Slack: post, thread, tell admins; Slack's errors classified."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import to_message
from bot.events import Place
from bot.models import Channel
from bot.ports import PlatformError, Sent
from bot.render import Image, Message

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
        # a direct message to someone Slack will not let us reach
        "user_not_found",
        "user_disabled",
        "user_not_visible",
        "cannot_dm_bot",
    }
)

# The bot's name as the manifest sets it, for the /invite an admin is told to type.
INVITE_NAME = "@interview-bot"
_NOT_A_CHANNEL = "The daily question runs in a channel, not in a direct message: run setup in the channel you want."

ClientFor = Callable[[str], Awaitable[AsyncWebClient]]

# Keyed posts (a round's question, reveal, ballot, results; the weekly board) carry their key as message metadata,
# so a post that an earlier attempt may have made (a call that timed out, a process that died before recording
# it) can be found again instead of posted twice: chat.postMessage has no idempotency key of its own.
METADATA_EVENT = "interview_bot_post"
# Looked for from this long before the step's earliest time: Slack's clock and ours may disagree a little.
CLOCK_SLACK = timedelta(minutes=5)
LOOKUP_PAGE = 200
# A retried step is given up after the late-post grace; no channel gets anywhere near this many messages in it.
LOOKUP_PAGES = 20


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

    async def check_channel(self, place: Place) -> str | None:
        """conversations.info (channels:read for public channels, groups:read for private ones): the channel
        exists for the bot, is not archived, and the bot is a member, which chat.postMessage requires."""
        label = f"#{place.channel_name or place.channel_id}"
        if place.channel_id.startswith("D"):
            return _NOT_A_CHANNEL
        client = await self.client_for(place.space_id)
        try:
            info = await client.conversations_info(channel=place.channel_id)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error == "channel_not_found":  # also what a private channel the bot is not in answers
                return (
                    f"I can't see {label}. If it is a private channel, invite me first: type "
                    f"`/invite {INVITE_NAME}` there, then try again."
                )
            if error == "missing_scope":
                needed = str(exc.response.get("needed") or "channels:read, groups:read")
                if needed in ("im:read", "mpim:read"):
                    return _NOT_A_CHANNEL
                return (
                    f"I can't check {label}: this installation of the app lacks the {needed} scope, which setup "
                    "needs to see channels. Reinstall the app with the scopes in slack-manifest.yml and try again."
                )
            raise PlatformError(f"Slack said {error}", permanent=error in PERMANENT) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformError(f"connection problem: {exc}") from exc
        ch = info.get("channel") or {}
        label = f"#{ch.get('name') or place.channel_name or place.channel_id}"
        if ch.get("is_im") or ch.get("is_mpim"):
            return _NOT_A_CHANNEL
        if ch.get("is_archived"):
            return f"{label} is archived. Unarchive it, or pick another channel, and try again."
        if not ch.get("is_member"):
            return f"I am not in {label}: type `/invite {INVITE_NAME}` there, then try again."
        return None

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        client = await self.client_for(channel.space_id)
        kwargs: dict[str, Any] = {"channel": channel.channel_id, "unfurl_links": False, "unfurl_media": False}
        if thread_id:
            kwargs["thread_ts"] = thread_id
        if key is not None:
            kwargs["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
            if maybe_sent_since is not None:
                # A retry, by this process or one that took over after a crash: the memory of what went out is
                # Slack's own channel, so it survives both. Raises when Slack cannot be asked: the core then
                # retries the step later rather than risk posting it twice.
                found = await self._find_keyed(client, channel.channel_id, thread_id, key, maybe_sent_since)
                if found is not None:
                    log.info("post %s had reached %s already; not posting it again", key, channel.label)
                    return Sent(found, found if message.thread_name else None)
        response = await classified(lambda: client.chat_postMessage(**kwargs, **to_message(message)))
        ts = str(response["ts"])
        if message.image is not None:
            # The text is posted first, so a failed upload (no files:write scope, a size limit) loses nothing.
            await share_image(client, message.image, channel.channel_id, thread_id)
        # On Slack a thread is the replies to a message: its id is the parent's ts.
        return Sent(ts, ts if message.thread_name else None)

    async def _find_keyed(
        self, client: AsyncWebClient, channel_id: str, thread_id: str | None, key: str, since: datetime
    ) -> str | None:
        """The ts of our message carrying this key, posted in the channel (or the thread) since ``since``.

        Cheap: only messages after ``since`` (less a margin for clock differences) are listed, 200 a page, and
        a retried step is at most hours old. Failures: a connection problem, a 5xx or a rate limit the client
        could not wait out raise a passing PlatformError, so the step is retried by a later sweep and nothing
        is posted blind; an error that would stop the post too (channel gone, bot removed) raises a permanent
        one. Two answer None, and the post goes out: ``thread_not_found`` (the parent is gone, nothing to
        duplicate) and ``missing_scope`` (an install without channels:history can never check: a possible
        duplicate is better than a daily question that never comes)."""
        oldest = f"{(since - CLOCK_SLACK).timestamp():.6f}"
        args: dict[str, Any] = {
            "channel": channel_id,
            "oldest": oldest,
            "limit": LOOKUP_PAGE,
            "include_all_metadata": True,
        }
        if thread_id:
            args["ts"] = thread_id
        listing = client.conversations_replies if thread_id else client.conversations_history
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            if cursor:
                args["cursor"] = cursor
            try:
                page = await classified(lambda: listing(**args))
            except PlatformError as exc:
                error = exc.__cause__.response.get("error") if isinstance(exc.__cause__, SlackApiError) else None
                if error in ("thread_not_found", "missing_scope"):
                    log.warning("could not check %s for post %s (%s); posting it", channel_id, key, error)
                    return None
                raise PlatformError(
                    f"could not check for an earlier copy of {key}: {exc}", permanent=exc.permanent
                ) from exc.__cause__
            for msg in page.get("messages") or []:
                meta = msg.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                    return str(msg["ts"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
            if cursor is None:
                return None
        log.warning(
            "post %s not in the last %d messages of %s; posting it", key, LOOKUP_PAGE * LOOKUP_PAGES, channel_id
        )
        return None

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

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        """conversations.open gives the bot's DM channel with the member (needs im:write), then chat.postMessage."""
        client = await self.client_for(space_id)
        opened = await classified(lambda: client.conversations_open(users=user_id))
        channel = str(opened["channel"]["id"])
        payload = to_message(message)
        await classified(lambda: client.chat_postMessage(channel=channel, unfurl_links=False, **payload))


async def share_image(
    client: AsyncWebClient, image: Image, channel_id: str, thread_ts: str | None = None, comment: str | None = None
) -> bool:
    """Upload a picture into a conversation with slack_sdk's files_upload_v2 (files.getUploadURLExternal, the
    upload itself, files.completeUploadExternal). Never raises: the text it belongs to is already posted, so a
    failure is logged and the message stands without its picture. True if it was shared."""
    try:
        await client.files_upload_v2(
            file=image.data,
            filename=image.filename,
            title=(image.title or image.filename)[:250],
            alt_txt=image.alt[:1000],
            channel=channel_id,
            thread_ts=thread_ts,
            initial_comment=comment,
        )
    except SlackApiError as exc:
        log.warning("could not upload %s to %s: Slack said %s", image.filename, channel_id, exc.response.get("error"))
        return False
    except (SlackRequestError, aiohttp.ClientError, TimeoutError, OSError, KeyError, TypeError) as exc:
        # KeyError, TypeError: an answer without the fields the upload steps need
        log.warning("could not upload %s to %s: %r", image.filename, channel_id, exc)
        return False
    return True


async def send_image_privately(client: AsyncWebClient, user_id: str, image: Image) -> bool:
    """A reply only one person sees (ephemeral) cannot carry a file on Slack, so its picture goes to a direct
    message with the bot instead, where that person, and only they, will find it."""
    try:
        opened = await client.conversations_open(users=user_id)
        dm = str(opened["channel"]["id"])
    except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError, KeyError, TypeError) as exc:
        log.warning("could not open a direct message to send %s: %r", image.filename, exc)
        return False
    comment = f"{image.title or 'Your picture'}: here, because replies only you can see cannot carry pictures on Slack."
    return await share_image(client, image, dm, comment=comment)
