"""Adaptive practice through the core, on SQLite and PostgreSQL: cards from self-ratings and from closed daily
rounds, due-first practice, /quiz review, reminders sent once across processes, failures, and forget-me."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.events import Actor, ButtonPressed, MessagePosted, Place, TextCommand
from bot.ports import PlatformError
from bot.render import Reply, Response
from bot.settings import ChannelSettings
from bot.store import cards as card_store
from bot.store import channels as channel_store
from bot.store import reminders as reminder_store
from bot.store import rounds as round_store
from bot.store.tables import answers, members, reminders, srs_cards, srs_reviews
from tests.conftest import MONDAY_0800, start_runtime

PLACE = Place("shell", "local", "general", None, "general")


def actor(name: str) -> Actor:
    return Actor("shell", "local", name, name)


def text(responses: list[Response]) -> str:
    out = []
    for r in responses:
        assert isinstance(r, Reply)
        out.append(r.message.plain + "".join(f"\n{f.name}: {f.value}" for f in r.message.fields))
    return "\n".join(out)


async def say(rt: Any, who: str, line: str) -> str:
    return text(await rt.core.handle(TextCommand(actor(who), PLACE, line)))


async def press(rt: Any, who: str, custom_id: str) -> str:
    return text(await rt.core.handle(ButtonPressed(actor(who), PLACE, custom_id)))


async def rows(rt: Any, query: Any) -> list[Any]:
    async with rt.engine.read() as conn:
        return list((await conn.execute(query)).all())


async def member_id(rt: Any, who: str) -> int:
    async with rt.engine.read() as conn:
        m = await channel_store.find_member(conn, "shell", "local", who)
    assert m is not None
    return m.id


def shown_question(reply: str, bank: Any) -> str:
    """The id of the practice question in a reply (its text is unique in the bank)."""
    return next(q.id for q in bank.in_order() if q.question in reply)


async def test_self_ratings_schedule_reviews_and_refuse_a_repeat(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    first = await say(rt, "ann", "/quiz practice cnn")
    assert "Schedule: New" in first
    qid = shown_question(first, bank)
    rated = await press(rt, "ann", f"practice:rate:{qid}:got")
    assert "comes back for review in 2 days (Wed 25 Nov 08:00 UTC)" in rated
    # The same showing rated again (a double click, or a change of mind): refused, the card unchanged.
    again = await press(rt, "ann", f"practice:rate:{qid}:missed")
    assert "already rated" in again and "Wed 25 Nov 08:00 UTC" in again
    [card] = await rows(rt, select(srs_cards))
    assert (card.reviews, card.lapses, card.state) == (1, 0, 2)
    assert [(r.source, r.outcome, r.rating) for r in await rows(rt, select(srs_reviews))] == [("practice", "got", 3)]

    # Before it is due, practice brings new cnn questions; once due, the review comes first.
    clock.advance(timedelta(days=1))
    assert "Schedule: New" in await say(rt, "ann", "/quiz practice cnn")
    clock.advance(timedelta(days=1, hours=3))
    due = await say(rt, "ann", "/quiz practice")
    assert shown_question(due, bank) == qid and "Review: due since Wed 25 Nov 08:00 UTC" in due
    assert "Due now: **1**" in await say(rt, "ann", "/quiz review")
    lapse = await press(rt, "ann", f"practice:rate:{qid}:missed")
    assert "comes back for review in 1 day" in lapse
    [card] = await rows(rt, select(srs_cards))
    assert (card.reviews, card.lapses) == (2, 1)
    # Another member's schedule is their own.
    assert "Schedule: New" in await say(rt, "bob", "/quiz practice")
    assert "Nothing to review yet" in await say(rt, "bob", "/quiz review")


async def test_due_reviews_come_most_overdue_first_within_a_topic(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    cnn = [q for q in bank.in_order() if q.topic == "cnn"][:2]
    other = next(q for q in bank.in_order() if q.topic == "activations")
    await press(rt, "ann", f"practice:rate:{other.id}:missed")  # due first of all, but another topic
    clock.advance(timedelta(hours=13))
    await press(rt, "ann", f"practice:rate:{cnn[0].id}:missed")  # due a day after its rating
    clock.advance(timedelta(hours=1))
    await press(rt, "ann", f"practice:rate:{cnn[1].id}:partly")  # due an hour later than cnn[0]
    clock.advance(timedelta(days=3))
    overall = await say(rt, "ann", "/quiz practice")
    assert shown_question(overall, bank) == other.id and "(2 more due after this one)" in overall
    assert shown_question(await say(rt, "ann", "/quiz practice cnn"), bank) == cnn[0].id
    assert "Review: due since" in await say(rt, "ann", f"/quiz practice cnn {cnn[1].difficulty}")
    review = await say(rt, "ann", "/quiz review")
    assert "Due now: **3**" in review and "Convolutional" in review
    # Difficulty narrows new questions too: nothing but hard ones.
    for _ in range(3):
        fresh = await say(rt, "ann", "/quiz practice activations hard")
        assert "Review" not in fresh and "Difficulty: Hard" in fresh


async def post_and_answer(rt: Any, names: list[str]) -> Any:
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, PLACE, ChannelSettings(), rt.engine.now())
    await rt.engine.post_now(ch)
    async with rt.engine.read() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    thread = Place("shell", "local", "general", rnd.thread_id)
    for n in names:
        await rt.core.handle(MessagePosted(actor(n), thread, f"{n}-1", f"{n}'s answer"))
    return rnd


async def test_a_closed_round_reviews_every_answer_once_by_its_votes(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd = await post_and_answer(rt, ["ann", "bob", "cat", "dan"])
    await rt.engine.reveal(rnd.id, early=True)
    ids = {r.text.split("'")[0]: r.id for r in await rows(rt, select(answers.c.id, answers.c.text))}
    for voter, author in (("bob", "ann"), ("cat", "ann"), ("dan", "ann"), ("ann", "bob"), ("cat", "bob")):
        await press(rt, voter, f"vote:{rnd.id}:{ids[author]}")
    await press(rt, "ann", f"vote:{rnd.id}:{ids['cat']}")
    await rt.engine.close(rnd.id, early=True)
    got = {
        r.user_id: (r.outcome, r.rating, r.due_after - r.reviewed_at)
        for r in await rows(
            rt,
            select(members.c.user_id, srs_reviews.c.outcome, srs_reviews.c.rating, srs_reviews.c.reviewed_at,
                   srs_reviews.c.due_after).join(members, members.c.id == srs_reviews.c.member_id),
        )
    }  # fmt: skip
    assert got == {
        "ann": ("top", 4, timedelta(days=8)),  # 3 votes, the most
        "bob": ("strong", 3, timedelta(days=2)),  # 2 of 3: at least half the top's
        "cat": ("weak", 2, timedelta(days=1)),  # 1 of 3
        "dan": ("weak", 2, timedelta(days=1)),  # none, while others had votes
    }
    assert len(await rows(rt, select(srs_cards).where(srs_cards.c.question_id == rnd.question_id))) == 4
    # A retried close (after a crash between its transactions) reviews nobody again.
    async with rt.engine.tx() as conn:
        final = await __import__("bot.store.answers", fromlist=["for_round"]).for_round(conn, rnd.id)
        assert await card_store.record_round(conn, rnd.id, rnd.question_id, final, set(), rt.engine.now()) == 0
    assert len(await rows(rt, select(srs_reviews))) == 4
    # The daily question now counts as seen: it is due for review, not new, once its time comes.
    clock.advance(timedelta(days=2))
    served = await say(rt, "cat", "/quiz practice")
    assert shown_question(served, bank) == rnd.question_id and "Review: due since" in served
    stats = await say(rt, "ann", "/quiz stats")
    assert "Skills by topic" in stats and "100% over 1 review of 1 question (1 well" in stats
    # One answer is not enough to call a topic the weakest, and the suggestion says so.
    assert "Practise next" in stats and "first impression from only 1 review" in stats
    other = await say(rt, "bob", "/quiz stats ann")  # self-ratings stay private
    assert "Skills by topic" not in other and "Practise next" not in other and "%" not in other


async def test_a_round_nobody_voted_in_is_a_plain_recall(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    rnd = await post_and_answer(rt, ["ann", "bob"])
    await rt.engine.finish_now(rnd.id)
    outcomes = {(r.outcome, r.rating) for r in await rows(rt, select(srs_reviews))}
    assert outcomes == {("quiet", 3)}


async def due_card(rt: Any, who: str, bank: Any, clock: Any) -> str:
    """Give ``who`` one card that is due from tomorrow 08:00 (a "missed" rating now)."""
    qid = bank.in_order()[0].id
    await press(rt, who, f"practice:rate:{qid}:missed")
    return qid


async def test_reminders_go_out_once_a_day_across_processes(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    a, pa = await start_runtime(runtimes, db_url, bank, clock)
    b, pb = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(a, "ann", bank, clock)  # due Tuesday 08:00 UTC
    out = await say(a, "ann", "/quiz remind time=09:30 timezone=Europe/Berlin")
    assert "09:30 Europe/Berlin" in out and "Mon 23 Nov 09:30 Europe/Berlin" in out
    assert "daily at 09:30 Europe/Berlin" in await say(a, "ann", "/quiz remind")
    async with a.engine.read() as conn:
        assert await reminder_store.next_time(conn, ["shell"]) == MONDAY_0800 + timedelta(minutes=30)
        assert await reminder_store.next_time(conn, ["discord"]) is None
    assert await a.engine.next_wakeup() == MONDAY_0800 + timedelta(minutes=30)

    async def everyone() -> None:
        await asyncio.gather(a.engine.tick(), b.engine.tick(), a.engine.tick(), b.engine.tick())

    clock.advance(timedelta(minutes=45))  # Monday 09:30 Berlin: nothing is due yet, so no message
    await everyone()
    assert pa.direct + pb.direct == []
    clock.advance(timedelta(days=1))  # Tuesday 09:30 Berlin: the card is due
    await everyone()
    sent = pa.direct + pb.direct
    assert len(sent) == 1 and sent[0][0] == "ann"
    assert "1 practice question due" in sent[0][1].plain and "/quiz remind off" in sent[0][1].plain
    clock.advance(timedelta(hours=5))
    await everyone()
    assert len(pa.direct + pb.direct) == 1  # once a day
    clock.advance(timedelta(days=1))
    await everyone()
    assert len(pa.direct + pb.direct) == 2  # still due the next day: reminded again
    assert "Reminder off" in await say(a, "ann", "/quiz remind off")
    assert "already off" in await say(a, "ann", "/quiz remind off")
    clock.advance(timedelta(days=1))
    await everyone()
    assert len(pa.direct + pb.direct) == 2
    assert "Reminder set" in await say(a, "ann", "/quiz remind on")  # same time and timezone as before
    assert "09:30 Europe/Berlin" in await say(a, "ann", "/quiz remind")


async def test_a_reminder_claimed_by_a_dead_process_is_sent_after_its_lease(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(rt, "ann", bank, clock)
    clock.advance(timedelta(days=1, hours=2))  # Tuesday 10:00 UTC: the card is due
    assert "Tue 24 Nov 10:05 UTC" in await say(rt, "ann", "/quiz remind 10:05 UTC")
    clock.advance(timedelta(minutes=5))
    ann = await member_id(rt, "ann")
    async with rt.engine.tx() as conn:  # another process claims it, then dies before sending
        assert await reminder_store.claim(conn, [ann], "dead", rt.engine.now(), rt.engine.lease()) == {ann}
    await rt.engine.tick()
    assert platform.direct == []
    async with rt.engine.read() as conn:  # the scheduler wakes when the lease ends, not in a busy loop
        assert await reminder_store.next_time(conn, ["shell"]) == rt.engine.lease()
    clock.advance(timedelta(seconds=rt.config.timing.lease_seconds + 1))
    await rt.engine.tick()
    assert len(platform.direct) == 1


async def test_closed_direct_messages_turn_the_reminder_off(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(rt, "ann", bank, clock)
    await due_card(rt, "bob", bank, clock)
    await say(rt, "ann", "/quiz remind time=10:00 timezone=UTC")
    await say(rt, "bob", "/quiz remind time=10:00 timezone=UTC")
    platform.fail_next = [PlatformError("403 Cannot send messages to this user", permanent=True)]
    clock.advance(timedelta(days=1, hours=2))
    await rt.engine.tick()  # one of the two fails; the other still gets theirs, and the tick carries on
    assert len(platform.direct) == 1
    failed = "bob" if platform.direct[0][0] == "ann" else "ann"
    [row] = await rows(rt, select(reminders).where(reminders.c.member_id == await member_id(rt, failed)))
    assert row.next_at is None and row.failures == 1 and "Cannot send messages" in row.last_error
    status = await say(rt, failed, "/quiz remind")
    assert "could not send you a direct message" in status and "/quiz remind on" in status
    assert "could not send you a direct message" in await say(rt, failed, "/quiz review")
    clock.advance(timedelta(days=1))
    await rt.engine.tick()
    assert len(platform.direct) == 2  # only the other member, never a retry for the closed DMs


async def test_passing_failures_are_retried_daily_then_give_up(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(rt, "ann", bank, clock)
    await say(rt, "ann", "/quiz remind time=10:00 timezone=UTC")
    clock.advance(timedelta(days=1, hours=2))
    for day in range(3):
        platform.fail_next = [PlatformError("HTTP 503: try later")]
        await rt.engine.tick()
        await rt.engine.tick()  # the same day: not tried again
        assert platform.fail_next == [], day
        clock.advance(timedelta(days=1))
    [row] = await rows(rt, select(reminders))
    assert row.next_at is None and row.failures == 3 and "503" in row.last_error
    await rt.engine.tick()
    assert platform.direct == []


async def test_bad_reminder_input_changes_nothing(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    for line, expected in (
        ("/quiz remind time=25:00", "not a time of day"),
        ("/quiz remind time=9am", "not a time of day"),
        ("/quiz remind time=09:00 timezone=Mars/Olympus", "not an IANA timezone"),
        ("/quiz remind timezone=Europe/Berlin", "Say what time"),
        ("/quiz remind on", "Say what time"),
        ("/quiz remind off time=09:00", "`off` takes no time"),
        ("/quiz remind sometimes", "'sometimes' is not a time of day"),
    ):
        out = await say(rt, "ann", line)
        assert expected in out, (line, out)
    assert await rows(rt, select(reminders)) == []
    assert "Usage: `/quiz remind" in await say(rt, "ann", "/quiz remind time=7")
    assert "off. `/quiz remind time=" in await say(rt, "ann", "/quiz remind")
    assert "already off" in await say(rt, "ann", "/quiz remind off")
    assert await rows(rt, select(members)) == []  # asking, and mistakes, record nobody


async def test_forget_me_erases_the_schedule_history_and_reminder(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(rt, "ann", bank, clock)
    await due_card(rt, "bob", bank, clock)
    await say(rt, "ann", "/quiz remind time=07:00")
    assert "1 practice ratings" in await press(rt, "ann", "forget:confirm")
    for table in (srs_cards, srs_reviews, reminders):
        assert len(await rows(rt, select(table))) == (1 if table is not reminders else 0), table.name
    assert "Nothing to review yet" in await say(rt, "ann", "/quiz review")
    [(n,)] = await rows(rt, select(func.count()).select_from(srs_cards))
    assert n == 1  # bob's is untouched


async def test_a_reminder_missed_by_far_during_downtime_waits_for_the_next_day(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, db_url, bank, clock)
    await due_card(rt, "ann", bank, clock)
    await say(rt, "ann", "/quiz remind time=10:00 timezone=UTC")
    clock.advance(timedelta(days=1, hours=9))  # down until Tuesday 17:00: 7 hours late is too late
    await rt.engine.tick()
    assert platform.direct == []
    clock.advance(timedelta(hours=12))  # Wednesday 05:00
    await rt.engine.tick()
    assert platform.direct == []
    clock.advance(timedelta(hours=6, minutes=30))  # back up at 11:30: late, but within the grace
    await rt.engine.tick()
    assert len(platform.direct) == 1


async def test_two_processes_rating_the_same_question_at_once_count_once(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    a, _ = await start_runtime(runtimes, db_url, bank, clock)
    b, _ = await start_runtime(runtimes, db_url, bank, clock)
    qid = bank.in_order()[0].id
    await say(a, "ann", "/quiz practice")  # nothing recorded by serving
    out = await asyncio.gather(
        press(a, "ann", f"practice:rate:{qid}:got"),
        press(b, "ann", f"practice:rate:{qid}:missed"),
        press(a, "ann", f"practice:rate:{qid}:partly"),
    )
    assert sum("Noted" in o for o in out) == 1 and sum("already rated" in o for o in out) == 2
    [card] = await rows(a, select(srs_cards))
    assert card.reviews == 1
    assert len(await rows(a, select(srs_reviews))) == 1
