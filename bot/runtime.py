"""Putting the core together: database, migrations, bank, engine, commands, scheduler."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Core
from bot.clock import Clock, FileClock, SystemClock
from bot.config import Config
from bot.engine import Engine
from bot.ports import Platform
from bot.questions.loader import BUILTIN_BANK, load_bank
from bot.questions.model import Bank
from bot.scheduler import Scheduler
from bot.store import migrate
from bot.store.db import create_engine

log = logging.getLogger(__name__)


def clock_from_env() -> Clock:
    path = os.environ.get("INTERVIEW_BOT_CLOCK_FILE")
    if path:
        log.warning("time comes from %s (INTERVIEW_BOT_CLOCK_FILE), not the system clock", path)
        return FileClock(path)
    return SystemClock()


@dataclass
class Runtime:
    config: Config
    db: AsyncEngine
    bank: Bank
    engine: Engine
    core: Core
    scheduler: Scheduler

    async def close(self) -> None:
        await self.scheduler.stop()
        await self.core.ingest.drain()  # what members sent before shutdown is written, not dropped
        await self.db.dispose()


def load_configured_bank(config: Config) -> Bank:
    """The built-in bank plus the team's directories. A broken team bank is reported and skipped, never fatal."""
    paths = ([BUILTIN_BANK] if config.include_builtin_bank else []) + [Path(p) for p in config.question_dirs]
    bank, issues = load_bank(paths)
    for issue in issues:
        (log.error if issue.severity == "error" else log.warning)("question bank: %s", issue)
    if issues:
        log.warning(
            "question bank: %d problem(s); the questions concerned were skipped. "
            "Run `interview-bot questions lint` for the full list.",
            len(issues),
        )
    log.info("question bank: %d questions in %d topics", len(bank.questions), len(bank.topics))
    return bank


async def build(
    config: Config,
    platforms: dict[str, Platform],
    *,
    clock: Clock | None = None,
    bank: Bank | None = None,
    db: AsyncEngine | None = None,
) -> Runtime:
    db = db or create_engine(config.database_url)
    await migrate.upgrade(db)
    bank = bank if bank is not None else load_configured_bank(config)
    engine = Engine(db, bank, platforms, clock or clock_from_env(), config)
    core = Core(engine)
    scheduler = Scheduler(engine)
    core.on_channel_change(scheduler.plan)
    return Runtime(config, db, bank, engine, core, scheduler)
