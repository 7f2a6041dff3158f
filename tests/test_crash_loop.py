"""Crash anywhere (issue 8): a scripted two-day cycle driven against the real `interview-bot` process (Discord
adapter, fake Discord, on a SQLite file and on PostgreSQL), SIGKILLed at seeded random moments and restarted
each time. The final database must equal that of an uninterrupted run of the same script, nothing the bot
acknowledged may be lost, no question or reveal may be posted twice, and no round may be left stuck.

What the platform re-delivers, and so what the driver does after a kill (as on real Discord):

- Gateway events are not replayed to a new process. A new process IDENTIFYs and gets a new session; whatever
  was dispatched to the dead one (or while no process was connected) is gone from the gateway. Messages,
  edits and deletions stay in the thread, though, so the bot reads each open round's thread when it
  (re)connects and takes in what it missed (adapters/discord/client.py, ``catch_up``). The driver therefore
  sends every message, edit and deletion once and never repeats it.
- An interaction (a vote button) that got no response is shown to the member as failed; the member clicks
  again, which is a new interaction. The driver re-clicks every unacknowledged vote after the restart.
- A kill during a post, reveal, close or weekly board leaves a claim under a lease; the next process takes it
  over once the lease has run out. The driver moves the bot's clock on by one lease after every restart.

Kill points (seeded): "delivery" kills the process a random few milliseconds after the platform delivered a
step's event; "request" kills it the moment it makes a given platform call (post, thread, reaction, interaction
response), after the platform acted on it but before the bot saw the answer; "startup" kills it a random moment
into the next (re)start, during migrations, catch-up sweep or reconnect. More kill points on one step than the
first chain into startup kills, so crashes during recovery are covered too.

Quick in CI (a handful of kills); ``RELIABILITY=full`` runs at least 50. ``CRASH_KILLS`` and ``CRASH_SEED`` set
them explicitly; the seed and every kill point are printed when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.events import Place
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import migrate
from bot.store.db import create_engine
from tests.conftest import pg_schema
from tests.fake_discord import FakeDiscord

pytestmark = pytest.mark.faults

FULL = os.environ.get("RELIABILITY") == "full"
KILLS = int(os.environ.get("CRASH_KILLS") or (50 if FULL else 5))
SEED = int(os.environ.get("CRASH_SEED") or 20261126)
LEASE = 5  # seconds of bot time; the driver moves the clock on by LEASE + 1 after every restart
STEP_TIMEOUT = 40.0  # seconds of real time for anything the bot must do after a step

THURSDAY = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
MEMBERS = ("ann", "ben", "cai", "dee", "eve")


# -- the script ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str  # clock | say | edit | delete | vote
    who: str = ""
    text: str = ""
    key: str = ""  # names a message for later edits and deletions
    at: timedelta = timedelta()  # clock: bot time after THURSDAY 00:00
    wait: str = ""  # clock: posted:<slot> | revealed:<slot> | closed:<slot> | board:<period>
    answer: bool = False  # say: the message is the member's answer (the bot reacts to it)
    target: str = ""  # vote: whose answer


def clock(hours: float, *waits: str) -> list[Step]:
    return [Step("clock", at=timedelta(hours=hours), wait=w) for w in waits]


def script() -> list[Step]:
    thu, fri = "2026-11-26", "2026-11-27"
    s: list[Step] = []
    s += clock(9 + 5 / 3600, f"posted:{thu}")
    s += [
        Step("say", "ann", "Ann: layers compose to one affine map", "a1", answer=True),
        Step("say", "ben", "Ben draft", "b1", answer=True),
        Step("say", "cai", "Cai first try", "c1", answer=True),
        Step("say", "dee", "Dee: ReLU breaks linearity", "d1", answer=True),
        Step("say", "ann", "and that is why depth helps", "a2"),
        Step("edit", "ben", "Ben: without it depth adds nothing", "b1"),
        Step("delete", "cai", key="c1"),
        Step("say", "cai", "Cai: the decision boundary stays linear", "c2", answer=True),
        Step("say", "eve", "Eve: not sure", "e1", answer=True),
        Step("delete", "eve", key="e1"),
        Step("edit", "dee", "Dee: ReLU, tanh or any non-linearity breaks it", "d1"),
    ]
    s += clock(17 + 5 / 3600, f"revealed:{thu}")
    s += [
        Step("vote", "ann", target="ben"),
        Step("vote", "ben", target="ann"),
        Step("vote", "cai", target="ann"),
        Step("vote", "dee", target="ann"),
        Step("vote", "ann", target="dee"),
        Step("vote", "ben", target="ben"),  # own answer: refused, but answered
        Step("vote", "eve", target="cai"),
        Step("vote", "eve", target="ann"),
        Step("vote", "ann", target="cai"),
        Step("vote", "ann", target="ben"),  # again: "already voted"
        Step("say", "cai", "thread discussion after the reveal", "c3"),
    ]
    s += clock(24 + 7 + 30 / 3600, f"closed:{thu}")
    s += clock(24 + 9 + 5 / 3600, f"posted:{fri}")
    s += [
        Step("say", "ann", "Ann, Friday", "a3", answer=True),
        Step("say", "ben", "Ben, Friday", "b3", answer=True),
        Step("say", "dee", "Dee, Friday", "d3", answer=True),
        Step("say", "eve", "Eve, Friday", "e3", answer=True),
        Step("edit", "ann", "Ann, Friday, edited", "a3"),
        Step("say", "ben", "Ben again (discussion)", "b4"),
    ]
    s += clock(24 + 17 + 5 / 3600, f"revealed:{fri}", "board:2026-11-27")
    s += [
        Step("vote", "ben", target="ann"),
        Step("vote", "dee", target="ann"),
        Step("vote", "eve", target="dee"),
        Step("vote", "cai", target="eve"),
        Step("vote", "ann", target="eve"),
    ]
    s += clock(48 + 7 + 30 / 3600, f"closed:{fri}")
    return s


# -- kill points --------------------------------------------------------------------------------------------

# What a "request" kill waits for, by step kind: a call the bot makes while carrying the step out.
TRAPS = {
    "clock": [("POST", r"/channels/\d+/messages"), ("POST", r"/channels/\d+/messages/\d+/threads")],
    "say": [("PUT", r"/channels/\d+/messages/\d+/reactions/.+/@me")],
    "vote": [("POST", r"/interactions/\d+/[^/]+/callback")],
}


@dataclass(frozen=True)
class Kill:
    step: int
    mode: str  # delivery | request | startup
    delay: float = 0.0
    trap: tuple[str, str] | None = None

    def __str__(self) -> str:
        what = f"{self.trap[0]} {self.trap[1]}" if self.trap else f"+{self.delay * 1000:.0f}ms"
        return f"step {self.step} {self.mode} {what}"


def kill_plan(rng: random.Random, steps: list[Step], n: int) -> dict[int, list[Kill]]:
    plan: dict[int, list[Kill]] = {}
    # However few kills a run has, two hit the gaps that once lost or doubled something: the moment Discord has
    # created the first daily post (the next process must not post it again), and the moment an answer is
    # delivered (the next process must read it back from the thread).
    fixed = [Kill(0, "request", trap=TRAPS["clock"][0]), Kill(1, "delivery", delay=0.0)]
    for kill in fixed[:n]:
        plan.setdefault(kill.step, []).append(kill)
    for _ in range(max(0, n - len(fixed))):
        i = rng.randrange(len(steps))
        kind = steps[i].kind
        modes = ["delivery", "startup"] + (
            ["request"] * 2 if kind in TRAPS and (kind != "say" or steps[i].answer) else []
        )
        mode = rng.choice(modes)
        if mode == "request":
            kill = Kill(i, mode, trap=rng.choice(TRAPS[kind]))
        elif mode == "startup":
            kill = Kill(i, mode, delay=rng.uniform(0.0, 2.5))
        else:
            kill = Kill(i, mode, delay=rng.uniform(0.0, 0.08))
        plan.setdefault(i, []).append(kill)
    return plan


# -- the platform and the process ---------------------------------------------------------------------------


class KillingDiscord(FakeDiscord):
    """The fake Discord, able to kill the bot the moment it makes a chosen call (after the call took effect)."""

    def __init__(self) -> None:
        super().__init__()
        self.trap: tuple[str, re.Pattern[str], Callable[[], None]] | None = None

    async def _rest(self, request: web.Request) -> web.Response:
        response = await super()._rest(request)
        trap = self.trap
        if trap is not None and request.method == trap[0] and trap[1].fullmatch("/" + request.match_info["tail"]):
            self.trap = None
            trap[2]()
        return response


class BotProcess:
    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self._log: Any = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        if self._log is not None:
            self._log.close()
        # A small local file, closed on the next start or in stop().
        self._log = open(self.logdir / f"bot{self.starts:03d}.log", "wb")  # noqa: ASYNC230
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--platform", "discord",
            env=self.env, stdout=self._log, stderr=self._log,
        )  # fmt: skip
        self.starts += 1

    def kill(self, proc: asyncio.subprocess.Process | None = None) -> None:
        """SIGKILL the running process (only that one: a kill meant for a process already gone is dropped)."""
        target = proc or self.proc
        if target is not None and target is self.proc and target.returncode is None:
            try:
                os.kill(target.pid, signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                pass

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.logdir.glob("bot*.log"))
        if not logs:
            return "(no logs)"
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("bot*.log")))


# -- the driver ---------------------------------------------------------------------------------------------


@dataclass
class Figures:
    kills: int = 0
    restarts: int = 0
    events: int = 0  # platform events delivered to the bot (messages, edits, deletions, clicks)
    reclicks: int = 0  # interactions the member had to repeat because the bot died before answering
    caught_up: int = 0  # messages, edits and deletions the bot took in from history after a restart
    acked_answers: int = 0
    acked_votes: int = 0
    seconds: float = 0.0


@dataclass
class Run:
    tmp: Path
    fake: KillingDiscord
    guild: str
    channel: str
    users: dict[str, str]
    url: str
    clock_path: Path
    bot: BotProcess
    plan: dict[int, list[Kill]]
    rng: random.Random
    drift: timedelta = timedelta()
    target: datetime = THURSDAY
    message_ids: dict[str, str] = field(default_factory=dict)
    acked_votes: list[tuple[str, str, str]] = field(default_factory=list)  # slot, voter, author
    acked_answers: list[tuple[str, str]] = field(default_factory=list)  # message key, text
    startup_kills: list[Kill] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)
    slot: str = ""
    identified: int = 0  # gateway IDENTIFYs seen before the current process started
    reader: AsyncEngine | None = None
    carried_over: int = 0  # request kills whose call never came in their step, fired at a restart instead

    # -- plumbing

    async def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Outside the bot's process: what the database holds, whatever the bot believes. ``?`` placeholders."""
        if self.reader is None:
            self.reader = create_engine(self.url)
        names = iter(range(len(args)))
        query = re.sub(r"\?", lambda _: f":p{next(names)}", query)
        async with self.reader.connect() as conn:
            result = await conn.execute(text(query), {f"p{i}": a for i, a in enumerate(args)})
            return [tuple(r) for r in result.all()]

    def set_clock(self) -> None:
        tmp = self.clock_path.with_suffix(".tmp")
        tmp.write_text((self.target + self.drift).isoformat())
        os.replace(tmp, self.clock_path)

    def fail(self, what: str) -> AssertionError:
        return AssertionError(
            f"{what}\nseed={SEED} kills planned={KILLS}; fired: {self.fired}\n"
            f"plan: {[str(k) for ks in self.plan.values() for k in ks]}\nlast log:\n{self.bot.log_tail()}"
        )

    async def ensure_up(self) -> None:
        """Restart the bot if it died, and wait until it is connected to the gateway again."""
        while True:
            if self.bot.alive and self.fake.connected_shards and len(self.fake.identifies) > self.identified:
                return
            if not self.bot.alive:
                if self.bot.proc is not None:
                    await self.bot.proc.wait()
                    self.figures.restarts += 1
                    # Leases the dead process held run out in bot time: move the clock on by one lease.
                    self.drift += timedelta(seconds=LEASE + 1)
                    self.set_clock()
                self.identified = len(self.fake.identifies)
                await self.bot.start()
                if self.startup_kills:
                    kill = self.startup_kills.pop(0)
                    self._kill_later(kill.delay, kill)
            deadline = time.monotonic() + STEP_TIMEOUT
            # Connected means this process identified (the dead one's socket may not be closed yet).
            while self.bot.alive and not (self.fake.connected_shards and len(self.fake.identifies) > self.identified):
                if time.monotonic() > deadline:
                    raise self.fail("the bot did not connect to the gateway")
                await asyncio.sleep(0.02)

    def _kill_later(self, delay: float, kill: Kill, *, planned: bool = True) -> None:
        proc = self.bot.proc

        def fire() -> None:
            if proc is self.bot.proc and self.bot.alive:
                self.fired.append(str(kill))
                self.bot.kill(proc)
            elif planned:
                self._missed(kill)

        asyncio.get_running_loop().call_later(delay, fire)

    def _missed(self, kill: Kill) -> None:
        """A planned kill whose process was already gone (another kill got there first, or the step never made
        the call it waited for): it fires during the next start instead, so every planned kill happens."""
        self.carried_over += 1
        self.startup_kills.append(Kill(kill.step, "startup", delay=0.3))

    def arm(self, kill: Kill) -> None:
        if kill.mode == "delivery":
            self._kill_later(kill.delay, kill)
        elif kill.mode == "startup":
            self.startup_kills.append(kill)
            self._kill_later(0.0, Kill(kill.step, "delivery"))  # die now, then again during the restart
        else:
            assert kill.trap is not None
            proc = self.bot.proc

            def fire() -> None:
                if proc is self.bot.proc and self.bot.alive:
                    self.fired.append(str(kill))
                    self.bot.kill(proc)
                else:
                    self._missed(kill)

            self.fake.trap = (kill.trap[0], re.compile(kill.trap[1]), fire)

    async def until(self, check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            await self.ensure_up()
            value = check()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await asyncio.sleep(0.03)
        raise self.fail(f"timed out waiting for {what}")

    # -- the world as the members see it

    async def thread(self, slot: str) -> str:
        rows = await self.sql("SELECT thread_id FROM rounds WHERE slot = ?", slot)
        assert rows and rows[0][0], f"no thread for {slot}"
        return str(rows[0][0])

    def reacted(self, key: str, emoji: str) -> bool:
        msg = self.fake.message(self.message_ids[key])
        return msg is not None and any(r["me"] and r["emoji"]["name"] == emoji for r in msg["reactions"])

    async def answer_text(self, key: str) -> str | None:
        rows = await self.sql("SELECT text FROM answers WHERE message_id = ?", self.message_ids[key])
        return str(rows[0][0]) if rows else None

    async def state(self, slot: str) -> str | None:
        rows = await self.sql("SELECT state FROM rounds WHERE slot = ?", slot)
        return str(rows[0][0]) if rows else None

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.dispose()

    async def state_is(self, slot: str, want: str) -> bool:
        return await self.state(slot) == want

    async def answer_is(self, key: str, want: str | None) -> bool:
        return await self.answer_text(key) == want

    async def has_rows(self, query: str, *args: Any) -> bool:
        return bool(await self.sql(query, *args))

    # -- steps

    async def run(self, steps: list[Step]) -> None:
        start = time.monotonic()
        await self.ensure_up()
        for i, step in enumerate(steps):
            kills = list(self.plan.get(i, []))
            if kills:
                first, rest = kills[0], kills[1:]
                self.startup_kills.extend(Kill(k.step, "startup", delay=k.delay or 0.3) for k in rest)
                self.arm(first)
            await self.do(step)
            if self.fake.trap is not None:
                # The step never made the call this kill waited for (where a call lands depends on timing: a
                # reveal's messages may already have gone out during a catch-up).
                self.fake.trap = None
                self._missed(kills[0])
        # Let any kill still pending fire and be recovered from, so every planned kill is exercised.
        while self.startup_kills:
            if self.bot.alive:
                self._kill_later(0.0, Kill(len(steps), "delivery"), planned=False)
                await asyncio.sleep(0.05)
            await self.ensure_up()  # the restart takes the next startup kill
            deadline = time.monotonic() + 5
            while self.bot.alive and time.monotonic() < deadline:  # noqa: ASYNC110 (a process, polled; let the kill fire)
                await asyncio.sleep(0.02)
        await self.settle_last()
        self.figures.kills = self.bot.kills
        self.figures.seconds = time.monotonic() - start
        self.figures.caught_up = sum(int(n) for n in re.findall(r"caught up: (\d+)", self.bot.all_logs()))

    async def settle_last(self) -> None:
        await self.ensure_up()
        await asyncio.sleep(0.5)
        await self.ensure_up()

    async def do(self, step: Step) -> None:
        if step.kind == "clock":
            self.target = THURSDAY.replace(hour=0) + step.at
            self.set_clock()
            kind, _, arg = step.wait.partition(":")
            if kind == "board":
                await self.until(
                    lambda: self.has_rows("SELECT 1 FROM claims WHERE period = ? AND done_at IS NOT NULL", arg),
                    step.wait,
                )
            else:
                want = {"posted": "open", "revealed": "revealed", "closed": "closed"}[kind]
                await self.until(lambda: self.state_is(arg, want), step.wait)
                self.slot = arg
            return
        await self.ensure_up()
        thread = await self.thread(self.slot)
        uid = self.users[step.who]
        self.figures.events += 1
        if step.kind == "say":
            self.message_ids[step.key] = await self.fake.user_message(thread, uid, step.text)
            if step.answer:
                await self.until(lambda: self.reacted(step.key, "✅"), f"✅ on {step.key}")
                self.acked_answers.append((step.key, step.text))
        elif step.kind == "edit":
            await self.fake.user_edit(thread, self.message_ids[step.key], step.text)
            await self.until(lambda: self.answer_is(step.key, step.text), f"edit of {step.key}")
        elif step.kind == "delete":
            await self.fake.user_delete(thread, self.message_ids[step.key])
            await self.until(lambda: self.answer_is(step.key, None), f"deletion of {step.key}")
        elif step.kind == "vote":
            await self.vote(thread, uid, step)

    async def vote(self, thread: str, uid: str, step: Step) -> None:
        author = self.users[step.target]
        rows = await self.sql(
            "SELECT r.id, a.id FROM answers a JOIN rounds r ON r.id = a.round_id JOIN members m ON m.id = a.member_id "
            "WHERE r.slot = ? AND m.user_id = ?",
            self.slot,
            author,
        )
        assert rows, f"{step.target} has no answer in {self.slot}"
        custom_id = f"vote:{rows[0][0]}:{rows[0][1]}"
        ballot = next(
            m
            for m in self.fake.messages(thread)
            if any(c.get("custom_id") == custom_id for row in m.get("components", []) for c in row["components"])
        )
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            await self.ensure_up()
            proc = self.bot.proc
            interaction = await self.fake.click(thread, ballot["id"], uid, custom_id)
            # Discord gives the bot 3 s to answer; a member whose click failed clicks again.
            while not interaction.acknowledged and proc is self.bot.proc and self.bot.alive:
                if time.monotonic() > deadline:
                    raise self.fail(f"vote {step.who}->{step.target} never answered")
                await asyncio.sleep(0.02)
            if interaction.acknowledged:
                break
            self.figures.reclicks += 1
        await self.until(lambda: bool(interaction.texts()), "the vote's reply")
        [text] = interaction.texts()
        if step.who == step.target:
            assert "your own" in text, text
        else:
            assert "Vote recorded" in text or "already voted" in text, text
            self.acked_votes.append((self.slot, uid, author))


# -- setting up a run and reading its outcome ---------------------------------------------------------------


async def prepare(tmp: Path, fake: KillingDiscord, url: str) -> tuple[str, str, dict[str, str], Path, dict[str, str]]:
    owner = fake.snowflake()
    guild = fake.add_guild("Club", owner)
    channel = fake.add_channel(guild, "daily")
    fake.add_member(guild, owner, "olga")
    users = {name: fake.snowflake() for name in MEMBERS}
    for name, uid in users.items():
        fake.add_member(guild, uid, name)
    db = create_engine(url)
    try:
        await migrate.upgrade(db)
        async with db.begin() as conn:
            await channel_store.save(conn, Place("discord", guild, channel, None, "daily"), ChannelSettings(), THURSDAY)
    finally:
        await db.dispose()
    clock_path = tmp / "now"
    config = tmp / "bot.yaml"
    config.write_text(f"timing:\n  sweep_seconds: 1\n  lease_seconds: {LEASE}\nlog_level: INFO\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "DATABASE_URL": url,
        "DISCORD_TOKEN": "fake.bot.token",
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "INTERVIEW_BOT_CLOCK_FILE": str(clock_path),
        "INTERVIEW_BOT_CONFIG": str(config),
    }
    return guild, channel, users, clock_path, env


async def play(tmp: Path, url: str, kills: int, seed: int) -> Run:
    tmp.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a local directory, once)
    fake = KillingDiscord()
    # Message times in the bot's time: the bot compares them with its deadlines when it reads threads back.
    fake.clock = lambda: THURSDAY
    await fake.start()
    steps = script()
    rng = random.Random(seed)
    guild, channel, users, clock_path, env = await prepare(tmp, fake, url)
    run = Run(
        tmp, fake, guild, channel, users, url, clock_path, BotProcess(env, tmp),
        kill_plan(rng, steps, kills), rng,
    )  # fmt: skip
    run.set_clock()
    fake.clock = lambda: run.target + run.drift
    try:
        await run.run(steps)
    finally:
        await run.bot.stop()
        await fake.stop()
    return run


