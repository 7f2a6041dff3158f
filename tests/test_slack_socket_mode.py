"""The Slack adapter in Socket Mode, end to end: the real entry point ``adapters.slack.main`` with bolt's
``AsyncSocketModeHandler`` connected to the fake Slack's Socket Mode (tests/fake_slack/socket_mode.py), the
Web API pointed at the same fake, time from a clock file. The connection is dropped, refreshed and refused
mid-round; nothing a member sent is lost or counted twice, and the schedule keeps its times."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack import main as slack_main
from adapters.slack.socket import ReconnectingClient
from bot.config import Secrets
from bot.store.db import create_engine
from bot.store.tables import answers, members
from tests.conftest import MONDAY_0800, make_config
from tests.fake_slack import FakeSlackWebAPI, flatten_text
from tests.fake_slack.socket_mode import FakeSocketMode, SocketModeSlackClient

# How often the bot's Socket Mode client checks its connection: a dead socket is noticed within this.
PING_SECONDS = 0.25


def set_clock(path: Path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)  # atomic: the bot never reads half a timestamp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Bot:
    fake: FakeSlackWebAPI
    socket: FakeSocketMode
    slack: SocketModeSlackClient
    db: AsyncEngine
    clock: Path
    health: str
    channel: str
    admin: str
    ann: str
    ben: str
    cat: str
    task: asyncio.Task[int] | None = None

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.health}/readyz") as resp:
            return resp.status, await resp.json()

    async def count(self, table: Any = answers) -> int:
        async with self.db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    async def answer_texts(self) -> list[str]:
        async with self.db.connect() as conn:
            return sorted(r.text for r in (await conn.execute(select(answers.c.text))).all())


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    fake = FakeSlackWebAPI()
    sm = FakeSocketMode(fake)
    await fake.start()
    channel = fake.add_channel("daily-questions")
    admin = fake.add_user("ada", admin=True)
    ann, ben, cat = (fake.add_user(n) for n in ("ann", "ben", "cat"))
    clock = tmp_path / "now"
    set_clock(clock, MONDAY_0800)
    port = free_port()
    for var, value in {
        "SLACK_API_URL": fake.api_url,
        "INTERVIEW_BOT_CLOCK_FILE": str(clock),
        "HEALTH_PORT": str(port),
        "HEALTH_HOST": "127.0.0.1",
        "SLACK_SOCKET_PING_SECONDS": str(PING_SECONDS),
    }.items():
        monkeypatch.setenv(var, value)
    url = f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}"
    db = create_engine(url)
    bot = Bot(fake, sm, sm.client(), db, clock, f"http://127.0.0.1:{port}", channel, admin, ann, ben, cat)
    try:
        yield bot
    finally:
        if bot.task is not None:
            bot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot.task
        await db.dispose()
        await fake.stop()


def start(bot: Bot, app_token: str | None = None) -> None:
    """Run the adapter's real entry point in Socket Mode, as `interview-bot run --platform slack` does."""
    config = make_config(str(bot.db.url), timing={"sweep_seconds": 1})
    config.secrets = Secrets(
        slack_bot_token=SecretStr(bot.fake.bot_token), slack_app_token=SecretStr(app_token or bot.socket.app_token)
    )
    bot.task = asyncio.create_task(slack_main(config))


async def connected(bot: Bot, n: int = 1) -> None:
    """Wait until the bot holds its ``n``-th connection, and only that one."""
    sm = bot.socket

    def done() -> bool:
        if bot.task is not None and bot.task.done():
            raise AssertionError(f"the bot stopped: {bot.task.result()}")
        return len(sm.connections) >= n and [c.number for c in sm.open_connections()] == [n]

    await sm.wait_for(done, within=15)


async def said(bot: Bot, result: Any) -> str:
    """What the bot answered at the slash command's response_url, after acknowledging the envelope."""
    assert result.status == 200, "the envelope was not acknowledged"
    responses = await bot.fake.wait_for(lambda: bot.fake.responses(result.response_url_key))
    return " ".join(flatten_text(r) for r in responses)


async def until(check: Any, within: float = 10.0) -> None:
    """Poll an async condition (the database, the health endpoint): the bot acts a moment after its ack."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110  (the database and /readyz cannot signal us)
            await asyncio.sleep(0.02)


def action_ids(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


async def daily_post(bot: Bot) -> str:
    """Set the channel up over the socket and let 09:00 come: the thread's ts."""
    out = await said(bot, await bot.slack.slash("/quiz", "admin setup time=09:00", bot.admin, bot.channel))
    assert "Daily question set up" in out
    set_clock(bot.clock, MONDAY_0800 + timedelta(hours=1, seconds=1))
    [post] = await bot.fake.wait_for(lambda: bot.fake.messages(bot.channel), within=10)
    assert "Question of the day" in flatten_text(post)
    return str(post["ts"])


