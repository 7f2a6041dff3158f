"""Socket Mode for the fake Slack: ``apps.connections.open`` and the websocket the app keeps open.

What the bot's real client (slack_sdk 3.47 ``socket_mode.aiohttp.SocketModeClient``, driven by bolt's
``AsyncSocketModeHandler``) does, and so what this fake answers:

* It calls ``apps.connections.open`` with the app-level token (``xapp-...``) as ``Authorization: Bearer`` and
  connects to the ``url`` in the answer. A ``ratelimited`` answer is waited out (``Retry-After``, default 30 s)
  and asked again; any other failure raises, and ``connect()`` tries again after ``ping_interval`` seconds.
* Once connected it pings every ``ping_interval`` seconds with ``sdk-ping-pong:<time>`` and reads the pongs
  (aiohttp's server answers pings by itself). A connection with no pong for four intervals is "stale".
* Every text frame is JSON. ``{"type": "hello", ...}`` needs nothing. ``{"type": "disconnect", ...}`` makes it
  fetch a new URL and connect again at once, closing the old socket itself. A close frame makes it reconnect
  at once; a connection that simply dies is noticed by the session monitor within ``ping_interval`` seconds.
* An envelope ``{"envelope_id", "type", "payload", "accepts_response_payload", ...}`` goes to bolt, which
  answers ``{"envelope_id": ..., "payload": ...}`` (the payload only when the ack carried a body).

What Slack does that matters to a bot, and the fake models: an ``events_api`` envelope that is not acknowledged
is delivered again with ``retry_attempt`` + 1 (here: on the next connection, when the one it went out on
drops before the ack); slash commands and interactions are never redelivered (the person sees an error).
Envelopes sent while no connection is open wait for the next one, as Slack holds them for a reconnecting app.

Use it by attaching it to a fake before that fake starts::

    fake = FakeSlackWebAPI()
    socket = FakeSocketMode(fake)
    await fake.start()
    slack = socket.client()          # a SlackClient whose requests travel over the socket
    await slack.slash("/quiz", "help", user, channel)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fake_slack.client import SlackClient, SlackHttpResult
from tests.fake_slack.server import FakeSlackWebAPI

__all__ = ["Connection", "Envelope", "FakeSocketMode", "SocketModeSlackClient"]

JsonDict = dict[str, Any]
# Slack gives up on an events_api envelope after three retries, as over HTTP.
MAX_RETRIES = 3


@dataclass
class Envelope:
    """One envelope as Slack tracks it: what was sent, how often, and the app's acknowledgement."""

    envelope_id: str
    type: str  # "events_api", "slash_commands" or "interactive"
    payload: JsonDict
    accepts_response_payload: bool
    retry_attempt: int = 0
    retry_reason: str = ""
    sent_on: list[int] = field(default_factory=list)  # the connection numbers it went out on, in order
    ack: JsonDict | None = None  # the app's answer, once it came
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    def wire(self) -> JsonDict:
        """The frame as Slack writes it: retry fields only on Events API envelopes."""
        frame: JsonDict = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api":
            frame["retry_attempt"] = self.retry_attempt
            frame["retry_reason"] = self.retry_reason
        return frame


@dataclass
class Connection:
    """One accepted websocket; ``number`` counts from 1 in the order they were opened."""

    number: int
    ws: web.WebSocketResponse
    request: web.Request
    opened_at: float
    closed_at: float | None = None
    close_reason: str = ""
    received: list[JsonDict] = field(default_factory=list)  # every frame the app sent, in order

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


