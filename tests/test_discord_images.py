"""Pictures on Discord, end to end: the real discord.py client uploads them as multipart files to the fake
Discord, the weekly card shows inside its embed, an ephemeral /quiz stats reply carries the chart, and a
refused upload still leaves the text posted."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from bot import cards
from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.store import channels as channel_store
from bot.store.tables import answers
from tests.conftest import MONDAY_0800
from tests.fake_discord import FakeDiscord
from tests.fake_discord import fake_discord as fake_discord
from tests.test_discord_adapter import Server, buttons, embed_text, post_now, replied, scalar, setup_channel
from tests.test_discord_adapter import running as running  # fixtures, shared with the adapter's own tests
from tests.test_discord_adapter import server as server


def png(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    return img


async def play_a_round(fake: FakeDiscord, s: Server, rt: Runtime) -> None:
    """Monday 08:00: a question, answers from ann and ben, ben votes for ann, the round closes."""
    await setup_channel(fake, s, leaderboard="mon@08:30")
    await post_now(fake, s)
    [post] = fake.messages(s.channel)
    thread = fake.thread_of(post["id"])
    assert thread is not None
    await fake.user_message(thread, s.ann, "ann's answer")
    await fake.user_message(thread, s.ben, "ben's answer")

    async def both() -> bool:
        return bool(await scalar(rt, select(func.count()).select_from(answers)) == 2)

    await fake.wait_for(both)
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin reveal-now", {}))
    ballot = next(m for m in fake.messages(thread) if buttons(m))
    vote = {b["label"].split(": ", 1)[1]: b["custom_id"] for b in buttons(ballot)}
    await replied(fake, await fake.click(thread, ballot["id"], s.ben, vote["ann"]))
    await replied(fake, await fake.slash(s.guild, s.channel, s.admin, "quiz-admin close-now", {}))


async def weekly_post(fake: FakeDiscord, s: Server, rt: Runtime, clock: ManualClock) -> dict[str, Any]:
    clock.set(MONDAY_0800 + timedelta(minutes=35))
    await rt.engine.tick()
    board = fake.messages(s.channel)[-1]
    assert "Leaderboard: the last 7 days" in embed_text(board)
    return board


async def test_the_weekly_card_is_uploaded_with_the_post(
    server: Server, running: dict[str, Any], clock: ManualClock
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await play_a_round(fake, s, rt)
    board = await weekly_post(fake, s, rt, clock)
    assert "ann" in embed_text(board) and "30 points" in embed_text(board)  # the text is all there
    [attachment] = board["attachments"]
    assert attachment["filename"] == "leaderboard-2026-11-23.png"
    assert attachment["description"].startswith("Weekly leaderboard") and "ann, 30 points" in attachment["description"]
    [embed] = board["embeds"]
    assert embed["image"]["url"] == "attachment://leaderboard-2026-11-23.png"  # shown inside the embed
    [upload] = [u for u in fake.uploads if u["path"] == f"/channels/{s.channel}/messages"]
    assert upload["filename"] == attachment["filename"] and upload["size"] == len(upload["data"])
    assert png(upload["data"]).size == cards.CARD_SIZE


async def test_a_refused_upload_still_posts_the_text(
    server: Server, running: dict[str, Any], clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await play_a_round(fake, s, rt)
    fake.deny_attach(s.channel)  # no Attach Files: Discord answers 403 to a post with a file
    with caplog.at_level(logging.WARNING, logger="adapters.discord.platform"):
        board = await weekly_post(fake, s, rt, clock)
    assert "ann" in embed_text(board) and not board.get("attachments")
    assert "image" not in board["embeds"][0]  # no broken picture left in the embed
    assert any("posting the text alone" in r.getMessage() for r in caplog.records)
    async with rt.engine.read() as conn:  # a 403 on the picture is not a lost channel
        ch = await channel_store.find(conn, "discord", s.guild, s.channel)
    assert ch is not None and ch.enabled
    refused = [
        r for r in fake.requests_to("POST", rf"/channels/{s.channel}/messages") if r.json and r.json.get("attachments")
    ]
    assert len(refused) == 1  # tried once with the picture, then the text alone


async def test_stats_reply_carries_the_chart_privately(server: Server, running: dict[str, Any]) -> None:
    fake, s = server.fake, server
    rt: Runtime = running["bot"].runtime
    await play_a_round(fake, s, rt)
    stats = await replied(fake, await fake.slash(s.guild, s.channel, s.ann, "quiz stats", {}))
    assert stats.original_ephemeral or all(r["ephemeral"] for r in stats.responses if r["kind"] == "followup")
    assert any("Stats for ann" in t for t in stats.ephemeral_texts())
    token_path = f"/webhooks/{fake.application_id}/{stats.token}"
    [upload] = [u for u in fake.uploads if u["path"] == token_path]
    assert upload["filename"] == "progress.png"
    assert png(upload["data"]).size == cards.chart_size(1)

    before = len(fake.uploads)
    plain = await replied(fake, await fake.slash(s.guild, s.channel, s.ann, "quiz stats", {"chart": False}))
    assert any("Stats for ann" in t for t in plain.ephemeral_texts())
    assert len(fake.uploads) == before  # chart:False: the text alone
