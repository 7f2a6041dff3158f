"""Command latency: ``/quiz`` through the real Slack HTTP endpoint, and the core's command handler alone.

a. Slack HTTP: the real bolt app (``adapters.slack.app.build_app`` + ``web_app``) served by aiohttp on 127.0.0.1,
   its Web API client pointed at a stub Web API started here (every method answers ``{"ok": true, ...}``, and
   response_url posts land there too). 50 concurrent senders post genuinely signed, form-encoded ``/quiz`` slash
   commands, as Slack does; the figure is each request's time from send to the HTTP response (the ack, which Slack
   wants within 3 s). The time until the bot's reply reaches the response_url is reported beside it.
b. Core: the same command texts as ``TextCommand`` events straight into ``Core.handle``, 50 concurrent callers.

Senders are members: each sends a command, waits for the bot's reply, reads it for a moment (THINK_S on average,
drawn at random) and sends the next. That is the load the goal is judged under: 50 members at once, about 50
commands a second, a very busy workspace. A second run drops the pause (each sender fires its next command the
moment its reply arrives): the bot's capacity, with 50 commands always waiting. Its latencies are queueing
(Little's law: 50 / throughput), reported beside the capacity figure, without a goal.

The database (a SQLite file) is seeded first with a channel, a few hundred members and a few closed rounds with
answers, votes and points, so leaderboard and stats do real work. Goal (from the issue): p99 under 50 ms for both.

Run: ``python -m bench.latency [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from adapters.slack import web_client
from adapters.slack.app import build_app, web_app
from bench.common import NullPlatform, Result, machine, report, scratch_dir, summary
from bot.clock import ManualClock
from bot.config import Config
from bot.events import Actor, Place, TextCommand
from bot.questions.loader import BUILTIN_BANK, load_bank
from bot.render import Reply
from bot.runtime import Runtime, build
from bot.settings import ChannelSettings
from bot.store import answers as answer_store
from bot.store import channels as channel_store
from bot.store.db import create_engine

BENCH = "latency"
TEXTS = ("leaderboard", "stats", "topics", "help", "practice")
CONCURRENCY = 50
SIZES = {True: 150, False: 2_000}  # requests per part
GOAL_P99_MS = 50.0
SEED_MEMBERS = 300
SEED_ROUNDS = 3
SECRET = "bench-signing-secret-0123456789abcdef"
TOKEN = "xoxb-bench-0000-token"
TEAM = "TBENCH0001"
CHANNEL = "CBENCH0001"
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday: the seeded rounds run Mon-Wed, commands on Wednesday
ROOT = Path(__file__).resolve().parents[1]  # where `python -m bench.latency` works
THINK_S = 1.0  # a member's mean pause between reading a reply and sending the next command
DRAIN_TIMEOUT_S = 300.0  # how long to wait for the bot's replies after the last ack before giving up


def user_id(i: int) -> str:
    return f"U{i:08d}"


def display_name(uid: str) -> str:
    return f"member {int(uid[1:])}"


def actor(i: int) -> Actor:
    return Actor("slack", TEAM, user_id(i), display_name(user_id(i)))


# -- a stub Slack Web API ------------------------------------------------------------------------------------


class StubSlack:
    """Answers every Web API method with ok (users.info, chat.postMessage and auth.test with what bolt and the
    adapter read), and records when each response_url post arrives (keyed by the path's last part)."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.responses: dict[str, float] = {}
        self.calls: dict[str, int] = defaultdict(int)
        self._ts = itertools.count(1)
        self.all_in = asyncio.Event()
        self.expected = math.inf
        self.waiting: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        app.router.add_post("/upload/{file}", self._upload)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls[method] += 1
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(await request.post())
        body: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            body |= {"team_id": TEAM, "team": "Bench", "user_id": "UBOT0001", "bot_id": "BBOT0001", "user": "bot"}
            body |= {"url": "https://bench.slack.com/", "is_enterprise_install": False}
        elif method == "users.info":
            uid = str(params.get("user", "U0"))
            name = display_name(uid) if uid[1:].isdigit() else uid
            body["user"] = {
                "id": uid,
                "team_id": TEAM,
                "name": name.replace(" ", ""),
                "real_name": name,
                "is_admin": False,
                "is_owner": False,
                "profile": {"display_name": name, "real_name": name},
            }
        elif method == "chat.postMessage":
            body |= {"channel": params.get("channel", CHANNEL), "ts": f"1700000000.{next(self._ts):06d}"}
        elif method == "conversations.open":  # the /quiz stats chart goes to a DM
            body["channel"] = {"id": f"D{str(params.get('users', 'U0'))[1:]}"}
        elif method == "files.getUploadURLExternal":
            n = next(self._ts)
            body |= {"upload_url": f"{self.base}/upload/F{n:08d}", "file_id": f"F{n:08d}"}
        elif method == "files.completeUploadExternal":
            files = json.loads(params.get("files", "[]"))
            body["files"] = [{"id": f["id"], "title": f.get("title", "")} for f in files]
        return web.json_response(body)

    async def _upload(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls["upload"] += 1
        return web.Response(text="OK")

    async def _response(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.match_info["key"]
        self.responses.setdefault(key, time.perf_counter())
        if key in self.waiting:
            self.waiting[key].set()
        if len(self.responses) >= self.expected:
            self.all_in.set()
        return web.Response(text="ok")


# -- seeding ---------------------------------------------------------------------------------------------------


async def seed(rt: Runtime, clock: ManualClock, rng: random.Random) -> dict[str, int]:
    """A channel with SEED_MEMBERS members and SEED_ROUNDS closed rounds (answers, votes, points), through the
    engine (post, reveal, close) and the stores the core uses for answers and votes."""
    engine = rt.engine
    async with engine.tx() as conn:
        ch, _ = await channel_store.save(
            conn, Place("slack", TEAM, CHANNEL, None, "bench"), ChannelSettings(), clock.now()
        )
    counts = {"rounds": 0, "answers": 0, "votes": 0}
    for r in range(SEED_ROUNDS):
        posted = await engine.post_now(ch)
        assert posted.round_id is not None, posted
        rid = posted.round_id
        answerers = rng.sample(range(SEED_MEMBERS), int(SEED_MEMBERS * 0.7))
        async with engine.tx() as conn:
            for i in answerers:
                member = await channel_store.ensure_member(conn, actor(i), clock.now())
                text = f"round {r}, member {i}: a heap of size k, then one pass; O(n log k)."
                counts["answers"] += await answer_store.add(conn, rid, member.id, f"{r}.{i}", text, clock.now())
        assert await engine.reveal(rid, early=True)
        async with engine.tx() as conn:
            ballot = await answer_store.for_round(conn, rid)
            for voter in ballot:
                for a in rng.sample(ballot, 4):
                    out = await answer_store.cast(conn, rid, a.id, voter.member_id, 3, clock.now())
                    counts["votes"] += out.result == answer_store.VoteResult.RECORDED
        assert await engine.close(rid, early=True)
        counts["rounds"] += 1
        clock.advance(timedelta(days=1))
    # Everyone has been seen (the non-answerers too), so stats finds each caller.
    async with engine.tx() as conn:
        for i in range(SEED_MEMBERS):
            await channel_store.ensure_member(conn, actor(i), clock.now())
    return counts


# -- measuring -------------------------------------------------------------------------------------------------


async def timed_calls(
    call: Callable[[int], Awaitable[bool]], n: int, concurrency: int, think: float = 0.0, seed: int = 5
) -> tuple[list[float], int]:
    """Run ``call(i)`` for i in 0..n-1 from ``concurrency`` concurrent callers; each call's time in ms, and how
    many calls failed (returned False). With ``think``, each caller pauses a random 0.5x to 1.5x of it (seconds)
    after each call, as a member reading the reply; the first pause is spread the same way, so the callers
    do not all start in the same instant."""
    samples: list[float] = [math.nan] * n
    failures = 0
    todo = iter(range(n))
    rng = random.Random(seed)

    async def caller() -> None:
        nonlocal failures
        if think:
            await asyncio.sleep(rng.uniform(0, think))
        for i in todo:
            t0 = time.perf_counter()
            ok = await call(i)
            samples[i] = (time.perf_counter() - t0) * 1000
            failures += not ok
            if think:
                await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples, failures


def by_text(samples: list[float]) -> dict[str, dict[str, float]]:
    return {t: {k: round(v, 2) for k, v in summary(samples[j :: len(TEXTS)]).items()} for j, t in enumerate(TEXTS)}


def sign(timestamp: str, body: str) -> str:
    return "v0=" + hmac.new(SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# -- Slack's side: the senders and the stub Web API, in a process of their own ---------------------------------
#
# On a 2-core machine a load generator in the bot's own event loop would be measured with the bot: every request
# it builds, signs and reads back takes loop time the bot's acks then wait for. Slack is elsewhere; so here.


async def _send_all(stub: StubSlack, url: str, users: list[int]) -> dict[str, Any]:
    """Post the signed /quiz commands (50 senders), wait for every reply at its response_url, then a few from one
    sender alone. Timings in ms."""
    sent_at: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def post(key: str, text: str, uid: str) -> bool:
            """Send one command; True when acked with 200. The ack's time is what timed_calls measures."""
            form = {
                "token": "bench-verification-token",
                "team_id": TEAM,
                "team_domain": "bench",
                "channel_id": CHANNEL,
                "channel_name": "bench",
                "user_id": uid,
                "user_name": display_name(uid).replace(" ", ""),
                "command": "/quiz",
                "text": text,
                "api_app_id": "ABENCH0001",
                "is_enterprise_install": "false",
                "response_url": f"{stub.base}/response/{key}",
                "trigger_id": f"{key}.trigger",
            }
            body = urlencode(form)
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sign(ts, body),
            }
            sent_at[key] = time.perf_counter()
            async with http.post(url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                return resp.status == 200

        async def drain(count: int) -> bool:
            """Wait until ``count`` replies in all have reached their response_urls."""
            stub.expected = count
            stub.all_in.clear()
            if len(stub.responses) >= count:
                return True
            try:
                await asyncio.wait_for(stub.all_in.wait(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                return False
            return True

        # Warm up (auth.test, connections, statement caches): one of each command, not measured.
        for j, text in enumerate(TEXTS):
            if not await post(f"warm{j}", text, user_id(j)):
                raise RuntimeError("the bot's Slack endpoint refused a warm-up request")
        await drain(len(TEXTS))

        n = len(users)
        acked: dict[str, float] = {}

        async def member(prefix: str, i: int) -> bool:
            """A member: send, then wait for the reply before doing anything else (the ack time is recorded)."""
            key = f"{prefix}{i}"
            stub.waiting[key] = asyncio.Event()
            ok = await post(key, TEXTS[i % len(TEXTS)], user_id(users[i]))
            acked[key] = (time.perf_counter() - sent_at[key]) * 1000
            try:
                await asyncio.wait_for(stub.waiting[key].wait(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                return False
            return ok

        runs: dict[str, dict[str, Any]] = {}
        done = len(TEXTS)
        for mode, prefix, think in (("interactive", "r", THINK_S), ("saturated", "x", 0.0)):
            t0 = time.perf_counter()
            _, failed = await timed_calls(lambda i, p=prefix: member(p, i), n, CONCURRENCY, think)  # type: ignore[misc]
            seconds = time.perf_counter() - t0
            done += n
            drained = await drain(done)
            keys = [f"{prefix}{i}" for i in range(n)]
            runs[mode] = {
                "acks": [acked[k] for k in keys],
                "replies": [(stub.responses[k] - sent_at[k]) * 1000 for k in keys if k in stub.responses],
                "failed": failed,
                "drained": drained,
                "seconds": seconds,
            }

        # One sender, nothing else going on: the floor under the figures above.
        alone = len(TEXTS) * 5
        solo, solo_failed = await timed_calls(lambda i: post(f"s{i}", TEXTS[i % len(TEXTS)], user_id(i)), alone, 1)
        solo_drained = await drain(done + alone)
    return {"runs": runs, "solo": solo, "solo_ok": solo_failed == 0 and solo_drained, "calls": dict(stub.calls)}


async def slack_side() -> None:
    """The child process: start the stub, say where it is, take the job, send, report, stop."""
    stub = StubSlack()
    await stub.start()
    try:
        print(json.dumps({"stub": stub.base}), flush=True)
        job = json.loads(await asyncio.to_thread(sys.stdin.readline))
        print(json.dumps(await _send_all(stub, job["url"], job["users"])), flush=True)
    finally:
        await stub.stop()


async def slack_http(rt: Runtime, n: int, rng: random.Random) -> list[Result]:
    users = [rng.randrange(SEED_MEMBERS) for _ in range(n)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.latency",
        "--slack-side",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        limit=2**24,  # the report is one JSON line with every sample
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not first:
            raise RuntimeError("the Slack side of the benchmark exited before it started (see its error above)")
        hello = json.loads(first)
        app = build_app(rt, signing_secret=SECRET, client=web_client(TOKEN, f"{hello['stub']}/api/"))
        async with serving(web_app(app)) as base:
            proc.stdin.write(json.dumps({"url": f"{base}/slack/events", "users": users}).encode() + b"\n")
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), DRAIN_TIMEOUT_S * 3 + 60)
            if not line:
                raise RuntimeError("the Slack side of the benchmark failed (see its error above)")
            report = json.loads(line)
            # Every reply has arrived; let bolt's listener tasks finish their last steps before the server stops.
            await asyncio.sleep(0.2)
        proc.stdin.close()
        await proc.stdout.read()
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    results: list[Result] = []
    for mode, run in report["runs"].items():
        acks, replies = run["acks"], run["replies"]
        ack, reply = summary(acks), summary(replies)
        label = "50 members" if mode == "interactive" else "50 senders, no pause"
        detail: dict[str, Any] = {
            "mode": mode,
            "think_s": THINK_S if mode == "interactive" else 0.0,
            "requests": n,
            "senders": CONCURRENCY,
            "failed": run["failed"],
            "ack_ms": _round(ack),
            "ack_by_text": by_text(acks),
            "ack_ms_one_sender": _round(summary(report["solo"])),
            "reply_ms": _round(reply),
            "replies_received": len(replies),
            "all_replied": run["drained"],
            "commands_per_s": round(n / run["seconds"], 1),
            "web_api_calls": report["calls"],
        }
        good = run["failed"] == 0 and run["drained"] and report["solo_ok"]
        results += [
            Result(BENCH, f"slack /quiz ack p50 ({label})", ack["p50"], "ms", detail={"requests": n}),
            Result(
                BENCH,
                f"slack /quiz ack p99 ({label})",
                ack["p99"],
                "ms",
                goal=f"< {GOAL_P99_MS:.0f} ms" if mode == "interactive" else "",
                ok=(good and ack["p99"] < GOAL_P99_MS) if mode == "interactive" else None,
                detail=detail,
            ),
            Result(BENCH, f"slack /quiz reply p50 ({label})", reply["p50"], "ms", detail={"n": len(replies)}),
            Result(BENCH, f"slack /quiz reply p99 ({label})", reply["p99"], "ms", detail={"n": len(replies)}),
        ]
        if mode == "saturated":
            results.append(Result(BENCH, "slack /quiz capacity (50 senders, no pause)", n / run["seconds"], "cmd/s"))
    return results


def _round(s: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in s.items()}


async def core_commands(rt: Runtime, n: int, rng: random.Random) -> list[Result]:
    place = Place("slack", TEAM, CHANNEL, None, "bench")
    users = [rng.randrange(SEED_MEMBERS) for _ in range(n)]

    async def call(i: int) -> bool:
        responses = await rt.core.handle(TextCommand(actor(users[i]), place, TEXTS[i % len(TEXTS)]))
        return bool(responses) and all(isinstance(r, Reply) and "went wrong" not in r.message.plain for r in responses)

    for j in range(len(TEXTS)):  # warm up: SQLAlchemy's statement cache, the connection pool
        await call(j)
    # One caller alone first: each command's own cost, without waiting for the database or the loop.
    solo, solo_failed = await timed_calls(call, len(TEXTS) * 10, 1)
    results: list[Result] = []
    for mode, think in (("interactive", THINK_S), ("saturated", 0.0)):
        t0 = time.perf_counter()
        samples, failed = await timed_calls(call, n, CONCURRENCY, think)
        seconds = time.perf_counter() - t0
        failed += solo_failed
        s = summary(samples)
        detail = {
            "mode": mode,
            "think_s": think,
            "commands": n,
            "callers": CONCURRENCY,
            "failed": failed,
            "ms": {k: round(v, 2) for k, v in s.items()},
            "by_text": by_text(samples),
            "one_caller_by_text": by_text(solo),
            "commands_per_s": round(n / seconds, 1),
        }
        label = "50 members" if mode == "interactive" else "50 callers, no pause"
        results += [
            Result(BENCH, f"core command p50 ({label})", s["p50"], "ms", detail={"commands": n}),
            Result(
                BENCH,
                f"core command p99 ({label})",
                s["p99"],
                "ms",
                goal=f"< {GOAL_P99_MS:.0f} ms" if mode == "interactive" else "",
                ok=(failed == 0 and s["p99"] < GOAL_P99_MS) if mode == "interactive" else None,
                detail=detail,
            ),
        ]
        if mode == "saturated":
            results.append(Result(BENCH, "core command capacity (50 callers, no pause)", n / seconds, "cmd/s"))
    return results


async def run(quick: bool) -> list[Result]:
    n = SIZES[quick]
    rng = random.Random(11)
    bank, _ = load_bank([BUILTIN_BANK])
    with scratch_dir() as d:
        url = f"sqlite+aiosqlite:///{Path(d) / 'latency.db'}"
        clock = ManualClock(START)
        rt = await build(
            Config.model_validate({"database_url": url}),
            {"slack": NullPlatform()},
            clock=clock,
            bank=bank,
            db=create_engine(url),
        )
        try:
            seeded = await seed(rt, clock, rng)
            results = await slack_http(rt, n, rng)
            results += await core_commands(rt, n, rng)
        finally:
            await rt.close()
    context = {"quick": quick, "seeded": {"members": SEED_MEMBERS, **seeded}, "machine": machine()}
    context["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    for r in results:
        if r.goal:
            r.detail.update(context)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{SIZES[True]} requests per part instead of {SIZES[False]}"
    )
    parser.add_argument("--slack-side", action="store_true", help=argparse.SUPPRESS)  # the child process, internal
    args = parser.parse_args()
    if args.slack_side:
        asyncio.run(slack_side())
        return
    report(asyncio.run(run(args.quick)))


if __name__ == "__main__":
    main()
