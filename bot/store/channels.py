"""Channels (with their settings) and members."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, func, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.events import Actor, Place
from bot.models import Channel, Member
from bot.settings import ChannelSettings
from bot.store.dialect import insert, insert_for, prebuilt
from bot.store.tables import channels, members

_SETTINGS: dict[str, ChannelSettings] = {}


def _settings(raw: Any) -> ChannelSettings:
    """Parsed settings, shared between channels with identical ones: most channels keep the defaults, and
    decoding and validating ten thousand copies on every sweep would dominate it. The column is read as its
    raw JSON text (see SETTINGS_TEXT), so a repeat costs one dictionary look-up. Never changed in place."""
    key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
    found = _SETTINGS.get(key)
    if found is None:
        if len(_SETTINGS) > 10_000:
            _SETTINGS.clear()
        found = _SETTINGS[key] = ChannelSettings.model_validate(json.loads(key))
    return found


# The settings column as stored text: JSON on SQLite is text already; on PostgreSQL the cast gives its text.
SETTINGS_TEXT = type_coerce(channels.c.settings, Text).label("settings")
COLUMNS = [c for c in channels.c if c.name != "settings"] + [SETTINGS_TEXT]


def _channel(row: Any) -> Channel:
    return Channel(
        id=row.id,
        platform=row.platform,
        space_id=row.space_id,
        channel_id=row.channel_id,
        name=row.name,
        settings=_settings(row.settings),
        enabled=row.enabled,
        active_since=row.active_since,
        paused_reason=row.paused_reason,
        contact_user_id=row.contact_user_id,
    )


async def find(conn: AsyncConnection, platform: str, space_id: str, channel_id: str) -> Channel | None:
    row = (
        await conn.execute(
            select(*COLUMNS).where(
                channels.c.platform == platform, channels.c.space_id == space_id, channels.c.channel_id == channel_id
            )
        )
    ).first()
    return _channel(row) if row else None


async def get(conn: AsyncConnection, pk: int) -> Channel | None:
    row = (await conn.execute(select(*COLUMNS).where(channels.c.id == pk))).first()
    return _channel(row) if row else None


async def all_channels(conn: AsyncConnection, platform: str | None = None) -> list[Channel]:
    q = select(*COLUMNS).order_by(channels.c.id)
    if platform:
        q = q.where(channels.c.platform == platform)
    return [_channel(r) for r in (await conn.execute(q)).all()]


async def in_space(conn: AsyncConnection, platform: str, space_id: str) -> list[int]:
    q = select(channels.c.id).where(channels.c.platform == platform, channels.c.space_id == space_id)
    return [r.id for r in (await conn.execute(q)).all()]


async def save(
    conn: AsyncConnection,
    place: Place,
    settings: ChannelSettings,
    now: datetime,
    *,
    enable: bool = True,
    contact: str | None = None,
) -> tuple[Channel, bool]:
    """Create the channel or replace its settings. Returns (channel, created). ``contact``: who set it up."""
    existing = await find(conn, place.platform, place.space_id, place.channel_id)
    data = settings.model_dump(mode="json")
    if existing is None:
        stmt = (
            insert(conn, channels)
            .values(
                platform=place.platform,
                space_id=place.space_id,
                channel_id=place.channel_id,
                name=place.channel_name,
                settings=data,
                enabled=enable,
                contact_user_id=contact,
                active_since=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["platform", "space_id", "channel_id"])
        )
        await conn.execute(stmt)
        created = True
    else:
        values: dict[str, Any] = {"settings": data, "updated_at": now}
        if contact:
            values["contact_user_id"] = contact
        if place.channel_name:
            values["name"] = place.channel_name
        await conn.execute(update(channels).where(channels.c.id == existing.id).values(**values))
        created = False
    channel = await find(conn, place.platform, place.space_id, place.channel_id)
    assert channel is not None
    return channel, created


async def set_enabled(conn: AsyncConnection, pk: int, enabled: bool, now: datetime, reason: str | None = None) -> None:
    values: dict[str, Any] = {"enabled": enabled, "paused_reason": None if enabled else reason, "updated_at": now}
    if enabled:
        # Whatever was due while paused stays skipped: resuming starts the schedule afresh.
        values["active_since"] = now
    await conn.execute(update(channels).where(channels.c.id == pk).values(**values))


async def ensure_member(conn: AsyncConnection, actor: Actor, now: datetime) -> Member:
    """The member row for an actor, created on first sight; the display name follows renames. One statement."""
    ids = await ensure_members(conn, [actor], now)
    return Member(
        ids[(actor.platform, actor.space_id, actor.user_id)],
        actor.platform,
        actor.space_id,
        actor.user_id,
        _member_name(actor),
    )


def _member_name(actor: Actor) -> str:
    # PostgreSQL refuses NUL in text; an empty name falls back to the platform id.
    return actor.display_name.replace("\x00", "")[:200] or actor.user_id


def _build_upsert_members(dialect: str) -> Any:
    stmt = insert_for(dialect, members)
    return stmt.on_conflict_do_update(
        index_elements=["platform", "space_id", "user_id"], set_={"display_name": stmt.excluded.display_name}
    ).returning(members.c.id, members.c.platform, members.c.space_id, members.c.user_id)


_upsert_members = prebuilt(_build_upsert_members)


async def ensure_members(
    conn: AsyncConnection, actors: Sequence[Actor], now: datetime
) -> dict[tuple[str, str, str], int]:
    """Member ids for many actors in one statement, keyed by (platform, space, user); as ensure_member.

    An actor listed twice is written once, with the last display name given (the freshest)."""
    latest: dict[tuple[str, str, str], Actor] = {}
    for a in actors:
        latest[(a.platform, a.space_id, a.user_id)] = a
    if not latest:
        return {}
    stmt = _upsert_members(conn)
    params = [
        {
            "platform": a.platform,
            "space_id": a.space_id,
            "user_id": a.user_id,
            "display_name": _member_name(a),
            "created_at": now,
        }
        for a in latest.values()
    ]
    rows = (await conn.execute(stmt, params)).all()
    return {(r.platform, r.space_id, r.user_id): int(r.id) for r in rows}


async def find_member(conn: AsyncConnection, platform: str, space_id: str, user_id: str) -> Member | None:
    row = (
        await conn.execute(
            select(members).where(
                members.c.platform == platform, members.c.space_id == space_id, members.c.user_id == user_id
            )
        )
    ).first()
    return Member(row.id, row.platform, row.space_id, row.user_id, row.display_name) if row else None


async def find_member_by_name(conn: AsyncConnection, platform: str, space_id: str, name: str) -> Member | None:
    """A member by platform id or display name (case-insensitive), for ``/quiz stats @someone``."""
    # "@ann", "ann", a platform id, or a platform's mention syntax: Discord <@123>, Slack <@U123|ann>.
    name = name.strip().strip("<>").lstrip("@!").split("|")[0]
    row = (
        await conn.execute(
            select(members)
            .where(
                members.c.platform == platform,
                members.c.space_id == space_id,
                or_(members.c.user_id == name, func.lower(members.c.display_name) == name.lower()),
            )
            .order_by(members.c.id)
        )
    ).first()
    return Member(row.id, row.platform, row.space_id, row.user_id, row.display_name) if row else None
