"""A local stand-in for Slack's Web API, for end-to-end tests of the Slack adapter.

The bot talks to it with the real ``slack_sdk`` ``AsyncWebClient`` pointed at :attr:`FakeSlackWebAPI.api_url`,
so every request goes through the same serialisation, headers, retry handlers and response validation as in
production. The fake keeps a small world (one team, its channels, users, messages, ephemerals, views) and answers
the way Slack does, including its error codes, so tests can assert on what a person in Slack would see.

Everything it knows about the wire format was read from slack_sdk 3.47 / slack-bolt 1.30:

* ``AsyncWebClient`` sends the token only as ``Authorization: Bearer ...``; it sends most write methods as JSON
  (``chat.postMessage``, ``chat.update``, ``views.*``), some as POST with the arguments in the *query string*
  (``auth.test``, ``chat.delete``, ``reactions.add``, ``conversations.join``) and some as GET
  (``users.info``, ``conversations.info``, ``chat.getPermalink``); booleans in query strings become "1"/"0".
* ``AsyncRateLimitErrorRetryHandler`` sleeps ``int(Retry-After) + random()`` seconds and then retries once.
* bolt's ``respond()`` POSTs JSON to the ``response_url`` with ``slack_sdk.webhook.AsyncWebhookClient``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

__all__ = ["FakeSlackWebAPI", "SlackApiFault", "flatten_text"]

T = TypeVar("T")
JsonDict = dict[str, Any]

# Arguments that are JSON documents of their own. slack_sdk sends them as nested JSON when the method uses a JSON
# body, but a caller may pass them pre-serialised, and form/query-encoded methods always carry them as strings.
_JSON_ARGS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")
# The epoch Slack-looking message timestamps start from: "1700000000.000100", "1700000000.000200", ...
_TS_EPOCH = 1_700_000_000
_TS_STEP_MICROS = 100


class SlackApiFault(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": code}`` the way Slack does."""

    def __init__(self, error: str, *, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


@dataclass
class _Fault:
    """One queued failure for :meth:`FakeSlackWebAPI.fail_next`; ``remaining`` counts down per call."""

    error: str
    status: int
    retry_after: int | None
    remaining: int


@dataclass
class _User:
    id: str
    name: str
    real_name: str
    is_admin: bool
    is_owner: bool
    is_bot: bool
    tz: str

    def to_api(self, team_id: str) -> JsonDict:
        """The ``user`` object of ``users.info``, with the fields the adapter is likely to read."""
        zone = ZoneInfo(self.tz)
        offset = datetime.now(zone).utcoffset()
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": datetime.now(zone).tzname(),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {"real_name": self.real_name, "display_name": self.name, "team": team_id},
        }


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    bot_member: bool = True
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self) -> JsonDict:
        """The ``channel`` object of ``conversations.info``."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_archived": False,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "created": self.created,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "is_member": self.bot_member,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
        }


@dataclass
class _Trigger:
    user_id: str
    issued: float
    used: bool = False


def _ts_key(ts: str) -> tuple[int, int]:
    """Sort key for Slack timestamps; plain string order breaks when the seconds part changes length."""
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _truthy(value: Any) -> bool:
    """Slack booleans arrive as JSON true/false, or as "1"/"0"/"true" in query strings and forms."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


# ----------------------------------------------------------------------------------------------------------------
# What a person reads


