"""A whole daily cycle, typed into the shell adapter, on SQLite and on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.store.tables import answers, ledger, members, rounds
from tests.shell_helpers import open_terminal


async def points(rt, name: str) -> int:  # type: ignore[no-untyped-def]
    async with rt.engine.tx() as conn:
        q = (
            select(func.coalesce(func.sum(ledger.c.points), 0))
            .select_from(ledger.join(members, members.c.id == ledger.c.member_id))
            .where(members.c.user_id == name)
        )
        return int((await conn.execute(q)).scalar_one())


async def test_full_daily_cycle_in_the_shell(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(db_url, bank, clock, runtimes)
    rt = t.runtime

    # A member is refused an admin command; the admin sets the channel up.
    out = await t.type("/as alice", "/quiz admin setup time=09:00 timezone=Europe/London")
    assert "only this server's admins" in out
    out = await t.type(
        "/as host", "/quiz admin setup time=09:00 timezone=Europe/London days=mon-fri answer=8h voting=12h cap=1"
    )
    assert "Settings saved" in out and "09:00 Europe/London" in out

    # 08:00 UTC Monday: nothing yet. At 09:00 London (= UTC in winter) the question is posted with a thread.
    await t.type("/as alice")
    assert await t.type("too early") == "(No question is open. An admin can post one with /quiz admin post-now.)"
    out = await t.type("/wait 1h")
    assert "Question of the day" in out and "thread opened" in out

    # Three members answer; bob edits his; carol deletes hers; a second message is discussion, not an answer.
    assert "✓ answer recorded" in await t.type("/as alice", "Alice's answer about gradients")
    assert "✓ answer recorded" in await t.type("/as bob", "Bob's first try")
    assert "✓ answer updated" in await t.type("/edit Bob's better answer")
    assert "✓ answer recorded" in await t.type("/as carol", "Carol's answer")
    await t.type("/delete")
    await t.type("/as alice")
    assert await t.type("a follow-up remark") == ""
    # An empty message is ignored outright.
    assert await t.type("   ") == ""

    # 8 hours later the reference answer and the ballot appear; only alice and bob are on it, with bob's edit.
    out = await t.type("/wait 8h")
    assert "Reference answer" in out and "Vote" in out
    assert "Bob's better answer" in out and "Carol's answer" not in out and "a follow-up remark" not in out
    assert sorted(t.platform.ballot) == [1, 2]

    # Votes: own answer refused, one recorded, a second for the same refused, the cap (1) refused.
    assert "can't vote for your own" in await t.type("/as alice", "/vote 1")
    assert "Vote recorded for bob's answer" in await t.type("/vote 2")
    assert "already voted" in await t.type("/vote 2")
    assert "Vote recorded for alice's answer" in await t.type("/as bob", "/vote 1")
    assert "Vote recorded for alice's answer" in await t.type("/as carol", "/vote 1")
    assert "used all 1 of your votes" in await t.type("/vote 2")
    # Answers are frozen once revealed.
    await t.type("/as dave")
    assert await t.type("late answer") == ""

    # Voting closes 12 hours after the reveal; points follow the documented defaults.
    out = await t.type("/wait 12h")
    assert "Round closed: results" in out
    assert await points(rt, "alice") == 10 + 2 * 5 + 15  # participation, 2 votes, top answer
    assert await points(rt, "bob") == 10 + 1 * 5
    assert await points(rt, "carol") == 0 and await points(rt, "dave") == 0
    assert "Voting on this round is closed" in await t.type("/as carol", "/vote 2")

    # Tuesday: alice answers again and earns a streak bonus; the leaderboard and stats show it.
    out = await t.type("/wait 4h")  # Tuesday 09:00
    assert "Question of the day" in out
    await t.type("/as alice", "Tuesday answer", "/as host", "/quiz admin reveal-now", "/quiz admin close-now")
    assert await points(rt, "alice") == 35 + 10 + 2  # participation + streak of 2
    out = await t.type("/quiz leaderboard")
    assert out.index("alice: 47 points") < out.index("bob: 15 points")
    out = await t.type("/as alice", "/quiz stats")
    assert "Answers: 2" in out and "Streak: 2 (best 2)" in out and "Rank: #1" in out

    # Each round was posted exactly once.
    async with rt.engine.tx() as conn:
        posted = (
            await conn.execute(select(func.count()).select_from(rounds).where(rounds.c.posted_at.is_not(None)))
        ).scalar_one()
    assert posted == 2

    # Forget-me erases exactly alice's data and nobody else's.
    out = await t.type("/quiz forget-me")
    button = max(t.platform.buttons)
    out = await t.type(f"/click {button}")
    assert "erased 2 answers" in out
    assert await points(rt, "alice") == 0 and await points(rt, "bob") == 15
    async with rt.engine.tx() as conn:
        left = (await conn.execute(select(func.count()).select_from(answers))).scalar_one()
    assert left == 1  # bob's


async def test_blind_mode_publishes_answers_at_reveal(db_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(db_url, bank, clock, runtimes)
    await t.type("/quiz admin setup mode=blind", "/quiz admin post-now")
    answer_button = max(n for n, b in t.platform.buttons.items() if b.custom_id.startswith("answer:"))
    # A thread message is not an answer in blind mode.
    await t.type("/as alice")
    assert await t.type("visible text") == ""
    out = await t.type(f"/click {answer_button}")
    assert "Type your answer" in out
    out = await t.type("alice's private answer")
    assert "Your answer is saved" in out
    await t.type(f"/click {answer_button}")
    assert "replaced" in await t.type("alice's second thought")
    await t.type("/as bob", f"/click {answer_button}", "bob's private answer")
    out = await t.type("/as host", "/quiz admin reveal-now")
    assert "alice answered:\n  alice's second thought" in out
    assert "bob answered" in out and "visible text" not in out
    out = await t.type("/as bob", f"/click {answer_button}", "too late")
    assert "closed" in out


async def test_practice_flow_and_ratings(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    out = await t.type("/as zoe", "/quiz practice cnn hard")
    assert "Practice question" in out and "Topic: Convolutional" in out and "Difficulty: Hard" in out
    show = max(t.platform.buttons)
    out = await t.type(f"/click {show}")
    assert "Reference answer" in out and "How did you do?" in out
    got = max(t.platform.buttons) - 3
    assert "Noted: got it" in await t.type(f"/click {got}")
    assert "There is no topic `nope`" in await t.type("/quiz practice nope")
    assert "`difficulty` is given twice" in await t.type("/quiz practice level=easy difficulty=hard")
    out = await t.type("/quiz stats")
    assert "Practice questions rated: 1" in out


async def test_a_restarted_shell_never_reuses_message_ids(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    first = await open_terminal(sqlite_url, bank, clock, runtimes)
    await first.type("/quiz admin post-now", "day one", "/quiz admin reveal-now", "/quiz admin close-now")
    second = await open_terminal(sqlite_url, bank, clock, runtimes)  # a new session on the same file
    assert "✓ answer recorded" in await second.type("/quiz admin post-now", "day two")
