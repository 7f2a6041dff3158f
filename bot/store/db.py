"""Engine creation: the SQLite settings that make a file database safe for a busy bot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.store import sqlite_driver

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option marking a transaction that never writes (Engine.read()).
READ_ONLY = "interview_bot_read_only"


class DatabaseUrlError(ValueError):
    pass


def normalise_url(raw: str) -> URL:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick the async driver."""
    try:
        url = make_url(raw)
    except Exception as exc:  # SQLAlchemy raises ArgumentError for junk; say what we expected instead
        raise DatabaseUrlError(
            f"DATABASE_URL '{redact(raw)}' is not a database URL: use sqlite+aiosqlite:///path.db or "
            "postgresql+asyncpg://user@host/db"
        ) from exc
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(f"unsupported database '{backend}': interview-bot runs on SQLite or PostgreSQL")


def redact(raw: str) -> str:
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable>"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(raw_url: str, **kw: Any) -> AsyncEngine:
    url = normalise_url(raw_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # One thread trip per statement instead of four (see sqlite_driver): most of a statement's cost here.
        kw.setdefault("module", sqlite_driver.dbapi())
        # Every transaction ends in an explicit COMMIT or ROLLBACK (SQLAlchemy's Connection rolls back one left
        # open when it closes), so the pool's extra rollback on check-in would only be one more thread trip.
        kw.setdefault("pool_reset_on_return", None)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kw)
        _tune_sqlite(engine)
        return engine
    # ?schema=name keeps the bot's tables in one PostgreSQL schema (a shared database, or one per test).
    schema = url.query.get("schema")
    if schema:
        if isinstance(schema, tuple) or not schema.replace("_", "").isalnum():
            raise DatabaseUrlError("the schema in DATABASE_URL must be one name of letters, digits and _")
        url = url.difference_update_query(["schema"])
        kw.setdefault("connect_args", {}).setdefault("server_settings", {})["search_path"] = schema
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 10)
    kw.setdefault("pool_pre_ping", True)  # survive a PostgreSQL restart: stale connections are replaced
    return create_async_engine(url, **kw)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can issue BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # wait for the lock instead of failing
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; the WAL guards against corruption
        cur.execute("PRAGMA foreign_keys=ON")  # forget-me relies on ON DELETE CASCADE
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A transaction that may write takes the write lock up front: a deferred transaction that reads and
        # then writes can fail with "database is locked" when another writer got in between, and
        # busy_timeout cannot help it. One that only reads (see READ_ONLY) opens no transaction at all: each
        # statement reads its own snapshot under WAL, beside the writer, and no BEGIN or COMMIT costs a trip to
        # the database thread. The reads that use it (commands, the sweep's look-ups) need no snapshot shared
        # between their statements.
        if not conn.get_execution_options().get(READ_ONLY):
            raw = conn.connection.dbapi_connection
            if isinstance(raw, sqlite_driver.OneTripConnection):
                raw.begin_with_next_statement("BEGIN IMMEDIATE")  # one trip fewer per transaction
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
