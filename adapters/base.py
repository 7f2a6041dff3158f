"""The one protocol an adapter implements, and what every adapter shares.

An adapter is two tables: platform payload -> ``bot.events`` event (handed to ``Core.handle``), and
``bot.render`` message -> platform call (``Platform.send``). Its entry point, registered under
``interview_bot.adapters`` in pyproject.toml, is ``async def main(config) -> int``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.config import Config
from bot.ports import Platform, PlatformError, Sent

__all__ = ["Adapter", "AdapterMain", "Platform", "PlatformError", "Sent", "strip_controls"]

AdapterMain = Callable[[Config], Awaitable[int]]


class Adapter(Platform, Protocol):
    """A platform adapter: sends for the core and runs until stopped."""

    async def run_forever(self) -> None: ...


_KEEP = {"\n", "\t"}


def strip_controls(text: str) -> str:
    """Drop control characters (terminal escapes, NULs) from user text; keep newlines and tabs."""
    return "".join(ch for ch in text if ch in _KEEP or (ord(ch) >= 32 and not 0x7F <= ord(ch) <= 0x9F))
