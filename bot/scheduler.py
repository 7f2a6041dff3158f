"""APScheduler jobs, derived from the database: one wake-up at the earliest moment anything is due, plus a
safety-net sweep.

APScheduler 3 must not share a job store between processes, so jobs live in memory and are derived from
our own tables at start; correctness never depends on them. A job only says "look now"; the engine decides
what is due and claims it in the database. So a job that fires twice, late, or in two processes at once does
no harm, and a process that was down catches up at its first sweep. One wake-up job rather than one job per
channel keeps ten thousand channels cheap to plan and to hold in memory.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.engine import Engine
from bot.models import Channel

log = logging.getLogger(__name__)

WAKEUP = "wakeup"


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.aps = AsyncIOScheduler(timezone=UTC)
        self.wake_at: datetime | None = None  # in engine time

    def _real(self, when: datetime) -> datetime:
        # The engine's clock may run ahead of real time (the shell's /wait, tests); APScheduler only knows
        # real time, so convert "due at engine time T" into "in (T - engine now) from real now".
        return datetime.now(UTC) + (when - self.engine.now())

    async def start(self, *, paused: bool = False) -> None:
        # Catch up on whatever fell due while we were down, before taking any new work.
        await self.plan_all(await self.engine.tick())
        self.aps.add_job(
            self.sweep,
            IntervalTrigger(seconds=self.engine.config.timing.sweep_seconds),
            id="sweep",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self.aps.start(paused=paused)

    async def stop(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    async def plan_all(self, served: list[Channel] | None = None) -> datetime | None:
        """Set the wake-up to the earliest moment anything in any channel we serve is due."""
        self._set(await self.engine.next_wakeup(served))
        return self.wake_at

    async def plan(self, channel_pk: int) -> datetime | None:
        """A channel changed (setup, pause, post-now): wake up earlier if it now needs attention sooner."""
        when = await self.engine.next_due(channel_pk)
        if when is not None and (self.wake_at is None or when < self.wake_at):
            self._set(when)
        return when

    def _set(self, when: datetime | None) -> None:
        self.wake_at = when
        if when is None:
            if self.aps.get_job(WAKEUP):
                self.aps.remove_job(WAKEUP)
            return
        self.aps.add_job(
            self.wake,
            DateTrigger(run_date=self._real(when), timezone=UTC),
            id=WAKEUP,
            replace_existing=True,
            coalesce=True,
            # A late run is still right: the engine itself decides whether a late post is too stale.
            misfire_grace_time=None,
        )

    async def wake(self) -> None:
        served = None
        try:
            served = await self.engine.tick()
        except Exception:
            log.exception("scheduled run failed; the sweep will retry")
        try:
            await self.plan_all(served)
        except Exception:
            # The database is away (a PostgreSQL restart): with no wake-up planned, the sweep plans the next one.
            log.exception("could not plan the next wake-up; the sweep will")

    async def sweep(self) -> None:
        try:
            await self.plan_all(await self.engine.tick())
        except Exception:
            log.exception("sweep failed; retrying at the next one")
