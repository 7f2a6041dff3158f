"""The Discord adapter (discord.py 2.x).

`interview-bot run --platform discord` with DISCORD_TOKEN set. DISCORD_API_BASE and DISCORD_GATEWAY_URL
point discord.py at a Discord-compatible server (tests, self-hosted gateways). DISCORD_SHARD_COUNT with
DISCORD_SHARD_IDS ("0,1") runs a range of shards in this process, beside others on the same database.
"""

from __future__ import annotations

import os
import sys

import discord
import yarl

from adapters.discord.client import QuizBot
from adapters.discord.platform import DiscordPlatform
from adapters.health import serve_health
from bot.config import Config
from bot.runtime import build

MESSAGE_CONTENT_HELP = """\
error: Discord refused the Message Content intent, which interview-bot needs to read answers in threads.
Enable it: https://discord.com/developers/applications -> your application -> Bot -> Privileged Gateway
Intents -> turn on MESSAGE CONTENT INTENT -> Save. (Bots in 100 or more servers must be approved for it.)"""


def configure_endpoints(env: dict[str, str] | None = None) -> None:
    env = dict(os.environ if env is None else env)
    if env.get("DISCORD_API_BASE"):
        discord.http.Route.BASE = env["DISCORD_API_BASE"].rstrip("/")
    if env.get("DISCORD_GATEWAY_URL"):
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(env["DISCORD_GATEWAY_URL"])


def shards_from_env(env: dict[str, str] | None = None) -> tuple[list[int] | None, int | None]:
    env = dict(os.environ if env is None else env)
    count = env.get("DISCORD_SHARD_COUNT")
    ids = env.get("DISCORD_SHARD_IDS")
    if not count:
        return None, None
    shard_count = int(count)
    shard_ids = [int(x) for x in ids.split(",")] if ids else list(range(shard_count))
    if any(not 0 <= s < shard_count for s in shard_ids):
        raise ValueError(f"DISCORD_SHARD_IDS {ids} must be between 0 and DISCORD_SHARD_COUNT-1 ({shard_count - 1})")
    return shard_ids, shard_count


async def main(config: Config) -> int:
    token = config.secrets.discord_token
    if token is None:
        print("error: set DISCORD_TOKEN to your bot's token (Developer Portal -> your app -> Bot).", file=sys.stderr)
        return 2
    try:
        shard_ids, shard_count = shards_from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_endpoints()
    platform = DiscordPlatform()
    runtime = await build(config, {"discord": platform})
    bot = QuizBot(runtime, platform, shard_ids=shard_ids, shard_count=shard_count)

    async def gateway() -> str | None:
        return None if bot.is_ready() and not bot.is_closed() else "not connected to the Discord gateway"

    health = await serve_health(runtime.db, gateway)
    try:
        async with bot:
            await bot.start(token.get_secret_value())
    except discord.PrivilegedIntentsRequired:
        print(MESSAGE_CONTENT_HELP, file=sys.stderr)
        return 2
    except discord.LoginFailure:
        print(
            "error: Discord rejected DISCORD_TOKEN. Reset the token in the Developer Portal and try again.",
            file=sys.stderr,
        )
        return 2
    finally:
        if health is not None:
            await health.cleanup()
        await runtime.close()
    return 0


async def sync_commands(config: Config, guild_id: str | None = None) -> int:
    """Register the slash commands with Discord: once after install or upgrade, not on every start."""
    token = config.secrets.discord_token
    if token is None:
        print("error: set DISCORD_TOKEN first.", file=sys.stderr)
        return 2
    configure_endpoints()
    platform = DiscordPlatform()
    runtime = await build(config, {"discord": platform})
    bot = QuizBot(runtime, platform, start_scheduler=False)
    try:
        await bot.login(token.get_secret_value())
        info = await bot.application_info()
        bot._connection.application_id = info.id
        if guild_id:
            guild = discord.Object(id=int(guild_id))
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
            print(f"synced {len(synced)} commands to server {guild_id} (visible at once)")
        else:
            synced = await bot.tree.sync()
            print(f"synced {len(synced)} global commands (Discord may take a few minutes to show changes)")
    except discord.LoginFailure:
        print("error: Discord rejected DISCORD_TOKEN.", file=sys.stderr)
        return 2
    finally:
        await bot.close()
        await runtime.close()
    return 0