async def snapshot(run: Run) -> dict[str, Any]:
    """The outcome, in terms that do not depend on timing or row ids."""
    names = {uid: name for name, uid in run.users.items()}

    def who(uid: str) -> str:
        return names.get(uid, uid)

    rounds = await run.sql("SELECT slot, state, scheduled, message_id IS NOT NULL, note FROM rounds ORDER BY slot")
    answers = await run.sql(
        "SELECT r.slot, m.user_id, a.text FROM answers a JOIN rounds r ON r.id = a.round_id "
        "JOIN members m ON m.id = a.member_id"
    )
    votes = await run.sql(
        "SELECT r.slot, v.user_id, au.user_id FROM votes x JOIN rounds r ON r.id = x.round_id "
        "JOIN members v ON v.id = x.voter_id JOIN answers a ON a.id = x.answer_id "
        "JOIN members au ON au.id = a.member_id"
    )
    ledger = await run.sql(
        "SELECT r.slot, m.user_id, l.reason, l.points FROM ledger l JOIN members m ON m.id = l.member_id "
        "LEFT JOIN rounds r ON r.id = l.round_id"
    )
    totals: dict[str, int] = {}
    for _, uid, _, pts in ledger:
        totals[who(uid)] = totals.get(who(uid), 0) + int(pts)
    return {
        "rounds": [(*r[:3], bool(r[3]), r[4]) for r in rounds],
        "answers": sorted((s, who(u), t) for s, u, t in answers),
        "votes": sorted((s, who(v), who(a)) for s, v, a in votes),
        "ledger": sorted((s, who(u), reason, int(p)) for s, u, reason, p in ledger),
        "totals": dict(sorted(totals.items())),
        "claims": sorted(
            (k, p, bool(done)) for k, p, done in await run.sql("SELECT kind, period, done_at IS NOT NULL FROM claims")
        ),
    }


