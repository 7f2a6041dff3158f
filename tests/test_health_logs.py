"""The health endpoint and structured logs."""

from __future__ import annotations

import json
import logging

import aiohttp

from adapters.health import serve_health
from bot.logs import JsonFormatter, RedactSecrets
from bot.store.db import create_engine


async def test_liveness_and_readiness(sqlite_url: str) -> None:
    db = create_engine(sqlite_url)
    platform_state: dict[str, str | None] = {"problem": None}

    async def platform() -> str | None:
        return platform_state["problem"]

    runner = await serve_health(db, platform, port=0)
    assert runner is not None
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/livez") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and (await r.json())["database"] == "ok"
            platform_state["problem"] = "not connected to the Discord gateway"
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 503 and body["platform"] == "not connected to the Discord gateway"
    finally:
        await runner.cleanup()
        await db.dispose()


async def test_readiness_fails_when_the_database_is_unreachable() -> None:
    db = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")

    async def platform() -> str | None:
        return None

    runner = await serve_health(db, platform, port=0)
    assert runner is not None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{runner.addresses[0][1]}/readyz") as r:
                body = await r.json()
                assert r.status == 503 and body["database"] != "ok" and body["platform"] == "ok"
    finally:
        await runner.cleanup()
        await db.dispose()


def test_health_is_off_unless_configured(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    monkeypatch.delenv("HEALTH_PORT", raising=False)

    async def go() -> object:
        async def ok() -> str | None:
            return None

        return await serve_health(create_engine("sqlite+aiosqlite:///:memory:"), ok)

    assert asyncio.run(go()) is None


def test_json_log_lines_are_parseable_and_redacted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234567890-secretsecret")
    record = logging.LogRecord(
        "bot.engine", logging.INFO, __file__, 1, "posted with %s", ("xoxb-1234567890-secretsecret",), None
    )
    RedactSecrets().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "bot.engine"
    assert "secretsecret" not in line and "[redacted]" in entry["message"]
