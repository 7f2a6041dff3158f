"""The Slack adapter (slack-bolt, async).

Modes, chosen by what the environment holds:
- Socket Mode: SLACK_APP_TOKEN (xapp-...) and SLACK_BOT_TOKEN: no public URL needed.
- HTTP: SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN; Slack posts to http://HOST:SLACK_PORT/slack/events.
- Several workspaces: SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET (HTTP mode); each
  workspace installs the app at /slack/install and its bot token is kept in our database.
SLACK_API_URL points the Web API at another base URL (tests, proxies).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.health import serve_health
from adapters.slack.app import build_app, web_app
from adapters.slack.catchup import catch_up
from adapters.slack.platform import ClientFor, SlackPlatform
from adapters.slack.socket import REFUSED, SocketHandler
from bot.config import Config
from bot.runtime import Runtime, build

log = logging.getLogger(__name__)

SCOPES = [
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "channels:read",  # setup and resume check the bot is in the channel (conversations.info)
    "groups:read",  # ... and in a private one
    "reactions:write",
    "users:read",
    "im:write",
    "files:write",  # the weekly leaderboard card and the stats chart; without it posts go out as text alone
]


def web_client(token: str | None, api_url: str | None) -> AsyncWebClient:
    client = AsyncWebClient(token=token, base_url=api_url) if api_url else AsyncWebClient(token=token)
    # Not on by default: wait out a 429's Retry-After and try again.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return client


async def refused_code(client: AsyncWebClient) -> str | None:
    """Slack's error code when it refuses the token for good; None when it is accepted, or when Slack cannot be
    asked just now (the bot starts anyway, and its posts are retried like any platform trouble)."""
    try:
        await client.auth_test()
    except SlackApiError as exc:
        code = str(exc.response.get("error") or "")
        if code in REFUSED:
            return code
        log.warning("Slack: could not check the bot token at start (%s); going on", code or exc)
    except Exception as exc:  # the network: not the token's fault
        log.warning("Slack: could not check the bot token at start (%s); going on", type(exc).__name__)
    return None


async def catch_up_then_reveal(runtime: Runtime, client_for: ClientFor) -> None:
    try:
        await catch_up(runtime, client_for)
    finally:
        runtime.engine.release_reveals("slack")
    await runtime.scheduler.wake()  # the reveals that waited for the catch-up are due now


async def main(config: Config) -> int:
    env = os.environ
    s = config.secrets
    api_url = env.get("SLACK_API_URL") or None
    bot_token = s.slack_bot_token.get_secret_value() if s.slack_bot_token else None
    signing = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else None
    client_id = env.get("SLACK_CLIENT_ID")
    oauth = bool(client_id and s.slack_client_secret)
    if not (bot_token or oauth):
        print("error: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET.", file=sys.stderr)
        return 2
    if not s.slack_app_token and not signing:
        print("error: set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode).", file=sys.stderr)
        return 2
    if oauth and not signing:
        print("error: installing in several workspaces needs HTTP mode: set SLACK_SIGNING_SECRET.", file=sys.stderr)
        return 2

    installation_store = None
    oauth_settings = None
    health = None
    caught_up: asyncio.Task[None] | None = None
    client = web_client(bot_token, api_url)
    if bot_token and not oauth:
        refused = await refused_code(client)
        if refused:
            # Without a usable bot token nothing can be posted: say so now, not at 09:00 tomorrow.
            print(
                f"error: Slack refused SLACK_BOT_TOKEN ({refused}). Use the Bot User OAuth Token (xoxb-...) from "
                "OAuth & Permissions, and reinstall the app if it was revoked.",
                file=sys.stderr,
            )
            return 2

    async def client_for(team_id: str) -> AsyncWebClient:
        if installation_store is None:
            return client
        bot = await installation_store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            from bot.ports import PlatformError

            raise PlatformError(f"the app is not installed in workspace {team_id}", permanent=True)
        return web_client(bot.bot_token, api_url)

    platform = SlackPlatform(client_for, admins=config.admins.get("slack", []))
    runtime = await build(config, {"slack": platform})
    try:
        if oauth:
            from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
            from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
            from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

            assert client_id is not None and s.slack_client_secret is not None
            installation_store = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=runtime.db)
            state_store = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=runtime.db)
            # Their own tables, beside ours in the same database; created if missing.
            await installation_store.create_tables()
            await state_store.create_tables()
            oauth_settings = AsyncOAuthSettings(
                client_id=client_id,
                client_secret=s.slack_client_secret.get_secret_value(),
                scopes=SCOPES,
                installation_store=installation_store,
                state_store=state_store,
            )
            client = web_client(None, api_url)
        app = build_app(
            runtime,
            signing_secret=signing or "",
            client=client,
            admins=config.admins.get("slack", []),
            oauth_settings=oauth_settings,
            installation_store=installation_store,
        )
        runtime.engine.hold_reveals("slack")
        await runtime.scheduler.start()
        # Answers left in open rounds' threads while nothing listened (Slack gives up redelivering after about
        # an hour): read back once at start, beside the live events, in either mode. Reveals wait for it (the
        # hold was set before the scheduler's first sweep), so answers made in time reach the ballot.
        caught_up = asyncio.create_task(catch_up_then_reveal(runtime, client_for))
        socket_handler: SocketHandler | None = None

        async def connection() -> str | None:
            return await socket_handler.problem() if socket_handler is not None else None

        health = await serve_health(runtime.db, connection)
        if s.slack_app_token and not oauth:
            socket_handler = SocketHandler(
                app,
                s.slack_app_token.get_secret_value(),
                web_client(None, api_url),
                # How often the connection is checked: a dead one is replaced within about this long.
                ping_interval=float(env.get("SLACK_SOCKET_PING_SECONDS", "10")),
            )
            # Read the threads back after every reconnect. Reveals are not held for it, unlike at start: they
            # go out on time while the socket is away (they need only the Web API), and the catch-up skips
            # what was posted after a deadline.
            socket_handler.client.on_reconnect = lambda: catch_up(runtime, client_for)
            log.info("Slack: Socket Mode")
            try:
                # Returns once connected (retrying, with backoff, while Slack is away), or when the app
                # token is refused. From then on the client reconnects by itself for as long as we run.
                await socket_handler.connect_async()
                if socket_handler.client.refused:
                    print(
                        f"error: Slack refused SLACK_APP_TOKEN ({socket_handler.client.refused}). Socket Mode needs "
                        "the app-level token (xapp-...) with the connections:write scope.",
                        file=sys.stderr,
                    )
                    return 2
                log.warning("Slack: connected in Socket Mode")
                await asyncio.Event().wait()
            finally:
                await socket_handler.close_async()
        else:
            port = int(env.get("SLACK_PORT", "3000"))
            runner = web.AppRunner(web_app(app))
            await runner.setup()
            await web.TCPSite(runner, env.get("SLACK_HOST", "0.0.0.0"), port).start()
            log.warning("Slack: listening on port %d at /slack/events%s", port, " and /slack/install" if oauth else "")
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()
    finally:
        if caught_up is not None:
            caught_up.cancel()
        if health is not None:
            await health.cleanup()
        await runtime.close()
    return 0