class FakeSocketMode:
    """Slack's Socket Mode side, served on the same port as the fake Web API."""

    def __init__(self, fake: FakeSlackWebAPI, *, app_token: str | None = None, ticket_ttl: float = 30.0) -> None:
        self.fake = fake
        self.app_token = app_token or f"xapp-1-{fake.app_id}-{secrets.randbelow(10**13)}-{secrets.token_hex(32)}"
        self.ticket_ttl = ticket_ttl
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.opens = 0  # apps.connections.open calls answered with a URL
        self.refused_tickets = 0  # websocket upgrades refused: unknown, reused or expired ticket
        self.lost_acks = 0  # acks thrown away by ignore_acks()
        self.unknown_acks: list[JsonDict] = []  # acks naming no envelope we sent
        self._tickets: dict[str, float] = {}
        self._queue: list[Envelope] = []  # waiting for a connection
        self._ignore_acks = 0
        self._drop_after_send = 0
        self._refuse_upgrades = 0
        self.refused_upgrades = 0  # websocket upgrades answered 503 by refuse_upgrades()
        self._numbers = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        fake.route_hooks.append(self._routes)

    # ------------------------------------------------------------------ wiring

    def _routes(self, app: web.Application) -> None:
        # Ahead of the fake's catch-all /api/{method}: this method takes the app token, not the bot token.
        app.router.add_route("*", "/api/apps.connections.open", self._connections_open)
        app.router.add_get("/link/", self._websocket)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _: web.Application) -> None:
        for conn in self.connections:
            if conn.open:
                await conn.ws.close(code=1001, message=b"server shutting down")

    def client(self) -> SocketModeSlackClient:
        """A SlackClient that builds the same payloads as over HTTP and delivers them over the socket."""
        return SocketModeSlackClient(url="", signing_secret="", fake=self.fake, socket=self)

    # ------------------------------------------------------------------ apps.connections.open

    async def _connections_open(self, request: web.Request) -> web.Response:
        params = await self.fake._read_params(request)
        body_token = params.pop("token", None)
        self.fake.calls.append(("apps.connections.open", params))
        fault = self.fake._take_fault("apps.connections.open")
        if fault is not None:
            kind = str(fault.status) if fault.status != 200 else "error"
            self.fake.injected[kind] = self.fake.injected.get(kind, 0) + 1
            return self.fake._fault_response(fault)
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else body_token
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if not token.startswith("xapp-"):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        if token != self.app_token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = time.monotonic() + self.ticket_ttl
        self.opens += 1
        url = f"ws://127.0.0.1:{self.fake.base_url.rsplit(':', 1)[1]}/link/?ticket={ticket}&app_id={self.fake.app_id}"
        return web.json_response({"ok": True, "url": url})

    # ------------------------------------------------------------------ the websocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self._refuse_upgrades > 0:  # the link servers are down; the ticket is not used up
            self._refuse_upgrades -= 1
            self.refused_upgrades += 1
            return web.Response(status=503, text="service unavailable")
        ticket = request.query.get("ticket", "")
        expires = self._tickets.pop(ticket, None)  # a URL is good for one connection
        if expires is None or expires < time.monotonic():
            self.refused_tickets += 1
            return web.Response(status=401, text="invalid or used ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(next(self._numbers), ws, request, time.monotonic())
        self.connections.append(conn)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": sum(1 for c in self.connections if c.open),
                "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.fake.app_id},
            }
        )
        await self._flush(conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except json.JSONDecodeError:
                    frame = {"unparsed": msg.data}
                conn.received.append(frame)
                if isinstance(frame, dict) and "envelope_id" in frame:
                    self._take_ack(frame)
        finally:
            self._closed(conn, "closed by the app" if not conn.close_reason else conn.close_reason)
        return ws

    def _take_ack(self, frame: JsonDict) -> None:
        env = self.envelopes.get(str(frame["envelope_id"]))
        if env is None:
            self.unknown_acks.append(frame)
            return
        if self._ignore_acks > 0:
            self._ignore_acks -= 1
            self.lost_acks += 1
            return
        if env.ack is None:
            env.ack = frame
            env.acked.set()
            self._apply_ack(env)

    def _apply_ack(self, env: Envelope) -> None:
        """A slash command's ack body is what Slack shows at once: keep it with the command's response_url."""
        body = env.ack.get("payload") if env.ack else None
        if env.type == "slash_commands" and isinstance(body, dict) and body:
            key = env.payload.get("response_url", "").rsplit("/", 1)[-1]
            if key:
                self.fake._responses.setdefault(key, []).append({"ack": True, **body})

    def _closed(self, conn: Connection, reason: str) -> None:
        if conn.closed_at is not None:
            return
        conn.closed_at = time.monotonic()
        conn.close_reason = reason
        # What went out on this connection and was never acknowledged: Events API envelopes come again.
        for env in self.envelopes.values():
            if env.ack is None and env.sent_on and env.sent_on[-1] == conn.number and env.type == "events_api":
                if env.retry_attempt < MAX_RETRIES and env not in self._queue:
                    env.retry_attempt += 1
                    env.retry_reason = "timeout"
                    self._queue.append(env)
        current = self.current()
        if current is not None:
            task = asyncio.get_running_loop().create_task(self._flush(current))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    def current(self) -> Connection | None:
        """The newest open connection, where Slack sends envelopes (it spreads them; one is enough here)."""
        for conn in reversed(self.connections):
            if conn.open:
                return conn
        return None

    async def _flush(self, conn: Connection) -> None:
        while self._queue and conn.open:
            env = self._queue.pop(0)
            await self._write(conn, env)

    async def _write(self, conn: Connection, env: Envelope) -> None:
        env.sent_on.append(conn.number)
        try:
            await conn.ws.send_json(env.wire())
        except ConnectionError:
            self._closed(conn, "write failed")
            return
        if self._drop_after_send > 0:
            self._drop_after_send -= 1
            await self.drop(conn, reason="dropped right after a delivery")

    # ------------------------------------------------------------------ delivering

    async def deliver(
        self, kind: str, payload: Mapping[str, Any], *, accepts_response_payload: bool, wait_ack: float | None = 3.0
    ) -> Envelope:
        """Send one envelope (or queue it until a connection opens) and, unless ``wait_ack`` is None, wait that
        many seconds for its ack. Slack's own deadline is 3 seconds; a missing ack is not an error here, the
        test asserts on ``envelope.ack``."""
        env = Envelope(str(uuid.uuid4()), kind, dict(payload), accepts_response_payload)
        self.envelopes[env.envelope_id] = env
        conn = self.current()
        if conn is None:
            self._queue.append(env)
        else:
            await self._write(conn, env)
        if wait_ack is not None:
            try:
                async with asyncio.timeout(wait_ack):
                    await env.acked.wait()
            except TimeoutError:
                pass
        return env

    async def redeliver(self, envelope_id: str, *, reason: str = "timeout") -> Envelope:
        """Send an Events API envelope again as Slack's retry does (same ids, ``retry_attempt`` + 1), acked or
        not: Slack retries when the ack came too late, so the app may see an event it already handled."""
        env = self.envelopes[envelope_id]
        env.retry_attempt += 1
        env.retry_reason = reason
        env.ack = None
        env.acked.clear()
        conn = self.current()
        if conn is None:
            self._queue.append(env)
        else:
            await self._write(conn, env)
        return env

    # ------------------------------------------------------------------ faults

    async def drop(self, conn: Connection | None = None, *, reason: str = "dropped") -> None:
        """Cut the connection without a close frame, as a network failure or a load balancer does."""
        conn = conn or self.current()
        if conn is None:
            return
        conn.close_reason = reason
        transport = conn.request.transport
        if transport is not None:
            transport.abort()
        self._closed(conn, reason)

    async def close(self, conn: Connection | None = None, *, code: int = 1001) -> None:
        """Close the connection properly, with a close frame (Slack restarting a host)."""
        conn = conn or self.current()
        if conn is None:
            return
        conn.close_reason = f"closed by Slack ({code})"
        await conn.ws.close(code=code, message=b"going away")

    async def send_disconnect(self, reason: str = "refresh_requested", conn: Connection | None = None) -> None:
        """Ask the app to move to a new connection, as Slack does every few hours ("refresh_requested") and
        before maintenance ("warning"). Slack closes the old socket a little later; the app usually first."""
        conn = conn or self.current()
        if conn is None:
            return
        await conn.ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})

    def ignore_acks(self, n: int = 1) -> None:
        """Throw away the next ``n`` acks, as if lost in transit: those envelopes count as unacknowledged."""
        self._ignore_acks += n

    def drop_after_next_send(self, n: int = 1) -> None:
        """Cut the connection right after writing each of the next ``n`` envelopes, before any ack can come."""
        self._drop_after_send += n

    def fail_open(self, times: int = 1, *, status: int = 500, error: str | None = None, retry_after: int = 0) -> None:
        """Make the next ``times`` apps.connections.open calls fail (429 ``ratelimited``, 5xx, or an error)."""
        if status == 200:
            self.fake.fail_next("apps.connections.open", error=error or "internal_error", times=times)
        else:
            self.fake.fail_next(
                "apps.connections.open",
                status=status,
                error=error,
                retry_after=retry_after if status == 429 else None,
                times=times,
            )

    def refuse_upgrades(self, n: int = 1) -> None:
        """Answer the next ``n`` websocket upgrades with 503 (apps.connections.open still works): the URL
        handed out may expire (``ticket_ttl``) before the link servers are back."""
        self._refuse_upgrades += n

    def expire_urls(self) -> None:
        """Every URL handed out so far stops working, as Slack's do after a short while."""
        self._tickets.clear()

    def heal(self) -> None:
        """Forget the apps.connections.open failures still queued: Slack is back."""
        self.fake._faults.pop("apps.connections.open", None)
        self._refuse_upgrades = 0

    # ------------------------------------------------------------------ observing

    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    def open_calls(self) -> int:
        """Every apps.connections.open call, failed ones included."""
        return len(self.fake.calls_to("apps.connections.open"))

    async def wait_for(self, predicate: Any, *, within: float = 10.0) -> Any:
        """Poll ``predicate`` (see ``FakeSlackWebAPI.wait_for``); reconnects take up to a ping interval."""
        return await self.fake.wait_for(predicate, within=within)


