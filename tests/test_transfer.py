"""Moving an install from SQLite to PostgreSQL with `db export` / `db import` loses nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.store.db import create_engine
from bot.store.scores import channel_scope, leaderboard
from bot.store.tables import metadata
from tests.shell_helpers import open_terminal


async def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def cli(cwd: Path, url: str, *args: str) -> tuple[int, str]:
    """The real command line, as a user runs it (the CLI owns its event loop, so not in this one)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_sqlite_to_postgresql(sqlite_url, pg_url, bank, clock, runtimes, tmp_path: Path):  # type: ignore[no-untyped-def]
    # A real history on SQLite: two rounds with answers, votes, points, a practice rating.
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    await t.type("/quiz admin post-now", "host answer", "/as ann", "ann answer", "/as host", "/quiz admin reveal-now")
    await t.type("/vote 2", "/as ann", "/vote 1", "/as host", "/quiz admin close-now")
    await t.type("/quiz admin post-now", "second day", "/quiz admin reveal-now", "/quiz admin close-now")
    await t.type("/as zoe", "/quiz practice")
    await t.type(f"/click {max(t.platform.buttons)}")  # Show answer
    await t.type(f"/click {max(t.platform.buttons) - 3}")  # Got it
    before = await counts(sqlite_url)
    assert before["ledger"] > 0 and before["votes"] == 2 and before["practice"] == 1

    dump = tmp_path / "backup.jsonl"
    code, out = await cli(tmp_path, sqlite_url, "db", "export", str(dump))
    assert code == 0 and "exported" in out, out
    code, out = await cli(tmp_path, pg_url, "db", "import", str(dump))
    assert code == 0 and "imported" in out, out
    assert await counts(pg_url) == before

    # Same standings, and new rows get fresh ids after the imported ones.
    sq = create_engine(sqlite_url)
    async with sq.connect() as conn:
        expected = [(s.display_name, s.points) for s in await leaderboard(conn, channel_scope(1), "all")]
    await sq.dispose()
    assert len(expected) == 2 and all(points > 0 for _, points in expected)
    pg = create_engine(pg_url)
    async with pg.connect() as conn:
        assert [(s.display_name, s.points) for s in await leaderboard(conn, channel_scope(1), "all")] == expected
    await pg.dispose()
    t2 = await open_terminal(pg_url, bank, clock, runtimes)
    out = await t2.type("/quiz admin post-now", "after the move")
    assert "Posted" in out and "✓ answer recorded" in out

    # Importing twice, or into a database with channels, is refused.
    code, out = await cli(tmp_path, pg_url, "db", "import", str(dump))
    assert code == 1 and "already has channels" in out


def test_import_rejects_a_file_that_is_not_an_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "x.jsonl"
    bad.write_text("hello\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
    assert main(["db", "import", str(bad)]) == 1
    assert "not an interview-bot export" in capsys.readouterr().err
