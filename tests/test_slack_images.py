"""Pictures on Slack, end to end: the real slack-bolt app and slack_sdk's files_upload_v2 against the fake Slack.
The text is posted first and the picture follows (files.getUploadURLExternal, the upload, then
files.completeUploadExternal); an upload that fails leaves the text alone; a private reply's chart goes to a DM."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image as PILImage

from bot import cards
from bot.clock import ManualClock
from bot.store.tables import answers
from tests.conftest import MONDAY_0800
from tests.fake_slack import (
    fake_slack_fixture,  # noqa: F401  (registers the `fake_slack` fixture)
    flatten_text,
)
from tests.test_slack_adapter import Workspace, count, said, until
from tests.test_slack_adapter import ws as ws  # the fixture, shared with the adapter's own tests


def png(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    return img


async def play_a_round(w: Workspace) -> None:
    """Monday 08:00: a question, ann and ben answer, the round is revealed and closed (no votes)."""
    await said(w, await w.slack.slash("/quiz", "admin setup leaderboard=mon@08:30", w.admin, w.channel))
    await said(w, await w.slack.slash("/quiz", "admin post-now", w.admin, w.channel))
    [post] = w.fake.messages(w.channel)
    for user, text in ((w.ann, "ann's answer"), (w.ben, "ben's answer")):
        await w.slack.event(w.slack.message(w.channel, user, text, thread_ts=post["ts"]))

    async def both() -> bool:
        return await count(w.runtime, answers) == 2

    await until(both)
    await said(w, await w.slack.slash("/quiz", "admin reveal-now", w.admin, w.channel))
    await said(w, await w.slack.slash("/quiz", "admin close-now", w.admin, w.channel))


async def weekly_post(w: Workspace, clock: ManualClock) -> dict[str, Any]:
    clock.set(MONDAY_0800 + timedelta(minutes=35))
    await w.runtime.engine.tick()
    [board] = [m for m in w.fake.messages(w.channel) if "Leaderboard: the last 7 days" in flatten_text(m)]
    return board


def names(w: Workspace) -> list[str]:
    return [name for name, _ in w.fake.calls]


async def test_the_weekly_card_follows_the_post(ws: Workspace, clock: ManualClock) -> None:
    w = ws
    await play_a_round(w)
    board = await weekly_post(w, clock)
    assert "ann" in flatten_text(board) and "10 points" in flatten_text(board)
    # The text, then the three steps of the upload, in that order.
    calls = names(w)
    start = calls.index("files.getUploadURLExternal")
    assert calls[start : start + 3] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert calls[:start][-1] == "chat.postMessage"
    [requested] = w.fake.calls_to("files.getUploadURLExternal")
    [shared] = w.fake.shared_files(w.channel)
    assert shared["filename"] == requested["filename"] == "leaderboard-2026-11-23.png"
    assert len(shared["data"]) == int(requested["length"])  # the bytes that arrived are the ones announced
    assert png(shared["data"]).size == cards.CARD_SIZE
    assert shared["alt_txt"].startswith("Weekly leaderboard") and "ann, 10 points" in shared["alt_txt"]
    [complete] = w.fake.calls_to("files.completeUploadExternal")
    assert complete["channel_id"] == w.channel and not complete.get("thread_ts")
    # In the channel: the leaderboard message, then the picture right after it.
    [file_message] = [m for m in w.fake.messages(w.channel) if m.get("files")]
    assert file_message["ts"] > board["ts"] and file_message["files"][0]["mimetype"] == "image/png"


@pytest.mark.parametrize("failure", ["missing_scope", "upload_500", "complete_error"])
async def test_a_failed_upload_leaves_the_text_posted(
    ws: Workspace, clock: ManualClock, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    w = ws
    await play_a_round(w)
    if failure == "missing_scope":  # an install from before files:write was in the manifest
        w.fake.scopes = ",".join(s for s in w.fake.scopes.split(",") if s != "files:write")
    elif failure == "upload_500":
        w.fake.fail_next("upload", status=500)
    else:
        w.fake.fail_next("files.completeUploadExternal", error="internal_error")
    with caplog.at_level(logging.WARNING, logger="adapters.slack.platform"):
        board = await weekly_post(w, clock)
    assert "ann" in flatten_text(board)
    assert w.fake.shared_files(w.channel) == []
    assert not any(m.get("files") for m in w.fake.messages(w.channel))
    assert any("could not upload leaderboard-2026-11-23.png" in r.getMessage() for r in caplog.records)
    async with w.runtime.engine.read() as conn:  # the channel is not paused over a picture
        from bot.store import channels as channel_store

        ch = await channel_store.find(conn, "slack", w.fake.team_id, w.channel)
    assert ch is not None and ch.enabled


async def test_stats_chart_goes_to_a_direct_message(ws: Workspace) -> None:
    """A reply only one person sees cannot carry a file on Slack: the text stays private in the channel and
    the chart arrives in that person's DM with the bot."""
    w = ws
    await play_a_round(w)
    out = await said(w, await w.slack.slash("/quiz", "stats", w.ann, w.channel))
    assert "Stats for ann" in out

    async def shared() -> bool:
        return bool(w.fake.shared_files(w.fake.dm_channel(w.ann)))

    await until(shared)
    [chart] = w.fake.shared_files(w.fake.dm_channel(w.ann))
    assert chart["filename"] == "progress.png" and png(chart["data"]).size == cards.chart_size(1)
    assert "cannot carry pictures" in chart["initial_comment"]
    assert w.fake.shared_files(w.channel) == []  # nothing of it in the channel
    assert w.fake.calls_to("conversations.open")[-1]["users"] == w.ann

    before = len(w.fake.calls_to("files.getUploadURLExternal"))
    out = await said(w, await w.slack.slash("/quiz", "stats chart=no", w.ann, w.channel))
    assert "Stats for ann" in out
    assert len(w.fake.calls_to("files.getUploadURLExternal")) == before
