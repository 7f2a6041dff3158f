"""Socket Mode: slack_sdk's websocket client, with what it lacks for a bot that must run unattended.

slack_sdk reconnects by itself: a close frame or a ``disconnect`` message at once, a connection that just
dies within ``ping_interval`` seconds (its monitor notices), and Slack redelivers the events that were not
acknowledged. Two things it does not do, added here:

* It asks ``apps.connections.open`` again every ``ping_interval`` seconds, forever, however long Slack is
  away. We back off: each failure in a row doubles the wait, up to ``MAX_BACKOFF_PINGS`` intervals.
* A token Slack refuses (wrong, revoked, a bot token instead of an app token) is retried like a passing
  failure, so a typo in SLACK_APP_TOKEN looks like a bot that starts and never hears anything. At start we
  stop with a clear error instead; later (a token revoked while running) we keep trying, and ``problem``
  says why we are not connected, for /readyz.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

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
            self.failures += 1
            self.problem = f"apps.connections.open failed: {code or type(exc).__name__}"
            if code in REFUSED and not self.accepted_once:
                self.refused = str(code)
                self.closed = True  # connect() stops trying; main() reports it
                raise
            delay = self.backoff()
            log.warning(
                "Slack: no Socket Mode connection (%s, %d failure(s) in a row); next try in %.1f s",
                code or exc,
                self.failures,
                delay + self.ping_interval,
            )
            await asyncio.sleep(delay)
            raise
        if self.failures:
            log.warning("Slack: Socket Mode URL obtained after %d failure(s)", self.failures)
        self.failures = 0
        self.problem = None
        self.accepted_once = True
        return url


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
