"""Event ids already seen, per platform: redelivery dedupe, and tombstones of deleted answers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.dialect import insert, insert_for, prebuilt
from bot.store.tables import seen_events


async def mark(conn: AsyncConnection, platform: str, event_id: str, now: datetime) -> bool:
    """Record an id; True if it was new (in any process), False if it had been seen before."""
    stmt = (
        insert(conn, seen_events)
        .values(platform=platform, event_id=event_id[:128], seen_at=now)
        .on_conflict_do_nothing(index_elements=["platform", "event_id"])
        .returning(seen_events.c.event_id)
    )
    return (await conn.execute(stmt)).first() is not None


_mark_many = prebuilt(
    lambda d: insert_for(d, seen_events)
    .on_conflict_do_nothing(index_elements=["platform", "event_id"])
    .returning(seen_events.c.platform, seen_events.c.event_id)
)
_MARKED_AMONG = select(seen_events.c.event_id).where(
    seen_events.c.platform == bindparam("platform"), seen_events.c.event_id.in_(bindparam("ids", expanding=True))
)


async def mark_many(conn: AsyncConnection, ids: Collection[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    """mark for many (platform, id) pairs in one statement: the pairs that were new."""
    pairs = {(p, e[:128]) for p, e in ids}
    if not pairs:
        return set()
    params = [{"platform": p, "event_id": e, "seen_at": now} for p, e in sorted(pairs)]
    rows = await conn.execute(_mark_many(conn), params)
    return {(r.platform, r.event_id) for r in rows.all()}


async def is_marked(conn: AsyncConnection, platform: str, event_id: str) -> bool:
    q = select(seen_events.c.event_id).where(
        seen_events.c.platform == platform, seen_events.c.event_id == event_id[:128]
    )
    return (await conn.execute(q)).first() is not None


async def marked_among(conn: AsyncConnection, platform: str, event_ids: Collection[str]) -> set[str]:
    """Which of these ids are recorded: one query for a batch."""
    if not event_ids:
        return set()
    ids = sorted({e[:128] for e in event_ids})
    return {r.event_id for r in (await conn.execute(_MARKED_AMONG, {"platform": platform, "ids": ids})).all()}


async def prune(conn: AsyncConnection, before: datetime) -> None:
    await conn.execute(delete(seen_events).where(seen_events.c.seen_at < before))
