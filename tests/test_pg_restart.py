"""PostgreSQL restarting mid-cycle (issue 8): the bot says "try again" while the database is away, its scheduler
keeps running, a step cut off half-way is taken over once the database is back, and the cycle completes with
nothing lost or doubled.

The shared PostgreSQL on 127.0.0.1:5432 is never touched: each test starts a throwaway cluster of its own
(initdb into a temporary directory, pg_ctl on a free port), and stops it fast or immediately (the latter is a
crash: no checkpoint, recovery from the WAL on the next start)."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from adapters.health import health_app
from bot.clock import ManualClock
from bot.events import Actor, ButtonPressed, Command, MessagePosted, Place
from bot.models import Channel, RoundState
from bot.ports import Sent
from bot.questions.model import Bank
from bot.render import Message, React, Reply
from bot.runtime import Runtime
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.tables import answers, ledger, rounds, votes
from tests.conftest import MONDAY_0800, start_runtime

pytestmark = pytest.mark.faults


def _unavailable(reason: str) -> None:
    # Same policy as require_pg in conftest: CI must run it, a laptop without PostgreSQL skips it.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Cluster:
    """A private PostgreSQL cluster in a temporary directory. As root, its programs run as the postgres user
    (initdb refuses to run as root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        found = bins[-1] if bins else shutil.which("initdb")
        if found is None:
            _unavailable("initdb not found (install PostgreSQL server binaries)")
        assert found is not None
        self.bin = Path(found).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                _unavailable("running as root without runuser, and initdb refuses to run as root")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: as root that is private to root, and the postgres user must reach it.
        self.home = Path(tempfile.mkdtemp(prefix="ib-pg-"))
        self.data = self.home / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.as_user, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{out.decode(errors='replace')}")

    async def init(self) -> None:
        if self.as_user:
            shutil.chown(self.home, "postgres")
        try:
            await self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        except RuntimeError as exc:
            _unavailable(f"cannot create a throwaway PostgreSQL cluster: {exc}")

    async def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.home}' -c fsync=off"
        log = str(self.home / "log")
        await self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", log, "-w", "start")

    async def stop(self, mode: str) -> None:
        await self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    async def destroy(self) -> None:
        try:
            await self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster()
    await c.init()
    await c.start()
    try:
        yield c
    finally:
        await c.destroy()


@dataclass
class KeyedPlatform:
    """Records what the core sends and, like Discord with an enforced nonce, returns the first message again
    for a key it has seen. ``on_send`` lets a test act at the moment a given message goes out."""

    name: str = "shell"
    sent: list[tuple[Message, str | None]] = field(default_factory=list)
    by_key: dict[str, Sent] = field(default_factory=dict)
    retried: int = 0
    on_send: Callable[[Message], object] | None = None

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        if key is not None and key in self.by_key:
            self.retried += 1
            return self.by_key[key]
        self.sent.append((message, key))
        mid = f"m{len(self.sent)}"
        out = Sent(mid, mid if message.thread_name else None)
        if key is not None:
            self.by_key[key] = out
        if self.on_send is not None:
            hook = self.on_send(message)
            if asyncio.iscoroutine(hook):
                await hook
        return out

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        self.sent.append((message, None))

    async def check_channel(self, place: Place) -> str | None:
        return None

    def owns(self, channel: Channel) -> bool:
        return True

    def titles(self) -> list[str | None]:
        return [m.title for m, _ in self.sent]


