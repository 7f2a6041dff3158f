"""Slack and a process that dies mid-step (issue 8, RELIABILITY.md fix 18): chat.postMessage has no idempotency
key, so a post that reached Slack just before its process died must be found in the channel (or the thread) by
its key, by a NEW process that remembers nothing, instead of being posted again.

The death is simulated through the real slack_sdk client against the fake Slack: the fake holds the call, the
bot's task is cancelled while it waits (as a SIGKILL would end it), and the fake then carries the call out anyway.
A second runtime on the same database, with its own adapter and client, takes the step over once the first one's
lease has run out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import suppress
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import web_client
from adapters.slack.platform import SlackPlatform
from bot.clock import ManualClock
from bot.models import Round, RoundState
from bot.questions.model import Bank
from bot.runtime import Runtime, build
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store.db import create_engine
from tests.conftest import make_config
from tests.fake_slack import (
    FakeSlackWebAPI,
    fake_slack_fixture,  # noqa: F401
)
from tests.test_slack_adapter import Workspace, said, ws  # noqa: F401

LEASE = timedelta(seconds=121)  # timing.lease_seconds (120) and a second


@pytest.fixture
async def second(ws: Workspace, bank: Bank, clock: ManualClock) -> AsyncIterator[Runtime]:  # noqa: F811
    """The process started after the crash: same database, fresh adapter and client, nothing in memory."""
    f = ws.fake
    url = ws.runtime.db.url.render_as_string(hide_password=False)
    client = web_client(f.bot_token, f.api_url)

    async def client_for(_team: str) -> AsyncWebClient:
        return client

    rt = await build(
        make_config(url), {"slack": SlackPlatform(client_for)}, clock=clock, bank=bank, db=create_engine(url)
    )
    assert rt.engine.owner != ws.runtime.engine.owner
    try:
        yield rt
    finally:
        await rt.close()


async def die_during(f: FakeSlackWebAPI, method: str, work: Awaitable[Any]) -> None:
    """Run ``work`` until it calls ``method``, which Slack receives and carries out, and end it there: the
    bot never learns the outcome, as when its process is killed while waiting for Slack's answer."""
    f.hold_next(method, 0.3)
    task = asyncio.ensure_future(work)
    await f.wait_for(lambda: f.injected.get("hold"))
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def keys(msgs: list[dict[str, Any]]) -> list[str]:
    """The keys our keyed posts carry as metadata, in order."""
    return [m["metadata"]["event_payload"]["key"] for m in msgs if (m.get("metadata") or {}).get("event_payload")]


async def the_round(rt: Runtime, w: Workspace) -> Round:
    async with rt.engine.read() as conn:
        ch = await channel_store.find(conn, "slack", w.fake.team_id, w.channel)
        assert ch is not None
        [rnd] = await round_store.active(conn, ch.id) or [None]
        if rnd is None:
            raise AssertionError("no active round")
        return rnd


async def at_nine(w: Workspace, clock: ManualClock) -> None:
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    clock.set(clock.now().replace(hour=9, minute=0, second=0))


