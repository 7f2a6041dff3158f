"""Answers posted while no process was listening, across the answer deadline (Discord, real discord.py).

The bot is down when a round's answer window ends. Members kept answering in the thread meanwhile, some in time
and some after the deadline. When the bot comes back it must read the thread before it reveals the round: the
answers and edits made in time reach the ballot; those made after the deadline do not.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import ManualClock
from bot.models import RoundState
from bot.questions.model import Bank
from bot.store.tables import answers, members, rounds
from tests.fake_discord import FakeDiscord
from tests.fake_discord import fake_discord as fake_discord
from tests.test_discord_adapter import Server, embed_text, post_now, scalar, setup_channel, start_bot
from tests.test_discord_adapter import server as server


async def answers_by_member(rt_bot: object, url: str) -> dict[str, str]:
    from bot.runtime import Runtime

    assert isinstance(rt_bot, Runtime)
    async with rt_bot.engine.read() as conn:
        rows = (
            await conn.execute(
                select(members.c.user_id, answers.c.text).join(members, members.c.id == answers.c.member_id)
            )
        ).all()
    return {r.user_id: r.text for r in rows}


async def test_answers_made_in_time_while_the_bot_was_down_reach_the_ballot(
    server: Server, fake_discord: FakeDiscord, tmp_path: Path, bank: Bank, clock: ManualClock
) -> None:
    fake, s = fake_discord, server
    fake.clock = clock.now  # message times in the bot's time, so they can be compared with its deadlines
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    with fake.patch_discord_py():
        bot = await start_bot(fake, url, bank, clock)
        await bot.client.tree.sync()
        await setup_channel(fake, s, answer="60m")
        await post_now(fake, s)
        thread = fake.thread_of(fake.messages(s.channel)[0]["id"])
        ann_id = await fake.user_message(thread, s.ann, "ann, live: first draft")
        ada_id = await fake.user_message(thread, s.admin, "ada, live")
        for mid in (ann_id, ada_id):
            await fake.wait_for(lambda mid=mid: (m := fake.message(mid)) is not None and bool(m["reactions"]))
        await bot.stop()

        # Down. Within the window: Ben answers, Ann improves hers.
        clock.advance(timedelta(minutes=30))
        await fake.user_message(thread, s.ben, "ben, while the bot was down, in time")
        await fake.user_edit(thread, ann_id, "ann, edited in time")
        # After the deadline: Cat's first message is too late, and Ada's edit does not count.
        clock.advance(timedelta(minutes=45))
        cat_id = await fake.user_message(thread, s.cat, "cat, after the deadline")
        await fake.user_edit(thread, ada_id, "ada, edited too late")

        bot = await start_bot(fake, url, bank, clock)
        try:
            rt = bot.runtime

            async def revealed() -> bool:
                state = await scalar(rt, select(rounds.c.state).order_by(rounds.c.id.desc()).limit(1))
                return bool(state == RoundState.REVEALED.value)

            await fake.wait_for(revealed, timeout=10)
            got = await answers_by_member(rt, url)
            assert got == {
                s.ann: "ann, edited in time",
                s.ben: "ben, while the bot was down, in time",
                s.admin: "ada, live",
            }
            ballot = next(m for m in fake.messages(thread) if any(e.get("title") == "Vote" for e in m["embeds"]))
            text = embed_text(ballot)
            assert "edited in time" in text and "in time" in text
            assert "cat, after the deadline" not in text and "too late" not in text
            # Cat's late message got no ✅: it is discussion, not an answer.
            cat_msg = fake.message(cat_id)
            assert cat_msg is not None and not any(r["me"] for r in cat_msg["reactions"])
        finally:
            await bot.stop()


async def test_reveals_wait_for_the_catch_up_but_not_forever(
    server: Server, fake_discord: FakeDiscord, tmp_path: Path, bank: Bank, clock: ManualClock
) -> None:
    """The hold is per platform and lapses by itself: a process whose gateway never comes back still reveals."""
    fake = fake_discord
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    with fake.patch_discord_py():
        bot = await start_bot(fake, url, bank, clock)
        try:
            engine = bot.runtime.engine

            async def released() -> bool:
                return not engine.reveals_held("discord")

            await fake.wait_for(released, timeout=10)  # released once the shard was caught up
            engine.hold_reveals("discord", seconds=0)
            assert not engine.reveals_held("discord")  # lapsed at once
            engine.hold_reveals("discord", seconds=60)
            assert engine.reveals_held("discord") and not engine.reveals_held("slack")
            await fake.drop_gateway()
            await fake.wait_for(released, timeout=10)  # resumed: Discord replays the gap, nothing to read back
        finally:
            await bot.stop()
