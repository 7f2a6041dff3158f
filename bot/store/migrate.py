"""Apply Alembic migrations from inside the running event loop (``db upgrade`` and start-up)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
# Any constant works: it only has to be the same in every interview-bot process.
_PG_MIGRATION_LOCK = 0x1B_0717


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision. Returns (before, after). Safe to run from several processes:
    SQLite serialises it with BEGIN IMMEDIATE, PostgreSQL with an advisory lock."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        before, after = await conn.run_sync(_upgrade_sync)
        if conn.info.pop("rebuild_standings", False):
            from bot.store.scores import rebuild_totals

            await rebuild_totals(conn)  # standings arrived in 0003; fill them from the existing ledger
        return before, after


def _upgrade_sync(connection: Connection) -> tuple[str | None, str | None]:
    before = MigrationContext.configure(connection).get_current_revision()
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    after = MigrationContext.configure(connection).get_current_revision()
    if before in ("0001", "0002"):
        connection.info["rebuild_standings"] = True  # see upgrade(): computed from the ledger after migrating
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return before, after


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
