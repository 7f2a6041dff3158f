"""The pictures: drawn right (decodable PNGs of the promised size, with real content), robust to hostile names,
off the event loop, fed from real data on SQLite and PostgreSQL, and attached to the weekly post and /quiz stats
through the core, with the text always there."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from PIL import ImageChops, ImageDraw, ImageStat

from bot import cards
from bot.cards import BoardCard, BoardRow, TopicChart, TopicRow
from bot.events import Actor, ButtonPressed, MessagePosted, Place, TextCommand
from bot.practice.skills import skills_for
from bot.progress import topic_rows
from bot.render import Message, Reply
from bot.settings import ChannelSettings
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from tests.conftest import MONDAY_0800, start_runtime
from tests.shell_helpers import open_terminal

HOSTILE = [
    "",
    " ",
    "\u200b\u200c\u200d\u2060\ufeff",  # nothing but zero-width characters
    "a" * 5000,
    "W" * 200,
    "😀🎉👩‍👩‍👧‍👦🏳️‍🌈" * 10,
    "שלום עולם مرحبا بالعالم",
    "\u202eevil\u202c override \u2066isolate\u2069",
    "Z" + "\u0301\u0302\u0303\u0304\u0305\u0306\u0307" * 40 + "algo",
    "line\nbreak\r\ttab\x00nul\x1b[31mesc",
    "\ud800 lone surrogate \udfff",
    "<@everyone> @here <!channel> **bold** `code`",
    "漢字かなカナ한국어" * 8,
    "\U0010ffff\ue000 private use",
]


def decode(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    return img


def assert_not_blank(img: PILImage.Image) -> None:
    """Drawn on: many colours (text is anti-aliased, bars and badges are coloured) and real contrast."""
    rgb = img.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20
    assert max(ImageStat.Stat(rgb).stddev) > 10


def board(n: int, name: str = "member") -> BoardCard:
    rows = tuple(BoardRow(i + 1, f"{name} {i + 1}", 200 - 15 * i, i % 4) for i in range(n))
    return BoardCard("Weekly leaderboard", "Fri 20 Nov to Fri 27 Nov 2026 · #general", rows, "No points this week.")


def chart(n: int, title: str = "Topic") -> TopicChart:
    rows = tuple(
        TopicRow(f"{title} {i + 1}", seen=i + 1, reviews=i + 2, score=i / (i + 2), total=20, sure=i > 0, trend="steady")
        for i in range(n)
    )
    return TopicChart("Progress by topic", "ann · 10 questions seen", rows, note="% = average of your reviews.")


# -- the leaderboard card -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 10])
def test_leaderboard_card_is_a_png_of_the_card_size_with_content(n: int) -> None:
    img = decode(cards.leaderboard_png(board(n)))
    assert img.size == cards.CARD_SIZE == (1000, 560)
    assert_not_blank(img)


def test_leaderboard_card_shows_its_rows() -> None:
    """Different data draw different pictures: the rows are really on the card, not just the frame."""
    one, two = decode(cards.leaderboard_png(board(1))), decode(cards.leaderboard_png(board(2)))
    diff = ImageChops.difference(one.convert("L"), two.convert("L"))
    changed = diff.point(lambda v: 255 if v else 0).histogram()[255]
    assert changed > 2000  # a whole second row: badge, name, bar, points and streak


def test_leaderboard_card_caps_its_rows_at_ten() -> None:
    ten, many = board(10), board(25)
    assert decode(cards.leaderboard_png(many)).size == cards.CARD_SIZE
    assert cards.leaderboard_png(BoardCard(ten.title, ten.period, many.rows[:10], ten.empty)) == cards.leaderboard_png(
        many
    )


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_leaderboard_card_copes_with_hostile_names(name: str) -> None:
    card = BoardCard(name or "t", name, (BoardRow(1, name, 10**12, 10**6), BoardRow(2, name, 0, 0)), name)
    img = decode(cards.leaderboard_png(card))
    assert img.size == cards.CARD_SIZE
    assert_not_blank(img)
    assert name[:3].strip() == "" or cards.leaderboard_alt(card)


def test_empty_card_says_so_in_words() -> None:
    card = board(0)
    assert cards.leaderboard_alt(card).endswith("No points this week.")
    assert_not_blank(decode(cards.leaderboard_png(card)))


# -- the progress chart -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "height"), [(0, 262), (1, 262), (5, 486), (16, 1102), (40, 1102)])
def test_chart_size_follows_the_topics(n: int, height: int) -> None:
    img = decode(cards.topic_chart_png(chart(n)))
    assert img.size == cards.chart_size(n) == (1000, height)
    assert_not_blank(img)


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_chart_copes_with_hostile_text(name: str) -> None:
    rows = (
        TopicRow(name, 3, 4, 9.0, total=1, trend=name),
        TopicRow(name, 0, 0, 0.0, total=None, sure=False),
        TopicRow(name, 1, 1, -1.0, total=0, trend="improving"),
    )
    data = cards.topic_chart_png(TopicChart(name, name, rows, note=name, empty=name))
    assert decode(data).size == cards.chart_size(3)
    assert cards.topic_chart_alt(TopicChart(name, name, rows))


def test_chart_bars_follow_the_score() -> None:
    """The bar's fill grows with the topic's score: measured in the picture, along the bar. A first impression
    (too few reviews) is drawn in the muted colour, not the good/fair/poor ones."""

    def bar(score: float, sure: bool = True) -> list[Any]:
        img = decode(cards.topic_chart_png(TopicChart("t", "m", (TopicRow("x", 4, 4, score, 4, sure),))))
        y = cards.CHART_TOP + 23  # the middle of the first bar
        pixels = [img.getpixel((x, y)) for x in range(400, 821)]
        return [p for p in pixels if p not in (cards.TRACK, cards.STRIPE)]

    assert len(bar(0)) == 0
    assert len(bar(0.25)) < len(bar(0.5)) < len(bar(1.0))
    assert len(bar(1.0)) > 400
    assert cards.GOOD in bar(1.0) and cards.POOR in bar(0.25)
    assert cards.MUTED in bar(1.0, sure=False) and cards.GOOD not in bar(1.0, sure=False)


# -- the text helpers ---------------------------------------------------------------------------------------


def test_clean_drops_what_cannot_be_drawn_on_one_line() -> None:
    assert cards.clean("a\nb\tc\x00d\u200be\u202ef") == "a b c def"  # breaks and controls become spaces
    assert cards.clean("\u200b\u200d\ufeff") == ""
    zalgo = cards.clean("Z" + "\u0301" * 50)
    assert zalgo == "Z\u0301\u0301"
    assert len(cards.clean("x" * 10_000)) == cards.MAX_NAME_CHARS
    assert cards.clean("\ud800ok") == "ok"


def test_fit_cuts_to_the_width_with_an_ellipsis() -> None:
    d = ImageDraw.Draw(PILImage.new("RGB", (10, 10)))
    fnt = cards.font(22)
    assert cards.fit(d, "short", fnt, 400) == "short"
    cut = cards.fit(d, "a much longer name than fits " * 5, fnt, 200)
    assert cut.endswith("…") and d.textlength(cut, font=fnt) <= 200


# -- off the event loop -------------------------------------------------------------------------------------


async def test_rendering_runs_in_a_worker_thread_not_on_the_loop() -> None:
    loop = asyncio.get_running_loop()
    used: list[str] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            used.append(getattr(fn, "__name__", repr(fn)))
            return super().submit(fn, *args, **kwargs)

    executor = Recording(max_workers=2)
    loop.set_default_executor(executor)
    try:
        main = threading.get_ident()
        image = await cards.leaderboard_image(board(3))
        chart_image = await cards.topic_chart_image(chart(2))
    finally:
        executor.shutdown(wait=True)
        loop.set_default_executor(ThreadPoolExecutor())
    assert len(used) == 2  # both drawings went through the executor (asyncio.to_thread)
    assert threading.get_ident() == main
    assert decode(image.data).size == cards.CARD_SIZE and image.alt.startswith("Weekly leaderboard")
    assert decode(chart_image.data).size == cards.chart_size(2)
    assert "Image" in repr(image) and "data=" not in repr(image)  # bytes never end up in logs


# -- fed from the database ----------------------------------------------------------------------------------

PLACE = Place("shell", "local", "general", None, "general")


def actor(name: str) -> Actor:
    return Actor("shell", "local", name, name)


def in_thread(thread_id: str | None) -> Place:
    return Place("shell", "local", "general", thread_id, "general")


async def play_round(rt: Any, ch: Any, answers: dict[str, str], votes: dict[str, str]) -> str:
    """One daily round through the core: post, answers, reveal, votes (voter -> author), close."""
    await rt.engine.post_now(ch)
    async with rt.engine.read() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    for name, text in answers.items():
        await rt.core.handle(MessagePosted(actor(name), in_thread(rnd.thread_id), f"{name}-{rnd.id}", text))
    await rt.engine.reveal(rnd.id, early=True)
    async with rt.engine.read() as conn:
        from bot.store import answers as answer_store

        by_author = {a.display_name: a.id for a in await answer_store.for_round(conn, rnd.id)}
    for voter, author in votes.items():
        press = ButtonPressed(actor(voter), in_thread(rnd.thread_id), f"vote:{rnd.id}:{by_author[author]}")
        await rt.core.handle(press)
    await rt.engine.close(rnd.id, early=True)
    return rnd.question_id or ""


async def setup(rt: Any, **settings: Any) -> Any:
    async with rt.engine.tx() as conn:
        ch, _ = await channel_store.save(conn, PLACE, ChannelSettings(**settings), rt.engine.now())
    return ch


async def rate(rt: Any, name: str, qid: str, rating: str) -> None:
    await rt.core.handle(ButtonPressed(actor(name), PLACE, f"practice:rate:{qid}:{rating}"))


def text_topics(msg: Message) -> list[tuple[str, int]]:
    """(title, percent) per line of the stats reply's skills field, in order."""
    field = next(f for f in msg.fields if f.name.startswith("Skills by topic"))
    return [
        (m.group(1), int(m.group(2)))
        for line in field.value.splitlines()
        if (m := re.match(r"- (.+?): (\d+)% over ", line))
    ]


