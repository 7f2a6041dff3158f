"""The terminal adapter: the whole daily cycle on your machine, no tokens, no server."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator

from adapters.shell.platform import ShellPlatform, image_dir_for
from adapters.shell.session import ShellSession
from bot.clock import OffsetClock
from bot.config import Config
from bot.runtime import build
from bot.store.db import redact


async def _stdin_lines() -> AsyncIterator[bytes]:
    # A daemon thread, not asyncio.to_thread: a thread blocked in readline would otherwise keep the process
    # alive after Ctrl-C until the user pressed Enter.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def reader() -> None:
        while True:
            line = sys.stdin.buffer.readline()
            loop.call_soon_threadsafe(queue.put_nowait, line)
            if not line:
                return

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while line := await queue.get():
        yield line


def _write(text: str) -> None:
    print(text, flush=True)


async def main(config: Config) -> int:
    platform = ShellPlatform(_write, image_dir=image_dir_for(config.database_url))
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
