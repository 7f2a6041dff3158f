"""Shared fixtures: a real SQLite file and the machine's real PostgreSQL, a manual clock, a recording platform."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from bot.clock import ManualClock
from bot.config import Config
from bot.events import Place
from bot.models import Channel
from bot.ports import PlatformError, Sent
from bot.questions.loader import BUILTIN_BANK, load_bank
from bot.questions.model import Bank
from bot.render import Message
from bot.runtime import Runtime, build
from bot.store.db import create_engine

# Property tests (marked `faults`) run a quick profile by default and in CI; RELIABILITY=full runs the long one
# that the reliability report quotes. A test's own @settings(max_examples=...) overrides the profile.
settings.register_profile("quick", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("full", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("full" if os.environ.get("RELIABILITY") == "full" else "quick")

PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# Monday 23 November 2026, 08:00 UTC: the start of a working week, before the default 09:00 post.
MONDAY_0800 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


_PG_OK: bool | None = None


async def require_pg() -> None:
    """PostgreSQL tests fail under CI when the server is missing (CI must run them) and skip on a laptop."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = await pg_available()
    if not _PG_OK:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}; CI must run storage tests on it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}")


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A private schema on the real PostgreSQL, dropped afterwards: tests never see each other's tables."""
    await require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/test?schema={schema}"
    finally:
        conn = await asyncpg.connect(PG_DSN)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind: a SQLite file, or a private schema on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    async with pg_schema() as url:
        yield url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_0800)


_BANK: Bank | None = None


@pytest.fixture
def bank() -> Bank:
    global _BANK
    if _BANK is None:
        _BANK, _ = load_bank([BUILTIN_BANK])
    return _BANK


@dataclass
class RecordingPlatform:
    """A platform that records what the core sends, and can be told to fail."""

    name: str = "shell"
    sent: list[tuple[Channel, Message, str | None]] = field(default_factory=list)
    notices: list[Message] = field(default_factory=list)
    fail_next: list[PlatformError] = field(default_factory=list)
    direct: list[tuple[str, Message]] = field(default_factory=list)  # (user id, message) sent by direct message
    counter: int = 0
    # What check_channel answers, by channel id: a refusal (str) or a PlatformError to raise. Absent: fine.
    channel_problems: dict[str, str | PlatformError] = field(default_factory=dict)
    checked: list[Place] = field(default_factory=list)

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.counter += 1
        self.sent.append((channel, message, thread_id))
        mid = f"{self.name}-{self.counter}"
        return Sent(mid, mid if message.thread_name else None)

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        self.notices.append(message)

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.direct.append((user_id, message))

    def owns(self, channel: Channel) -> bool:
        return True

    async def check_channel(self, place: Place) -> str | None:
        self.checked.append(place)
        problem = self.channel_problems.get(place.channel_id)
        if isinstance(problem, PlatformError):
            raise problem
        return problem

    def titles(self) -> list[str | None]:
        return [m.title for _, m, _ in self.sent]

    def posts(self) -> list[Message]:
        return [m for _, m, _ in self.sent if m.thread_name]


def make_config(url: str, **kw: object) -> Config:
    return Config.model_validate({"database_url": url, **kw})


@pytest.fixture
async def runtimes(bank: Bank) -> AsyncIterator[list[Runtime]]:
    """Runtimes built in a test are closed at its end, even when it fails."""
    made: list[Runtime] = []
    yield made
    for rt in made:
        await rt.close()


async def start_runtime(
    made: list[Runtime],
    url: str,
    bank: Bank,
    clock: ManualClock,
    platform: RecordingPlatform | None = None,
    **config: object,
) -> tuple[Runtime, RecordingPlatform]:
    platform = platform or RecordingPlatform()
    rt = await build(
        make_config(url, **config), {platform.name: platform}, clock=clock, bank=bank, db=create_engine(url)
    )
    made.append(rt)
    return rt, platform
