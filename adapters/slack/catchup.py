"""Read back what members did in open rounds' threads while no process was listening.

Slack retries an event it could not deliver only a few times, over about an hour; after a longer outage (or a
process that died after Slack's last try) answers, edits and deletions in a thread are never delivered. So at
start the adapter reads the thread of every round still taking answers (``Engine.open_threads``) with
conversations.replies and hands the core what it has not seen, as the Discord adapter does on every READY.

Safe to repeat and to run beside live events: the core keeps a member's first message once (an answer it
already holds is not added again), an edit to the text it holds changes nothing, and a deletion tombstones the
message so a late delivery cannot bring it back.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import PLATFORM, REACTIONS, Identities
from adapters.slack.platform import ClientFor, classified
from adapters.slack.render import unescape
from bot.events import MessageDeleted, MessageEdited, MessagePosted, Place
from bot.models import Answer, Channel, Round
from bot.render import React
from bot.runtime import Runtime
from bot.usertext import storable

log = logging.getLogger(__name__)

PAGE = 200  # conversations.replies allows up to 1,000; smaller pages keep each call light under tier 3
MAX_PAGES = 50  # 10,000 replies: past that a thread is not read to its end, and deletions are not inferred
# Messages members write: plain ones, replies also sent to the channel, and ones with files attached.
MEMBER_SUBTYPES = (None, "thread_broadcast", "file_share")


async def catch_up(runtime: Runtime, client_for: ClientFor) -> int:
    """Hand the core every answer, edit and deletion in open rounds' threads that it has not seen; how many.
    Never raises: a thread that cannot be read is logged and the others are still read."""
    try:
        opened = await runtime.engine.open_threads(PLATFORM)
    except Exception:
        log.exception("could not list open rounds to catch up on")
        return 0
    ids = Identities([])  # names for new members; admin rights play no part in answering
    bots: dict[str, str] = {}  # team -> the bot's own user id, to see whether it already reacted
    handled = 0
    for ch, rnd, recorded in opened:
        try:
            client = await client_for(ch.space_id)
            if ch.space_id not in bots:
                bots[ch.space_id] = str((await classified(client.auth_test)).get("user_id") or "")
            handled += await _thread(runtime, client, ids, bots[ch.space_id], ch, rnd, recorded)
        except Exception as exc:  # one unreadable thread (deleted, bot removed) must not stop the others
            log.warning("could not catch up on the thread of round %s in %s: %s", rnd.id, ch.label, exc)
    if handled:
        log.info("caught up on Slack: %d missed messages, edits or deletions taken in", handled)
    return handled


async def _replies(client: AsyncWebClient, channel_id: str, thread_ts: str) -> tuple[list[dict[str, Any]], bool]:
    """The thread's messages, oldest first, and whether they are all of it."""
    out: list[dict[str, Any]] = []
    args: dict[str, Any] = {"channel": channel_id, "ts": thread_ts, "limit": PAGE}
    for _ in range(MAX_PAGES):
        page = await classified(lambda: client.conversations_replies(**args))
        out += page.get("messages") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return out, True
        args["cursor"] = cursor
    return out, False


def _by_member(msg: dict[str, Any], thread_ts: str) -> bool:
    return (
        msg.get("ts") != thread_ts
        and msg.get("subtype") in MEMBER_SUBTYPES
        and bool(msg.get("user"))
        and not msg.get("bot_id")
    )


async def _thread(
    runtime: Runtime,
    client: AsyncWebClient,
    ids: Identities,
    bot_user: str,
    ch: Channel,
    rnd: Round,
    recorded: list[Answer],
) -> int:
    assert rnd.thread_id is not None
    core = runtime.core
    place = Place(PLATFORM, ch.space_id, ch.channel_id, rnd.thread_id)
    # ``recorded`` was read before the thread: every answer in it was on Slack before this listing, so one
    # missing from a complete listing was deleted, not merely posted after it.
    thread, complete = await _replies(client, ch.channel_id, rnd.thread_id)
    members = [m for m in thread if _by_member(m, rnd.thread_id)]
    by_message = {a.message_id: a for a in recorded if a.message_id}
    handled = 0
    if complete:
        for message_id in by_message.keys() - {str(m["ts"]) for m in members}:
            await core.handle(MessageDeleted(place, message_id))
            handled += 1
    deadline = rnd.reveal_at.timestamp() if rnd.reveal_at else None
    for m in members:
        ts, text = str(m["ts"]), unescape(m.get("text") or "")
        known = by_message.get(ts)
        if known is None:
            if deadline is not None and float(ts) > deadline:
                continue  # posted after the answer window, while we were away: not an answer
            actor = await ids.actor(client, ch.space_id, str(m["user"]))
            responses = await core.handle(MessagePosted(actor, place, ts, text))
        elif m.get("edited") and known.text != storable(text):
            if deadline is not None and float((m.get("edited") or {}).get("ts") or 0) > deadline:
                continue  # edited after the window closed: the answer stays as it was in time
            actor = await ids.actor(client, ch.space_id, str(m["user"]))
            responses = await core.handle(MessageEdited(actor, place, ts, text))
        elif not _reacted(m, REACTIONS["recorded"], bot_user):
            # Recorded by a process that died before it could say so.
            responses = [React("recorded")]
        else:
            continue
        if responses:
            handled += 1
        for r in responses:
            if isinstance(r, React) and r.emoji in REACTIONS:
                try:
                    await client.reactions_add(channel=ch.channel_id, timestamp=ts, name=REACTIONS[r.emoji])
                except Exception as exc:  # the answer is recorded either way
                    log.info("could not react to %s: %s", ts, exc)
    return handled


def _reacted(msg: dict[str, Any], name: str, bot_user: str) -> bool:
    return any(r.get("name") == name and bot_user in (r.get("users") or []) for r in msg.get("reactions") or [])