def embed_text(message: dict[str, Any]) -> str:
    return " ".join(
        [message.get("content") or ""] + [f"{e.get('title')} {e.get('description')}" for e in message.get("embeds", [])]
    )


async def posted_once(run: Run) -> None:
    """Every bot message happened once: one daily post per round, one board, one reveal/ballot/results each."""
    in_channel = [embed_text(m) for m in run.fake.messages(run.channel)]
    posts = [t for t in in_channel if "Question of the day" in t]
    slots = [r[0] for r in await run.sql("SELECT slot FROM rounds WHERE message_id IS NOT NULL")]
    assert len(posts) == len(slots) == 2, (posts, slots)
    assert sum("Leaderboard" in t for t in in_channel) == 1, in_channel
    for slot in slots:
        thread = await run.thread(slot)
        titles = [e.get("title") for m in run.fake.messages(thread) for e in m.get("embeds", [])]
        assert titles.count("Vote") == 1, (slot, titles)
        assert sum(1 for t in titles if t and t.startswith("Round closed")) == 1, (slot, titles)
        assert sum(1 for t in titles if t and "eference answer" in t) == 1, (slot, titles)


# -- the test -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_killed_at_random_the_bot_ends_where_an_uninterrupted_run_ends(tmp_path: Path, database: str) -> None:
    """The same script and kill plan on each database: PostgreSQL is where several processes share the work,
    and its transactions, locks and sequences differ from SQLite's."""
    async with AsyncExitStack() as stack:
        urls = []
        for name in ("calm", "crashed"):
            if database == "sqlite":
                urls.append(f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}")
            else:
                urls.append(await stack.enter_async_context(pg_schema()))
        reference = await play(tmp_path / "calm", urls[0], 0, SEED)
        stack.push_async_callback(reference.close)
        crashed = await play(tmp_path / "crashed", urls[1], KILLS, SEED)
        stack.push_async_callback(crashed.close)
        await _check(reference, crashed, database)


