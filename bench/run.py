"""Run every benchmark: `interview-bot bench [--quick] [--only NAME]`. Prints a table and one JSON line per figure."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections.abc import Sequence

from bench.common import Result, machine

# In the order of the issue: ingestion, command latency, leaderboards, fan-out (with memory and start-up);
# then rubric hints (matching quality and cost at reveal).
MODULES = ("ingest", "latency", "leaderboard", "fanout", "rubric")


async def run(quick: bool, only: Sequence[str] = ()) -> list[Result]:
    results: list[Result] = []
    for name in MODULES:
        if only and name not in only:
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"# {name}: not available ({exc})", flush=True)
            continue
        started = time.perf_counter()
        found = await module.run(quick)
        for r in found:
            print(r.line(), flush=True)
        print(f"# {name}: {time.perf_counter() - started:.1f} s", flush=True)
        results += found
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    only = [a for a in args if not a.startswith("--")]
    print(f"# interview-bot benchmarks ({'quick' if quick else 'full'}) on {json.dumps(machine())}", flush=True)
    results = asyncio.run(run(quick, only))
    for r in results:
        print(r.json())
    missed = [r for r in results if r.ok is False]
    print(f"# {len(results)} figures, {len(missed)} below their goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