async def test_daily_post_that_reached_slack_before_the_process_died_is_not_posted_again(
    ws: Workspace,  # noqa: F811
    second: Runtime,
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await at_nine(w, clock)
    await die_during(f, "chat.postMessage", w.runtime.engine.tick())
    [landed] = await f.wait_for(lambda: f.messages(w.channel))  # Slack posted it; the database never heard
    assert (await the_round(second, w)).state == RoundState.POSTING

    clock.advance(LEASE)
    await second.engine.tick()
    assert f.messages(w.channel) == [landed]
    assert len(f.calls_to("chat.postMessage")) == 1
    rnd = await the_round(second, w)
    # The round opens on the message that went out, so answers in its thread count.
    assert rnd.state == RoundState.OPEN and rnd.message_id == rnd.thread_id == landed["ts"]
    [lookup] = f.calls_to("conversations.history")
    assert float(lookup["oldest"]) <= float(landed["ts"]) and lookup.get("include_all_metadata") in (True, "1", "true")

    # A later sweep of either process changes nothing.
    clock.advance(LEASE)
    await second.engine.tick()
    await w.runtime.engine.tick()
    assert f.messages(w.channel) == [landed] and len(f.calls_to("conversations.history")) == 1


async def test_reveal_and_results_that_reached_the_thread_before_the_process_died_are_not_posted_again(
    ws: Workspace,  # noqa: F811
    second: Runtime,
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await at_nine(w, clock)
    await w.runtime.engine.tick()
    [post] = f.messages(w.channel)
    thread = post["ts"]
    for user, text in ((w.ann, "Ann's answer"), (w.ben, "Ben's answer")):
        await w.slack.event(w.slack.message(w.channel, user, text, thread_ts=thread))
    rnd = await the_round(w.runtime, w)
    assert rnd.reveal_at is not None
    await f.wait_for(lambda: len(f.calls_to("reactions.add")) == 2)  # both answers recorded

    clock.set(rnd.reveal_at)
    await die_during(f, "chat.postMessage", w.runtime.engine.tick())  # the reference answer is sent first
    await f.wait_for(lambda: keys(f.thread(w.channel, thread)) == [f"p{rnd.id}", f"r{rnd.id}q"])
    assert (await the_round(second, w)).state == RoundState.REVEALING

    clock.advance(LEASE)
    await second.engine.tick()
    # The question, then one reference answer and one ballot.
    assert keys(f.thread(w.channel, thread)) == [f"p{rnd.id}", f"r{rnd.id}q", f"r{rnd.id}b"]
    assert (await the_round(second, w)).state == RoundState.REVEALED
    # Looked for in the thread's replies since the question was posted, once per message of the reveal.
    lookups = f.calls_to("conversations.replies")
    assert len(lookups) == 2 and {c["ts"] for c in lookups} == {thread}

    # The close: the results reach the thread, the second process dies too, the first one (restarted) takes over.
    revealed = await the_round(second, w)
    assert revealed.close_at is not None
    clock.set(revealed.close_at)
    f.injected.pop("hold")
    await die_during(f, "chat.postMessage", second.engine.tick())
    await f.wait_for(lambda: keys(f.thread(w.channel, thread))[-1] == f"c{rnd.id}")
    clock.advance(LEASE)
    await w.runtime.engine.tick()
    assert keys(f.thread(w.channel, thread)) == [f"p{rnd.id}", f"r{rnd.id}q", f"r{rnd.id}b", f"c{rnd.id}"]
    async with w.runtime.engine.read() as conn:
        assert (await round_store.get(conn, rnd.id)).state == RoundState.CLOSED  # type: ignore[union-attr]


async def test_a_failed_lookup_posts_nothing_and_the_next_sweep_tries_again(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await at_nine(w, clock)
    f.fail_next("chat.postMessage", status=500)  # refused: nothing was posted
    await w.runtime.engine.tick()
    assert f.messages(w.channel) == []

    # The retry cannot ask Slack whether the post went out: it posts nothing rather than risk a second copy.
    f.fail_next("conversations.history", status=503, error="service_unavailable")
    clock.advance(LEASE)
    await w.runtime.engine.tick()
    assert f.messages(w.channel) == [] and len(f.calls_to("chat.postMessage")) == 1
    rnd = await the_round(w.runtime, w)
    assert rnd.state == RoundState.POSTING

    # Nobody is told: a passing problem. The next retry looks again, finds nothing and posts, once.
    clock.advance(LEASE)
    await w.runtime.engine.tick()
    [post] = f.messages(w.channel)
    assert keys([post]) == [f"p{rnd.id}"] and len(f.calls_to("conversations.history")) == 2
    assert (await the_round(w.runtime, w)).state == RoundState.OPEN
    assert [c for c in f.calls_to("chat.postMessage") if c.get("channel") == w.admin] == []


async def test_a_lookup_the_bot_may_not_make_pauses_the_channel_like_the_post_would(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await at_nine(w, clock)
    f.fail_next("chat.postMessage", status=500)
    await w.runtime.engine.tick()
    f.remove_bot_from(w.channel)  # removed from the channel before the retry: reading it is refused too
    clock.advance(LEASE)
    await w.runtime.engine.tick()
    assert f.messages(w.channel) == []
    dms = [c for c in f.calls_to("chat.postMessage") if c.get("channel") == w.admin]
    assert len(dms) == 1 and "not_in_channel" in str(dms[0])


async def test_weekly_board_that_reached_slack_before_the_process_died_is_not_posted_again(
    ws: Workspace,  # noqa: F811
    second: Runtime,
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    clock.set(clock.now().replace(hour=17, minute=0, second=0) + timedelta(days=4))  # Friday 17:00
    await die_during(f, "chat.postMessage", w.runtime.engine.tick())
    [board] = await f.wait_for(lambda: f.messages(w.channel))
    [key] = keys([board])
    assert key.startswith("l")

    clock.advance(LEASE)
    await second.engine.tick()
    assert f.messages(w.channel) == [board] and len(f.calls_to("chat.postMessage")) == 1
    assert len(f.calls_to("conversations.history")) == 1
    clock.advance(LEASE)
    await second.engine.tick()  # the claim is done now: nothing more to do
    assert f.messages(w.channel) == [board] and len(f.calls_to("conversations.history")) == 1
