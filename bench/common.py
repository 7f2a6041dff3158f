"""What every benchmark shares: result records, percentiles, a platform with no latency, a scratch database."""

from __future__ import annotations

import json
import os
import platform as _platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.models import Channel
from bot.ports import Sent
from bot.render import Message


@dataclass
class Result:
    """One figure. ``goal`` and ``ok`` say whether it meets the issue's target; ``ratio`` compares to a baseline."""

    bench: str
    metric: str
    value: float
    unit: str
    goal: str = ""
    ok: bool | None = None
    ratio: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        ratio = f"  (x{self.ratio:.2f} of baseline)" if self.ratio is not None else ""
        return f"{self.bench:<12} {self.metric:<44} {self.value:>12,.2f} {self.unit:<8} {self.goal:<22} {mark}{ratio}"

    def json(self) -> str:
        return json.dumps({"type": "bench", **asdict(self)})


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples_ms, 50),
        "p99": percentile(samples_ms, 99),
        "mean": statistics.fmean(samples_ms) if samples_ms else float("nan"),
        "n": float(len(samples_ms)),
    }


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


class NullPlatform:
    """Accepts every message at once: measures the bot, not a network. Counts what it was handed."""

    name = "bench"

    def __init__(self) -> None:
        self.sent = 0
        self._n = 0

    async def check_channel(self, place: Any) -> str | None:
        return None

    def owns(self, channel: Channel) -> bool:
        return True

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        self.sent += 1
        self._n += 1
        mid = f"b{self._n}"
        return Sent(mid, mid if message.thread_name else None)

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        return None

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        self.sent += 1


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="interview-bot-bench-") as d:
        yield Path(d)


def machine() -> dict[str, Any]:
    return {
        "python": _platform.python_version(),
        "machine": _platform.machine(),
        "cpus": os.cpu_count(),
        "system": _platform.platform(),
    }


def report(results: list[Result]) -> None:
    """Print a run's figures: the table lines, then one JSON line each (for machines)."""
    for r in results:
        print(r.line())
    for r in results:
        print(r.json())
