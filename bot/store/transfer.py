"""`db export` and `db import`: every row of every table as JSON Lines, to move an install between databases
(SQLite to PostgreSQL, or one server to another) without losing history.

Ids are kept, so points, votes and answers still refer to the right rows; PostgreSQL's id sequences are moved
past the imported ids afterwards. Slack's OAuth installations live in slack-sdk's own tables and are not
included: workspaces reinstall from /slack/install after a move.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.migrate import current_revision, head_revision
from bot.store.tables import UtcDateTime, channels, metadata

FORMAT = "interview-bot-export"
VERSION = 1
BATCH = 500


class TransferError(Exception):
    pass


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def export(engine: AsyncEngine, path: Path) -> dict[str, int]:
    revision = await current_revision(engine)
    if revision != head_revision():
        raise TransferError(f"the database is at revision {revision}; run `interview-bot db upgrade` first")
    counts: dict[str, int] = {}
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": FORMAT, "version": VERSION, "revision": revision}) + "\n")
        async with engine.connect() as conn:
            for table in metadata.sorted_tables:  # parents before children, so an import never breaks a key
                n = 0
                order = list(table.primary_key.columns)
                result = await conn.stream(select(table).order_by(*order))
                async for row in result:
                    record = {k: _encode(v) for k, v in row._mapping.items()}
                    out.write(json.dumps({"t": table.name, "r": record}, ensure_ascii=False) + "\n")
                    n += 1
                counts[table.name] = n
    return counts


def _decoder(table: Table) -> dict[str, bool]:
    return {c.name: isinstance(c.type, UtcDateTime) for c in table.columns}


async def import_(engine: AsyncEngine, path: Path) -> dict[str, int]:
    """Load an export into a migrated, empty database. Refuses a database that already has channels."""
    tables = {t.name: t for t in metadata.sorted_tables}
    with path.open(encoding="utf-8") as f:
        try:
            header = json.loads(f.readline())
        except json.JSONDecodeError:
            raise TransferError(f"{path}: not an interview-bot export (no header line)") from None
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise TransferError(f"{path}: not an interview-bot export, or from a newer version")
        if header.get("revision") != head_revision():
            raise TransferError(
                f"{path} was exported at schema {header.get('revision')}, this version is at {head_revision()}: "
                "export and import with the same version of interview-bot"
            )
        async with engine.begin() as conn:
            if (await conn.execute(select(func.count()).select_from(channels))).scalar_one():
                raise TransferError("the target database already has channels: import only into an empty database")
            counts: dict[str, int] = {}
            pending: list[dict[str, Any]] = []
            current: Table | None = None

            async def flush() -> None:
                if current is not None and pending:
                    await conn.execute(current.insert(), pending)
                    counts[current.name] = counts.get(current.name, 0) + len(pending)
                    pending.clear()

            for lineno, line in enumerate(f, start=2):
                try:
                    item = json.loads(line)
                    table = tables[item["t"]]
                except (json.JSONDecodeError, KeyError):
                    raise TransferError(f"{path}:{lineno}: not a row of a known table") from None
                if table is not current:
                    await flush()
                    current = table
                    dates = _decoder(table)
                row = {
                    k: (datetime.fromisoformat(v) if dates.get(k) and v is not None else v)
                    for k, v in item["r"].items()
                }
                pending.append(row)
                if len(pending) >= BATCH:
                    await flush()
            await flush()
            if conn.dialect.name == "postgresql":
                for table in metadata.sorted_tables:
                    if "id" in table.c and table.c.id.autoincrement:
                        # Next ids continue after the imported ones instead of colliding with them.
                        await conn.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                f"COALESCE((SELECT MAX(id) FROM {table.name}), 1), "
                                f"(SELECT MAX(id) FROM {table.name}) IS NOT NULL)"
                            )
                        )
    return counts