def _text_of(obj: Any) -> str:
    """The text of a Slack text object (``{"type": "mrkdwn", "text": ...}``) or a bare string."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping):
        text = obj.get("text")
        if isinstance(text, str):
            return text
    return ""


def _rich_text(elements: Iterable[Any]) -> str:
    """Concatenate the visible parts of rich_text elements, recursing into sections, lists and quotes."""
    parts: list[str] = []
    for el in elements:
        if not isinstance(el, Mapping):
            continue
        kind = el.get("type")
        if kind in {"rich_text_section", "rich_text_preformatted", "rich_text_quote"}:
            parts.append(_rich_text(el.get("elements", [])))
        elif kind == "rich_text_list":
            parts.append("\n".join(_rich_text([item]) for item in el.get("elements", [])))
        elif kind == "text":
            parts.append(str(el.get("text", "")))
        elif kind == "link":
            parts.append(str(el.get("text") or el.get("url", "")))
        elif kind == "user":
            parts.append(f"<@{el.get('user_id', '')}>")
        elif kind == "channel":
            parts.append(f"<#{el.get('channel_id', '')}>")
        elif kind == "emoji":
            parts.append(f":{el.get('name', '')}:")
    return "".join(parts)


def _block_lines(block: Mapping[str, Any]) -> list[str]:
    """The lines a person sees for one block: text, fields, context, header, button labels, input labels."""
    kind = block.get("type")
    lines: list[str] = []
    if kind in {"section", "header", "markdown"}:
        if text := _text_of(block.get("text")):
            lines.append(text)
        for f in block.get("fields") or []:
            if text := _text_of(f):
                lines.append(text)
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping) and accessory.get("type") == "button":
            if text := _text_of(accessory.get("text")):
                lines.append(text)
    elif kind == "context":
        for el in block.get("elements") or []:
            if isinstance(el, Mapping) and el.get("type") in {"mrkdwn", "plain_text"}:
                if text := _text_of(el):
                    lines.append(text)
    elif kind == "actions":
        for el in block.get("elements") or []:
            if isinstance(el, Mapping) and el.get("type") == "button":
                if text := _text_of(el.get("text")):
                    lines.append(text)
    elif kind == "rich_text":
        if text := _rich_text(block.get("elements") or []):
            lines.append(text)
    elif kind == "input":
        if text := _text_of(block.get("label")):
            lines.append(text)
    elif kind in {"image", "video"}:
        if text := _text_of(block.get("title")):
            lines.append(text)
    return lines


def flatten_text(obj: Any) -> str:
    """Pull the human-visible text out of a message, a view or a list of blocks, one line per piece.

    Slack shows a message's blocks when it has them and uses ``text`` only as the notification fallback, so
    a message with blocks is read from its blocks (plus attachments); one without is read from ``text``. Views
    start with their title. Tests can then assert on what a person would read rather than on block JSON.
    """
    lines: list[str] = []
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, list):
        for block in obj:
            if isinstance(block, Mapping):
                lines.extend(_block_lines(block))
        return "\n".join(lines)
    if isinstance(obj, Mapping):
        if obj.get("type") in {"modal", "home"} and (title := _text_of(obj.get("title"))):
            lines.append(title)
        blocks = obj.get("blocks")
        if isinstance(blocks, list) and blocks:
            lines.append(flatten_text(blocks))
        elif isinstance(obj.get("text"), str) and obj["text"]:
            lines.append(obj["text"])
        for att in obj.get("attachments") or []:
            if not isinstance(att, Mapping):
                continue
            if att.get("blocks"):
                lines.append(flatten_text(att["blocks"]))
            else:
                for key in ("pretext", "title", "text"):
                    if isinstance(att.get(key), str) and att[key]:
                        lines.append(att[key])
                for f in att.get("fields") or []:
                    if isinstance(f, Mapping):
                        lines.extend(str(f[k]) for k in ("title", "value") if f.get(k))
        return "\n".join(line for line in lines if line)
    return ""


# ----------------------------------------------------------------------------------------------------------------
# Block Kit limits, so a bot that builds something Slack would reject fails here too


def _check_text_object(obj: Any, where: str, *, max_len: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, Mapping) or obj.get("type") not in {"plain_text", "mrkdwn"}:
        return [f"{where} must be a text object"]
    if plain_only and obj.get("type") != "plain_text":
        return [f"{where} must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text must be more than 0 characters"]
    if len(text) > max_len:
        return [f"{where}.text must be less than {max_len + 1} characters"]
    return []


def _check_static_select(el: Mapping[str, Any], where: str) -> list[str]:
    """A static menu: 1 to 100 options, each with text up to 75 and a unique value up to 150 characters."""
    problems: list[str] = []
    if "placeholder" in el:
        problems += _check_text_object(el["placeholder"], f"{where}/placeholder", max_len=150, plain_only=True)
    options = el.get("options") or []
    if not 1 <= len(options) <= 100:
        problems.append(f"must have between 1 and 100 options [json-pointer:{where}/options]")
    values: set[str] = set()
    for k, opt in enumerate(options if isinstance(options, list) else []):
        problems += _check_text_object(opt.get("text"), f"{where}/options/{k}/text", max_len=75, plain_only=True)
        value = str(opt.get("value", ""))
        if not 1 <= len(value) <= 150:
            problems.append(f"value must be 1 to 150 characters [json-pointer:{where}/options/{k}/value]")
        elif value in values:
            problems.append(f"duplicate option value {value!r} [json-pointer:{where}/options/{k}/value]")
        values.add(value)
    return problems


def _check_blocks(blocks: Any, *, max_blocks: int) -> list[str]:
    """Check the Block Kit limits that bots most often trip over; returns Slack-style ``[ERROR]`` messages."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255:
                problems.append(f"invalid block_id [json-pointer:{where}/block_id]")
            elif block_id in seen_ids:
                problems.append(f"duplicate block_id {block_id!r} [json-pointer:{where}/block_id]")
            else:
                seen_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and not block.get("fields"):
                problems.append(f"must provide either text or fields [json-pointer:{where}]")
            if "text" in block:
                problems += _check_text_object(block["text"], f"{where}/text", max_len=3000)
            fields = block.get("fields") or []
            if len(fields) > 10:
                problems.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
            for j, f in enumerate(fields):
                problems += _check_text_object(f, f"{where}/fields/{j}", max_len=2000)
        elif kind == "header":
            problems += _check_text_object(block.get("text"), f"{where}/text", max_len=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                problems.append(f"must have between 1 and 10 elements [json-pointer:{where}/elements]")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                problems.append(f"must have between 1 and 25 elements [json-pointer:{where}/elements]")
            action_ids: set[str] = set()
            for j, el in enumerate(elements):
                if not isinstance(el, Mapping):
                    problems.append(f"invalid element [json-pointer:{where}/elements/{j}]")
                    continue
                action_id = el.get("action_id")
                if isinstance(action_id, str):
                    if action_id in action_ids:
                        problems.append(f"duplicate action_id {action_id!r} [json-pointer:{where}/elements/{j}]")
                    action_ids.add(action_id)
                if el.get("type") == "button":
                    problems += _check_text_object(
                        el.get("text"), f"{where}/elements/{j}/text", max_len=75, plain_only=True
                    )
                    if len(str(el.get("value", ""))) > 2000:
                        problems.append(f"value too long [json-pointer:{where}/elements/{j}/value]")
                elif el.get("type") == "static_select":
                    problems += _check_static_select(el, f"{where}/elements/{j}")
        elif kind == "input":
            problems += _check_text_object(block.get("label"), f"{where}/label", max_len=2000, plain_only=True)
            if not isinstance(block.get("element"), Mapping):
                problems.append(f"missing required field: element [json-pointer:{where}]")
    return [f"[ERROR] {p}" for p in problems]


def _check_view(view: Any, *, expected_type: str | None = None) -> list[str]:
    """Check the view fields Slack rejects with ``invalid_arguments``."""
    if not isinstance(view, Mapping):
        return ["[ERROR] view must be an object"]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in {"modal", "home"}:
        problems.append("[ERROR] view.type must be modal or home")
    elif expected_type is not None and kind != expected_type:
        problems.append(f"[ERROR] view.type must be {expected_type}")
    if kind == "modal":
        for key, required in (("title", True), ("submit", False), ("close", False)):
            if key in view or required:
                problems += [
                    f"[ERROR] {p}" for p in _check_text_object(view.get(key), key, max_len=24, plain_only=True)
                ]
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] callback_id must be less than 256 characters")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] private_metadata must be less than 3001 characters")
    problems += _check_blocks(view.get("blocks", []), max_blocks=100)
    return problems


