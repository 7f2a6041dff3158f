"""APScheduler jobs are derived from the database; the CLI's db and run commands."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.events import Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from tests.conftest import start_runtime


async def test_the_wakeup_is_rebuilt_from_the_database_at_start(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    first, _ = await start_runtime(runtimes, db_url, bank, clock)
    async with first.engine.tx() as conn:
        for i, tz in enumerate(["Asia/Tokyo", "America/Los_Angeles"]):
            await channel_store.save(
                conn, Place("shell", "local", f"c{i}"), ChannelSettings(timezone=tz, post_time="09:00"), clock.now()
            )
    # A fresh process knows nothing in memory: its wake-up comes from the channels table.
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    await rt.scheduler.start(paused=True)
    jobs = {j.id: j for j in rt.scheduler.aps.get_jobs()}
    assert set(jobs) == {"sweep", "wakeup"}  # one job, however many channels
    real_now = datetime.now(UTC)
    due = clock.now() + (jobs["wakeup"].trigger.run_date - real_now)  # undo the real-time conversion
    # Monday 08:00 UTC: Los Angeles posts at 17:00 UTC today, Tokyo's Tuesday 09:00 is Tuesday 00:00 UTC.
    assert abs(due - datetime(2026, 11, 23, 17, 0, tzinfo=UTC)) < timedelta(seconds=5)
    assert jobs["wakeup"].misfire_grace_time is None  # a late job still runs; the engine judges staleness
    # A channel set up for earlier moves the wake-up earlier.
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, Place("shell", "local", "utc"), ChannelSettings(), clock.now())
    assert await rt.scheduler.plan(ch.id) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert rt.scheduler.wake_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_a_wakeup_replans_itself_after_running(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock)
    async with rt.engine.tx() as conn:
        await channel_store.save(conn, Place("shell", "local", "c"), ChannelSettings(), clock.now())
    await rt.scheduler.start(paused=True)
    assert rt.scheduler.wake_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    clock.advance(timedelta(hours=1))
    await rt.scheduler.wake()  # what APScheduler calls at 09:00
    assert len(platform.posts()) == 1
    assert rt.scheduler.wake_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # the reveal, 8 hours later


def test_db_upgrade_and_current(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["db", "current"]) == 0
    assert "empty" in capsys.readouterr().out
    from bot.store.migrate import head_revision

    head = head_revision()
    assert main(["db", "upgrade"]) == 0
    assert f"migrated empty -> {head}" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"at {head}" in capsys.readouterr().out
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    assert main(["db", "upgrade"]) == 2
    assert "unsupported database 'mysql'" in capsys.readouterr().err


def test_bad_config_exits_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("channel_defaults:\n  timezone: Mars/Base\n")
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(bad), "run"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert "channel_defaults.timezone" in run.stderr and "Traceback" not in run.stderr


def test_shell_runs_from_the_command_line_on_a_fresh_database(tmp_path: Path) -> None:
    """The README's first command, end to end in a subprocess: post, answer, reveal, vote, close."""
    lines = ["/quiz admin post-now", "my answer", "/as alice", "alice's answer", "/as host", "/wait 8h"]
    script = "\n".join([*lines, "/vote 2", "/wait 14h", "/quit", ""])
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        input=script.encode(),
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    assert "Question of the day" in out and "Reference answer" in out
    assert "Vote recorded for alice's answer" in out and "Round closed: results" in out
    assert (tmp_path / "interview-bot.db").exists()
