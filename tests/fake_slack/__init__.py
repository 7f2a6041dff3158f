"""A local fake Slack for end-to-end tests of the Slack adapter, on 127.0.0.1 only.

* :class:`FakeSlackWebAPI` is Slack's Web API (and response_urls) for the bot's real ``AsyncWebClient``.
* :class:`SlackClient` is Slack calling the bot: signed Events API, slash command and interactivity requests.
* ``tests.fake_slack.socket_mode.FakeSocketMode`` adds Socket Mode (``apps.connections.open`` and the
  websocket) to a fake before it starts; its ``client()`` sends SlackClient's payloads as envelopes.

Tests get a running fake from the ``fake_slack`` fixture: ``from tests.fake_slack import fake_slack_fixture``
in the test module or a conftest registers it under the name ``fake_slack`` (the function has another name so
that ruff does not see the test's ``fake_slack`` argument as a redefinition of the import).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fake_slack.client import SlackClient, SlackHttpResult, serve_web_app, sign
from tests.fake_slack.server import FakeSlackWebAPI, SlackApiFault, flatten_text

__all__ = [
    "FakeSlackWebAPI",
    "SlackApiFault",
    "SlackClient",
    "SlackHttpResult",
    "fake_slack_fixture",
    "flatten_text",
    "serve_web_app",
    "sign",
]


@pytest_asyncio.fixture(name="fake_slack")
async def fake_slack_fixture() -> AsyncIterator[FakeSlackWebAPI]:
    """A started fake Web API with an empty workspace (just the bot user); stopped after the test."""
    fake = FakeSlackWebAPI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
