"""The UtcDateTime column type: its fast SQLite path must store exactly what SQLAlchemy's own path stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.dialects import sqlite

from bot.store import migrate
from bot.store.db import create_engine
from bot.store.tables import UtcDateTime, channels

INSTANTS = [
    datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC),
    datetime(2026, 11, 23, 9, 0, 5, 123456, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    # An offset other than UTC, on a DST night: stored as the UTC instant.
    datetime(2026, 3, 29, 1, 30, 0, 7, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 3, 29, 1, 30, 0, 7, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
]


def test_the_sqlite_text_equals_sqlalchemys_own() -> None:
    dialect = sqlite.dialect()
    fast = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    generic = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None and generic is not None
    for at in INSTANTS:
        expected = generic(at.astimezone(UTC).replace(tzinfo=None))
        assert fast(at) == expected
        assert fast(at) == expected  # the cached answer is the same
    assert fast(None) is None


def test_a_naive_datetime_is_refused_on_both_paths() -> None:
    dialect = sqlite.dialect()
    fast = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None
    with pytest.raises(ValueError, match="naive datetime"):
        fast(datetime(2026, 11, 23, 9, 0))
    with pytest.raises(ValueError, match="naive datetime"):
        UtcDateTime().process_bind_param(datetime(2026, 11, 23, 9, 0), dialect)


async def test_instants_round_trip_and_compare_in_the_database(db_url: str) -> None:
    db = create_engine(db_url)
    await migrate.upgrade(db)
    try:
        async with db.begin() as conn:
            for i, at in enumerate(INSTANTS):
                await conn.execute(
                    channels.insert().values(
                        platform="t", space_id="s", channel_id=f"c{i}", name=f"c{i}", settings={},
                        enabled=True, active_since=at, created_at=at, updated_at=at,
                    )
                )  # fmt: skip
        async with db.connect() as conn:
            got = {r.channel_id: r.active_since for r in (await conn.execute(select(channels))).all()}
            assert got == {f"c{i}": at for i, at in enumerate(INSTANTS)}
            assert all(at.tzinfo is not None for at in got.values())
            # Comparisons bind through the same path: text order on SQLite must be time order.
            pivot = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
            later = select(channels.c.channel_id).where(channels.c.active_since > pivot)
            expected = {f"c{i}" for i, at in enumerate(INSTANTS) if at > pivot}
            assert {r.channel_id for r in (await conn.execute(later)).all()} == expected
    finally:
        await db.dispose()
