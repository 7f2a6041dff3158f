"""APScheduler jobs, rebuilt from the database: one precise job per channel plus a safety-net sweep.

APScheduler 3 must not share a job store between processes, so jobs live in memory and are derived from
our own tables at start; correctness never depends on them. A job only says "look at this channel now";
the engine decides what is due and claims it in the database. So a job that fires twice, late, or in two
processes at once does no harm, and a process that was down catches up at its first sweep.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.engine import Engine

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.aps = AsyncIOScheduler(timezone=UTC)

    def _real(self, when: datetime) -> datetime:
        # The engine's clock may run ahead of real time (the shell's /wait, tests); APScheduler only knows
        # real time, so convert "due at engine time T" into "in (T - engine now) from real now".
        return datetime.now(UTC) + (when - self.engine.now())

    async def start(self, *, paused: bool = False) -> None:
        # Catch up on whatever fell due while we were down, before taking any new work.
        await self.engine.tick()
        await self.plan_all()
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

    async def plan_all(self) -> None:
        for ch in await self.engine.my_channels():
            await self.plan(ch.id)

    async def plan(self, channel_pk: int) -> datetime | None:
        """(Re)set the channel's job to its next due time. Returns that time in engine time."""
        when = await self.engine.next_due(channel_pk)
        job_id = f"channel:{channel_pk}"
        if when is None:
            if self.aps.get_job(job_id):
                self.aps.remove_job(job_id)
            return None
        self.aps.add_job(
            self._run,
            DateTrigger(run_date=self._real(when), timezone=UTC),
            args=[channel_pk],
            id=job_id,
            replace_existing=True,
            coalesce=True,
            # A late run is still right: the engine itself decides whether a late post is too stale.
            misfire_grace_time=None,
        )
        return when

    async def replan(self, channel_pk: int) -> None:
        await self.plan(channel_pk)

    async def _run(self, channel_pk: int) -> None:
        try:
            await self.engine.run_channel(channel_pk)
        except Exception:
            log.exception("channel %s: scheduled run failed; the sweep will retry", channel_pk)
        await self.plan(channel_pk)

    async def sweep(self) -> None:
        try:
            await self.engine.tick()
            await self.plan_all()
        except Exception:
            log.exception("sweep failed; retrying at the next one")
