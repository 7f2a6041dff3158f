"""Driving the shell adapter from tests: type lines, read what it printed."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.shell.platform import ShellPlatform
from adapters.shell.session import ShellSession
from bot.clock import ManualClock
from bot.questions.model import Bank
from bot.runtime import Runtime, build
from bot.store.db import create_engine
from tests.conftest import make_config


@dataclass
class Terminal:
    session: ShellSession
    runtime: Runtime
    platform: ShellPlatform
    out: list[str] = field(default_factory=list)

    async def type(self, *lines: str) -> str:
        """Type lines; return only what the shell printed in response."""
        start = len(self.out)
        for line in lines:
            await self.session.handle_line(line)
        return "\n".join(self.out[start:])


async def open_terminal(url: str, bank: Bank, clock: ManualClock, made: list[Runtime], **config: object) -> Terminal:
    out: list[str] = []
    platform = ShellPlatform(out.append)
    rt = await build(make_config(url, **config), {"shell": platform}, clock=clock, bank=bank, db=create_engine(url))
    made.append(rt)
    session = ShellSession(rt, platform, out.append, clock)
    await session.ensure_channel()
    await rt.scheduler.start(paused=True)
    term = Terminal(session, rt, platform, out)
    return term