async def test_slash_command_and_an_answer_over_the_socket(world: Bot) -> None:
    bot, sm = world, world.socket
    start(bot)
    await connected(bot)

    # A member's command is acknowledged (empty ack: the reply goes to the response_url) and answered.
    result = await bot.slack.slash("/quiz", "admin setup", bot.ann, bot.channel)
    assert result.envelope is not None and result.envelope.ack == {"envelope_id": result.envelope.envelope_id}
    assert "only this server's admins" in await said(bot, result)

    thread = await daily_post(bot)
    first = await bot.slack.event(bot.slack.message(bot.channel, bot.ann, "Ann's answer", thread_ts=thread))
    assert first.status == 200

    async def stored() -> bool:
        return await bot.answer_texts() == ["Ann's answer"]

    await until(stored)
    await bot.fake.wait_for(lambda: bot.fake.calls_to("reactions.add"))

    # Slack delivers the same envelope again (its ack was late): acknowledged, not stored twice.
    assert first.envelope is not None
    again = await sm.redeliver(first.envelope.envelope_id)
    await sm.wait_for(lambda: again.ack is not None)
    assert again.retry_attempt == 1 and again.sent_on == [1, 1]
    assert await bot.answer_texts() == ["Ann's answer"]
    assert len(bot.fake.calls_to("reactions.add")) == 1
    assert sm.open_calls() == 1 and len(sm.connections) == 1


async def test_dropped_and_refreshed_connections_lose_nothing_and_keep_the_schedule(world: Bot) -> None:
    bot, sm, fake = world, world.socket, world.fake
    start(bot)
    await connected(bot)
    thread = await daily_post(bot)
    assert (await bot.readyz())[0] == 200

    # 1. Ann's answer arrives and is handled, but the ack is lost; then the socket dies without a close frame.
    sm.ignore_acks(1)
    ann = await bot.slack.event(bot.slack.message(bot.channel, bot.ann, "Ann: across a drop", thread_ts=thread))
    assert ann.status == 0 and sm.lost_acks == 1

    async def ann_stored() -> bool:
        return await bot.count() == 1

    await until(ann_stored)
    # While the bot is away, apps.connections.open fails: /readyz says so until it is back.
    sm.fail_open(times=1000, status=503, error="service_unavailable")
    await sm.drop()

    async def not_ready() -> bool:
        status, body = await bot.readyz()
        return status == 503 and "not connected" in body["platform"]

    await until(not_ready)
    await sm.wait_for(lambda: sm.open_calls() >= 3)  # it keeps trying
    sm.heal()
    await connected(bot, 2)
    env = ann.envelope
    assert env is not None
    await sm.wait_for(lambda: env.ack is not None)  # redelivered on the new connection and acknowledged
    assert env.sent_on == [1, 2] and env.retry_attempt == 1

    async def ready() -> bool:
        return (await bot.readyz())[0] == 200

    await until(ready)

    # 2. Ben's answer goes out and the socket is cut at once: delivered again on the next connection.
    sm.drop_after_next_send(1)
    ben = await bot.slack.event(bot.slack.message(bot.channel, bot.ben, "Ben: cut off", thread_ts=thread))
    await connected(bot, 3)
    assert ben.envelope is not None
    await sm.wait_for(lambda: ben.envelope.ack is not None)
    assert ben.envelope.sent_on == [2, 3]

    # 3. Slack asks for a refresh: the bot opens a new connection and leaves the old one.
    await sm.send_disconnect("refresh_requested")
    await connected(bot, 4)
    cat = await bot.slack.event(bot.slack.message(bot.channel, bot.cat, "Cat: after a refresh", thread_ts=thread))
    assert cat.status == 200 and cat.envelope is not None and cat.envelope.sent_on == [4]

    # 4. A proper close frame (Slack restarting a host): reconnected too.
    await sm.close()
    await connected(bot, 5)

    async def three() -> bool:
        return await bot.count() == 3

    await until(three)
    assert await bot.answer_texts() == ["Ann: across a drop", "Ben: cut off", "Cat: after a refresh"]
    assert await bot.count(members) == 3
    # One reaction per answer, though Ann's and perhaps Ben's envelopes came twice.
    reacted = sorted(c["timestamp"] for c in fake.calls_to("reactions.add"))
    assert len(reacted) == len(set(reacted)) == 3

    # 17:00 comes while the bot is cut off from Slack's socket again: the reveal goes out on time all the same
    # (it needs only the Web API), with all three answers and a ballot.
    assert not any("Reference answer" in flatten_text(m) for m in fake.thread(bot.channel, thread))
    sm.fail_open(times=1000, status=500)
    await sm.drop()
    await until(not_ready)
    set_clock(bot.clock, MONDAY_0800 + timedelta(hours=9, seconds=1))
    [ballot] = await fake.wait_for(lambda: [m for m in fake.thread(bot.channel, thread) if action_ids(m)], within=10)
    replies = [m for m in fake.thread(bot.channel, thread)[1:] if "Reference answer" in flatten_text(m)]
    assert len(replies) == 1 and sm.open_connections() == []
    assert all(name in str(ballot) for name in ("Ann: across a drop", "Ben: cut off", "Cat: after a refresh"))
    sm.heal()
    await connected(bot, 6)

    # A vote is an interactive envelope: acknowledged, and answered at its response_url.
    vote = action_ids(ballot)[0]
    out = await said(bot, await bot.slack.block_action(bot.ben, bot.channel, vote, message_ts=ballot["ts"]))
    assert "Vote recorded for ann's answer" in out
    assert sm.unknown_acks == []
    assert all(e.ack is not None for e in sm.envelopes.values())


