"""A fake Discord (REST + gateway) for end-to-end tests that drive the real discord.py client.

Use the fixture by importing it into a test module or conftest: ``from tests.fake_discord import fake_discord``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fake_discord.server import FakeDiscord, Interaction, RecordedRequest

__all__ = ["FakeDiscord", "Interaction", "RecordedRequest", "fake_discord"]


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started server per test: its world and recorded traffic must never leak between tests."""
    server = FakeDiscord()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
