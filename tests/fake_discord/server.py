"""A local stand-in for Discord's REST API and gateway, driven by the real discord.py client.

End-to-end tests need the bot's Discord adapter to talk to *something* that behaves like Discord
closely enough that discord.py's own parsing, caching, rate-limit and reconnect logic all run for real.
Mocking discord.py objects would only test our assumptions about discord.py; this server tests the
adapter against the wire format instead. Everything binds to 127.0.0.1 and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiohttp import BodyPartReader, WSMsgType, web

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_THREADS | MENTION_EVERYONE

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15

EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_COMPONENTS_V2 = 1 << 15

# Close codes discord.py treats as final (it will not reconnect after these).
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_DISALLOWED_INTENTS = 4014

# How long an enforced nonce is remembered (Discord: "the past few minutes").
NONCE_WINDOW = 300.0

_MENTION_RE = re.compile(r"<@!?(\d+)>")
_COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


_Handler = Callable[..., Awaitable[web.Response]]


class RecordedRequest(NamedTuple):
    """One REST call as the client made it; a tuple so tests can unpack ``method, path, body``."""

    method: str
    path: str
    json: Any


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    retry_after: float | None
    times: int


class _ApiError(Exception):
    """Raised inside handlers so every error leaves the server in Discord's JSON error shape."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"code": code, "message": message}
        if errors is not None:
            self.body["errors"] = errors


