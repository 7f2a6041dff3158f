"""Faults and abuse (issue 8): platform trouble against the fakes. Bursts of 429 with Retry-After (Discord per
route and global, Slack `ratelimited`), 5xx, and a Slack call held past the client's timeout. The daily post
still happens at its slot, exactly once, and admins hear only of permanent problems, not of passing ones.
(Slack here is in HTTP mode; Socket Mode drops and refusals are in test_slack_socket_mode.py. The Discord
gateway drop is covered in test_discord_adapter.py and below.)"""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from tests.fake_discord import fake_discord as fake_discord
from tests.fake_slack import fake_slack_fixture  # noqa: F401
from tests.test_discord_adapter import Server, replied, running, server, setup_channel  # noqa: F401
from tests.test_slack_adapter import Workspace, said, ws  # noqa: F401

pytestmark = pytest.mark.faults


async def _rounds(rt: Runtime, platform: str, space: str, channel: str) -> list[Any]:
    async with rt.engine.read() as conn:
        ch = await channel_store.find(conn, platform, space, channel)
        assert ch is not None and ch.enabled, "a passing problem must not pause the channel"
        return await round_store.active(conn, ch.id)


async def _post_time(rt: Runtime, clock: ManualClock, minutes: int = 0) -> None:
    """09:00 on the test's Monday (the default post time) plus some minutes, and one sweep."""
    clock.set(clock.now().replace(hour=9, minute=minutes, second=0))
    await rt.engine.tick()


# -- Slack ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"status": 429, "retry_after": 0, "times": 4}, "429"),  # one more than the client's 3 retries
        ({"status": 500, "times": 1}, "500"),
        ({"status": 503, "times": 1, "error": "service_unavailable"}, "503"),
        ({"error": "fatal_error", "times": 1}, "error"),
    ],
)
async def test_slack_passing_trouble_delays_the_post_by_one_sweep_and_tells_nobody(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
    fault: dict[str, Any],
    kind: str,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    f.fail_next("chat.postMessage", **fault)
    await _post_time(w.runtime, clock, 0)
    assert f.messages(w.channel) == [] and f.injected[kind] == fault["times"]
    # The claim's lease (timing.lease_seconds, 120 s) keeps the failed post claimed; the first sweep after it
    # retries. Sweeps inside it do nothing, so a slow platform is never hammered.
    await _post_time(w.runtime, clock, 1)
    assert f.messages(w.channel) == []
    await _post_time(w.runtime, clock, 3)
    posts = f.messages(w.channel)
    assert len(posts) == 1 and "Question of the day" in str(posts[0])
    [rnd] = await _rounds(w.runtime, "slack", f.team_id, w.channel)
    assert rnd.slot == "2026-11-23" and rnd.scheduled
    assert [c for c in f.calls_to("chat.postMessage") if c.get("channel") == w.admin] == []  # no admin DM


async def test_slack_rate_limits_within_the_client_budget_are_waited_out_in_the_same_sweep(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    f.fail_next("chat.postMessage", status=429, retry_after=1, times=1)
    f.fail_next("chat.postMessage", status=429, retry_after=0, times=2)
    await _post_time(w.runtime, clock, 0)
    assert len(f.messages(w.channel)) == 1 and f.injected["429"] == 3
    assert len(f.calls_to("chat.postMessage")) == 4  # three refused, one posted


async def test_slack_post_that_times_out_but_lands_is_not_posted_twice(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    client = await w.runtime.engine.platforms["slack"].client_for(f.team_id)  # type: ignore[attr-defined]
    client.timeout = 0.3
    f.hold_next("chat.postMessage", 1.0)
    await _post_time(w.runtime, clock, 0)
    assert f.injected["hold"] == 1
    import asyncio

    await asyncio.sleep(1.0)  # the held call completes on the fake's side
    await _post_time(w.runtime, clock, 3)  # after the lease: the retry
    assert [c for c in f.calls_to("chat.postMessage") if c.get("channel") == w.admin] == []
    assert len(f.messages(w.channel)) == 1
    # Found again by its key in the channel's history, not posted a second time.
    assert len(f.calls_to("conversations.history")) == 1
    assert len(f.calls_to("chat.postMessage")) == 1


async def test_slack_permanent_trouble_pauses_and_tells_the_admin_once(
    ws: Workspace,  # noqa: F811
    clock: ManualClock,
) -> None:
    w, f = ws, ws.fake
    await said(w, await w.slack.slash("/quiz", "admin setup", w.admin, w.channel))
    f.fail_next("chat.postMessage", error="channel_not_found")
    await _post_time(w.runtime, clock, 0)
    await _post_time(w.runtime, clock, 3)
    dms = [c for c in f.calls_to("chat.postMessage") if c.get("channel") == w.admin]
    assert len(dms) == 1 and "paused" in str(dms[0])
    assert f.messages(w.channel) == []


# -- Discord ----------------------------------------------------------------------------------------------


async def test_discord_rate_limits_and_a_server_error_are_retried_and_post_once(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
    clock: ManualClock,
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    route = rf"/channels/{s.channel}/messages"
    # discord.py makes 5 tries per request; it waits 1 + 2 x tries seconds after a 5xx, so the 502 comes first.
    fake.fail_next("POST", route, 502)
    fake.fail_next("POST", route, 429, retry_after=0.05, times=2)  # the route's bucket
    fake.fail_next(
        "POST", route, 429, {"message": "You are being rate limited.", "retry_after": 0.05, "global": True}
    )
    await _post_time(rt, clock, 0)
    posts = fake.messages(s.channel)
    assert len(posts) == 1 and fake.injected == {"429": 3, "502": 1}
    assert len(fake.requests_to("POST", route)) == 5
    [rnd] = await _rounds(rt, "discord", s.guild, s.channel)
    assert rnd.slot == "2026-11-23" and rnd.thread_id == fake.thread_of(posts[0]["id"])
    owner = fake._guild(s.guild).owner_id
    assert fake.dms(owner) == []


async def test_discord_trouble_past_the_clients_retries_waits_for_the_next_sweep(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
    clock: ManualClock,
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    route = rf"/channels/{s.channel}/messages"
    fake.fail_next("POST", route, 429, retry_after=0.01, times=5)  # discord.py gives up after 5 tries
    await _post_time(rt, clock, 0)
    assert fake.messages(s.channel) == []
    await _post_time(rt, clock, 3)  # the first sweep after the claim's lease
    assert len(fake.messages(s.channel)) == 1
    assert fake.dms(fake._guild(s.guild).owner_id) == []


async def test_discord_gateway_dropped_twice_mid_round_loses_no_answer(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
    clock: ManualClock,
) -> None:
    from sqlalchemy import func, select

    from bot.store.tables import answers

    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await setup_channel(fake, s)
    await _post_time(rt, clock, 0)
    thread = fake.thread_of(fake.messages(s.channel)[0]["id"])
    assert thread is not None
    for n, user in enumerate((s.ann, s.ben), start=1):
        await fake.drop_gateway()
        await fake.user_message(thread, user, f"answer from {user} across a reconnect")
        await fake.wait_for(lambda n=n: fake.resumes >= n, timeout=10)

    async def both() -> bool:
        async with rt.engine.read() as conn:
            return bool((await conn.execute(select(func.count()).select_from(answers))).scalar_one() == 2)

    await fake.wait_for(both, timeout=10)
    assert fake.resumes >= 2
