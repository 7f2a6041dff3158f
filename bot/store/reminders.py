"""Members' daily review reminders: settings, the due query, and the claim that makes each one go out once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.dialect import insert
from bot.store.tables import members, reminders


@dataclass(frozen=True)
class Reminder:
    member_id: int
    at_time: str
    timezone: str
    next_at: datetime | None  # None: off
    last_sent_at: datetime | None
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class DueReminder:
    reminder: Reminder
    platform: str
    space_id: str
    user_id: str


def _reminder(row: Any) -> Reminder:
    return Reminder(
        row.member_id, row.at_time, row.timezone, row.next_at, row.last_sent_at, row.failures, row.last_error
    )


async def get(conn: AsyncConnection, member_id: int) -> Reminder | None:
    row = (await conn.execute(select(reminders).where(reminders.c.member_id == member_id))).first()
    return _reminder(row) if row else None


async def put(
    conn: AsyncConnection, member_id: int, at_time: str, timezone: str, next_at: datetime, now: datetime
) -> None:
    """Turn the member's reminder on at a time (or change it). Clears any recorded delivery failure."""
    values = {
        "at_time": at_time,
        "timezone": timezone,
        "next_at": next_at,
        "lease_owner": None,
        "lease_until": None,
        "failures": 0,
        "last_error": None,
        "updated_at": now,
    }
    stmt = insert(conn, reminders).values(member_id=member_id, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["member_id"], set_=values))


async def turn_off(conn: AsyncConnection, member_id: int, now: datetime) -> bool:
    """Stop the reminder (its time and timezone are kept for "on"). False if it was not on."""
    stmt = (
        update(reminders)
        .where(reminders.c.member_id == member_id, reminders.c.next_at.is_not(None))
        .values(next_at=None, lease_owner=None, lease_until=None, updated_at=now)
        .returning(reminders.c.member_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def due(conn: AsyncConnection, platforms: Iterable[str], now: datetime, limit: int) -> list[DueReminder]:
    """Reminders whose time has come and that nobody is sending right now: one range read on ix_reminders_next_at."""
    q = (
        select(reminders, members.c.platform, members.c.space_id, members.c.user_id)
        .join(members, members.c.id == reminders.c.member_id)
        .where(
            reminders.c.next_at <= now,
            or_(reminders.c.lease_until.is_(None), reminders.c.lease_until < now),
            members.c.platform.in_(sorted(set(platforms))),
        )
        .order_by(reminders.c.next_at)
        .limit(limit)
    )
    return [DueReminder(_reminder(r), r.platform, r.space_id, r.user_id) for r in (await conn.execute(q)).all()]


async def claim(
    conn: AsyncConnection, member_ids: Iterable[int], owner: str, now: datetime, lease_until: datetime
) -> set[int]:
    """Take the due reminders that are still free, all in one statement; returns the members now ours. Another
    process running the same claim at the same moment gets none of them (the row lock decides on PostgreSQL,
    the write lock on SQLite), and a claim whose process died is free again once its lease runs out."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    stmt = (
        update(reminders)
        .where(
            reminders.c.member_id.in_(ids),
            reminders.c.next_at <= now,
            or_(reminders.c.lease_until.is_(None), reminders.c.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=lease_until)
        .returning(reminders.c.member_id)
    )
    return {r.member_id for r in (await conn.execute(stmt)).all()}


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed reminder: its next time (None turns it off), whether it went out, and why not."""

    member_id: int
    next_at: datetime | None
    sent: bool = False
    error: str | None = None


async def finish_many(conn: AsyncConnection, owner: str, now: datetime, outcomes: Iterable[Outcome]) -> int:
    """Release claimed reminders with their next times, a few statements for any number of them. A failure is
    counted and recorded; a message that went out clears the count. Rows whose lease we lost are left alone.
    Returns how many were still ours."""
    sent = [o for o in outcomes if o.sent]
    failed = [o for o in outcomes if not o.sent and o.error is not None]
    quiet = [o for o in outcomes if not o.sent and o.error is None]
    mine = (reminders.c.member_id == bindparam("b_member"), reminders.c.lease_owner == owner)
    release: dict[str, Any] = {
        "next_at": bindparam("b_next"),
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    done = 0
    for group, extra in (
        (sent, {"last_sent_at": now, "failures": 0, "last_error": None}),
        (failed, {"failures": reminders.c.failures + 1, "last_error": bindparam("b_error")}),
        (quiet, {}),
    ):
        if group:
            stmt = update(reminders).where(*mine).values(**release, **extra)
            params = [{"b_member": o.member_id, "b_next": o.next_at, "b_error": (o.error or "")[:500]} for o in group]
            done += int((await conn.execute(stmt, params)).rowcount or 0)
    return done


async def next_time(conn: AsyncConnection, platforms: Iterable[str]) -> datetime | None:
    """The earliest moment a reminder on these platforms may need sending: its time, or the end of the lease
    someone holds on it. Reminders of platforms this process does not serve are not its business (waking for
    them would only find nothing to do, again and again)."""
    when = case((reminders.c.lease_until > reminders.c.next_at, reminders.c.lease_until), else_=reminders.c.next_at)
    q = (
        select(func.min(when))
        .select_from(reminders.join(members, members.c.id == reminders.c.member_id))
        .where(reminders.c.next_at.is_not(None), members.c.platform.in_(sorted(set(platforms))))
    )
    value = (await conn.execute(q)).scalar_one()
    if value is None:
        return None
    from bot.store.rounds import _as_utc  # MIN over a UtcDateTime comes back as text on SQLite

    return _as_utc(value)


async def forget(conn: AsyncConnection, member_id: int) -> None:
    await conn.execute(delete(reminders).where(reminders.c.member_id == member_id))