# ----------------------------------------------------------------------------------------------------------------


class FakeSlackWebAPI:
    """An aiohttp server that speaks enough of Slack's Web API for the bot's ``AsyncWebClient``.

    Use it as ``AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)``. It holds one workspace: the bot user,
    channels and users added by the test, every message, ephemeral message, response_url post and view the bot
    produced, and every call it received (:attr:`calls`). Failures are injected with :meth:`fail_next`.
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        bot_name: str = "interview-bot",
        team_name: str = "Fake Team",
        team_domain: str = "fake-team",
        trigger_ttl: float | None = 3.0,
        validate_blocks: bool = True,
        scopes: str = "app_mentions:read,channels:history,channels:join,channels:read,chat:write,commands,"
        "files:write,groups:history,groups:read,im:history,im:write,reactions:write,users:read",
    ) -> None:
        """Build the world; nothing listens until :meth:`start`.

        ``trigger_ttl`` is how long a trigger_id stays usable for ``views.open`` (Slack: 3 seconds), ``None``
        disables the expiry. ``validate_blocks`` rejects Block Kit that Slack would reject (too long, empty text,
        duplicate ids), so the tests catch such bugs before a real workspace does.
        """
        self._ids = itertools.count(1)
        self._ts_counter = itertools.count(1)
        # Where message timestamps come from: by default a counter from a fixed epoch. A test that runs the bot
        # on a manual clock sets this to that clock (seconds since the epoch), so that, as on real Slack, a
        # message's ts is the time it was posted in the bot's world and ``oldest`` filters mean something.
        self.ts_clock: Callable[[], float] | None = None
        self._last_ts_micros = 0
        self.team_id: str = self._new_id("T")
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id: str = self._new_id("A")
        self.bot_id: str = self._new_id("B")
        self.bot_token: str = bot_token or f"xoxb-{secrets.token_hex(4)}-{secrets.token_hex(6)}"
        self.trigger_ttl = trigger_ttl
        self.validate_blocks = validate_blocks
        self.scopes = scopes
        # Every Web API call, in arrival order, as (method name, arguments without the token). Failed calls too.
        self.calls: list[tuple[str, JsonDict]] = []

        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[str, list[JsonDict]] = {}
        self._deleted: list[JsonDict] = []
        self._ephemerals: dict[str, list[JsonDict]] = {}
        self._dms: dict[str, str] = {}
        self._views: dict[str, JsonDict] = {}
        self._view_owner: dict[str, str] = {}
        self._modal_stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, JsonDict] = {}
        self._responses: dict[str, list[JsonDict]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        # Files of the upload flow by id: {"id", "filename", "length", "alt_txt", "data", "title", "shared_to"}.
        self.files: dict[str, JsonDict] = {}
        self._holds: dict[str, list[float]] = {}
        self.injected: dict[str, int] = {}  # faults served, by kind ("429", "500", "hold", "error")

        self.bot_user_id: str = self.add_user(bot_name, bot=True)

        self._handlers: dict[str, Callable[[JsonDict], Awaitable[JsonDict]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        # Extensions that add their own routes before start(), ahead of the catch-all /api/{method}, e.g.
        # Socket Mode (tests/fake_slack/socket_mode.py). Each is called with the aiohttp application.
        self.route_hooks: list[Callable[[web.Application], None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port chosen by the OS, so parallel tests never collide."""
        app = web.Application()
        for hook in self.route_hooks:
            hook(app)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the listening socket and any open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlackWebAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._port is None:
            raise RuntimeError("FakeSlackWebAPI is not started; await start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient``; the trailing slash matters to its ``urljoin``."""
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ world

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def new_ts(self) -> str:
        """A fresh message timestamp, later than every earlier one, like ``"1700000000.000100"``.

        Bot posts and the user messages built by ``SlackClient`` share this clock, so thread order is stable.
        """
        if self.ts_clock is not None:
            micros = max(int(self.ts_clock() * 1_000_000), self._last_ts_micros + _TS_STEP_MICROS)
            self._last_ts_micros = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
        micros = next(self._ts_counter) * _TS_STEP_MICROS
        return f"{_TS_EPOCH + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def add_channel(self, name: str, *, private: bool = False, bot_member: bool = True) -> str:
        """Create a channel and return its id ("C..."); the bot is a member unless ``bot_member=False``."""
        channel_id = self._new_id("C")
        self._channels[channel_id] = _Channel(id=channel_id, name=name, is_private=private, bot_member=bot_member)
        self._messages[channel_id] = []
        return channel_id

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        owner: bool = False,
        bot: bool = False,
        real_name: str | None = None,
        tz: str = "Europe/London",
    ) -> str:
        """Create a user and return their id ("U..."). Owners are admins too, as in Slack."""
        user_id = self._new_id("U")
        self._users[user_id] = _User(
            id=user_id,
            name=name,
            real_name=real_name or name.replace(".", " ").title(),
            is_admin=admin or owner,
            is_owner=owner,
            is_bot=bot,
            tz=tz,
        )
        return user_id

    def dm_channel(self, user_id: str) -> str:
        """The bot's direct-message channel ("D...") with a user, created on first use as Slack does."""
        if user_id not in self._users:
            raise KeyError(user_id)
        if user_id not in self._dms:
            channel_id = self._new_id("D")
            self._channels[channel_id] = _Channel(id=channel_id, name=user_id, is_im=True, im_user=user_id)
            self._messages[channel_id] = []
            self._dms[user_id] = channel_id
        return self._dms[user_id]

    def remove_bot_from(self, channel_id: str) -> None:
        """Kick the bot out: later posts there fail with ``not_in_channel`` until it calls conversations.join."""
        self._channel(channel_id).bot_member = False

    def archive(self, channel_id: str) -> None:
        """Archive a channel: posts fail with ``is_archived`` and it cannot be joined."""
        self._channel(channel_id).is_archived = True

    def channel_name(self, channel_id: str) -> str:
        """The channel's name, or "directmessage" for a DM, as slash command payloads put it."""
        ch = self._channel(channel_id)
        return "directmessage" if ch.is_im else ch.name

    def channel_type(self, channel_id: str) -> str:
        """The ``channel_type`` of message events: "channel", "group" (private) or "im"."""
        ch = self._channel(channel_id)
        return "im" if ch.is_im else "group" if ch.is_private else "channel"

    def user_name(self, user_id: str) -> str:
        """The user's handle, or the id itself for users the test never added."""
        user = self._users.get(user_id)
        return user.name if user else user_id

    def _channel(self, channel_id: str) -> _Channel:
        try:
            return self._channels[channel_id]
        except KeyError:
            raise KeyError(f"no such channel {channel_id!r}") from None

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method_name: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method_name`` fail; faults queue up in the order they are added.

        * ``status=429``: HTTP 429 with ``Retry-After`` (default 0, so slack_sdk's retry waits under a second) and
          ``{"ok": false, "error": "ratelimited"}``; ``AsyncRateLimitErrorRetryHandler`` retries it.
        * ``status=500`` (or any other non-200): that status with ``{"ok": false, "error": error or
          "internal_error"}``; slack_sdk raises ``SlackApiError`` unless a server-error retry handler is set.
        * ``status=200`` with ``error``: Slack's ordinary failure, ``{"ok": false, "error": error}``.

        ``method_name="response_url"`` makes posts to any response_url fail instead.
        """
        if status == 200 and error is None:
            raise ValueError("fail_next with status 200 needs an error code, e.g. error='channel_not_found'")
        if status == 429:
            error = error or "ratelimited"
            retry_after = 0 if retry_after is None else retry_after
        self._faults.setdefault(method_name, []).append(
            _Fault(error=error or "internal_error", status=status, retry_after=retry_after, remaining=times)
        )

    def hold_next(self, method_name: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` calls of ``method_name`` for ``seconds`` before handling them as usual:
        a client with a shorter timeout gives up, though the call (a post, say) still takes effect."""
        self._holds.setdefault(method_name, []).extend([seconds] * times)

    def _take_fault(self, method_name: str) -> _Fault | None:
        queue = self._faults.get(method_name)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return web.json_response({"ok": False, "error": fault.error}, status=fault.status, headers=headers)

    # ------------------------------------------------------------------ observing

    def calls_to(self, method_name: str) -> list[JsonDict]:
        """The arguments of every call to one method, in order."""
        return [params for name, params in self.calls if name == method_name]

    def messages(self, channel_id: str, *, include_replies: bool = False) -> list[JsonDict]:
        """Messages in a channel, oldest first: top-level ones (as in the channel view) unless ``include_replies``."""
        msgs = self._messages.get(channel_id, [])
        if include_replies:
            return list(msgs)
        return [m for m in msgs if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"]

    def thread(self, channel_id: str, thread_ts: str) -> list[JsonDict]:
        """A thread, parent first, then replies oldest first."""
        return [
            m for m in self._messages.get(channel_id, []) if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def message(self, channel_id: str, ts: str) -> JsonDict | None:
        """One stored message (with its ``reactions``, ``edited``, ``reply_count``), or None if absent/deleted."""
        for m in self._messages.get(channel_id, []):
            if m["ts"] == ts:
                return m
        return None

    def deleted(self) -> list[JsonDict]:
        """Messages removed by chat.delete, a response_url ``delete_original`` or a message_deleted event."""
        return list(self._deleted)

    def ephemerals(self, user_id: str) -> list[JsonDict]:
        """Ephemeral messages shown to one user: chat.postEphemeral and ephemeral response_url posts."""
        return list(self._ephemerals.get(user_id, []))

    def home(self, user_id: str) -> JsonDict | None:
        """The App Home view last published (or updated) for a user, or None."""
        view_id = self._homes.get(user_id)
        return self._views.get(view_id) if view_id else None

    def modals(self, user_id: str) -> list[JsonDict]:
        """The user's open modal stack, bottom first (views.open, views.push; closed by a view_submission ack)."""
        return [self._views[v] for v in self._modal_stacks.get(user_id, [])]

    def view(self, view_id: str) -> JsonDict | None:
        """Any view by id."""
        return self._views.get(view_id)

    def shared_files(self, channel_id: str) -> list[JsonDict]:
        """Files shared into a conversation by files.completeUploadExternal, oldest first, bytes included."""
        return [f for f in self.files.values() if channel_id in f["shared_to"]]

    def responses(self, key: str) -> list[JsonDict]:
        """The JSON bodies posted to the response_url made by :meth:`response_url_for`, in order."""
        return list(self._responses.get(key, []))

    def texts(self, channel_id: str, *, include_replies: bool = False) -> list[str]:
        """:func:`flatten_text` of each message in a channel."""
        return [flatten_text(m) for m in self.messages(channel_id, include_replies=include_replies)]

    async def wait_for(self, predicate: Callable[[], T], *, within: float = 3.0, interval: float = 0.01) -> T:
        """Poll ``predicate`` until it returns something truthy (within ``within`` seconds) and return that.

        bolt acknowledges Slack first and runs listeners afterwards (unless ``process_before_response``), so
        the bot's Web API calls land shortly *after* the HTTP response the test just received.
        """
        try:
            async with asyncio.timeout(within):
                # Polling, not an Event: predicates often read the bot's own state, which nothing here can signal.
                while not (value := predicate()):  # noqa: ASYNC110
                    await asyncio.sleep(interval)
        except TimeoutError:
            raise AssertionError(f"condition not met within {within}s; last calls: {self.calls[-5:]}") from None
        return value

    # ------------------------------------------------------------------ interactivity plumbing

    def response_url_for(
        self,
        key: str,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """A response_url hosted here; what is posted to it is kept under ``key`` (see :meth:`responses`).

        The context says what the URL would act on in Slack: ephemeral replies go to ``user`` in ``channel``,
        ``in_channel`` replies become messages in ``channel``, and ``replace_original``/``delete_original``
        change the message at ``message_ts``.
        """
        self._response_urls[key] = {
            "channel": channel,
            "user": user,
            "message_ts": message_ts,
            "thread_ts": thread_ts,
        }
        self._responses.setdefault(key, [])
        return f"{self.base_url}/response/{key}"

    def issue_trigger_id(self, user_id: str) -> str:
        """A trigger_id as Slack puts in slash commands and actions: single use, valid ``trigger_ttl`` seconds."""
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(user_id=user_id, issued=time.monotonic())
        return trigger_id

    def close_view(self, user_id: str, view_id: str | None = None, *, clear: bool = False) -> None:
        """Close the top modal (or ``view_id`` and all above it, or all with ``clear``), as Slack does after an ack."""
        stack = self._modal_stacks.get(user_id, [])
        if clear:
            stack.clear()
        elif view_id is not None and view_id in stack:
            del stack[stack.index(view_id) :]
        elif stack:
            stack.pop()

    def replace_view(self, view_id: str, view: JsonDict) -> JsonDict:
        """Replace a stored view's content, keeping its id, as views.update and ``response_action: update`` do."""
        old = self._views[view_id]
        new = self._full_view(view, view_id=view_id, root_view_id=old.get("root_view_id"))
        new["previous_view_id"] = old.get("previous_view_id")
        self._views[view_id] = new
        return new

    def push_view(self, user_id: str, view: JsonDict) -> JsonDict:
        """Push a modal onto the user's stack, as views.push and ``response_action: push`` do."""
        stack = self._modal_stacks.setdefault(user_id, [])
        root = stack[0] if stack else None
        full = self._full_view(view, root_view_id=root)
        full["previous_view_id"] = stack[-1] if stack else None
        self._views[full["id"]] = full
        self._view_owner[full["id"]] = user_id
        stack.append(full["id"])
        return full

    def apply_user_event(self, event: Mapping[str, Any]) -> None:
        """Reflect a person's message event in the world before the bot hears of it, as Slack does.

        A plain message is stored (so :meth:`thread` shows the person's replies); ``message_changed`` edits it
        and ``message_deleted`` removes it. ``SlackClient.event`` calls this for every event it sends.
        """
        if event.get("type") != "message" or "channel" not in event:
            return
        channel_id = str(event["channel"])
        msgs = self._messages.setdefault(channel_id, [])
        subtype = event.get("subtype")
        if subtype is None:
            if self.message(channel_id, str(event["ts"])) is not None:
                return
            stored = {k: copy.deepcopy(v) for k, v in event.items() if k not in {"event_ts", "channel_type"}}
            msgs.append(stored)
            msgs.sort(key=lambda m: _ts_key(m["ts"]))
            self._note_reply(channel_id, stored)
        elif subtype == "message_changed":
            new = event.get("message") or {}
            existing = self.message(channel_id, str(new.get("ts")))
            if existing is not None:
                existing.update({k: copy.deepcopy(v) for k, v in new.items()})
        elif subtype == "message_deleted":
            existing = self.message(channel_id, str(event.get("deleted_ts")))
            if existing is not None:
                self._remove_message(channel_id, existing)

    # ------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    async def _read_params(request: web.Request) -> JsonDict:
        """Merge the query string and the body (JSON, form or multipart) into one argument dict."""
        params: JsonDict = dict(request.query)
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            elif ctype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
                form = await request.post()
                for k, v in form.items():
                    params[k] = v if isinstance(v, str) else getattr(v, "filename", repr(v))
        for key in _JSON_ARGS:
            value = params.get(key)
            if isinstance(value, str) and value.strip()[:1] in {"[", "{"}:
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        method_name = request.match_info["method"]
        params = await self._read_params(request)
        body_token = params.pop("token", None)
        self.calls.append((method_name, copy.deepcopy(params)))
        headers = {"X-OAuth-Scopes": self.scopes, "X-Accepted-OAuth-Scopes": ""}

        fault = self._take_fault(method_name)
        if fault is not None:
            kind = str(fault.status) if fault.status != 200 else "error"
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return self._fault_response(fault)
        holds = self._holds.get(method_name)
        if holds:
            self.injected["hold"] = self.injected.get("hold", 0) + 1
            await asyncio.sleep(holds.pop(0))

        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else body_token
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"}, headers=headers)
        if token != self.bot_token:
            return web.json_response({"ok": False, "error": "invalid_auth"}, headers=headers)

        handler = self._handlers.get(method_name)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, headers=headers)
        try:
            result = await handler(params)
        except SlackApiFault as e:
            payload: JsonDict = {"ok": False, "error": e.error}
            if e.messages:
                payload["response_metadata"] = {"messages": e.messages}
            return web.json_response(payload, headers=headers)
        return web.json_response({"ok": True, **result}, headers=headers)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        context = self._response_urls.get(key)
        if context is None:
            return web.Response(status=404, text="no_service")
        fault = self._take_fault("response_url")
        if fault is not None:
            return self._fault_response(fault)
        try:
            body = json.loads(await request.text())
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self._responses[key].append(body)
        self._apply_response(context, body)
        return web.json_response({"ok": True})

    def _apply_response(self, context: JsonDict, body: JsonDict) -> None:
        """Do to the world what Slack does with a response_url post."""
        channel_id, user_id, message_ts = context["channel"], context["user"], context["message_ts"]
        original = self.message(channel_id, message_ts) if channel_id and message_ts else None
        if _truthy(body.get("delete_original")):
            if original is not None:
                self._remove_message(channel_id, original)
            return
        content = {k: body[k] for k in ("text", "blocks", "attachments") if k in body}
        if _truthy(body.get("replace_original")) and original is not None:
            original.pop("blocks", None)
            original.pop("attachments", None)
            original.update(copy.deepcopy(content))
            return
        if body.get("response_type") == "in_channel" and channel_id in self._channels:
            thread_ts = body.get("thread_ts") or context.get("thread_ts")
            self._store_bot_message(channel_id, content, thread_ts=thread_ts)
            return
        if user_id is not None:
            msg = {"type": "message", "ts": self.new_ts(), "channel": channel_id, "source": "response_url", **content}
            self._ephemerals.setdefault(user_id, []).append(copy.deepcopy(msg))

    # ------------------------------------------------------------------ helpers for methods

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal hands out: the file's bytes as the raw body (what slack_sdk
        sends) or as a multipart "file" field. Recorded in :attr:`calls` as the pseudo-method "upload"."""
        file_id = request.match_info["file_id"]
        entry = self.files.get(file_id)
        fault = self._take_fault("upload")
        self.calls.append(("upload", {"file_id": file_id}))
        if fault is not None:
            return web.Response(status=fault.status if fault.status != 200 else 500, text=fault.error)
        if entry is None:
            return web.Response(status=404, text="not_found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            field = form.get("file")
            data = field.file.read() if isinstance(field, web.FileField) else str(field or "").encode()
        else:
            data = await request.read()
        entry["data"] = data
        self.calls[-1][1]["size"] = len(data)
        return web.Response(text=f"OK - {len(data)}")

    def _resolve_channel(self, ref: Any) -> _Channel:
        """Accept an id, a "#name"/name, or a user id (meaning the bot's DM with them), like chat.postMessage."""
        if not isinstance(ref, str) or not ref:
            raise SlackApiFault("channel_not_found")
        if ref in self._channels:
            return self._channels[ref]
        if ref[0] in "UW" and ref in self._users:
            return self._channels[self.dm_channel(ref)]
        name = ref.removeprefix("#")
        for ch in self._channels.values():
            if ch.name == name and not ch.is_im:
                return ch
        raise SlackApiFault("channel_not_found")

    def _writable_channel(self, ref: Any) -> _Channel:
        ch = self._resolve_channel(ref)
        if ch.is_archived:
            raise SlackApiFault("is_archived")
        if not ch.is_im and not ch.bot_member:
            raise SlackApiFault("not_in_channel")
        return ch

    def _content(self, params: JsonDict, *, require: bool = True) -> JsonDict:
        """text/blocks/attachments/metadata of a message, checked the way chat.postMessage checks them."""
        content = {
            k: params[k] for k in ("text", "blocks", "attachments", "metadata") if params.get(k) not in (None, "")
        }
        if require and not any(k in content for k in ("text", "blocks", "attachments")):
            raise SlackApiFault("no_text")
        if len(str(content.get("text", ""))) > 40_000:
            raise SlackApiFault("msg_too_long")
        if "blocks" in content and self.validate_blocks:
            problems = _check_blocks(content["blocks"], max_blocks=50)
            if problems:
                raise SlackApiFault("invalid_blocks", messages=problems)
        return copy.deepcopy(content)

    def _note_reply(self, channel_id: str, msg: JsonDict) -> None:
        thread_ts = msg.get("thread_ts")
        if not thread_ts or thread_ts == msg["ts"]:
            return
        parent = self.message(channel_id, thread_ts)
        if parent is not None:
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = msg["ts"]
            users = parent.setdefault("reply_users", [])
            if msg.get("user") and msg["user"] not in users:
                users.append(msg["user"])

    def _remove_message(self, channel_id: str, msg: JsonDict) -> None:
        """Delete a message; a deleted reply no longer counts in its parent's ``reply_count``."""
        self._messages[channel_id].remove(msg)
        self._deleted.append(msg)
        thread_ts = msg.get("thread_ts")
        parent = self.message(channel_id, thread_ts) if thread_ts and thread_ts != msg["ts"] else None
        if parent is not None and parent.get("reply_count"):
            parent["reply_count"] -= 1

    def _store_bot_message(
        self, channel_id: str, content: JsonDict, *, thread_ts: Any = None, broadcast: bool = False
    ) -> JsonDict:
        msg: JsonDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": self.new_ts(),
            "channel": channel_id,
            **content,
        }
        if thread_ts:
            msg["thread_ts"] = str(thread_ts)
            if broadcast:
                msg["subtype"] = "thread_broadcast"
        self._messages.setdefault(channel_id, []).append(msg)
        self._note_reply(channel_id, msg)
        return msg

    def _find_message(self, channel_id: str, ts: Any) -> JsonDict:
        msg = self.message(channel_id, str(ts)) if ts else None
        if msg is None:
            raise SlackApiFault("message_not_found")
        return msg

    def _full_view(self, view: JsonDict, *, view_id: str | None = None, root_view_id: str | None = None) -> JsonDict:
        view_id = view_id or self._new_id("V")
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": root_view_id or view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _view_arg(self, params: JsonDict, *, expected_type: str | None = None) -> JsonDict:
        view = params.get("view")
        problems = _check_view(view, expected_type=expected_type) if self.validate_blocks else []
        if not isinstance(view, dict):
            raise SlackApiFault("invalid_arguments", messages=["[ERROR] missing required field: view"])
        if problems:
            raise SlackApiFault("invalid_arguments", messages=problems)
        return view

    def _use_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id)) if trigger_id else None
        if trigger is None:
            raise SlackApiFault("invalid_trigger_id")
        if trigger.used:
            raise SlackApiFault("exchanged_trigger_id")
        if self.trigger_ttl is not None and time.monotonic() - trigger.issued > self.trigger_ttl:
            raise SlackApiFault("expired_trigger_id")
        trigger.used = True
        return trigger

    # ------------------------------------------------------------------ Web API methods

    async def _auth_test(self, params: JsonDict) -> JsonDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _chat_post_message(self, params: JsonDict) -> JsonDict:
        ch = self._writable_channel(params.get("channel"))
        content = self._content(params)
        msg = self._store_bot_message(
            ch.id, content, thread_ts=params.get("thread_ts"), broadcast=_truthy(params.get("reply_broadcast"))
        )
        public = {k: copy.deepcopy(v) for k, v in msg.items() if k != "channel"}
        return {"channel": ch.id, "ts": msg["ts"], "message": public}

    async def _chat_post_ephemeral(self, params: JsonDict) -> JsonDict:
        ch = self._writable_channel(params.get("channel"))
        user_id = params.get("user")
        if user_id not in self._users:
            raise SlackApiFault("user_not_found")
        content = self._content(params)
        ts = self.new_ts()
        msg: JsonDict = {"type": "message", "ts": ts, "channel": ch.id, "source": "chat.postEphemeral", **content}
        if params.get("thread_ts"):
            msg["thread_ts"] = str(params["thread_ts"])
        self._ephemerals.setdefault(str(user_id), []).append(msg)
        return {"message_ts": ts}

    async def _chat_update(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        if ch.is_archived:
            raise SlackApiFault("is_archived")
        msg = self._find_message(ch.id, params.get("ts"))
        if msg.get("user") != self.bot_user_id:
            raise SlackApiFault("cant_update_message")
        content = self._content(params, require=False)
        if "blocks" in params and not content.get("blocks"):
            msg.pop("blocks", None)  # blocks=[] removes them, as in Slack
        msg.update(content)
        msg["edited"] = {"user": self.bot_user_id, "ts": self.new_ts()}
        public = {k: copy.deepcopy(v) for k, v in msg.items() if k != "channel"}
        return {"channel": ch.id, "ts": msg["ts"], "text": msg.get("text", ""), "message": public}

    async def _chat_delete(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        msg = self._find_message(ch.id, params.get("ts"))
        if msg.get("user") != self.bot_user_id:
            raise SlackApiFault("cant_delete_message")
        self._remove_message(ch.id, msg)
        return {"channel": ch.id, "ts": msg["ts"]}

    async def _chat_get_permalink(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        msg = self._find_message(ch.id, params.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{ch.id}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    async def _reactions_add(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        if ch.is_archived:
            raise SlackApiFault("is_archived")
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackApiFault("invalid_name")
        msg = self._find_message(ch.id, params.get("timestamp"))
        reactions: list[JsonDict] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == name:
                if self.bot_user_id in r["users"]:
                    raise SlackApiFault("already_reacted")
                r["users"].append(self.bot_user_id)
                r["count"] += 1
                break
        else:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    async def _users_info(self, params: JsonDict) -> JsonDict:
        user = self._users.get(str(params.get("user")))
        if user is None:
            raise SlackApiFault("user_not_found")
        return {"user": user.to_api(self.team_id)}

    async def _conversations_info(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        # Each kind of conversation needs its own read scope; a private channel is invisible to a non-member.
        needed = "im:read" if ch.is_im else "groups:read" if ch.is_private else "channels:read"
        if needed not in self.scopes.split(","):
            raise SlackApiFault("missing_scope")
        if ch.is_private and not ch.bot_member:
            raise SlackApiFault("channel_not_found")
        return {"channel": ch.to_api()}

    async def _conversations_join(self, params: JsonDict) -> JsonDict:
        ch = self._resolve_channel(params.get("channel"))
        if ch.is_im or ch.is_private:
            raise SlackApiFault("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise SlackApiFault("is_archived")
        already = ch.bot_member
        ch.bot_member = True
        result: JsonDict = {"channel": ch.to_api()}
        if already:
            result["warning"] = "already_in_channel"
            result["response_metadata"] = {"warnings": ["already_in_channel"]}
        return result

    def _readable(self, ref: Any) -> _Channel:
        ch = self._resolve_channel(ref)
        if not ch.is_im and not ch.bot_member:
            raise SlackApiFault("not_in_channel")
        return ch

    @staticmethod
    def _as_listed(msg: JsonDict, metadata: bool) -> JsonDict:
        """A message as history and replies list it: metadata only when include_all_metadata is asked for."""
        return {k: copy.deepcopy(v) for k, v in msg.items() if k != "channel" and (metadata or k != "metadata")}

    def _page(self, msgs: list[JsonDict], params: JsonDict, default_limit: int) -> JsonDict:
        """One page of a listing: messages after ``oldest`` (exclusive, as Slack), ``limit`` of them from the
        ``cursor`` on (the fake's cursor is simply an offset), and the cursor of the next page if there is one."""
        if params.get("oldest"):
            oldest = _ts_key(str(params["oldest"]))
            msgs = [m for m in msgs if _ts_key(m["ts"]) > oldest]
        limit = int(params.get("limit") or default_limit)
        start = int(params.get("cursor") or 0)
        meta = _truthy(params.get("include_all_metadata"))
        page = [self._as_listed(m, meta) for m in msgs[start : start + limit]]
        more = len(msgs) > start + limit
        return {
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _conversations_history(self, params: JsonDict) -> JsonDict:
        """The channel's top-level messages (and thread broadcasts), newest first."""
        ch = self._readable(params.get("channel"))
        top = [
            m
            for m in self._messages.get(ch.id, [])
            if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("subtype") == "thread_broadcast"
        ]
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        return self._page(top, params, 100)

    async def _conversations_replies(self, params: JsonDict) -> JsonDict:
        """A thread: its parent, then the replies, oldest first."""
        ch = self._readable(params.get("channel"))
        ts = str(params.get("ts") or "")
        if self.message(ch.id, ts) is None:
            raise SlackApiFault("thread_not_found")
        thread = [m for m in self._messages.get(ch.id, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        thread.sort(key=lambda m: _ts_key(m["ts"]))
        return self._page(thread, params, 1000)

    async def _conversations_open(self, params: JsonDict) -> JsonDict:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise SlackApiFault("users_list_not_supplied" if not users else "not_implemented_in_fake")
        if users[0] not in self._users:
            raise SlackApiFault("user_not_found")
        return {"channel": {"id": self.dm_channel(users[0])}}

    async def _views_open(self, params: JsonDict) -> JsonDict:
        view = self._view_arg(params, expected_type="modal")
        trigger = self._use_trigger(params.get("trigger_id"))
        self._modal_stacks[trigger.user_id] = []
        return {"view": self.push_view(trigger.user_id, view)}

    async def _views_push(self, params: JsonDict) -> JsonDict:
        view = self._view_arg(params, expected_type="modal")
        trigger = self._use_trigger(params.get("trigger_id"))
        if not self._modal_stacks.get(trigger.user_id):
            raise SlackApiFault("not_found")
        if len(self._modal_stacks[trigger.user_id]) >= 3:
            raise SlackApiFault("push_limit_reached")
        return {"view": self.push_view(trigger.user_id, view)}

    async def _views_publish(self, params: JsonDict) -> JsonDict:
        user_id = str(params.get("user_id"))
        if user_id not in self._users:
            raise SlackApiFault("user_not_found")
        view = self._view_arg(params, expected_type="home")
        existing_id = self._homes.get(user_id)
        if existing_id is not None:
            if params.get("hash") and params["hash"] != self._views[existing_id]["hash"]:
                raise SlackApiFault("hash_conflict")
            return {"view": self.replace_view(existing_id, view)}
        full = self._full_view(view)
        self._views[full["id"]] = full
        self._view_owner[full["id"]] = user_id
        self._homes[user_id] = full["id"]
        return {"view": full}

    async def _files_get_upload_url(self, params: JsonDict) -> JsonDict:
        if "files:write" not in self.scopes.split(","):
            raise SlackApiFault("missing_scope")
        filename, length = params.get("filename"), params.get("length")
        if not filename or length in (None, ""):
            raise SlackApiFault("invalid_arguments", messages=["[ERROR] missing required field: filename or length"])
        try:
            size = int(length)
        except (TypeError, ValueError):
            raise SlackApiFault("invalid_arguments", messages=["[ERROR] length must be an integer"]) from None
        file_id = self._new_id("F")
        self.files[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": size,
            "alt_txt": params.get("alt_txt"),
            "data": None,
            "title": None,
            "shared_to": [],
            "thread_ts": None,
            "initial_comment": None,
        }
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _files_complete_upload(self, params: JsonDict) -> JsonDict:
        raw = params.get("files")
        items = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            raise SlackApiFault("invalid_arguments", messages=["[ERROR] missing required field: files"])
        entries = []
        for item in items:
            entry = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if entry is None or entry["data"] is None:
                raise SlackApiFault("file_not_found")  # never uploaded: Slack has nothing to complete
            if len(entry["data"]) != entry["length"]:
                raise SlackApiFault("file_upload_size_mismatch")
            entry["title"] = item.get("title") or entry["filename"]
            entries.append(entry)
        public = [
            {
                "id": e["id"],
                "name": e["filename"],
                "title": e["title"],
                "mimetype": "image/png" if e["data"][:8] == b"\x89PNG\r\n\x1a\n" else "application/octet-stream",
                "size": len(e["data"]),
                **({"alt_txt": e["alt_txt"]} if e["alt_txt"] else {}),
            }
            for e in entries
        ]
        channel_ref = params.get("channel_id") or params.get("channels")
        if channel_ref:
            ch = self._writable_channel(str(channel_ref).split(",")[0])
            content: JsonDict = {"text": str(params.get("initial_comment") or ""), "files": public, "upload": True}
            self._store_bot_message(ch.id, content, thread_ts=params.get("thread_ts"))
            for e in entries:
                e["shared_to"].append(ch.id)
                e["thread_ts"] = params.get("thread_ts")
                e["initial_comment"] = params.get("initial_comment")
        return {"files": public}

    async def _views_update(self, params: JsonDict) -> JsonDict:
        view = self._view_arg(params)
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next((v["id"] for v in self._views.values() if v["external_id"] == params["external_id"]), None)
        if not view_id or view_id not in self._views:
            raise SlackApiFault("not_found")
        if params.get("hash") and params["hash"] != self._views[view_id]["hash"]:
            raise SlackApiFault("hash_conflict")
        return {"view": self.replace_view(str(view_id), view)}
