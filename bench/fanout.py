"""Daily fan-out, memory and start-up with many channels.

- fan-out: N channels all due in the same minute; time from the trigger until every post was handed to the
  adapter (a platform with no latency); then with a simulated platform limit of 50 requests/s, how close the
  run comes to the ideal N / 50 s, while commands from another channel are timed (none may wait > 100 ms).
- start-up: time from nothing to accepting commands (migrations, bank, scheduler plan) with N channels.
- memory: resident memory of a running bot with N channels configured and planned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import NullPlatform, Result, Stopwatch, report, scratch_dir, summary
from bot.clock import ManualClock
from bot.config import Config
from bot.events import Actor, Place, TextCommand
from bot.models import Channel
from bot.ports import Sent
from bot.questions.loader import BUILTIN_BANK, load_bank
from bot.render import Message
from bot.runtime import build
from bot.settings import ChannelSettings
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.tables import channels

MONDAY_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROOT = str(Path(__file__).resolve().parents[1])


class LimitedPlatform(NullPlatform):
    """No latency, but at most ``rate`` calls a second, like a platform's global rate limit."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.interval = 1.0 / rate
        self.next_slot = time.perf_counter()
        self.lock = asyncio.Lock()

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        async with self.lock:
            now = time.perf_counter()
            wait = self.next_slot - now
            self.next_slot = max(now, self.next_slot) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)
        return await super().send(channel, message, thread_id)


async def seed_channels(url: str, n: int, when: datetime) -> None:
    """N channels set up the day before, all posting at 09:00 UTC on weekdays (bulk: this is setup, not the bench)."""
    db = create_engine(url)
    await migrate.upgrade(db)
    settings = ChannelSettings(post_time="09:00", timezone="UTC").model_dump(mode="json")
    since = when - timedelta(days=1)
    rows = [
        {
            "platform": "bench",
            "space_id": f"s{i // 100}",
            "channel_id": f"c{i}",
            "name": f"c{i}",
            "settings": settings,
            "enabled": True,
            "active_since": since,
            "created_at": since,
            "updated_at": since,
        }
        for i in range(n)
    ]
    async with db.begin() as conn:
        for start in range(0, n, 2000):
            await conn.execute(channels.insert(), rows[start : start + 2000])
    await db.dispose()


def config(url: str) -> Config:
    return Config.model_validate({"database_url": url, "timing": {"sweep_seconds": 3600}})


async def fanout(n: int, quick: bool) -> list[Result]:
    results: list[Result] = []
    bank, _ = load_bank([BUILTIN_BANK])
    with scratch_dir() as d:
        url = f"sqlite+aiosqlite:///{d / 'fanout.db'}"
        await seed_channels(url, n, MONDAY_0900)
        clock = ManualClock(MONDAY_0900 - timedelta(minutes=1))
        platform = NullPlatform()
        rt = await build(config(url), {"bench": platform}, clock=clock, bank=bank)
        clock.set(MONDAY_0900 + timedelta(seconds=5))
        watch = Stopwatch()
        await rt.engine.tick()
        took = watch.seconds
        await rt.close()
        results.append(
            Result(
                "fanout",
                f"{n} posts handed to the adapter",
                took,
                "s",
                "< 2 s",
                took < 2.0,
                detail={"posted": platform.sent},
            )
        )

        # The same with a platform limit of 50 requests/s, on a smaller set in quick mode, while another
        # channel's members run commands every 50 ms.
        limited_n = 150 if quick else n
        url2 = f"sqlite+aiosqlite:///{d / 'limited.db'}"
        await seed_channels(url2, limited_n, MONDAY_0900)
        clock2 = ManualClock(MONDAY_0900 + timedelta(seconds=5))
        limited = LimitedPlatform(50)
        rt2 = await build(config(url2), {"bench": limited}, clock=clock2, bank=bank)
        delays: list[float] = []
        done = asyncio.Event()

        async def member_commands() -> None:
            actor = Actor("bench", "s0", "u1", "u1")
            place = Place("bench", "s0", "c1")
            while not done.is_set():
                t0 = time.perf_counter()
                await rt2.core.handle(TextCommand(actor, place, "quiz leaderboard"))
                delays.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.05)

        prober = asyncio.create_task(member_commands())
        watch = Stopwatch()
        await rt2.engine.tick()
        took = watch.seconds
        done.set()
        await prober
        await rt2.close()
        ideal = limited_n / 50
        s = summary(delays)
        results.append(
            Result(
                "fanout",
                f"{limited_n} posts at 50 req/s (ideal {ideal:.0f} s)",
                took,
                "s",
                "within 5% of ideal",
                took <= ideal * 1.05,
                ratio=took / ideal,
            )
        )
        results.append(
            Result(
                "fanout",
                "other channel's command during fan-out, p99",
                s["p99"],
                "ms",
                "< 100 ms",
                s["p99"] < 100,
                detail=s,
            )
        )
    return results


async def startup_and_memory(n: int) -> list[Result]:
    """In a fresh process, so memory and import costs are the bot's own."""
    with scratch_dir() as d:
        url = f"sqlite+aiosqlite:///{d / 'start.db'}"
        await seed_channels(url, n, MONDAY_0900)
        code = f"""
import asyncio, time, json
t0 = time.perf_counter()
from bench.common import NullPlatform
from bench.fanout import config
from bot.runtime import build
from bot.clock import ManualClock
from datetime import datetime, UTC
async def main():
    clock = ManualClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    rt = await build(config({url!r}), {{"bench": NullPlatform()}}, clock=clock)
    await rt.scheduler.start()
    ready = time.perf_counter() - t0
    # VmHWM: peak resident memory of this process image. (ru_maxrss would include the parent's memory
    # inherited at fork, since Linux does not reset it at exec.)
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
    jobs = len(rt.scheduler.aps.get_jobs())
    await rt.close()
    print(json.dumps({{"ready": ready, "rss_mb": rss, "jobs": jobs}}))
asyncio.run(main())
"""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(err.decode()[-2000:])
        import json

        figures = json.loads(out.decode().strip().splitlines()[-1])
    return [
        Result(
            "startup",
            f"time to accept commands, {n} channels",
            figures["ready"],
            "s",
            "< 2 s",
            figures["ready"] < 2.0,
            detail={"jobs": figures["jobs"]},
        ),
        Result("memory", f"peak RSS, {n} channels", figures["rss_mb"], "MB", "< 150 MB", figures["rss_mb"] < 150),
    ]


async def run(quick: bool) -> list[Result]:
    # The goals are stated for 10,000 channels; quick mode is a smoke run at a fifth of that.
    n = 2_000 if quick else 10_000
    return [*(await fanout(n, quick)), *(await startup_and_memory(n))]


if __name__ == "__main__":
    report(asyncio.run(run("--quick" in sys.argv)))
