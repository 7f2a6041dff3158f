"""Faults and abuse (issue 8): setup and resume in a channel the bot cannot run a daily question in.

Each adapter answers ``Platform.check_channel`` through its real stack (discord.py's guild cache and REST, slack_sdk
and conversations.info) against the fakes; the core refuses with the adapter's explanation and changes no
table. A member who is not an admin is refused before anything is asked of the platform."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.platform import DiscordPlatform
from bot.events import Place
from bot.ports import PlatformError
from bot.runtime import Runtime
from tests.fake_discord import fake_discord as fake_discord
from tests.fake_discord.server import ADD_REACTIONS, CREATE_PUBLIC_THREADS, EMBED_LINKS, VIEW_CHANNEL
from tests.fake_slack import fake_slack_fixture  # noqa: F401
from tests.test_discord_adapter import Server, replied, running, server  # noqa: F401
from tests.test_faults_permissions import REFUSED, snapshot
from tests.test_slack_adapter import Workspace, said, ws  # noqa: F401

pytestmark = pytest.mark.faults


# -- Discord --------------------------------------------------------------------------------------------------


async def _setup(fake: Any, s: Server, user: str, where: str, **options: Any) -> str:
    out = await replied(fake, await fake.slash(s.guild, where, user, "quiz-admin setup", options))
    return "\n".join(out.texts())


async def test_discord_setup_refuses_channels_the_bot_cannot_use_and_changes_nothing(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    bot_role = fake._guilds[s.guild].bot_role_id
    # A private channel: @everyone may not view it, and the bot was never added.
    secret = fake.add_channel(s.guild, "secret")
    fake.overwrite(secret, s.guild, deny=VIEW_CHANNEL)
    # The bot's own role is denied what the daily question needs (overwrites on the role, not the member).
    no_threads = fake.add_channel(s.guild, "no-threads")
    fake.overwrite(no_threads, bot_role, deny=EMBED_LINKS | CREATE_PUBLIC_THREADS | ADD_REACTIONS)
    voice = fake.add_channel(s.guild, "voice-chat", type_=2)
    await fake.wait_for(lambda: running["bot"].client.get_channel(int(voice)) is not None)
    before, posts = await snapshot(rt), len(fake.requests_to("POST", r"/channels/\d+/messages"))

    out = await _setup(fake, s, s.admin, s.channel, channel=secret, time="10:00")
    assert "I can't see #secret" in out and "not saved" in out, out
    out = await _setup(fake, s, s.admin, s.channel, channel=no_threads)
    assert "missing the Embed Links, Create Public Threads and Add Reactions permissions" in out, out
    assert "#no-threads" in out
    # Setup typed in a voice channel's text chat: that channel is the target, and it cannot hold a thread.
    out = await _setup(fake, s, s.admin, voice, time="10:00")
    assert "#voice-chat is a voice channel" in out and "not saved" in out, out
    # A member is told they are not an admin, not what the bot lacks in the channel.
    out = await _setup(fake, s, s.ann, s.channel, channel=secret)
    assert REFUSED in out and "secret" not in out, out

    assert await snapshot(rt) == before
    assert len(fake.requests_to("POST", r"/channels/\d+/messages")) == posts

    # Once the bot is let in, the same setup goes through.
    fake.overwrite(secret, fake.bot_user_id, allow=VIEW_CHANNEL)
    await fake.wait_for(lambda: _can_view(running, s.guild, secret))
    out = await _setup(fake, s, s.admin, s.channel, channel=secret, time="10:00")
    assert "Daily question set up: #secret" in out, out


def _can_view(state: dict[str, Any], guild_id: str, channel_id: str) -> bool:
    guild = state["bot"].client.get_guild(int(guild_id))
    return bool(guild.get_channel(int(channel_id)).permissions_for(guild.me).view_channel)


async def test_discord_channel_option_offers_text_channels_only(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
) -> None:
    fake, s = server.fake, server
    [admin] = [c for c in fake.commands if c["name"] == "quiz-admin"]
    [setup] = [o for o in admin["options"] if o["name"] == "setup"]
    [option] = [o for o in setup["options"] if o["name"] == "channel"]
    assert sorted(option["channel_types"]) == [0, 5]  # text and announcement channels
    category = fake.add_channel(s.guild, "Study", type_=4)
    with pytest.raises(AssertionError, match="channel picker"):
        await fake.slash(s.guild, s.channel, s.admin, "quiz-admin setup", {"channel": category})


async def test_discord_check_channel_through_discord_py(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
) -> None:
    """The cases the picker cannot produce, asked of the platform directly: a category, a channel missing from the
    cache (fetched: gone, or Discord failing), a server the gateway has not loaded."""
    fake, s = server.fake, server
    platform: DiscordPlatform = running["bot"].client.platform
    category = fake.add_channel(s.guild, "Study", type_=4)
    await fake.wait_for(lambda: running["bot"].client.get_channel(int(category)) is not None)
    assert await platform.check_channel(Place("discord", s.guild, s.channel)) is None
    said = await platform.check_channel(Place("discord", s.guild, category))
    assert said is not None and "#study is a category" in said

    unknown = fake.snowflake()
    said = await platform.check_channel(Place("discord", s.guild, unknown, None, "gone"))
    assert said is not None and "I can't see #gone" in said
    # 503 is one discord.py does not retry; whatever it does retry ends in the same PlatformError.
    fake.fail_next("GET", rf"/channels/{unknown}", 503)
    with pytest.raises(PlatformError) as failed:
        await platform.check_channel(Place("discord", s.guild, unknown))
    assert not failed.value.permanent and "503" in str(failed.value)
    with pytest.raises(PlatformError) as failed:
        await platform.check_channel(Place("discord", fake.snowflake(), s.channel))
    assert not failed.value.permanent


async def test_discord_resume_checks_the_channel_again(
    server: Server,  # noqa: F811
    running: dict[str, Any],  # noqa: F811
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    assert "set up" in await _setup(fake, s, s.admin, s.channel)
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin pause", {}))
    fake.deny_send(s.channel)
    await fake.wait_for(lambda: not _can_send(running, s.guild, s.channel))
    before = await snapshot(rt)
    out = await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin resume", {}))
    text = "\n".join(out.texts())
    assert "missing the Send Messages and Send Messages in Threads permissions" in text and "Still paused" in text
    assert await snapshot(rt) == before
    fake.clear_overwrites(s.channel)
    await fake.wait_for(lambda: _can_send(running, s.guild, s.channel))
    out = await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin resume", {}))
    assert any("Resumed" in t for t in out.texts()), out.texts()


def _can_send(state: dict[str, Any], guild_id: str, channel_id: str) -> bool:
    guild = state["bot"].client.get_guild(int(guild_id))
    return bool(guild.get_channel(int(channel_id)).permissions_for(guild.me).send_messages)


# -- Slack ----------------------------------------------------------------------------------------------------


async def _slack_setup(w: Workspace, user: str, channel: str, text: str = "time=10:00") -> str:
    return await said(w, await w.slack.slash("/quiz", f"admin setup {text}", user, channel))


async def test_slack_setup_refuses_channels_the_bot_cannot_post_in_and_changes_nothing(ws: Workspace) -> None:  # noqa: F811
    w = ws
    outside = w.fake.add_channel("outside", bot_member=False)
    private = w.fake.add_channel("private-club", private=True, bot_member=False)
    archived = w.fake.add_channel("old-news")
    w.fake.archive(archived)
    before, posts = await snapshot(w.runtime), len(w.fake.calls_to("chat.postMessage"))

    out = await _slack_setup(w, w.admin, outside)
    assert "I am not in #outside" in out and "/invite @interview-bot" in out and "not saved" in out, out
    out = await _slack_setup(w, w.admin, w.channel, f"channel=<#{private}|private-club>")
    assert "I can't see #private-club" in out and "/invite @interview-bot" in out, out
    out = await _slack_setup(w, w.admin, w.channel, f"channel=<#{archived}|old-news>")
    assert "#old-news is archived" in out, out
    dm = w.fake.dm_channel(w.admin)
    out = await _slack_setup(w, w.admin, dm)
    assert "not in a direct message" in out, out
    # A member is refused as a member, before Slack is asked anything.
    asked = len(w.fake.calls_to("conversations.info"))
    out = await _slack_setup(w, w.ann, outside)
    assert REFUSED in out and "outside" not in out, out
    assert len(w.fake.calls_to("conversations.info")) == asked

    assert await snapshot(w.runtime) == before
    assert len(w.fake.calls_to("chat.postMessage")) == posts

    # Invited, the same channel is accepted.
    w.fake._channel(outside).bot_member = True
    out = await _slack_setup(w, w.admin, outside)
    assert "Daily question set up: #outside" in out, out


async def test_slack_setup_when_slack_fails_or_the_scope_is_missing(ws: Workspace) -> None:  # noqa: F811
    w = ws
    before = await snapshot(w.runtime)
    w.fake.fail_next("conversations.info", status=500)
    out = await _slack_setup(w, w.admin, w.channel)
    assert "couldn't check" in out and "try again" in out and "not saved" in out, out
    # An installation from before channels:read and groups:read were in the manifest.
    scopes = w.fake.scopes
    w.fake.scopes = ",".join(x for x in scopes.split(",") if x != "channels:read")
    out = await _slack_setup(w, w.admin, w.channel)
    assert "lacks the" in out and "slack-manifest.yml" in out, out
    assert await snapshot(w.runtime) == before
    w.fake.scopes = scopes
    out = await _slack_setup(w, w.admin, w.channel)
    assert "Daily question set up" in out, out


async def test_slack_resume_checks_the_bot_is_still_in_the_channel(ws: Workspace) -> None:  # noqa: F811
    w = ws
    assert "set up" in await _slack_setup(w, w.admin, w.channel)
    await said(w, await w.slack.slash("/quiz", "admin pause", w.admin, w.channel))
    w.fake.remove_bot_from(w.channel)
    before = await snapshot(w.runtime)
    out = await said(w, await w.slack.slash("/quiz", "admin resume", w.admin, w.channel))
    assert "I am not in #daily-questions" in out and "Still paused" in out, out
    assert await snapshot(w.runtime) == before
    w.fake._channel(w.channel).bot_member = True
    out = await said(w, await w.slack.slash("/quiz", "admin resume", w.admin, w.channel))
    assert "Resumed" in out, out