async def test_connections_open_failing_at_start_is_retried(world: Bot) -> None:
    bot, sm = world, world.socket
    sm.fail_open(times=4, status=429, retry_after=0)  # one more than the web client's own three retries
    sm.fail_open(times=2, status=500)
    sm.fail_open(times=1000, status=503, error="service_unavailable")
    start(bot)

    async def not_ready() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            status, body = await bot.readyz()
            return status == 503 and "not connected" in body["platform"] and body["database"] == "ok"
        return False

    await until(not_ready)
    await sm.wait_for(lambda: sm.open_calls() >= 7)
    assert sm.connections == []
    sm.heal()
    await connected(bot)

    async def ready() -> bool:
        return (await bot.readyz())[0] == 200

    await until(ready)
    assert bot.fake.injected["429"] == 4 and bot.fake.injected["500"] == 2
    assert "Daily question set up" in await said(
        bot, await bot.slack.slash("/quiz", "admin setup", bot.admin, bot.channel)
    )


@pytest.mark.parametrize("token", ["wrong", "bot"])
async def test_a_refused_app_token_stops_the_bot_with_a_clear_error(
    world: Bot, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bot, sm = world, world.socket
    start(bot, sm.app_token + "0" if token == "wrong" else bot.fake.bot_token)
    assert bot.task is not None
    async with asyncio.timeout(10):
        code = await asyncio.shield(bot.task)
    assert code == 2
    err = capsys.readouterr().err
    assert "Slack refused SLACK_APP_TOKEN" in err
    assert ("invalid_auth" if token == "wrong" else "not_allowed_token_type") in err
    assert sm.open_calls() == 1 and sm.connections == []  # asked once, not forever
    assert bot.fake.bot_token not in err and sm.app_token not in err


async def test_a_refused_websocket_is_retried_with_a_fresh_url(world: Bot) -> None:
    bot, sm = world, world.socket
    start(bot)
    await connected(bot)
    # The link servers refuse websockets for longer than the URL the bot was given lives. (slack_sdk alone
    # kept trying that URL, refused with 401 for ever after.)
    sm.refuse_upgrades(1000)
    await sm.drop()
    await sm.wait_for(lambda: sm.refused_upgrades >= 2)
    sm.expire_urls()
    sm.heal()
    await connected(bot, 2)
    assert sm.refused_tickets == 0  # never came back with a used or expired URL
    status, body = await bot.readyz()
    assert status == 200, body


async def test_backoff_doubles_the_wait_up_to_a_cap() -> None:
    client = ReconnectingClient(app_token="xapp-1-test", web_client=AsyncWebClient(), ping_interval=10)
    try:
        waits = []
        for n in range(1, 9):
            client.failures = n
            waits.append(client.backoff() + client.ping_interval)
        assert waits[0] == 10  # the first retry after one interval, as before
        assert waits[:5] == sorted(waits[:5]) and len(set(waits[:5])) == 5  # then longer each time
        assert all(88 + 10 <= w <= 132 + 10 for w in waits[4:])  # capped at 12 intervals, with +-20% jitter
    finally:
        await client.close()


async def test_what_slack_never_delivered_during_an_outage_is_read_back_after_reconnecting(world: Bot) -> None:
    """Slack gives up on an event after a few tries: an answer posted during a long outage reaches the bot only
    by reading the thread, which it does after every reconnect."""
    bot, sm, fake = world, world.socket, world.fake
    start(bot)
    await connected(bot)
    thread = await daily_post(bot)
    sm.fail_open(times=1000, status=503, error="service_unavailable")
    await sm.drop()
    # Posted while the bot is away; Slack's retries of the event ran out, so no envelope will ever carry it.
    lost = bot.slack.message(bot.channel, bot.ann, "Ann: Slack never told the bot", thread_ts=thread)
    fake.apply_user_event(lost)
    sm.heal()
    await connected(bot, 2)

    async def stored() -> bool:
        return await bot.answer_texts() == ["Ann: Slack never told the bot"]

    await until(stored)
    await fake.wait_for(lambda: [c for c in fake.calls_to("reactions.add") if c["timestamp"] == lost["ts"]])
