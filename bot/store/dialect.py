"""The one place where SQLite and PostgreSQL differ in our SQL: INSERT ... ON CONFLICT."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def prebuilt(build: Callable[[str], Any]) -> Callable[[AsyncConnection], Any]:
    """A statement built once per database kind (INSERT ... ON CONFLICT differs) and reused: the hot paths
    spend more Python time constructing a statement and its cache key than SQLite spends running it."""
    made: dict[str, Any] = {}

    def get(conn: AsyncConnection) -> Any:
        name = conn.dialect.name
        if name not in made:
            made[name] = build(name)
        return made[name]

    return get


def insert_for(dialect_name: str, table: Table) -> Any:
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both backends."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
