"""The terminal adapter: the whole daily cycle on your machine, no tokens, no server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from adapters.shell.platform import ShellPlatform
from adapters.shell.session import ShellSession
from bot.clock import OffsetClock
from bot.config import Config
from bot.runtime import build
from bot.store.db import redact


async def _stdin_lines() -> AsyncIterator[bytes]:
    while True:
        line = await asyncio.to_thread(sys.stdin.buffer.readline)
        if not line:
            return
        yield line


def _write(text: str) -> None:
    print(text, flush=True)


async def main(config: Config) -> int:
    platform = ShellPlatform(_write)
    clock = OffsetClock()
    runtime = await build(config, {"shell": platform}, clock=clock)
    try:
        session = ShellSession(runtime, platform, _write, clock, user=config.shell.user, channel=config.shell.channel)
        await session.ensure_channel()
        await runtime.scheduler.start()
        _write(f"interview-bot shell: {len(runtime.bank.questions)} questions, database {redact(config.database_url)}")
        await session.run(_stdin_lines())
    finally:
        await runtime.close()
    return 0
