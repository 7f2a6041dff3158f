"""Time as a dependency, so tests and the shell can move it without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: tests set it, the shell's ``/wait`` advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware datetime")
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class FileClock:
    """The time written in a file (ISO 8601). Set INTERVIEW_BOT_CLOCK_FILE to move time for several real
    bot processes at once: the multi-process tests do, and so can a demo. Never used unless that is set."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._value = datetime.now(UTC)

    def now(self) -> datetime:
        import os

        try:
            mtime = os.stat(self.path).st_mtime
            if mtime != self._mtime:
                with open(self.path, encoding="utf-8") as f:
                    value = datetime.fromisoformat(f.read().strip())
                self._value = value if value.tzinfo else value.replace(tzinfo=UTC)
                self._mtime = mtime
        except (OSError, ValueError):
            pass  # keep the last good reading; a half-written file is read again on the next call
        return self._value


class OffsetClock:
    """Real time plus an offset: the shell's clock, so ``/wait 8h`` jumps ahead and real time keeps flowing."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
