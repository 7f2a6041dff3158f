"""Socket Mode: slack_sdk's websocket client, with what it lacks for a bot that must run unattended.

slack_sdk reconnects by itself: a close frame or a ``disconnect`` message at once, a connection that just
dies within ``ping_interval`` seconds (its monitor notices), and Slack redelivers the events that were not
acknowledged. What it does not do, added here:

* It asks ``apps.connections.open`` again every ``ping_interval`` seconds, forever, however long Slack is
  away. We back off: each failure in a row doubles the wait, up to ``MAX_BACKOFF_PINGS`` intervals.
* When the websocket itself cannot be opened, it tries the same URL again and again. Slack's URLs are
  short-lived, so once an outage outlasts the URL the bot never reconnects. We fetch a new URL for every try.
* A token Slack refuses (wrong, revoked, a bot token instead of an app token) is retried like a passing
  failure, so a typo in SLACK_APP_TOKEN looks like a bot that starts and never hears anything. At start we
  stop with a clear error instead; later (a token revoked while running) we keep trying, and ``problem``
  says why we are not connected, for /readyz.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Answers of apps.connections.open that no retry will change.
REFUSED = {"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive"}
MAX_BACKOFF_PINGS = 12  # 2 minutes at the default 10-second ping interval


class ReconnectingClient(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client, backing off between failed attempts to get a URL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 0  # failed attempts in a row
        self.accepted_once = False  # Slack has given us a URL at least once: the token was good
        self.refused: str | None = None  # Slack's error code when it refused the app token before we ever connected
        self.problem: str | None = None  # why the last attempt failed, for /readyz
        self._fresh_url = False  # wss_uri was just issued and not tried yet
        self.sessions = 0  # websocket sessions opened so far
        # Called (as a task) each time a session opens after the first: Slack gives up redelivering an event
        # after a few tries, so what members did during a long outage is read back from the threads.
        self.on_reconnect: Callable[[], Awaitable[object]] | None = None
        self._tasks: set[asyncio.Future[object]] = set()

    def backoff(self) -> float:
        """Extra seconds to wait after the n-th failure in a row, on top of the SDK's own ping interval:
        0, 1, 3, 7... intervals, so the gaps between attempts double, with jitter so many bots spread out."""
        extra = min(MAX_BACKOFF_PINGS, 2 ** (self.failures - 1)) - 1
        return float(extra * self.ping_interval * random.uniform(0.8, 1.2))

    async def issue_new_wss_url(self) -> str:
        try:
            url: str = await super().issue_new_wss_url()  # waits out "ratelimited" itself
        except Exception as exc:  # anything: Slack's answer or the network; the caller retries
            code = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            if code in REFUSED and not self.accepted_once:
                self.refused = str(code)
                self.closed = True  # connect() stops trying; main() reports it
                raise
            await self._failed(f"apps.connections.open failed: {code or type(exc).__name__}")
            raise
        self.accepted_once = True
        self._fresh_url = True
        return url

    async def _failed(self, problem: str) -> None:
        """Note a failed attempt and wait the backoff (the SDK then waits one more ping interval itself)."""
        self.failures += 1
        self.problem = problem
        delay = self.backoff()
        log.warning(
            "Slack: no Socket Mode connection (%s; %d failure(s) in a row); next try in %.1f s",
            problem,
            self.failures,
            delay + self.ping_interval,
        )
        await asyncio.sleep(delay)

    async def connect(self) -> None:
        """Open a new websocket (closing the old one) and start reading it; retried until it works or we close.

        The SDK's own connect() does the same steps but keeps the URL it has between tries."""
        while not self.closed:
            try:
                await self._open()
            except Exception as exc:  # the network, a refused upgrade, Slack's answer: all worth another try
                if self.closed:
                    return
                if not isinstance(exc, SlackApiError):  # a failed URL request has been counted already
                    await self._failed(f"could not open the websocket: {type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(self.ping_interval)
                continue
            if self.failures:
                log.warning("Slack: Socket Mode connected again after %d failure(s)", self.failures)
            self.failures = 0
            self.problem = None
            self.sessions += 1
            if self.sessions > 1 and self.on_reconnect is not None:
                task = asyncio.ensure_future(self.on_reconnect())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return

    async def _open(self) -> None:
        old = self.current_session
        # No reconnecting from the old session's monitor while we replace it.
        self.auto_reconnect_enabled = False
        if old is not None:
            try:
                await old.close()
            except Exception as exc:  # a socket reset by the peer may fail to close; it is abandoned anyway
                log.info("Slack: closing the old Socket Mode session failed: %s", exc)
        if self.aiohttp_client_session.closed:
            self.aiohttp_client_session = aiohttp.ClientSession()
        if not self._fresh_url or self.wss_uri is None:
            self.wss_uri = await self.issue_new_wss_url()
        self._fresh_url = False  # one try per URL: they expire
        self.current_session = await self.aiohttp_client_session.ws_connect(
            self.wss_uri,
            autoping=False,
            heartbeat=self.ping_interval,
            proxy=self.proxy,
            ssl=self.web_client.ssl if self.web_client.ssl is not None else True,
        )
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self.stale = False
        # The first ping at once, so the pong clock starts with the session.
        await self.current_session.ping(f"sdk-ping-pong:{time.time()}".encode())
        # The SDK's monitor (pings, notices a dead session) and reader, bound to this session.
        if self.current_session_monitor is not None:
            self.current_session_monitor.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        if self.message_receiver is not None:
            self.message_receiver.cancel()
        self.message_receiver = asyncio.ensure_future(self.receive_messages())
        log.info("Slack: Socket Mode session %s open", await self.session_id())


class SocketHandler(AsyncSocketModeHandler):
    """bolt's handler, with :class:`ReconnectingClient` in place of the SDK's client (bolt builds its own)."""

    client: ReconnectingClient

    def __init__(self, app: AsyncApp, app_token: str, web_client: AsyncWebClient, ping_interval: float) -> None:
        # Not super().__init__: it would build (and start a task for) a client we would throw away.
        self.app = app
        self.app_token = app_token
        self.client = ReconnectingClient(
            app_token=app_token, logger=app.logger, web_client=web_client, ping_interval=ping_interval
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]

    async def problem(self) -> str | None:
        """None when connected, else why not: for /readyz."""
        if await self.client.is_connected():
            return None
        reason = self.client.problem or "connecting"
        return f"not connected to Slack (Socket Mode): {reason}"
