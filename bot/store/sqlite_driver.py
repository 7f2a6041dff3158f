"""SQLAlchemy's aiosqlite adapter with one trip to the database thread per statement instead of four.

aiosqlite runs each sqlite3 call on its own thread and hands the result back to the event loop. SQLAlchemy's
adapter makes four such calls per statement (create a cursor, execute, fetch the rows, close the cursor), and
each hand-off costs about 100 µs on a small machine: far more than SQLite spends on the statement itself. Here
the cursor does all four steps in one function on the database thread and keeps the outcome (rows, description,
rowcount, lastrowid) on the event-loop side, where SQLAlchemy reads it as it would read a buffered cursor.

This leans on two private names of aiosqlite, ``Connection._execute`` (queue a function on the connection's
thread) and ``Connection._conn`` (the sqlite3 connection): the same ones SQLAlchemy's own adapter uses to set
the isolation level. pyproject.toml bounds the aiosqlite version, and tests run every statement through it.
Server-side (streaming) cursors keep the stock behaviour.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, list[Any], int, int | None]


def _run(conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool) -> _Outcome:
    """Runs on the database thread: the transaction's BEGIN if it is still to be sent, and the whole life of a
    cursor, in one go."""
    cur = conn.cursor()
    try:
        if begin is not None:
            cur.execute(begin)
        if many:
            cur.executemany(operation, parameters)
        elif parameters is None:
            cur.execute(operation)
        else:
            cur.execute(operation, parameters)
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, rows, cur.rowcount, cur.lastrowid
    finally:
        cur.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened here (that is a trip of its own); _run opens and closes one.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # already closed on the database thread; rows are buffered here

    def close(self) -> None:
        self._rows.clear()

    async def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        adapt = self._adapt_connection
        async with adapt._execute_mutex:
            begin = adapt.take_begin() if isinstance(adapt, OneTripConnection) else None
            outcome: _Outcome = await conn._execute(_run, conn._conn, begin, operation, parameters, many)  # type: ignore[no-untyped-call]
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._call(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._call(operation, seq_of_parameters, True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin",)
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None

    def begin_with_next_statement(self, begin: str) -> None:
        """Send this BEGIN in the same trip as the transaction's first statement, not in a trip of its own."""
        self._begin = begin

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    def _idle(self) -> bool:
        """No transaction is open: a read-only "transaction" ran its statements in autocommit mode (see
        db.READ_ONLY), so COMMIT or ROLLBACK would be a trip to the database thread that does nothing. Safe to
        ask from the event loop: no statement of this connection is running (SQLAlchemy calls commit and
        rollback between statements)."""
        raw = self._connection._connection
        return raw is not None and not raw.in_transaction

    def commit(self) -> None:
        self._begin = None  # a transaction that ran no statement never began
        if not self._idle():
            super().commit()

    def rollback(self) -> None:
        self._begin = None
        if not self._idle():
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as ``module=`` to create_async_engine with a sqlite+aiosqlite URL."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
