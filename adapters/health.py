"""Liveness and readiness over HTTP, for Docker and orchestrators.

GET /livez: the process and its event loop answer. GET /readyz: the database answers a query and the
platform connection is up; otherwise 503 with the reason, in JSON. Enabled when HEALTH_PORT is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# Returns None when the platform connection is fine, or a short reason when it is not.
PlatformCheck = Callable[[], Awaitable[str | None]]


async def _database(db: AsyncEngine) -> str | None:
    try:
        async with asyncio.timeout(3):
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason goes to the orchestrator
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def health_app(db: AsyncEngine, platform: PlatformCheck) -> web.Application:
    async def livez(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = {"database": await _database(db), "platform": await platform()}
        ready = all(v is None for v in checks.values())
        body = {"status": "ok" if ready else "unavailable", **{k: v or "ok" for k, v in checks.items()}}
        return web.Response(status=200 if ready else 503, text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


async def serve_health(db: AsyncEngine, platform: PlatformCheck, port: int | None = None) -> web.AppRunner | None:
    """Start the health server if HEALTH_PORT (or ``port``) is set; returns the runner to clean up."""
    port = port if port is not None else (int(os.environ["HEALTH_PORT"]) if os.environ.get("HEALTH_PORT") else None)
    if port is None:
        return None
    runner = web.AppRunner(health_app(db, platform), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, os.environ.get("HEALTH_HOST", "0.0.0.0"), port).start()
    log.info("health endpoint on port %d (/livez, /readyz)", port)
    return runner