async def count(rt: Runtime, table) -> int:  # type: ignore[no-untyped-def]
    async with rt.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def state(rt: Runtime) -> str:
    async with rt.db.connect() as conn:
        return str((await conn.execute(select(rounds.c.state))).scalar_one())


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_mid_cycle(  # type: ignore[no-untyped-def]
    mode: str, cluster: Cluster, bank: Bank, runtimes, caplog
) -> None:
    clock = ManualClock(MONDAY_0800)
    platform = KeyedPlatform()
    rt, _ = await start_runtime(runtimes, cluster.url, bank, clock, platform, timing={"lease_seconds": 60})  # type: ignore[arg-type]
    place = Place("shell", "local", "general", None, "general")
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, place, ChannelSettings(), clock.now())
    await rt.scheduler.start(paused=True)  # jobs planned, but the test runs them by hand

    async def readyz() -> tuple[int, str]:
        async def connected() -> None:
            return None

        async with TestClient(TestServer(health_app(rt.db, connected))) as client:
            resp = await client.get("/readyz")
            return resp.status, await resp.text()

    def say(who: str, text: str) -> MessagePosted:
        rnd_thread = Place("shell", "local", "general", thread, "general")
        return MessagePosted(Actor("shell", "local", who, who), rnd_thread, f"{who}-{text[:8]}", text)

    # 09:00: the question goes out; two members answer.
    clock.set(MONDAY_0800 + timedelta(hours=1, seconds=5))
    await rt.scheduler.sweep()
    async with rt.engine.tx() as conn:
        [rnd] = await round_store.active(conn, ch.id)
    thread = rnd.thread_id
    assert rnd.state == RoundState.OPEN and thread
    for who in ("ann", "ben"):
        assert await rt.core.handle(say(who, f"{who}'s answer")) == [React("recorded")]
    assert (await readyz())[0] == 200

    # The database goes away.
    await cluster.stop(mode)
    status, body = await readyz()
    assert status == 503 and "database" in body
    reply = await rt.core.handle(say("cai", "cai's answer"))
    assert isinstance(reply[0], Reply) and "try again" in reply[0].message.plain
    reply = await rt.core.handle(Command(Actor("shell", "local", "ann", "ann"), place, ("quiz", "leaderboard"), {}))
    assert isinstance(reply[0], Reply) and "try again" in reply[0].message.plain
    # The scheduler's runs fail quietly and it keeps its jobs: nothing raises out of them.
    await rt.scheduler.sweep()
    await rt.scheduler.wake()
    assert rt.scheduler.aps.get_job("sweep") is not None

    # Back again: the pool replaces the dead connections; the member who was told to try again does.
    await cluster.start()
    assert (await readyz())[0] == 200
    assert await rt.core.handle(say("cai", "cai's answer")) == [React("recorded")]
    assert await count(rt, answers) == 3

    # 17:00: the reveal starts, and the database dies the moment the ballot has gone out, before the reveal is
    # recorded. The sweep fails; once the database is back and the lease has run out, the reveal is taken
    # over and finished, and the platform sees the same keys again (so Discord posts nothing twice).
    async def die_after_ballot(message: Message) -> None:
        if message.title == "Vote":
            platform.on_send = None
            await cluster.stop(mode)

    platform.on_send = die_after_ballot
    clock.set(MONDAY_0800 + timedelta(hours=9, seconds=5))
    await rt.scheduler.sweep()
    assert any("sweep failed" in r.getMessage() for r in caplog.records)
    await cluster.start()
    assert await state(rt) == RoundState.REVEALING
    clock.advance(timedelta(seconds=61))
    await rt.scheduler.sweep()
    assert await state(rt) == RoundState.REVEALED
    assert platform.titles().count("Vote") == 1
    assert platform.retried >= 2  # the reference answer and the ballot were asked for again, and not re-posted

    # Votes, then the close: points written once.
    async with rt.db.connect() as conn:
        ids = dict((await conn.execute(select(answers.c.message_id, answers.c.id))).all())
    for voter, target in (("ben", "ann-ann's an"), ("cai", "ann-ann's an"), ("ann", "ben-ben's an")):
        out = await rt.core.handle(
            ButtonPressed(Actor("shell", "local", voter, voter), say(voter, "").place, f"vote:{rnd.id}:{ids[target]}")
        )
        assert isinstance(out[0], Reply) and "Vote recorded" in out[0].message.plain
    clock.advance(timedelta(hours=15))
    await rt.scheduler.sweep()
    assert await state(rt) == RoundState.CLOSED
    assert await count(rt, votes) == 3
    async with rt.db.connect() as conn:
        reasons = sorted((await conn.execute(select(ledger.c.reason))).scalars())
    assert reasons.count("participation") == 3
    assert platform.titles().count("Round closed: results") == 1
    assert sum(1 for m, _ in platform.sent if m.thread_name) == 1  # one question, ever
