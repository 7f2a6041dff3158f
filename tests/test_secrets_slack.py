"""Secrets never reach a log line or an error message (issue 8), on Slack: the real `interview-bot run
--platform slack` process at DEBUG, in HTTP mode and in Socket Mode, through a whole day against the fake Slack,
with a forged request and a refused token on the way. Everything the process printed is searched for the bot
token, the app token and the signing secret, whole and in part."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fake_slack import FakeSlackWebAPI, SlackClient, flatten_text
from tests.fake_slack.socket_mode import FakeSocketMode

pytestmark = pytest.mark.faults

MONDAY_0800 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BOT_TOKEN = "xoxb-4711-0815-Zq9KfL2mWc7RtY3uVb8NnPe1"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"  # no token shape: only its value can give it away
APP_TOKEN = "xapp-1-A0TEST-4711-9c1e7a6b5d4f3e2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_clock(path: Path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, path)


def leaks(text: str) -> list[str]:
    """Each secret, or any 12-character piece of one, found in the text."""
    found = []
    for name, secret in (("bot token", BOT_TOKEN), ("app token", APP_TOKEN), ("signing secret", SIGNING_SECRET)):
        pieces = {secret[i : i + 12] for i in range(0, len(secret) - 11)}
        if any(p in text for p in pieces):
            found.append(name)
    return found


async def wait(check: object, what: str, log: Path, within: float = 20.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    tail = log.read_text()[-4000:]  # noqa: ASYNC240 (a small local file, on failure)
    raise AssertionError(f"timed out waiting for {what}; log:\n{tail}")


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_a_whole_slack_day_at_debug_logs_no_secret(tmp_path: Path, mode: str) -> None:
    fake = FakeSlackWebAPI(bot_token=BOT_TOKEN)
    sm = FakeSocketMode(fake, app_token=APP_TOKEN) if mode == "socket" else None
    await fake.start()
    fake.ts_clock = None
    channel = fake.add_channel("daily-questions")
    admin = fake.add_user("ada", admin=True)
    ann, ben = fake.add_user("ann"), fake.add_user("ben")
    clock = tmp_path / "now"
    set_clock(clock, MONDAY_0800)
    config = tmp_path / "bot.yaml"
    config.write_text("log_level: DEBUG\ntiming:\n  sweep_seconds: 1\n")
    port, health = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "INTERVIEW_BOT_CONFIG": str(config),
        "INTERVIEW_BOT_CLOCK_FILE": str(clock),
        "SLACK_API_URL": fake.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_PORT": str(port),
        "SLACK_HOST": "127.0.0.1",
        "HEALTH_PORT": str(health),
        "HEALTH_HOST": "127.0.0.1",
        "SLACK_SOCKET_PING_SECONDS": "0.25",
    }
    env.update({"SLACK_APP_TOKEN": APP_TOKEN} if mode == "socket" else {"SLACK_SIGNING_SECRET": SIGNING_SECRET})
    log = tmp_path / "bot.log"
    out = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--platform", "slack", env=env, stdout=out, stderr=out
    )
    http = SlackClient(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, fake)
    slack = sm.client() if sm is not None else http
    try:
        if sm is not None:
            await wait(lambda: sm.open_connections(), "the socket", log)
        else:
            await wait(lambda: b"listening on port" in log.read_bytes(), "the HTTP server", log)

        async def command(user: str, text: str) -> str:
            result = await slack.slash("/quiz", text, user, channel)
            assert result.status == 200, result
            responses = await fake.wait_for(lambda: fake.responses(result.response_url_key), within=10)
            return " ".join(flatten_text(r) for r in responses)

        assert "Daily question set up" in await command(admin, "admin setup time=09:00")
        set_clock(clock, MONDAY_0800 + timedelta(hours=1, seconds=1))
        [post] = await fake.wait_for(lambda: fake.messages(channel), within=15)
        thread = post["ts"]
        for user, text in ((ann, "Ann's answer"), (ben, "Ben's answer")):
            await slack.event(slack.message(channel, user, text, thread_ts=thread))
        await fake.wait_for(lambda: len(fake.calls_to("reactions.add")) == 2, within=10)
        # A forged request (HTTP mode): refused, and the refusal names no secret.
        forged = SlackClient(http.url, SIGNING_SECRET, fake, bad_signature=True)
        if sm is None:
            assert (await forged.slash("/quiz", "help", ann, channel)).status == 401
        assert "Revealed: voting is open." in await command(admin, "admin reveal-now")
        ballot = await fake.wait_for(
            lambda: [m for m in fake.thread(channel, thread) if "Vote" in flatten_text(m)], within=10
        )
        assert ballot
        await command(ann, "stats")
        await command(ann, "leaderboard")
        if sm is not None:
            await sm.drop()  # a reconnect, with a new URL and ticket, logged at DEBUG
            await wait(lambda: len(sm.connections) >= 2, "the reconnect", log)
        await forged.close()
    finally:
        await http.close()
        if sm is not None:
            await slack.close()
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
        out.close()
        await fake.stop()
    text = log.read_text(errors="replace")
    assert "DEBUG" in text and len(text) > 10_000, "the run should have logged plenty at DEBUG"
    assert leaks(text) == [], f"secrets in the log: {leaks(text)}"


async def test_a_refused_token_is_reported_without_the_token(tmp_path: Path) -> None:
    """Error messages too: Slack refusing the bot token at start stops the bot with a clear message (before, it
    ran on and failed at every post) that does not repeat the token."""
    fake = FakeSlackWebAPI(bot_token="xoxb-the-right-one-0000000000")
    await fake.start()
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "INTERVIEW_BOT_LOG_LEVEL": "DEBUG",
            "SLACK_API_URL": fake.api_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,  # not the fake's: refused
            "SLACK_APP_TOKEN": APP_TOKEN,
            "HEALTH_PORT": str(free_port()),
            "HEALTH_HOST": "127.0.0.1",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--platform", "slack", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        await fake.stop()
    text = output.decode(errors="replace")
    assert proc.returncode == 2, text
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in text
    assert leaks(text) == [], text