def _invalid_form(message: str) -> _ApiError:
    return _ApiError(400, 50035, "Invalid Form Body", {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # discord.py only decodes the body when Content-Type is *exactly* application/json, so no charset.
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json", headers=headers)


def _texts_of(data: Mapping[str, Any] | None) -> list[str]:
    """Everything a user could read in a message payload, so tests can assert on wording without layout."""
    if not data:
        return []
    out: list[str] = []
    if data.get("content"):
        out.append(str(data["content"]))
    for embed in data.get("embeds") or []:
        for key in ("title", "description"):
            if embed.get(key):
                out.append(str(embed[key]))
        for fld in embed.get("fields") or []:
            out.extend(str(fld[k]) for k in ("name", "value") if fld.get(k))
        footer = embed.get("footer") or {}
        if footer.get("text"):
            out.append(str(footer["text"]))
    out.extend(_component_texts(data.get("components") or []))
    return out


def _component_texts(components: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for comp in components:
        if comp.get("type") == 10 and comp.get("content"):  # components-v2 text display
            out.append(str(comp["content"]))
        out.extend(_component_texts(comp.get("components") or []))
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), Mapping):
                out.extend(_component_texts([comp[key]]))
    return out


def _walk_components(components: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for comp in components:
        yield comp
        yield from _walk_components(comp.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), Mapping):
                yield from _walk_components([comp[key]])


# String select, user, role, mentionable and channel selects: each fills a whole action row.
_SELECT_TYPES = (3, 5, 6, 7, 8)


def _check_action_row(row: Mapping[str, Any]) -> None:
    """An action row holds up to five buttons or one select; a string select holds 1 to 25 options."""
    inner = row.get("components") or []
    if row.get("type") != 1 or not 1 <= len(inner) <= 5:
        raise _invalid_form("components.components: Must be between 1 and 5 in length.")
    selects = [c for c in inner if c.get("type") in _SELECT_TYPES]
    if selects and len(inner) != 1:
        raise _invalid_form("components.components: A select menu must be alone in its action row.")
    for menu in selects:
        if len(str(menu.get("placeholder") or "")) > 150:
            raise _invalid_form("components.placeholder: Must be 150 or fewer in length.")
        if menu.get("type") != 3:
            continue
        options = menu.get("options") or []
        if not 1 <= len(options) <= 25:
            raise _invalid_form("components.options: Must be between 1 and 25 in length.")
        values = [str(o.get("value", "")) for o in options]
        if len(set(values)) != len(values):
            raise _invalid_form("components.options: option values must be unique")
        for o in options:
            if not 1 <= len(str(o.get("label") or "")) <= 100 or not 1 <= len(str(o.get("value") or "")) <= 100:
                raise _invalid_form("components.options: label and value must be between 1 and 100 in length.")


@dataclass
class Interaction:
    """One interaction a simulated user started, plus everything the bot answered to it.

    The bot answers through several endpoints (initial callback, follow-ups, edits of the original);
    tests care about what the user ended up seeing, so all of them are collected here in order.
    """

    id: str
    token: str
    type: int
    payload: JSON
    responses: list[JSON] = field(default_factory=list)
    original_message_id: str | None = None
    original_ephemeral: bool = False
    followups: dict[str, bool] = field(default_factory=dict)

    @property
    def acknowledged(self) -> bool:
        return any(r["kind"] == "callback" for r in self.responses)

    @property
    def modal(self) -> JSON | None:
        """The modal the bot opened in reply, so a test can read its fields before submitting it."""
        for r in self.responses:
            if r["kind"] == "callback" and r["type"] == 9:
                data: JSON = r["data"]
                return data
        return None

    def choices(self) -> list[JSON]:
        """Autocomplete suggestions from the latest type-8 answer."""
        for r in reversed(self.responses):
            if r["kind"] == "callback" and r["type"] == 8:
                return list(r["data"].get("choices") or [])
        return []

    def texts(self) -> list[str]:
        return [t for r in self.responses for t in _texts_of(r["data"])]

    def ephemeral_texts(self) -> list[str]:
        return [t for r in self.responses if r["ephemeral"] for t in _texts_of(r["data"])]


@dataclass
class _Guild:
    id: str
    name: str
    owner_id: str
    roles: dict[str, JSON]
    admin_role_id: str
    bot_role_id: str
    channel_ids: list[str] = field(default_factory=list)
    members: dict[str, JSON] = field(default_factory=dict)  # user_id -> member payload without "user"
    joined_at: str = field(default_factory=_now_iso)


class _Connection:
    """One websocket; a session outlives it so RESUME can replay what the client missed."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.send_lock = asyncio.Lock()
        self.session: _Session | None = None
        self.closed_by_server = False

    async def send(self, text: str) -> None:
        async with self.send_lock:
            await self.ws.send_str(text)

    async def send_json(self, payload: JSON) -> None:
        await self.send(json.dumps(payload, separators=(",", ":")))


@dataclass
class _Session:
    id: str
    shard_id: int
    num_shards: int
    intents: int
    events: list[str] = field(default_factory=list)  # index i holds the frame with s = i + 1
    conn: _Connection | None = None
    sent: int = 0
    flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1, with a small world the tests shape and observe.

    Identifiers are realistic snowflakes rendered as strings, as Discord sends them; each one gets its own
    millisecond so consecutive guilds land on different shards.
    """

    application_id: str = "1149364011268018216"
    bot_user_id: str = "1149364498977710140"

    def __init__(
        self,
        *,
        token: str | None = None,
        require_message_content_approval: bool = False,
        shards: int = 1,
    ) -> None:
        """``token``: when set, other tokens get 401 / close 4004, to test login failures.

        ``require_message_content_approval`` mimics an app whose privileged intent is not switched on in
        the developer portal: identifying with MESSAGE_CONTENT is refused with close code 4014.
        ``shards`` is what GET /gateway/bot recommends, which AutoShardedClient obeys.
        """
        self.token = token
        self.require_message_content_approval = require_message_content_approval
        self.recommended_shards = shards
        self.requests: list[RecordedRequest] = []
        self.identifies: list[JSON] = []
        self.resumes = 0
        self.interactions: list[Interaction] = []
        self.events: list[str] = []  # names of every gateway dispatch, for timeout diagnostics

        # Where message ids and timestamps take their time from: set it to the bot's clock when a test
        # compares message times with the bot's deadlines (before creating anything, as ids only go up).
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._last_ts = 0
        self._increment = itertools.count()
        self._users: dict[str, JSON] = {}
        self._guilds: dict[str, _Guild] = {}
        self._channels: dict[str, JSON] = {}
        self._deleted_channels: set[str] = set()
        self._denied_channels: set[str] = set()
        self._no_attach_channels: set[str] = set()
        # Every file uploaded in a multipart request, bytes included: {"path", "name", "filename", "data", ...}.
        self.uploads: list[JSON] = []
        self._dm_by_user: dict[str, str] = {}
        self._messages: dict[str, JSON] = {}
        self._channel_messages: dict[str, list[str]] = {}
        self._allowed_mentions: dict[str, Any] = {}
        self._threads_by_message: dict[str, str] = {}
        self._global_commands: list[JSON] = []
        self._guild_commands: dict[str, list[JSON]] = {}
        self._interactions_by_id: dict[str, Interaction] = {}
        self._interactions_by_token: dict[str, Interaction] = {}
        self._faults: list[_Fault] = []
        self.injected: dict[str, int] = {}  # faults served, by status ("429", "502", ...)
        self._nonces: dict[str, tuple[str, float]] = {}  # bot message nonce -> (message id, when)
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self._users[self.bot_user_id] = self._user_obj(self.bot_user_id, "interview-bot", bot=True)
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/users/@me", self._get_me),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user),
            ("GET", r"/(?:oauth2/)?applications/@me", self._get_application),
            ("GET", r"/channels/(?P<channel_id>\d+)", self._get_channel),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages", self._get_messages),
            ("POST", r"/channels/(?P<channel_id>\d+)/messages", self._post_message),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._get_message),
            ("PATCH", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._patch_message),
            ("DELETE", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._delete_message),
            (
                "POST",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/threads",
                self._create_thread_from_message,
            ),
            ("POST", r"/channels/(?P<channel_id>\d+)/threads", self._create_thread),
            (
                "PUT",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/@me",
                self._add_reaction,
            ),
            (
                "DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/@me",
                self._remove_reaction,
            ),
            ("POST", r"/channels/(?P<channel_id>\d+)/typing", self._typing),
            ("PUT", r"/channels/(?P<channel_id>\d+)/thread-members/@me", self._typing),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_guild_roles),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members", self._get_guild_members),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_guild_member),
            ("GET", r"/applications/(?P<app_id>\d+)/commands", self._get_commands),
            ("PUT", r"/applications/(?P<app_id>\d+)/commands", self._put_commands),
            ("GET", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands", self._get_commands),
            ("PUT", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands", self._put_commands),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)", self._post_followup),
            (
                "GET",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._get_webhook_message,
            ),
            (
                "PATCH",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._patch_webhook_message,
            ),
            (
                "DELETE",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._delete_webhook_message,
            ),
        ]
        self._routes = [(m, re.compile(p), h) for m, p, h in table]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind an ephemeral port so parallel test runs never collide."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        # A short shutdown timeout: tests tear this down dozens of times and must stay fast.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for conn in list(self._connections):
            conn.closed_by_server = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server stopping"), 1.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not been awaited")
        return self._port

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's class-level endpoints here for the duration, and always put them back.

        Both are class attributes shared by every client in the process, so leaking them would make
        unrelated tests talk to a server that no longer exists.
        """
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ------------------------------------------------------------------ world building

    def snowflake(self) -> str:
        """A fresh id shaped like Discord's, so code that reads timestamps or shards from ids still works."""
        now = int(self.clock().timestamp() * 1000) - DISCORD_EPOCH_MS
        self._last_ts = max(now, self._last_ts + 1)
        return str((self._last_ts << 22) | (1 << 17) | (next(self._increment) & 0xFFF))

    def add_guild(self, name: str, owner_id: int | str) -> str:
        gid = self.snowflake()
        owner = str(owner_id)
        admin_role = self.snowflake()
        bot_role = self.snowflake()
        roles = {
            gid: self._role_obj(gid, "@everyone", EVERYONE_PERMISSIONS, position=0),
            admin_role: self._role_obj(admin_role, "Admin", ADMINISTRATOR | MANAGE_GUILD, position=1, hoist=True),
            bot_role: self._role_obj(bot_role, "interview-bot", BOT_ROLE_PERMISSIONS, position=2, managed=True),
        }
        roles[bot_role]["tags"] = {"bot_id": self.bot_user_id}
        guild = _Guild(id=gid, name=name, owner_id=owner, roles=roles, admin_role_id=admin_role, bot_role_id=bot_role)
        guild.members[self.bot_user_id] = self._member_obj([bot_role])
        if owner not in self._users:
            self._users[owner] = self._user_obj(owner, f"owner-{owner[-4:]}")
        guild.members[owner] = self._member_obj([])
        self._guilds[gid] = guild
        self._dispatch_soon("GUILD_CREATE", lambda s: self._guild_create_payload(gid, s.intents), guild_id=gid)
        return gid

    def add_channel(self, guild_id: int | str, name: str, *, type_: int = 0) -> str:
        """A channel of the guild: text (0) unless ``type_`` says otherwise (2 voice, 4 category, 5 news, 15 forum)."""
        guild = self._guild(guild_id)
        cid = self.snowflake()
        self._channels[cid] = {
            "id": cid,
            "type": type_,
            "guild_id": guild.id,
            "name": name.lower().replace(" ", "-"),
            "position": len(guild.channel_ids),
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "permission_overwrites": [],
            "last_message_id": None,
            "flags": 0,
            "default_auto_archive_duration": 1440,
        }
        if type_ in (2, 13):  # voice and stage channels carry these; discord.py reads them
            self._channels[cid].update(bitrate=64000, user_limit=0, rtc_region=None)
        guild.channel_ids.append(cid)
        self._channel_messages[cid] = []
        self._dispatch_soon("CHANNEL_CREATE", lambda s: self._channels[cid], guild_id=guild.id, intent=INTENT_GUILDS)
        return cid

    def add_member(
        self, guild_id: int | str, user_id: int | str, name: str, *, admin: bool = False, bot: bool = False
    ) -> None:
        guild = self._guild(guild_id)
        uid = str(user_id)
        self._users[uid] = self._user_obj(uid, name, bot=bot)
        existed = uid in guild.members
        guild.members[uid] = self._member_obj([guild.admin_role_id] if admin else [])
        if not existed:
            self._dispatch_soon(
                "GUILD_MEMBER_ADD",
                lambda s: {**self._full_member(guild.id, uid), "guild_id": guild.id},
                guild_id=guild.id,
                intent=INTENT_GUILD_MEMBERS,
            )
        else:
            self._dispatch_soon(
                "GUILD_MEMBER_UPDATE",
                lambda s: {**self._full_member(guild.id, uid), "guild_id": guild.id},
                guild_id=guild.id,
                intent=INTENT_GUILD_MEMBERS,
            )

    def deny_send(self, channel_id: int | str) -> None:
        """Take away the bot's right to post, both as Discord reports it and as Discord enforces it."""
        cid = str(channel_id)
        channel = self._channels[cid]
        self._denied_channels.add(cid)
        channel["permission_overwrites"].append(
            {
                "id": self.bot_user_id,
                "type": 1,
                "allow": "0",
                "deny": str(SEND_MESSAGES | SEND_MESSAGES_IN_THREADS),
            }
        )
        if channel.get("guild_id"):
            self._dispatch_soon("CHANNEL_UPDATE", lambda s: channel, guild_id=channel["guild_id"], intent=INTENT_GUILDS)

    def overwrite(self, channel_id: int | str, target_id: int | str, *, allow: int = 0, deny: int = 0) -> None:
        """Add a permission overwrite to a channel, for a role (the guild id is @everyone) or a member (the bot's
        user id included), and tell the gateway. Reported only: unlike deny_send, REST calls are not refused."""
        cid = str(channel_id)
        channel = self._channels[cid]
        target = str(target_id)
        kind = 0 if channel.get("guild_id") and target in self._guilds[channel["guild_id"]].roles else 1
        channel["permission_overwrites"].append({"id": target, "type": kind, "allow": str(allow), "deny": str(deny)})
        if channel.get("guild_id"):
            self._dispatch_soon("CHANNEL_UPDATE", lambda s: channel, guild_id=channel["guild_id"], intent=INTENT_GUILDS)

    def clear_overwrites(self, channel_id: int | str) -> None:
        """Undo deny_send and overwrite: the channel's permissions are the roles' again."""
        cid = str(channel_id)
        channel = self._channels[cid]
        self._denied_channels.discard(cid)
        channel["permission_overwrites"] = []
        if channel.get("guild_id"):
            self._dispatch_soon("CHANNEL_UPDATE", lambda s: channel, guild_id=channel["guild_id"], intent=INTENT_GUILDS)

    def deny_attach(self, channel_id: int | str) -> None:
        """Take away Attach Files in a channel (and its threads): posts carrying a file get 403 Missing
        Permissions, as Discord answers them, while plain posts still go through."""
        self._no_attach_channels.add(str(channel_id))

    def delete_channel(self, channel_id: int | str) -> None:
        cid = str(channel_id)
        channel = self._channels[cid]
        self._deleted_channels.add(cid)
        gid = channel.get("guild_id")
        if gid is None:
            return
        guild = self._guilds[gid]
        if cid in guild.channel_ids:
            guild.channel_ids.remove(cid)
        if channel["type"] in (10, 11, 12):
            payload = {"id": cid, "guild_id": gid, "parent_id": channel["parent_id"], "type": channel["type"]}
            self._dispatch_soon("THREAD_DELETE", lambda s: payload, guild_id=gid, intent=INTENT_GUILDS)
        else:
            self._dispatch_soon("CHANNEL_DELETE", lambda s: channel, guild_id=gid, intent=INTENT_GUILDS)

    # ------------------------------------------------------------------ observing

    def messages(self, channel_id: int | str) -> list[JSON]:
        """What the bot posted through the channel endpoint, oldest first, as currently edited.

        Interaction replies are not here; they belong to the Interaction that caused them.
        """
        out = []
        for mid in self._channel_messages.get(str(channel_id), []):
            msg = self._messages[mid]
            if msg["author"]["id"] == self.bot_user_id and mid in self._allowed_mentions:
                out.append({**copy.deepcopy(msg), "allowed_mentions": copy.deepcopy(self._allowed_mentions[mid])})
        return out

    def message(self, message_id: int | str) -> JSON | None:
        msg = self._messages.get(str(message_id))
        return copy.deepcopy(msg) if msg is not None else None

    def thread_of(self, message_id: int | str) -> str | None:
        return self._threads_by_message.get(str(message_id))

    def dms(self, user_id: int | str) -> list[JSON]:
        cid = self._dm_by_user.get(str(user_id))
        return [] if cid is None else self.messages(cid)

    @property
    def commands(self) -> list[JSON]:
        """Every synced command; guild ones carry ``guild_id`` exactly as Discord returns them."""
        return copy.deepcopy(self._global_commands + [c for cs in self._guild_commands.values() for c in cs])

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and rx.fullmatch(r.path)]

    @property
    def connected_shards(self) -> list[int]:
        return sorted(s.shard_id for s in self._sessions.values() if s.conn is not None)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Poll until ``predicate()`` (or the awaitable it returns) is truthy, and return that value.

        Polling keeps the harness independent of how the bot schedules its work; the failure message
        carries the recent traffic because "timed out" alone never explains what went wrong.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
        try:
            source = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            source = repr(predicate)
        recent = "\n  ".join(f"{r.method} {r.path} {json.dumps(r.json)[:200]}" for r in self.requests[-8:])
        raise AssertionError(
            f"condition not met within {timeout}s: {source}\n"
            f"last REST requests:\n  {recent or '(none)'}\n"
            f"last gateway events: {self.events[-10:]}\n"
            f"connected shards: {self.connected_shards}"
        )

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        *,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` matching REST calls fail; ``path_regex`` must match the whole path after /api/v10.

        For 500/502/504 discord.py sleeps 1s, 3s, ... before each retry, so prefer 429 or 4xx in fast tests.
        """
        self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, body, retry_after, times))

    async def drop_gateway(self) -> None:
        """Close every websocket with 4000 (an abnormal close) so discord.py reconnects and RESUMEs."""
        for conn in list(self._connections):
            conn.closed_by_server = True
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=4000, message=b"fake drop"), 2.0)

    # ------------------------------------------------------------------ acting as users

    async def user_message(
        self, channel_id: int | str, user_id: int | str, content: str, *, reply_to: int | str | None = None
    ) -> str:
        channel = self._channel_or_raise(channel_id)
        uid = str(user_id)
        self._require_user(uid)
        gid = channel.get("guild_id")
        if gid is not None and uid not in self._guilds[gid].members:
            raise AssertionError(f"user {uid} is not a member of guild {gid}; call add_member first")
        msg = self._new_message(channel, self._users[uid], content=content)
        if reply_to is not None:
            ref = self._messages[str(reply_to)]
            msg["type"] = 19
            msg["message_reference"] = {"type": 0, "message_id": ref["id"], "channel_id": ref["channel_id"]}
            if gid:
                msg["message_reference"]["guild_id"] = gid
            msg["referenced_message"] = copy.deepcopy(ref)
        self._store_message(msg)
        self._bump_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return str(msg["id"])

    async def user_dm(self, user_id: int | str, content: str) -> str:
        """A user writing to the bot in private, opening the DM channel if needed."""
        uid = str(user_id)
        self._require_user(uid)
        return await self.user_message(self._dm_channel(uid)["id"], uid, content)

    async def user_edit(self, channel_id: int | str, message_id: int | str, content: str) -> None:
        msg = self._messages[str(message_id)]
        assert msg["channel_id"] == str(channel_id), "message is in another channel"
        msg["content"] = content
        msg["edited_timestamp"] = self.clock().isoformat()
        msg["mentions"] = self._mentions(content, msg.get("guild_id"))
        await self._dispatch_message("MESSAGE_UPDATE", msg)

    async def user_delete(self, channel_id: int | str, message_id: int | str) -> None:
        mid = str(message_id)
        msg = self._messages[mid]
        assert msg["channel_id"] == str(channel_id), "message is in another channel"
        await self._delete_stored_message(msg)

    async def user_react(self, channel_id: int | str, message_id: int | str, user_id: int | str, emoji: str) -> None:
        msg = self._messages[str(message_id)]
        uid = str(user_id)
        self._add_reaction_to(msg, emoji, me=False)
        payload: JSON = {
            "user_id": uid,
            "channel_id": str(channel_id),
            "message_id": msg["id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
            "message_author_id": msg["author"]["id"],
        }
        gid = msg.get("guild_id")
        if gid:
            payload["guild_id"] = gid
            payload["member"] = self._full_member(gid, uid)
        intent = INTENT_GUILD_MESSAGE_REACTIONS if gid else INTENT_DIRECT_MESSAGE_REACTIONS
        await self._dispatch("MESSAGE_REACTION_ADD", lambda s: payload, guild_id=gid, intent=intent)

    async def slash(
        self,
        guild_id: int | str | None,
        channel_id: int | str,
        user_id: int | str,
        command: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
    ) -> Interaction:
        """Invoke a synced slash command the way a user's client would.

        ``command`` is the full path ("interview start"); ``options`` maps leaf option names to values and
        is nested into Discord's subcommand/group structure using the synced schema. Raw Discord option
        lists are passed through. Like the real client, this refuses unknown commands or options, missing
        required options and values outside declared choices, so a test cannot invoke what no user could.
        """
        gid = None if guild_id is None else str(guild_id)
        data = self._command_data(gid, command, options, focused=None)
        return await self._create_interaction(2, gid, channel_id, user_id, data)

    async def autocomplete(
        self,
        guild_id: int | str | None,
        channel_id: int | str,
        user_id: int | str,
        command: str,
        options: Mapping[str, Any],
        focused: str,
    ) -> Interaction:
        """The user is typing into option ``focused``; answers show up via ``Interaction.choices()``."""
        gid = None if guild_id is None else str(guild_id)
        data = self._command_data(gid, command, options, focused=focused)
        return await self._create_interaction(4, gid, channel_id, user_id, data)

    async def click(
        self,
        channel_id: int | str,
        message_id: int | str,
        user_id: int | str,
        custom_id: str,
        values: Sequence[str] | None = None,
    ) -> Interaction:
        """Press a button (or pick select ``values``) on a message the bot posted."""
        msg = self._messages.get(str(message_id))
        if msg is None or msg["channel_id"] != str(channel_id):
            raise AssertionError(f"no message {message_id} in channel {channel_id}")
        if msg["author"]["id"] != self.bot_user_id:
            raise AssertionError(f"message {message_id} was not posted by the bot")
        comp = next((c for c in _walk_components(msg.get("components") or []) if c.get("custom_id") == custom_id), None)
        if comp is None:
            ids = [c.get("custom_id") for c in _walk_components(msg.get("components") or []) if c.get("custom_id")]
            raise AssertionError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
        if comp.get("disabled"):
            raise AssertionError(f"component {custom_id!r} is disabled; a user cannot use it")
        data: JSON = {"custom_id": custom_id, "component_type": comp["type"]}
        if comp.get("id") is not None:
            data["id"] = comp["id"]
        if comp["type"] != 2:
            data["values"] = list(values or [])
            if comp["type"] == 3:  # a user can only pick what the menu offers, as many as it allows
                offered = {str(o.get("value")) for o in comp.get("options") or []}
                low, high = int(comp.get("min_values", 1)), int(comp.get("max_values", 1))
                if not set(data["values"]) <= offered or not low <= len(data["values"]) <= high:
                    raise AssertionError(f"menu {custom_id!r} does not offer {data['values']} to pick")
        channel = self._channel_or_raise(channel_id)
        return await self._create_interaction(
            3, channel.get("guild_id"), channel_id, user_id, data, message=copy.deepcopy(msg)
        )

    async def submit_modal(
        self, channel_id: int | str, user_id: int | str, custom_id: str, values: Mapping[str, str | Sequence[str]]
    ) -> Interaction:
        """Fill in and submit the modal the bot most recently opened with ``custom_id``.

        The submission mirrors the modal's own layout (labels in the current API, action rows in the
        legacy one), because discord.py walks both shapes differently.
        """
        opener = next(
            (
                i
                for i in reversed(self.interactions)
                if i.modal is not None and (i.modal or {}).get("custom_id") == custom_id
            ),
            None,
        )
        if opener is None:
            raise AssertionError(f"the bot never opened a modal with custom_id {custom_id!r}")
        modal = opener.modal or {}
        remaining = dict(values)
        components = [self._submitted_component(c, remaining) for c in modal.get("components") or []]
        if remaining:
            raise AssertionError(f"modal {custom_id!r} has no inputs {sorted(remaining)}")
        data = {"custom_id": custom_id, "components": [c for c in components if c is not None]}
        channel = self._channel_or_raise(channel_id)
        message = None
        if opener.type == 3 and opener.payload.get("message"):
            current = self._messages.get(opener.payload["message"]["id"])
            message = copy.deepcopy(current) if current is not None else None
        return await self._create_interaction(5, channel.get("guild_id"), channel_id, user_id, data, message=message)

    # ------------------------------------------------------------------ payload builders

    def _user_obj(self, uid: str, name: str, *, bot: bool = False) -> JSON:
        user: JSON = {
            "id": uid,
            "username": name,
            "discriminator": "0",
            "global_name": None if bot else name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
            "collectibles": None,
        }
        if bot:
            user["bot"] = True
        return user

    @staticmethod
    def _role_obj(
        rid: str, name: str, permissions: int, *, position: int, hoist: bool = False, managed: bool = False
    ) -> JSON:
        return {
            "id": rid,
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "managed": managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    @staticmethod
    def _member_obj(roles: list[str]) -> JSON:
        return {
            "roles": roles,
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }

    def _full_member(self, gid: str, uid: str) -> JSON:
        return {**copy.deepcopy(self._guilds[gid].members[uid]), "user": copy.deepcopy(self._users[uid])}

    def _guild(self, guild_id: int | str) -> _Guild:
        try:
            return self._guilds[str(guild_id)]
        except KeyError:
            raise AssertionError(f"unknown guild {guild_id}") from None

    def _require_user(self, uid: str) -> None:
        if uid not in self._users:
            raise AssertionError(f"unknown user {uid}; call add_member first")

    def _channel_or_raise(self, channel_id: int | str) -> JSON:
        cid = str(channel_id)
        if cid not in self._channels or cid in self._deleted_channels:
            raise AssertionError(f"unknown or deleted channel {cid}")
        return self._channels[cid]

    def _permissions(self, gid: str, uid: str, channel: JSON | None) -> int:
        """Discord's permission algorithm: base from roles, then channel overwrites (a thread uses its parent)."""
        guild = self._guilds[gid]
        if uid == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(uid)
        roles = member["roles"] if member else []
        perms = int(guild.roles[gid]["permissions"])
        for rid in roles:
            perms |= int(guild.roles[rid]["permissions"])
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and channel.get("parent_id") and channel["type"] in (10, 11, 12):
            channel = self._channels.get(channel["parent_id"], channel)
        if channel is None:
            return perms
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites", [])}
        if gid in overwrites:
            perms = (perms & ~int(overwrites[gid]["deny"])) | int(overwrites[gid]["allow"])
        allow = deny = 0
        for rid in roles:
            if rid in overwrites:
                allow |= int(overwrites[rid]["allow"])
                deny |= int(overwrites[rid]["deny"])
        perms = (perms & ~deny) | allow
        if uid in overwrites:
            perms = (perms & ~int(overwrites[uid]["deny"])) | int(overwrites[uid]["allow"])
        return perms

    def _guild_create_payload(self, gid: str, intents: int) -> JSON:
        guild = self._guilds[gid]
        # Without GUILD_MEMBERS Discord only lists the bot itself (and voice users) in GUILD_CREATE.
        member_ids = list(guild.members) if intents & INTENT_GUILD_MEMBERS else [self.bot_user_id]
        channels = [c for c in (self._channels[cid] for cid in guild.channel_ids) if c["type"] not in (10, 11, 12)]
        threads = [
            c
            for c in (self._channels[cid] for cid in guild.channel_ids)
            if c["type"] in (10, 11, 12) and not c["thread_metadata"]["archived"]
        ]
        return {
            "id": gid,
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": guild.owner_id,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": channels[0]["id"] if channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "application_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "premium_progress_bar_enabled": False,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": channels,
            "threads": threads,
            "members": [self._full_member(gid, uid) for uid in member_ids],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _dm_channel(self, uid: str) -> JSON:
        cid = self._dm_by_user.get(uid)
        if cid is None:
            cid = self.snowflake()
            self._channels[cid] = {
                "id": cid,
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [copy.deepcopy(self._users[uid])],
            }
            self._channel_messages[cid] = []
            self._dm_by_user[uid] = cid
        return self._channels[cid]

    def _mentions(self, content: str, gid: str | None, allowed: Any = None) -> list[JSON]:
        ids = list(dict.fromkeys(_MENTION_RE.findall(content or "")))
        if isinstance(allowed, Mapping):
            parse = allowed.get("parse") or []
            explicit = [str(u) for u in allowed.get("users") or []]
            ids = [i for i in ids if "users" in parse or i in explicit]
        out = []
        for uid in ids:
            if uid not in self._users:
                continue
            user = copy.deepcopy(self._users[uid])
            if gid and uid in self._guilds[gid].members:
                user["member"] = copy.deepcopy(self._guilds[gid].members[uid])
            out.append(user)
        return out

    def _new_message(self, channel: JSON, author: JSON, *, content: str, type_: int = 0, **fields: Any) -> JSON:
        gid = channel.get("guild_id")
        msg: JSON = {
            "id": self.snowflake(),
            "channel_id": channel["id"],
            "type": type_,
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": self.clock().isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": self._mentions(content, gid, fields.pop("allowed_mentions", None)),
            "mention_roles": [],
            "mention_channels": [],
            "attachments": [],
            "embeds": [],
            "reactions": [],
            "pinned": False,
            "flags": 0,
            "components": [],
        }
        msg.update(fields)
        if gid:
            msg["guild_id"] = gid
            if author["id"] in self._guilds[gid].members:
                msg["member"] = copy.deepcopy(self._guilds[gid].members[author["id"]])
        return msg

    def _store_message(self, msg: JSON) -> None:
        self._messages[msg["id"]] = msg
        self._channel_messages.setdefault(msg["channel_id"], []).append(msg["id"])
        channel = self._channels.get(msg["channel_id"])
        if channel is not None:
            channel["last_message_id"] = msg["id"]

    def _bump_thread(self, channel: JSON) -> None:
        if channel["type"] in (10, 11, 12):
            channel["message_count"] += 1
            channel["total_message_sent"] += 1

    def _gateway_message(self, msg: JSON, session: _Session) -> JSON | None:
        """The message as this session may see it: without MESSAGE_CONTENT, others' guild messages are blank."""
        gid = msg.get("guild_id")
        need = INTENT_GUILD_MESSAGES if gid else INTENT_DIRECT_MESSAGES
        if not session.intents & need:
            return None
        data = copy.deepcopy(msg)
        exempt = (
            not gid
            or msg["author"]["id"] == self.bot_user_id
            or any(m["id"] == self.bot_user_id for m in msg.get("mentions", []))
        )
        if not session.intents & INTENT_MESSAGE_CONTENT and not exempt:
            data.update(content="", embeds=[], attachments=[], components=[])
        return data

    async def _dispatch_message(self, event: str, msg: JSON) -> None:
        await self._dispatch(event, lambda s: self._gateway_message(msg, s), guild_id=msg.get("guild_id"))

    async def _delete_stored_message(self, msg: JSON) -> None:
        mid = msg["id"]
        self._messages.pop(mid, None)
        with contextlib.suppress(ValueError):
            self._channel_messages.get(msg["channel_id"], []).remove(mid)
        self._allowed_mentions.pop(mid, None)
        payload: JSON = {"id": mid, "channel_id": msg["channel_id"]}
        gid = msg.get("guild_id")
        if gid:
            payload["guild_id"] = gid
        intent = INTENT_GUILD_MESSAGES if gid else INTENT_DIRECT_MESSAGES
        await self._dispatch("MESSAGE_DELETE", lambda s: payload, guild_id=gid, intent=intent)

    def _add_reaction_to(self, msg: JSON, emoji: str, *, me: bool) -> None:
        name, _, emoji_id = emoji.partition(":")
        for r in msg["reactions"]:
            if r["emoji"]["name"] == name:
                r["count"] += 1
                r["count_details"]["normal"] += 1
                r["me"] = r["me"] or me
                return
        msg["reactions"].append(
            {
                "count": 1,
                "count_details": {"burst": 0, "normal": 1},
                "me": me,
                "me_burst": False,
                "burst_colors": [],
                "emoji": {"id": emoji_id or None, "name": name},
            }
        )

    # ------------------------------------------------------------------ interactions

    def _find_command(self, gid: str | None, name: str) -> JSON:
        pool = (self._guild_commands.get(gid, []) if gid else []) + self._global_commands
        for cmd in pool:
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        synced = sorted({c["name"] for c in pool})
        raise AssertionError(f"no synced slash command {name!r} visible in guild {gid}; synced: {synced}")

    def _command_data(
        self,
        gid: str | None,
        command: str,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        *,
        focused: str | None,
    ) -> JSON:
        path = command.split()
        cmd = self._find_command(gid, path[0])
        schema: list[JSON] = cmd.get("options") or []
        resolved: dict[str, dict[str, JSON]] = {}
        chain: list[JSON] = []
        for part in path[1:]:
            sub = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
            if sub is None:
                raise AssertionError(f"command {command!r}: {part!r} is not a subcommand or group")
            chain.append({"type": sub["type"], "name": part, "options": []})
            schema = sub.get("options") or []
        if any(o["type"] in (1, 2) for o in schema):
            raise AssertionError(f"command {command!r} needs a subcommand: {[o['name'] for o in schema]}")
        if options is None or isinstance(options, Mapping):
            leaf = self._leaf_options(gid, schema, dict(options or {}), resolved, focused=focused, command=command)
        else:
            leaf = [dict(o) for o in options]
        for outer, inner in itertools.pairwise(chain):
            outer["options"] = [inner]
        if chain:
            chain[-1]["options"] = leaf
        data: JSON = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": [chain[0]] if chain else leaf}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    def _leaf_options(
        self,
        gid: str | None,
        schema: list[JSON],
        given: dict[str, Any],
        resolved: dict[str, dict[str, JSON]],
        *,
        focused: str | None,
        command: str,
    ) -> list[JSON]:
        by_name = {o["name"]: o for o in schema}
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            raise AssertionError(f"command {command!r} has no options {unknown}; it has {sorted(by_name)}")
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in given]
            if missing:
                raise AssertionError(f"command {command!r} is missing required options {missing}")
        out: list[JSON] = []
        for name, value in given.items():
            opt = by_name[name]
            t = opt["type"]
            entry: JSON = {"name": name, "type": t}
            if name == focused:
                entry.update(value=str(value), focused=True)
                out.append(entry)
                continue
            choices = [c["value"] for c in opt.get("choices") or []]
            if choices and value not in choices:
                raise AssertionError(f"option {name!r}={value!r} is not one of its choices {choices}")
            if t == 4:
                value = int(value)
            elif t == 10:
                value = float(value)
            elif t == 5:
                value = bool(value)
            elif t in (6, 7, 8, 9):
                value = str(value)
                kinds = opt.get("channel_types")
                if t == 7 and kinds and value in self._channels and self._channels[value]["type"] not in kinds:
                    raise AssertionError(f"option {name!r}: the channel picker only offers channel types {kinds}")
                if focused is None:
                    self._resolve(gid, t, value, resolved)
            entry["value"] = value
            out.append(entry)
        return out

    def _resolve(self, gid: str | None, t: int, value: str, resolved: dict[str, dict[str, JSON]]) -> None:
        if t in (6, 9) and value in self._users:
            resolved.setdefault("users", {})[value] = copy.deepcopy(self._users[value])
            if gid and value in self._guilds[gid].members:
                member = copy.deepcopy(self._guilds[gid].members[value])
                member["permissions"] = str(self._permissions(gid, value, None))
                resolved.setdefault("members", {})[value] = member
        elif t in (8, 9) and gid and value in self._guilds[gid].roles:
            resolved.setdefault("roles", {})[value] = copy.deepcopy(self._guilds[gid].roles[value])
        elif t == 7 and value in self._channels:
            channel = copy.deepcopy(self._channels[value])
            if gid:
                channel["permissions"] = str(self._permissions(gid, self.bot_user_id, channel))
            resolved.setdefault("channels", {})[value] = channel
        else:
            raise AssertionError(f"option value {value} does not name a known user, role or channel")

    def _submitted_component(self, comp: Mapping[str, Any], remaining: dict[str, Any]) -> JSON | None:
        t = comp.get("type")
        if t == 1:
            inner = [self._submitted_component(c, remaining) for c in comp.get("components") or []]
            out: JSON = {"type": 1, "components": [c for c in inner if c is not None]}
        elif t == 18:
            child = self._submitted_component(comp["component"], remaining)
            if child is None:
                return None
            out = {"type": 18, "component": child}
        elif t == 4:
            cid = comp["custom_id"]
            value = str(remaining.pop(cid, comp.get("value") or ""))
            if comp.get("required", True) and not value:
                raise AssertionError(f"modal input {cid!r} is required")
            if value and len(value) < int(comp.get("min_length") or 0):
                raise AssertionError(f"modal input {cid!r} needs at least {comp['min_length']} characters")
            if comp.get("max_length") is not None and len(value) > int(comp["max_length"]):
                raise AssertionError(f"modal input {cid!r} allows at most {comp['max_length']} characters")
            out = {"type": 4, "custom_id": cid, "value": value}
        elif t in (3, 5, 6, 7, 8):
            cid = comp["custom_id"]
            picked = remaining.pop(cid, [])
            out = {"type": t, "custom_id": cid, "values": [picked] if isinstance(picked, str) else list(picked)}
        else:
            return None
        if comp.get("id") is not None:
            out["id"] = comp["id"]
        return out

    async def _create_interaction(
        self,
        type_: int,
        guild_id: str | None,
        channel_id: int | str,
        user_id: int | str,
        data: JSON,
        *,
        message: JSON | None = None,
    ) -> Interaction:
        channel = self._channel_or_raise(channel_id)
        uid = str(user_id)
        self._require_user(uid)
        iid = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: JSON = {
            "id": iid,
            "application_id": self.application_id,
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "channel_id": channel["id"],
        }
        channel_payload = copy.deepcopy(channel)
        if guild_id is not None:
            gid = str(guild_id)
            guild = self._guild(gid)
            if uid not in guild.members:
                raise AssertionError(f"user {uid} is not a member of guild {gid}")
            channel_payload["permissions"] = str(self._permissions(gid, uid, channel))
            member = self._full_member(gid, uid)
            member["permissions"] = channel_payload["permissions"]
            payload.update(
                guild_id=gid,
                guild={"id": gid, "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                app_permissions=str(self._permissions(gid, self.bot_user_id, channel)),
                context=0,
                authorizing_integration_owners={"0": gid},
            )
        else:
            payload.update(
                user=copy.deepcopy(self._users[uid]),
                app_permissions=str(EVERYONE_PERMISSIONS),
                context=1,
                authorizing_integration_owners={"1": uid},
            )
        payload["channel"] = channel_payload
        if message is not None:
            payload["message"] = message
        interaction = Interaction(id=iid, token=token, type=type_, payload=payload)
        self.interactions.append(interaction)
        self._interactions_by_id[iid] = interaction
        self._interactions_by_token[token] = interaction
        await self._dispatch("INTERACTION_CREATE", lambda s: payload, guild_id=guild_id)
        return interaction

    # ------------------------------------------------------------------ gateway

    def _shard_of(self, guild_id: str | None, num_shards: int) -> int:
        return 0 if guild_id is None else (int(guild_id) >> 22) % num_shards

    def _queue(
        self, event: str, build: Callable[[_Session], JSON | None], *, guild_id: str | None, intent: int = 0
    ) -> list[_Session]:
        self.events.append(event)
        targets = []
        for session in self._sessions.values():
            if self._shard_of(guild_id, session.num_shards) != session.shard_id:
                continue
            if intent and not session.intents & intent:
                continue
            data = build(session)
            if data is None:
                continue
            self._append(session, event, data)
            targets.append(session)
        return targets

    def _append(self, session: _Session, event: str, data: JSON) -> None:
        seq = len(session.events) + 1
        frame = {"op": 0, "t": event, "s": seq, "d": data}
        session.events.append(json.dumps(frame, separators=(",", ":")))

    async def _dispatch(
        self, event: str, build: Callable[[_Session], JSON | None], *, guild_id: str | None, intent: int = 0
    ) -> None:
        for session in self._queue(event, build, guild_id=guild_id, intent=intent):
            await self._flush(session)

    def _dispatch_soon(
        self, event: str, build: Callable[[_Session], JSON | None], *, guild_id: str | None, intent: int = 0
    ) -> None:
        """For synchronous world edits: the frame gets its sequence number now, so order is kept."""
        for session in self._queue(event, build, guild_id=guild_id, intent=intent):
            self._spawn(self._flush(session))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, session: _Session) -> None:
        async with session.flush_lock:
            await self._flush_locked(session)

    async def _flush_locked(self, session: _Session) -> None:
        conn = session.conn
        while conn is not None and session.conn is conn and session.sent < len(session.events):
            try:
                await conn.send(session.events[session.sent])
            except (ConnectionError, RuntimeError):
                return  # the client will RESUME from the last sequence it saw
            session.sent += 1

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        try:
            await conn.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, d = frame.get("op"), frame.get("d")
                if op == 1:
                    await conn.send_json({"op": 11, "s": None, "t": None, "d": None})
                elif op == 2:
                    await self._on_identify(conn, d)
                elif op == 6:
                    await self._on_resume(conn, d)
                elif op == 8:
                    await self._on_request_members(conn, d)
        finally:
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
            # A clean close by the client ends its session, exactly as on Discord; 4000 etc. keep it resumable.
            if session is not None and not conn.closed_by_server and ws.close_code in (1000, 1001):
                self._sessions.pop(session.id, None)
        return ws

    async def _on_identify(self, conn: _Connection, d: JSON) -> None:
        self.identifies.append(d)
        if self.token is not None and d.get("token") != self.token:
            await conn.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(d.get("intents", 0))
        if self.require_message_content_approval and intents & INTENT_MESSAGE_CONTENT:
            await conn.ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        shard_id, num_shards = d.get("shard") or [0, 1]
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            await conn.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        session = _Session(id=secrets.token_hex(16), shard_id=shard_id, num_shards=num_shards, intents=intents)
        self._sessions[session.id] = session
        my_guilds = [g for g in self._guilds if self._shard_of(g, num_shards) == shard_id]
        ready = {
            "v": 10,
            "user": {**copy.deepcopy(self._users[self.bot_user_id]), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": g, "unavailable": True} for g in my_guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, num_shards],
            "application": {"id": self.application_id, "flags": self._application_flags()},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "user_settings": {},
            "auth": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
        }
        self.events.append("READY")
        self._append(session, "READY", ready)
        for gid in my_guilds:
            self.events.append("GUILD_CREATE")
            self._append(session, "GUILD_CREATE", self._guild_create_payload(gid, intents))
        async with session.flush_lock:
            session.conn = conn
            conn.session = session
            session.sent = 0
            await self._flush_locked(session)

    async def _on_resume(self, conn: _Connection, d: JSON) -> None:
        session = self._sessions.get(str(d.get("session_id")))
        if session is None or (self.token is not None and d.get("token") != self.token):
            await conn.send_json({"op": 9, "d": False, "s": None, "t": None})
            return
        self.resumes += 1
        async with session.flush_lock:
            old = session.conn
            if old is not None and old is not conn:
                old.closed_by_server = True
                old.session = None
            session.conn = conn
            conn.session = session
            session.sent = min(int(d.get("seq") or 0), len(session.events))
            await self._flush_locked(session)
            self.events.append("RESUMED")
            await conn.send_json({"op": 0, "t": "RESUMED", "s": None, "d": {}})

    async def _on_request_members(self, conn: _Connection, d: JSON) -> None:
        session = conn.session
        gid = str(d.get("guild_id"))
        if session is None or gid not in self._guilds:
            return
        guild = self._guilds[gid]
        wanted = [str(u) for u in d.get("user_ids") or []]
        query = (d.get("query") or "").lower()
        limit = int(d.get("limit") or 0) or len(guild.members)
        if wanted:
            ids = [u for u in wanted if u in guild.members]
        else:
            ids = [u for u in guild.members if self._users[u]["username"].lower().startswith(query)][:limit]
        chunk: JSON = {
            "guild_id": gid,
            "members": [self._full_member(gid, u) for u in ids],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [u for u in wanted if u not in guild.members],
        }
        if d.get("nonce"):
            chunk["nonce"] = d["nonce"]
        self.events.append("GUILD_MEMBERS_CHUNK")
        self._append(session, "GUILD_MEMBERS_CHUNK", chunk)
        await self._flush(session)

    def _application_flags(self) -> int:
        # Unverified apps carry the *_LIMITED flags; discord.py only stores them.
        return (1 << 15) | (1 << 19) | (1 << 23)

    # ------------------------------------------------------------------ REST plumbing

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        self.requests.append(RecordedRequest(request.method, path, body))
        self.uploads += [{**f, "method": request.method, "path": path} for f in files]
        fault = self._take_fault(request.method, path)
        if fault is not None:
            self.injected[str(fault.status)] = self.injected.get(str(fault.status), 0) + 1
            return self._fault_response(fault)
        is_webhook = path.startswith(("/webhooks/", "/interactions/"))
        if self.token is not None and not is_webhook and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json_response({"code": 0, "message": "401: Unauthorized"}, 401)
        for method, rx, handler in self._routes:
            if method != request.method:
                continue
            match = rx.fullmatch(path)
            if match is None:
                continue
            try:
                return await handler(body=body, files=files, query=request.query, **match.groupdict())
            except _ApiError as exc:
                return _json_response(exc.body, exc.status)
        return _json_response({"code": 0, "message": "404: Not Found"}, 404)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[JSON]]:
        """JSON bodies, or discord.py's multipart uploads (``payload_json`` plus ``files[n]``)."""
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[JSON] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                content = await part.read()
                if part.name == "payload_json":
                    payload = json.loads(content)
                else:
                    files.append(
                        {
                            "name": part.name,
                            "filename": part.filename,
                            "size": len(content),
                            "data": bytes(content),
                            "content_type": part.headers.get("Content-Type"),
                        }
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method == method and fault.pattern.fullmatch(path):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: _Fault) -> web.Response:
        if fault.status == 429:
            retry = 0.05 if fault.retry_after is None else fault.retry_after
            body = fault.body or {"message": "You are being rate limited.", "retry_after": retry, "global": False}
            scope = "global" if body.get("global") else "user"
            headers = {
                "Retry-After": str(max(1, math.ceil(retry))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": "fake" + secrets.token_hex(8),
                "X-RateLimit-Scope": scope,
                **({"X-RateLimit-Global": "true"} if scope == "global" else {}),
                # Without Via discord.py assumes a Cloudflare ban and raises instead of retrying.
                "Via": "1.1 google",
            }
            return _json_response(body, 429, headers)
        body = fault.body if fault.body is not None else {"code": 0, "message": f"{fault.status}: fake failure"}
        return _json_response(body, fault.status)

    def _live_channel(self, channel_id: str) -> JSON:
        if channel_id not in self._channels or channel_id in self._deleted_channels:
            raise _ApiError(404, 10003, "Unknown Channel")
        return self._channels[channel_id]

    def _live_message(self, channel_id: str, message_id: str) -> JSON:
        self._live_channel(channel_id)
        msg = self._messages.get(message_id)
        if msg is None or msg["channel_id"] != channel_id:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    def _check_can_send(self, channel: JSON) -> None:
        denied = channel["id"] in self._denied_channels or (
            channel["type"] in (10, 11, 12) and channel.get("parent_id") in self._denied_channels
        )
        if denied:
            raise _ApiError(403, 50001, "Missing Access")

    def _validate_message(self, body: Mapping[str, Any], *, creating: bool, files: Sequence[JSON] = ()) -> None:
        """Discord's own limits, so the fake rejects what Discord would instead of hiding the bug."""
        content = body.get("content") or ""
        embeds = body.get("embeds") or []
        components = body.get("components") or []
        flags = int(body.get("flags") or 0)
        if len(content) > 2000:
            raise _invalid_form("content: Must be 2000 or fewer in length.")
        if len(embeds) > 10:
            raise _invalid_form("embeds: Must be 10 or fewer in length.")
        total = 0
        for embed in embeds:
            for key, limit in (("title", 256), ("description", 4096)):
                if len(embed.get(key) or "") > limit:
                    raise _invalid_form(f"embeds.{key}: Must be {limit} or fewer in length.")
                total += len(embed.get(key) or "")
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _invalid_form("embeds.fields: Must be 25 or fewer in length.")
            for fld in fields:
                if not fld.get("name") or not fld.get("value"):
                    raise _invalid_form("embeds.fields: name and value are required.")
                if len(fld["name"]) > 256 or len(fld["value"]) > 1024:
                    raise _invalid_form("embeds.fields: name ≤ 256 and value ≤ 1024 characters.")
                total += len(fld["name"]) + len(fld["value"])
        if total > 6000:
            raise _invalid_form("embeds: Embed size exceeds maximum size of 6000")
        if flags & IS_COMPONENTS_V2 and (content or embeds):
            raise _invalid_form("content/embeds cannot be used with the IS_COMPONENTS_V2 flag")
        if not flags & IS_COMPONENTS_V2 and len(components) > 5:
            raise _invalid_form("components: Must be 5 or fewer in length.")
        if not flags & IS_COMPONENTS_V2:
            for row in components:
                _check_action_row(row)
        custom_ids = [c["custom_id"] for c in _walk_components(components) if c.get("custom_id")]
        if len(custom_ids) != len(set(custom_ids)):
            raise _invalid_form("components: custom_id values must be unique")
        if any(len(c) > 100 for c in custom_ids):
            raise _invalid_form("components.custom_id: Must be 100 or fewer in length.")
        if creating and not (content or embeds or components or files or body.get("sticker_ids") or body.get("poll")):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _message_fields(self, body: Mapping[str, Any], files: Sequence[JSON]) -> JSON:
        fields: JSON = {}
        if "content" in body:
            fields["content"] = body["content"] or ""
        if "embeds" in body:
            fields["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            fields["components"] = copy.deepcopy(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            fields["flags"] = int(body["flags"])
        if files:
            # discord.py describes each file in payload_json's "attachments" (by index): keep its description.
            described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, Mapping)}
            fields["attachments"] = [
                {
                    "id": self.snowflake(),
                    "filename": f["filename"],
                    "size": f["size"],
                    "url": f"{self.api_base}/attachments/{f['filename']}",
                    "proxy_url": f"{self.api_base}/attachments/{f['filename']}",
                    **({"content_type": f["content_type"]} if f.get("content_type") else {}),
                    **(
                        {"description": described[str(n)]["description"]}
                        if described.get(str(n), {}).get("description")
                        else {}
                    ),
                }
                for n, f in enumerate(files)
            ]
        return fields

    # ------------------------------------------------------------------ REST handlers

    async def _get_gateway(self, **_: Any) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, **_: Any) -> web.Response:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1},
            }
        )

    async def _get_me(self, **_: Any) -> web.Response:
        return _json_response(
            {**self._users[self.bot_user_id], "verified": True, "mfa_enabled": False, "locale": "en-US"}
        )

    async def _get_user(self, user_id: str, **_: Any) -> web.Response:
        if user_id not in self._users:
            raise _ApiError(404, 10013, "Unknown User")
        return _json_response(self._users[user_id])

    async def _get_application(self, **_: Any) -> web.Response:
        return _json_response(
            {
                "id": self.application_id,
                "name": "interview-bot",
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self._application_flags(),
                "owner": self._user_obj("1149363000000000000", "app-owner"),
                "team": None,
                "bot": self._users[self.bot_user_id],
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": len(self._guilds),
            }
        )

    async def _create_dm(self, body: Any, **_: Any) -> web.Response:
        uid = str((body or {}).get("recipient_id"))
        if uid not in self._users:
            raise _ApiError(400, 50007, "Cannot send messages to this user")
        return _json_response(self._dm_channel(uid))

    async def _get_channel(self, channel_id: str, **_: Any) -> web.Response:
        return _json_response(self._live_channel(channel_id))

    async def _get_messages(self, channel_id: str, query: Mapping[str, str], **_: Any) -> web.Response:
        self._live_channel(channel_id)
        ids = list(self._channel_messages.get(channel_id, []))
        limit = int(query.get("limit", 50))
        if "before" in query:
            ids = [i for i in ids if int(i) < int(query["before"])]
        if "after" in query:
            ids = [i for i in ids if int(i) > int(query["after"])][:limit]
        return _json_response([self._messages[i] for i in reversed(ids[-limit:])])

    async def _get_message(self, channel_id: str, message_id: str, **_: Any) -> web.Response:
        return _json_response(self._live_message(channel_id, message_id))

    async def _post_message(self, channel_id: str, body: Any, files: list[JSON], **_: Any) -> web.Response:
        channel = self._live_channel(channel_id)
        self._check_can_send(channel)
        if files and {channel["id"], channel.get("parent_id")} & self._no_attach_channels:
            raise _ApiError(403, 50013, "Missing Permissions")
        body = body or {}
        self._validate_message(body, creating=True, files=files)
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise _invalid_form("nonce: Must be 25 or fewer in length.")
        if nonce is not None and body.get("enforce_nonce"):
            # Like Discord: the same author sending the same nonce again within a few minutes gets the
            # message it already created back, and nothing new is posted.
            earlier = self._nonces.get(str(nonce))
            if earlier is not None and earlier[1] > time.monotonic() - NONCE_WINDOW and earlier[0] in self._messages:
                return _json_response({**self._messages[earlier[0]], "nonce": str(nonce)})
        fields = self._message_fields(body, files)
        ref = body.get("message_reference")
        type_ = 0
        if ref:
            target = self._messages.get(str(ref.get("message_id")))
            if target is None:
                if ref.get("fail_if_not_exists", True):
                    raise _invalid_form("message_reference: Unknown message")
            else:
                type_ = 19
                fields["message_reference"] = {
                    "type": 0,
                    "message_id": target["id"],
                    "channel_id": target["channel_id"],
                    **({"guild_id": target["guild_id"]} if target.get("guild_id") else {}),
                }
                fields["referenced_message"] = copy.deepcopy(target)
        content = fields.pop("content", "")
        msg = self._new_message(
            channel,
            self._users[self.bot_user_id],
            content=content,
            type_=type_,
            allowed_mentions=body.get("allowed_mentions"),
            **fields,
        )
        self._store_message(msg)
        self._allowed_mentions[msg["id"]] = copy.deepcopy(body.get("allowed_mentions"))
        if nonce is not None:
            self._nonces[str(nonce)] = (msg["id"], time.monotonic())
            msg = {**msg, "nonce": str(nonce)}
        self._bump_thread(channel)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return _json_response(msg)

    async def _patch_message(
        self, channel_id: str, message_id: str, body: Any, files: list[JSON], **_: Any
    ) -> web.Response:
        msg = self._live_message(channel_id, message_id)
        if msg["author"]["id"] != self.bot_user_id:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = body or {}
        self._validate_message(body, creating=False)
        await self._apply_edit(msg, body, files)
        if "allowed_mentions" in body and message_id in self._allowed_mentions:
            self._allowed_mentions[message_id] = copy.deepcopy(body["allowed_mentions"])
        return _json_response(msg)

    async def _apply_edit(self, msg: JSON, body: Mapping[str, Any], files: Sequence[JSON]) -> None:
        fields = self._message_fields(body, files)
        if "flags" in fields:
            # Only SUPPRESS_EMBEDS can be toggled on edit; ephemeral and v2 stick to the message.
            fields["flags"] = (msg["flags"] & ~4) | (fields["flags"] & 4)
        msg.update(fields)
        msg["flags"] &= ~LOADING
        msg["edited_timestamp"] = self.clock().isoformat()
        msg["mentions"] = self._mentions(msg["content"], msg.get("guild_id"), body.get("allowed_mentions"))
        if not msg["flags"] & EPHEMERAL:
            await self._dispatch_message("MESSAGE_UPDATE", msg)

    async def _delete_message(self, channel_id: str, message_id: str, **_: Any) -> web.Response:
        msg = self._live_message(channel_id, message_id)
        await self._delete_stored_message(msg)
        return web.Response(status=204)

    def _thread_obj(self, parent: JSON, tid: str, name: str, type_: int, auto_archive: int) -> JSON:
        now = _now_iso()
        return {
            "id": tid,
            "type": type_,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": self.bot_user_id,
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive,
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
                **({"invitable": True} if type_ == 12 else {}),
            },
        }

    async def _start_thread(self, parent: JSON, tid: str, body: Mapping[str, Any], type_: int) -> web.Response:
        if parent["type"] not in (0, 5):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _invalid_form("name: Must be between 1 and 100 in length.")
        thread = self._thread_obj(parent, tid, name, type_, int(body.get("auto_archive_duration") or 4320))
        self._channels[tid] = thread
        self._channel_messages[tid] = []
        self._guilds[parent["guild_id"]].channel_ids.append(tid)
        member = {"id": tid, "user_id": self.bot_user_id, "join_timestamp": _now_iso(), "flags": 1}
        created = {**thread, "newly_created": True, "member": member}
        await self._dispatch("THREAD_CREATE", lambda s: created, guild_id=parent["guild_id"], intent=INTENT_GUILDS)
        return _json_response({**thread, "member": member})

    async def _create_thread_from_message(self, channel_id: str, message_id: str, body: Any, **_: Any) -> web.Response:
        msg = self._live_message(channel_id, message_id)
        parent = self._channels[channel_id]
        self._check_can_send(parent)
        if message_id in self._threads_by_message:
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        # Like Discord, a thread started from a message reuses the message's id.
        response = await self._start_thread(parent, message_id, body or {}, 11)
        self._threads_by_message[message_id] = message_id
        msg["thread"] = copy.deepcopy(self._channels[message_id])
        msg["flags"] |= 1 << 5  # HAS_THREAD
        return response

    async def _create_thread(self, channel_id: str, body: Any, **_: Any) -> web.Response:
        parent = self._live_channel(channel_id)
        self._check_can_send(parent)
        body = body or {}
        return await self._start_thread(parent, self.snowflake(), body, int(body.get("type") or 12))

    async def _add_reaction(self, channel_id: str, message_id: str, emoji: str, **_: Any) -> web.Response:
        msg = self._live_message(channel_id, message_id)
        self._add_reaction_to(msg, emoji, me=True)
        name, _sep, emoji_id = emoji.partition(":")
        gid = msg.get("guild_id")
        payload: JSON = {
            "user_id": self.bot_user_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "emoji": {"id": emoji_id or None, "name": name},
            "burst": False,
            "type": 0,
            "message_author_id": msg["author"]["id"],
        }
        if gid:
            payload.update(guild_id=gid, member=self._full_member(gid, self.bot_user_id))
        intent = INTENT_GUILD_MESSAGE_REACTIONS if gid else INTENT_DIRECT_MESSAGE_REACTIONS
        await self._dispatch("MESSAGE_REACTION_ADD", lambda s: payload, guild_id=gid, intent=intent)
        return web.Response(status=204)

    async def _remove_reaction(self, channel_id: str, message_id: str, emoji: str, **_: Any) -> web.Response:
        msg = self._live_message(channel_id, message_id)
        name = emoji.partition(":")[0]
        for r in list(msg["reactions"]):
            if r["emoji"]["name"] == name and r["me"]:
                r["me"] = False
                r["count"] -= 1
                r["count_details"]["normal"] -= 1
                if r["count"] == 0:
                    msg["reactions"].remove(r)
        return web.Response(status=204)

    async def _typing(self, channel_id: str, **_: Any) -> web.Response:
        self._live_channel(channel_id)
        return web.Response(status=204)

    def _rest_guild(self, guild_id: str) -> _Guild:
        if guild_id not in self._guilds:
            raise _ApiError(404, 10004, "Unknown Guild")
        return self._guilds[guild_id]

    async def _get_guild(self, guild_id: str, **_: Any) -> web.Response:
        self._rest_guild(guild_id)
        payload = self._guild_create_payload(guild_id, 0)
        for key in ("channels", "threads", "members", "voice_states", "presences", "joined_at", "member_count"):
            payload.pop(key, None)
        return _json_response(payload)

    async def _get_guild_channels(self, guild_id: str, **_: Any) -> web.Response:
        guild = self._rest_guild(guild_id)
        return _json_response([self._channels[c] for c in guild.channel_ids if self._channels[c]["type"] in (0, 5)])

    async def _get_guild_roles(self, guild_id: str, **_: Any) -> web.Response:
        return _json_response(list(self._rest_guild(guild_id).roles.values()))

    async def _get_guild_members(self, guild_id: str, **_: Any) -> web.Response:
        guild = self._rest_guild(guild_id)
        return _json_response([self._full_member(guild_id, u) for u in guild.members])

    async def _get_guild_member(self, guild_id: str, user_id: str, **_: Any) -> web.Response:
        guild = self._rest_guild(guild_id)
        if user_id not in guild.members:
            raise _ApiError(404, 10007, "Unknown Member")
        return _json_response(self._full_member(guild_id, user_id))

    def _check_app(self, app_id: str) -> None:
        if app_id != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")

    async def _get_commands(self, app_id: str, guild_id: str | None = None, **_: Any) -> web.Response:
        self._check_app(app_id)
        if guild_id is not None:
            self._rest_guild(guild_id)
            return _json_response(self._guild_commands.get(guild_id, []))
        return _json_response(self._global_commands)

    async def _put_commands(self, app_id: str, body: Any, guild_id: str | None = None, **_: Any) -> web.Response:
        self._check_app(app_id)
        if guild_id is not None:
            self._rest_guild(guild_id)
        if not isinstance(body, list):
            raise _invalid_form("body must be a list of commands")
        previous = {(c["name"], c.get("type", 1)): c for c in self._guild_commands.get(guild_id or "", [])}
        if guild_id is None:
            previous = {(c["name"], c.get("type", 1)): c for c in self._global_commands}
        seen: set[tuple[str, int]] = set()
        stored: list[JSON] = []
        for raw in body:
            self._validate_command(raw)
            key = (raw["name"], int(raw.get("type", 1)))
            if key in seen:
                raise _invalid_form(f"duplicate command name {raw['name']!r}")
            seen.add(key)
            old = previous.get(key)
            cmd: JSON = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                "name_localizations": None,
                "description_localizations": None,
                **copy.deepcopy(raw),
                "id": old["id"] if old else self.snowflake(),
                "application_id": self.application_id,
                "version": self.snowflake(),
            }
            if guild_id is not None:
                cmd["guild_id"] = guild_id
            stored.append(cmd)
        if guild_id is None:
            self._global_commands = stored
        else:
            self._guild_commands[guild_id] = stored
        return _json_response(stored)

    def _validate_command(self, cmd: Mapping[str, Any], depth: int = 0) -> None:
        name = cmd.get("name") or ""
        # Options and slash commands need lowercase names and descriptions; context-menu names do not.
        is_chat = depth > 0 or int(cmd.get("type", 1)) == 1
        if is_chat and (not _COMMAND_NAME_RE.match(name) or name != name.lower()):
            raise _invalid_form(f"name {name!r}: must be 1-32 lowercase letters, digits, - or _")
        if is_chat and not 1 <= len(cmd.get("description") or "") <= 100:
            raise _invalid_form(f"{name}.description: Must be between 1 and 100 in length.")
        options = cmd.get("options") or []
        if len(options) > 25:
            raise _invalid_form(f"{name}.options: Must be 25 or fewer in length.")
        names = [o.get("name") for o in options]
        if len(names) != len(set(names)):
            raise _invalid_form(f"{name}.options: option names must be unique")
        seen_optional = False
        for opt in options:
            if opt.get("type") not in (1, 2):
                if opt.get("required"):
                    if seen_optional:
                        raise _invalid_form(f"{name}.options: required options must be placed before optional")
                else:
                    seen_optional = True
            if len(opt.get("choices") or []) > 25:
                raise _invalid_form(f"{name}.{opt.get('name')}.choices: Must be 25 or fewer in length.")
            self._validate_command(opt, depth + 1)

    def _interaction_for(self, app_id: str, token: str) -> Interaction:
        interaction = self._interactions_by_token.get(token)
        if app_id != self.application_id or interaction is None or not interaction.acknowledged:
            # Discord only creates the webhook once the interaction has been answered.
            raise _ApiError(404, 10015, "Unknown Webhook")
        return interaction

    async def _callback(
        self, interaction_id: str, token: str, body: Any, files: list[JSON] | None = None, **_: Any
    ) -> web.Response:
        interaction = self._interactions_by_id.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.acknowledged:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = body or {}
        type_ = int(body.get("type", 0))
        data: JSON = body.get("data") or {}
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5}}[interaction.type]
        if interaction.type == 5 and interaction.payload.get("message"):
            allowed = allowed | {6, 7}
        if type_ not in allowed:
            raise _invalid_form(f"type {type_} is not a valid response to interaction type {interaction.type}")
        source = interaction.payload.get("message")
        message: JSON | None = None
        ephemeral = False
        if type_ in (4, 5):
            self._validate_message(data, creating=type_ == 4, files=files or [])
            channel = self._channels[interaction.payload["channel_id"]]
            fields = self._message_fields(data, files or [])
            fields["flags"] = int(data.get("flags") or 0) | (LOADING if type_ == 5 else 0)
            content = fields.pop("content", "")
            message = self._interaction_message(interaction, channel, content, fields, data.get("allowed_mentions"))
            ephemeral = bool(message["flags"] & EPHEMERAL)
            interaction.original_message_id = message["id"]
            interaction.original_ephemeral = ephemeral
        elif type_ in (6, 7) and source is not None:
            message = self._messages.get(source["id"])
            if message is None:
                raise _ApiError(404, 10008, "Unknown Message")
            ephemeral = bool(message["flags"] & EPHEMERAL)
            interaction.original_message_id = message["id"]
            interaction.original_ephemeral = ephemeral
            if type_ == 7:
                self._validate_message(data, creating=False)
                await self._apply_edit(message, data, [])
        interaction.responses.append(
            {
                "kind": "callback",
                "type": type_,
                "data": copy.deepcopy(data),
                "ephemeral": ephemeral,
                "message_id": message["id"] if message else None,
            }
        )
        if type_ in (4, 5) and message is not None and not ephemeral:
            await self._dispatch_message("MESSAGE_CREATE", message)
        response: JSON = {
            "interaction": {
                "id": interaction.id,
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": type_ == 5,
                "response_message_ephemeral": ephemeral,
            }
        }
        if type_ not in (1, 8):
            response["resource"] = {"type": type_}
            if message is not None:
                response["resource"]["message"] = message
        return _json_response(response)

    def _interaction_message(
        self, interaction: Interaction, channel: JSON, content: str, fields: JSON, allowed_mentions: Any
    ) -> JSON:
        user = interaction.payload.get("user") or interaction.payload["member"]["user"]
        msg = self._new_message(
            channel,
            self._users[self.bot_user_id],
            content=content,
            type_=20 if interaction.type == 2 else 0,
            allowed_mentions=allowed_mentions,
            **fields,
        )
        msg.update(
            webhook_id=self.application_id,
            application_id=self.application_id,
            interaction_metadata={
                "id": interaction.id,
                "type": interaction.type,
                "user": copy.deepcopy(user),
                "authorizing_integration_owners": interaction.payload.get("authorizing_integration_owners", {}),
            },
        )
        # Visible replies join the channel history; messages() still lists only channel-endpoint posts.
        if msg["flags"] & EPHEMERAL:
            self._messages[msg["id"]] = msg
        else:
            self._store_message(msg)
        return msg

    async def _post_followup(self, app_id: str, token: str, body: Any, files: list[JSON], query: Any) -> web.Response:
        interaction = self._interaction_for(app_id, token)
        body = body or {}
        self._validate_message(body, creating=True, files=files)
        channel = self._channels[interaction.payload["channel_id"]]
        fields = self._message_fields(body, files)
        content = fields.pop("content", "")
        fields["flags"] = int(body.get("flags") or 0) & (EPHEMERAL | IS_COMPONENTS_V2 | 4 | 4096)
        msg = self._interaction_message(interaction, channel, content, fields, body.get("allowed_mentions"))
        ephemeral = bool(msg["flags"] & EPHEMERAL)
        interaction.followups[msg["id"]] = ephemeral
        interaction.responses.append(
            {
                "kind": "followup",
                "type": None,
                "data": copy.deepcopy(body),
                "ephemeral": ephemeral,
                "message_id": msg["id"],
            }
        )
        if not ephemeral:
            await self._dispatch_message("MESSAGE_CREATE", msg)
        if query.get("wait") in ("1", "true", "True"):
            return _json_response(msg)
        return web.Response(status=204)

    def _webhook_message(self, interaction: Interaction, message_id: str) -> tuple[JSON, bool]:
        mid = interaction.original_message_id if message_id == "@original" else message_id
        if mid is None or (message_id != "@original" and mid not in interaction.followups):
            raise _ApiError(404, 10008, "Unknown Message")
        msg = self._messages.get(mid)
        if msg is None:
            raise _ApiError(404, 10008, "Unknown Message")
        ephemeral = interaction.original_ephemeral if message_id == "@original" else interaction.followups[mid]
        return msg, ephemeral

    async def _get_webhook_message(self, app_id: str, token: str, message_id: str, **_: Any) -> web.Response:
        msg, _eph = self._webhook_message(self._interaction_for(app_id, token), message_id)
        return _json_response(msg)

    async def _patch_webhook_message(
        self, app_id: str, token: str, message_id: str, body: Any, files: list[JSON], **_: Any
    ) -> web.Response:
        interaction = self._interaction_for(app_id, token)
        msg, ephemeral = self._webhook_message(interaction, message_id)
        body = body or {}
        self._validate_message(body, creating=False)
        await self._apply_edit(msg, body, files)
        kind = "edit_original" if message_id == "@original" else "edit_followup"
        interaction.responses.append(
            {"kind": kind, "type": None, "data": copy.deepcopy(body), "ephemeral": ephemeral, "message_id": msg["id"]}
        )
        return _json_response(msg)

    async def _delete_webhook_message(self, app_id: str, token: str, message_id: str, **_: Any) -> web.Response:
        interaction = self._interaction_for(app_id, token)
        msg, ephemeral = self._webhook_message(interaction, message_id)
        kind = "delete_original" if message_id == "@original" else "delete_followup"
        interaction.responses.append(
            {"kind": kind, "type": None, "data": {}, "ephemeral": ephemeral, "message_id": msg["id"]}
        )
        if ephemeral:
            self._messages.pop(msg["id"], None)
        else:
            await self._delete_stored_message(msg)
        return web.Response(status=204)