def chart_topics(alt: str) -> list[tuple[str, int]]:
    """(title, percent) per topic of the chart's alt text, in order (the alt text is drawn from the same rows)."""
    body = alt.split(" seen: ", 1)[1]
    return [(m.group(1), int(m.group(2))) for part in body.split("; ") if (m := re.match(r"(.+?): (\d+)% over ", part))]


async def test_stats_text_chart_and_suggestion_agree_on_real_data(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    """A daily round and practice ratings through the core; /quiz stats' text, its chart and Practise next then
    show the same topics in the same order with the same scores, and the chart is the right size."""
    rt, _ = await start_runtime(runtimes, db_url, bank, clock)
    ch = await setup(rt)
    daily = await play_round(rt, ch, {"ann": "a1", "ben": "b1"}, {"ben": "ann"})  # ann's answer is the top one
    daily_topic = bank.get(daily).topic  # type: ignore[union-attr]
    usable = {t: [q.id for q in qs if not q.legacy] for t, qs in bank.by_topic().items() if t != daily_topic}
    strong, middling, thin = [t for t, qs in usable.items() if len(qs) >= 3][:3]
    for qid, rating in zip(usable[strong], ["got", "got", "partly"], strict=False):
        await rate(rt, "ann", qid, rating)  # 2.5 of 3: 83%
    for qid, rating in zip(usable[middling], ["missed", "partly", "got"], strict=False):
        await rate(rt, "ann", qid, rating)  # 1.5 of 3: 50%
    await rate(rt, "ann", usable[thin][0], "missed")  # 0%, but from one review
    msg = await stats(rt, "ann")
    title = bank.topics.get
    expected = [
        (title(middling), 50),
        (title(strong), 83),
        # Under three reviews: after the topics that can be judged, however low.
        (title(thin), 0),
        (title(daily_topic), 100),
    ]
    assert text_topics(msg) == expected
    assert msg.image is not None
    assert chart_topics(msg.image.alt) == expected
    assert decode(msg.image.data).size == cards.chart_size(4) == (1000, 430)
    async with rt.engine.read() as conn:
        ann = await channel_store.find_member(conn, "shell", "local", "ann")
        assert ann is not None
        skills = await skills_for(conn, ann.id, bank, rt.engine.now())
    assert [(s.title, s.percent) for s in skills] == expected
    assert [(r.title, r.percent, r.sure) for r in topic_rows(skills)] == [
        (t, p, i < 2) for i, (t, p) in enumerate(expected)
    ]
    fields = {f.name: f.value for f in msg.fields}
    assert fields["Practise next"].startswith(f"{title(middling)} (your lowest score, 50% over 3 reviews)")
    assert "too few reviews to judge" in fields["Skills by topic (weakest first)"].splitlines()[2]
    assert "How the % is counted" in fields
    # Someone else asking sees none of ann's private ratings: no skills, no suggestion, no chart.
    other = await stats(rt, "ben", "stats ann")
    private = {"Skills by topic (weakest first)", "How the % is counted", "Practise next"}
    assert other.image is None and "Answers" in {f.name for f in other.fields}
    assert not private & {f.name for f in other.fields}
    assert "%" not in other.plain + "".join(f.value for f in other.fields)


# -- through the core: the weekly post and /quiz stats ------------------------------------------------------


def weekly(p: Any) -> list[Message]:
    return [m for _, m, _ in p.sent if m.title and m.title.startswith("Leaderboard: the last 7 days")]


async def test_weekly_post_carries_the_card_and_keeps_its_text(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, p = await start_runtime(runtimes, db_url, bank, clock)
    ch = await setup(rt, leaderboard_weekday="fri", leaderboard_time="17:00", weekdays=["sat"])
    await play_round(rt, ch, {"ann": "a", "ben": "b"}, {"ben": "ann"})
    clock.advance(timedelta(days=1))
    await play_round(rt, ch, {"ann": "a", "cat": "c"}, {})
    clock.set(MONDAY_0800 + timedelta(days=4, hours=9, minutes=5))  # Friday 17:05
    await rt.engine.tick()
    [post] = weekly(p)
    assert "ann" in post.plain and "ben" in post.plain  # the text fallback is whole
    assert post.image is not None
    img = decode(post.image.data)
    assert img.size == cards.CARD_SIZE
    assert_not_blank(img)
    assert post.image.filename.endswith(".png")
    # ann: 10 + 5 (a vote) + 15 (top answer), then 10 + 2 (streak bonus); she answered both rounds the
    # channel held, a streak of 2. ben missed the last one; cat answered only the last one.
    assert "ann: 42 points" in post.plain
    assert "1. ann, 42 points, streak 2; 2. ben, 10 points; 3. cat, 10 points, streak 1" in post.image.alt


async def test_weekly_post_without_points_is_text_only(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, p = await start_runtime(runtimes, db_url, bank, clock)
    await setup(rt, leaderboard_weekday="fri", leaderboard_time="17:00", weekdays=["sat"])
    clock.set(MONDAY_0800 + timedelta(days=4, hours=9, minutes=5))
    await rt.engine.tick()
    [empty] = weekly(p)
    assert empty.image is None and "No points" in empty.plain


async def test_images_off_in_the_config_means_text_only(sqlite_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    off, po = await start_runtime(runtimes, sqlite_url, bank, clock, images=False)
    ch = await setup(off, leaderboard_weekday="fri", leaderboard_time="17:00", weekdays=["sat"])
    await play_round(off, ch, {"ann": "a"}, {})
    assert (await stats(off, "ann")).image is None
    clock.set(MONDAY_0800 + timedelta(days=4, hours=9, minutes=5))
    await off.engine.tick()
    [text_only] = weekly(po)
    assert text_only.image is None and "ann" in text_only.plain


async def test_a_card_that_cannot_be_drawn_never_costs_the_post(sqlite_url, bank, clock, runtimes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rt, p = await start_runtime(runtimes, sqlite_url, bank, clock)
    ch = await setup(rt, leaderboard_weekday="fri", leaderboard_time="17:00", weekdays=["sat"])
    await play_round(rt, ch, {"ann": "a"}, {})

    def broken(card: BoardCard) -> bytes:  # fault injection: the drawing library fails
        raise OSError("no space left for the picture")

    monkeypatch.setattr(cards, "leaderboard_png", broken)
    clock.set(MONDAY_0800 + timedelta(days=4, hours=9, minutes=5))
    await rt.engine.tick()
    [post] = weekly(p)
    assert post.image is None and "ann" in post.plain


async def stats(rt: Any, who: str, text: str = "stats") -> Message:
    [reply] = await rt.core.handle(TextCommand(actor(who), PLACE, text))
    assert isinstance(reply, Reply)
    return reply.message


async def test_stats_attaches_the_chart_when_there_is_data(sqlite_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, _ = await start_runtime(runtimes, sqlite_url, bank, clock)
    ch = await setup(rt)
    await play_round(rt, ch, {"ann": "a", "ben": "b"}, {"ben": "ann"})
    msg = await stats(rt, "ann")
    assert "Stats for ann" in msg.plain and msg.image is not None
    img = decode(msg.image.data)
    assert img.size == cards.chart_size(1)
    assert_not_blank(img)
    assert "100% over 1 review (too few to judge)" in msg.image.alt
    assert (await stats(rt, "ann", "stats chart=no")).image is None
    assert (await stats(rt, "nobody")).image is None  # a stranger: zeros, nothing to draw
    # Someone else's stats: no chart, since it draws on their private practice ratings.
    assert (await stats(rt, "ben", "stats ann")).image is None
    bad = await stats(rt, "ann", "stats chart=maybe")
    assert bad.image is None and "chart" in bad.plain


async def test_shell_saves_the_picture_and_prints_where(sqlite_url, bank, clock, runtimes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term = await open_terminal(sqlite_url, bank, clock, runtimes)
    term.platform.image_dir = tmp_path / "pictures"
    await term.type("/quiz admin post-now", "my answer", "/as ann", "her answer", "/as host")
    await term.type("/quiz admin reveal-now", "/quiz admin close-now")
    out = await term.type("/quiz stats")
    assert "Stats for host" in out and "(picture: " in out
    path = Path(out.split("(picture: ", 1)[1].split(")", 1)[0])
    assert path.parent == tmp_path / "pictures"
    assert decode(await asyncio.to_thread(path.read_bytes)).size == cards.chart_size(1)
    assert "(picture" not in await term.type("/quiz stats chart=no")


def test_shell_puts_pictures_next_to_a_sqlite_database(tmp_path: Path) -> None:
    from adapters.shell.platform import image_dir_for

    assert image_dir_for(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}") == tmp_path / "interview-bot-images"
    assert image_dir_for("postgresql+asyncpg://u@h/db") is None
    assert image_dir_for("sqlite+aiosqlite:///:memory:") is None