@dataclass
class SocketModeSlackClient(SlackClient):
    """``SlackClient``'s payloads, delivered as Socket Mode envelopes instead of signed HTTP requests.

    Results keep the HTTP client's shape so the same helpers read them: ``status`` is 200 once the app acked
    (0 when no ack came in time), ``body`` is the ack's payload as JSON. ``envelope`` is the envelope itself.
    """

    socket: FakeSocketMode | None = None
    wait_ack: float | None = 3.0

    def _socket(self) -> FakeSocketMode:
        if self.socket is None:
            raise RuntimeError("SocketModeSlackClient needs socket=")
        return self.socket

    async def _send(self, kind: str, sent: JsonDict, payload: JsonDict, accepts: bool, **info: Any) -> SlackHttpResult:
        env = await self._socket().deliver(kind, payload, accepts_response_payload=accepts, wait_ack=self.wait_ack)
        body = env.ack.get("payload") if env.ack else None
        return SocketModeResult(
            status=200 if env.ack is not None else 0,
            body=json.dumps(body) if body else "",
            headers={},
            sent=sent,
            envelope=env,
            **info,
        )

    async def _post_json(
        self, payload: JsonDict, extra_headers: Mapping[str, str] | None = None, **info: Any
    ) -> SlackHttpResult:
        if payload.get("type") != "event_callback":
            raise ValueError("Socket Mode carries no url_verification: there is no Request URL to verify")
        retry = dict(extra_headers or {}).get("X-Slack-Retry-Num")
        if retry is not None:  # SlackClient.event(..., retry_num=N): find the first delivery and send it again
            event_id = payload["event_id"]
            first = next(e for e in self._socket().envelopes.values() if e.payload.get("event_id") == event_id)
            env = await self._socket().redeliver(first.envelope_id)
            if self.wait_ack is not None:
                try:
                    async with asyncio.timeout(self.wait_ack):
                        await env.acked.wait()
                except TimeoutError:
                    pass
            status = 200 if env.ack is not None else 0
            return SocketModeResult(status=status, body="", headers={}, sent=payload, envelope=env, **info)
        return await self._send("events_api", payload, payload, False, **info)

    async def _post_form(self, form: Mapping[str, str], sent: JsonDict, **info: Any) -> SlackHttpResult:
        # Only slash commands come here (interactions go through _post_payload): the form's fields, as JSON.
        return await self._send("slash_commands", sent, dict(form), True, **info)

    async def _post_payload(self, payload: JsonDict, **info: Any) -> SlackHttpResult:
        accepts = payload.get("type") in {"view_submission", "block_suggestion"}
        return await self._send("interactive", payload, payload, accepts, **info)


@dataclass(frozen=True)
class SocketModeResult(SlackHttpResult):
    envelope: Envelope | None = None