async def _check(reference: Run, crashed: Run, database: str) -> None:
    expected = await snapshot(reference)
    got = await snapshot(crashed)
    f = crashed.figures
    report = (
        f"crash loop ({database}): seed={SEED} kills={f.kills} (planned {KILLS}) restarts={f.restarts} "
        f"events={f.events} re-clicks={f.reclicks} catch-ups={f.caught_up} acked answers={len(crashed.acked_answers)} "
        f"acked votes={len(crashed.acked_votes)} time={f.seconds:.1f}s (uninterrupted {reference.figures.seconds:.1f}s)"
    )
    print(report)
    try:
        assert f.kills >= KILLS, "every planned kill fires"
        assert got == expected
        # Nothing stuck: both rounds closed, the board done.
        assert [r[1] for r in got["rounds"]] == ["closed", "closed"]
        assert all(done for _, _, done in got["claims"])
        # Nothing acknowledged was lost (implied by the equality, but said outright).
        # An acknowledged answer is in the database as the member last left it (unless they deleted it).
        texts = {t for _, _, t in got["answers"]}
        for key, _ in crashed.acked_answers:
            latest = [st for st in script() if st.key == key][-1]
            if latest.kind != "delete":
                assert latest.text in texts, key
        names = {uid: name for name, uid in crashed.users.items()}
        for slot, voter, author in crashed.acked_votes:
            assert (slot, names[voter], names[author]) in got["votes"]
        await posted_once(crashed)
        await posted_once(reference)
    except AssertionError as exc:
        raise crashed.fail(f"{report}\n{exc}") from exc
