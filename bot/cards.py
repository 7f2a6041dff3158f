"""Pictures: the weekly leaderboard card and a member's progress chart per topic, as PNG bytes.

Drawn with Pillow and the font Pillow ships (``ImageFont.load_default(size=...)``), so no system fonts are
needed anywhere the bot runs. The inputs are plain data computed elsewhere (the ledger for the card, the
per-topic skills of bot.practice.skills for the chart): this module only draws them.

Names are member text drawn literally: nothing in a picture can ping anyone. They are cleaned of control and
invisible characters and clipped to their column; characters the font lacks come out as boxes, never as an
error. Rendering is CPU work, so the async helpers run it in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from bot.render import Image

# A dark card reads well on both light and dark chat themes.
BG = (24, 28, 40)
STRIPE = (31, 36, 52)
TRACK = (47, 53, 72)
TEXT = (236, 239, 244)
MUTED = (148, 158, 180)
ACCENT = (99, 112, 245)
GOLD = (242, 194, 48)
SILVER = (196, 203, 212)
BRONZE = (205, 127, 50)
FLAME = (255, 122, 69)
GOOD = (67, 181, 129)
FAIR = (240, 178, 50)
POOR = (232, 93, 93)
MEDALS = {1: GOLD, 2: SILVER, 3: BRONZE}

CARD_SIZE = (1000, 560)
CHART_WIDTH = 1000
MAX_BOARD_ROWS = 10
MAX_TOPIC_ROWS = 16
MAX_NAME_CHARS = 80  # before measuring: a 200-character name is clipped to its column anyway

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
# FreeType faces are not meant to be shared between threads, and drawing holds the GIL anyway: one drawing at a
# time. PNG encoding (about half the time) releases the GIL, so it runs outside the lock, on several cores.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class BoardRow:
    rank: int
    name: str
    points: int
    streak: int = 0


@dataclass(frozen=True)
class BoardCard:
    title: str
    period: str
    rows: tuple[BoardRow, ...]
    empty: str = "No points yet."


@dataclass(frozen=True)
class TopicRow:
    """One topic of one member: its score (0..1) over ``reviews`` reviews of ``seen`` distinct questions of
    ``total``. ``sure`` is False for a first impression (too few reviews), drawn in a muted colour; ``trend`` is
    a word or two (empty for none). The caller computes all of it (bot.practice.skills); the chart only draws."""

    title: str
    seen: int
    reviews: int
    score: float
    total: int | None = None
    sure: bool = True
    trend: str = ""

    @property
    def share(self) -> float:
        return min(max(self.score, 0.0), 1.0)

    @property
    def percent(self) -> int:
        return round(self.share * 100)


@dataclass(frozen=True)
class TopicChart:
    title: str
    member: str
    rows: tuple[TopicRow, ...]
    note: str = ""
    empty: str = "Nothing to show yet."


# -- text ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def clean(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """Member text made safe to draw on one line: control, format (zero-width, bidi overrides) and surrogate
    characters dropped, line breaks turned into spaces, combining marks capped at two per letter (so stacked
    "zalgo" text cannot climb out of its row), whitespace collapsed."""
    out: list[str] = []
    marks = 0
    for ch in text[: limit * 4]:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp") or ch.isspace():
            out.append(" ")
            marks = 0
        elif cat in ("Cf", "Cs", "Cn"):
            continue
        elif cat in ("Mn", "Me"):
            marks += 1
            if marks <= 2 and out:
                out.append(ch)
        else:
            out.append(ch)
            marks = 0
    return " ".join("".join(out).split())[:limit]


def fit(draw: ImageDraw.ImageDraw, text: str, fnt: Font, width: float) -> str:
    """The longest prefix of ``text`` that fits in ``width`` pixels, with an ellipsis if it was cut."""
    if draw.textlength(text, font=fnt) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on the cut: names are short, but measuring is the costly part
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid].rstrip() + "…", font=fnt) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def wrap(draw: ImageDraw.ImageDraw, text: str, fnt: Font, width: float, lines: int = 3) -> list[str]:
    """``text`` broken into at most ``lines`` lines of ``width`` pixels. Measuring is the costly part (one call
    per word, each over the whole line so far), and the texts wrapped are our own fixed notes: remembered."""
    return list(_wrapped(text, fnt, width, lines))


@lru_cache(maxsize=64)
def _wrapped(text: str, fnt: Font, width: float, lines: int) -> tuple[str, ...]:
    draw = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))  # measuring needs no real canvas
    out: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=fnt) <= width or not current:
            current = candidate
        else:
            out.append(current)
            current = word
    if current:
        out.append(current)
    if len(out) > lines:
        out = [*out[: lines - 1], " ".join(out[lines - 1 :])]
    return tuple(fit(draw, line, fnt, width) for line in out)


def _png(img: PILImage.Image) -> bytes:
    buf = io.BytesIO()
    # zlib's fastest level: encoding was over half of a card's cost at the default (6), for a file only ~15%
    # smaller, and the weekly sweep draws one card per channel.
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _bold(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fnt: Font, fill: tuple[int, ...], anchor: str = "la"
) -> None:
    # One font ships with Pillow; a hairline stroke in the same colour gives titles their weight.
    draw.text(xy, text, font=fnt, fill=fill, stroke_width=1, stroke_fill=fill, anchor=anchor)


def _points(n: int) -> str:
    return f"{n:,}"


# -- the weekly leaderboard card ----------------------------------------------------------------------------


def leaderboard_png(card: BoardCard) -> bytes:
    with _LOCK:
        img = _leaderboard(card)
    return _png(img)


def _leaderboard(card: BoardCard) -> PILImage.Image:
    w, h = CARD_SIZE
    img = PILImage.new("RGB", CARD_SIZE, BG)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, 6), fill=ACCENT)
    _bold(d, (48, 30), fit(d, clean(card.title, 120), font(40), w - 96), font(40), TEXT)
    d.text((48, 84), fit(d, clean(card.period, 160), font(22), w - 96), font=font(22), fill=MUTED)
    rows = card.rows[:MAX_BOARD_ROWS]
    top, row_h = 150, 38
    if not rows:
        lines = wrap(d, clean(card.empty, 300), font(26), w - 200)
        y = top + (row_h * MAX_BOARD_ROWS - 36 * len(lines)) // 2
        for line in lines:
            d.text((w // 2, y), line, font=font(26), fill=MUTED, anchor="ma")
            y += 36
    else:
        small = font(16)
        d.text((880, top - 26), "points", font=small, fill=MUTED, anchor="ra")
        d.text((905, top - 26), "streak", font=small, fill=MUTED)
        best = max((r.points for r in rows), default=0) or 1
        name_font, num_font = font(22), font(18)
        for i, r in enumerate(rows):
            y = top + i * row_h
            mid = y + row_h // 2
            if i % 2 == 0:
                d.rounded_rectangle((32, y + 2, w - 32, y + row_h - 2), radius=8, fill=STRIPE)
            medal = MEDALS.get(r.rank)
            box = (54, mid - 14, 82, mid + 14)
            if medal is not None:
                d.ellipse(box, fill=medal)
                d.text((68, mid), str(r.rank), font=num_font, fill=BG, anchor="mm")
            else:
                d.ellipse(box, outline=MUTED, width=2)
                d.text((68, mid), str(r.rank), font=font(16 if r.rank < 100 else 12), fill=TEXT, anchor="mm")
            d.text((100, mid), fit(d, clean(r.name), name_font, 460), font=name_font, fill=TEXT, anchor="lm")
            # A bar against the leader's total: how far apart the places are, at a glance.
            length = max(6, round(210 * max(r.points, 0) / best))
            d.rounded_rectangle((580, mid - 5, 790, mid + 5), radius=5, fill=TRACK)
            d.rounded_rectangle((580, mid - 5, 580 + length, mid + 5), radius=5, fill=medal or ACCENT)
            _bold(d, (880, mid), _points(r.points), num_font, TEXT, "rm")
            _flame(d, 912, mid, active=r.streak > 0)
            d.text((928, mid), str(r.streak), font=num_font, fill=TEXT if r.streak else MUTED, anchor="lm")
    d.text((w - 32, h - 14), "interview-bot", font=font(14), fill=MUTED, anchor="rd")
    return img


def _flame(d: ImageDraw.ImageDraw, x: int, y: int, *, active: bool) -> None:
    """A small flame drawn from shapes: the font has no emoji."""
    colour = FLAME if active else TRACK
    d.polygon([(x, y - 11), (x + 7, y + 1), (x - 7, y + 1)], fill=colour)
    d.ellipse((x - 7, y - 5, x + 7, y + 9), fill=colour)
    if active:
        d.ellipse((x - 3, y + 1, x + 3, y + 7), fill=GOLD)


def leaderboard_alt(card: BoardCard) -> str:
    if not card.rows:
        return f"{card.title}, {card.period}: {card.empty}"
    places = "; ".join(
        f"{r.rank}. {clean(r.name, 40)}, {r.points} points" + (f", streak {r.streak}" if r.streak else "")
        for r in card.rows[:MAX_BOARD_ROWS]
    )
    return f"{card.title}, {card.period}: {places}"


async def leaderboard_image(card: BoardCard, filename: str = "leaderboard.png") -> Image:
    data = await asyncio.to_thread(leaderboard_png, card)
    return Image(data, filename, leaderboard_alt(card)[:1000], card.title)


# -- the progress chart -------------------------------------------------------------------------------------

CHART_TOP = 150
CHART_ROW = 56
CHART_FOOT = 56


def chart_size(rows: int) -> tuple[int, int]:
    """The chart grows with the number of topics: one row each (at least one row's room for a message)."""
    n = max(1, min(rows, MAX_TOPIC_ROWS))
    return CHART_WIDTH, CHART_TOP + CHART_ROW * n + CHART_FOOT


def _share_colour(share: float) -> tuple[int, int, int]:
    return GOOD if share >= 0.7 else FAIR if share >= 0.4 else POOR


@lru_cache(maxsize=256)  # the same member asking twice before anything changed gets the same picture
def topic_chart_png(chart: TopicChart) -> bytes:
    with _LOCK:
        img = _topic_chart(chart)
    return _png(img)


def _topic_chart(chart: TopicChart) -> PILImage.Image:
    size = chart_size(len(chart.rows))
    w, h = size
    img = PILImage.new("RGB", size, BG)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, 6), fill=ACCENT)
    _bold(d, (48, 30), fit(d, clean(chart.title, 120), font(36), w - 96), font(36), TEXT)
    d.text((48, 80), fit(d, clean(chart.member), font(22), w - 96), font=font(22), fill=MUTED)
    rows = chart.rows[:MAX_TOPIC_ROWS]
    if not rows:
        d.text((w // 2, CHART_TOP + CHART_ROW // 2), fit(d, clean(chart.empty, 200), font(24), w - 96),
               font=font(24), fill=MUTED, anchor="mm")  # fmt: skip
    else:
        d.text((400, CHART_TOP - 28), "0%", font=font(14), fill=MUTED, anchor="la")
        d.text((820, CHART_TOP - 28), "100%", font=font(14), fill=MUTED, anchor="ra")
        title_font, pct_font, small = font(20), font(22), font(14)
        for i, r in enumerate(rows):
            y = CHART_TOP + i * CHART_ROW
            if i % 2 == 0:
                d.rounded_rectangle((32, y + 2, w - 32, y + CHART_ROW - 2), radius=8, fill=STRIPE)
            d.text((48, y + 10), fit(d, clean(r.title, 120), title_font, 330), font=title_font, fill=TEXT)
            seen = f"{r.seen} of {r.total} seen" if r.total else f"{r.seen} seen"
            detail = f"{seen} · {r.reviews} review{'s' if r.reviews != 1 else ''}"
            if not r.sure:
                detail += " · too few to judge"
            d.text((48, y + 34), fit(d, detail, small, 330), font=small, fill=MUTED)
            # The bar: the topic's score. The hairline under it: how much of the topic was seen.
            share = r.share
            d.rounded_rectangle((400, y + 14, 820, y + 32), radius=9, fill=TRACK)
            if share > 0:
                d.rounded_rectangle((400, y + 14, 400 + max(18, round(420 * share)), y + 32), radius=9,
                                    fill=_share_colour(share) if r.sure else MUTED)  # fmt: skip
            if r.total:
                covered = min(r.seen / r.total, 1.0)
                d.rectangle((400, y + 38, 820, y + 40), fill=TRACK)
                d.rectangle((400, y + 38, 400 + round(420 * covered), y + 40), fill=MUTED)
            _bold(d, (848, y + 10), f"{r.percent}%", pct_font, TEXT)
            if r.trend:
                d.text((848, y + 36), fit(d, clean(r.trend, 40), small, w - 32 - 848), font=small, fill=MUTED)
        if len(chart.rows) > MAX_TOPIC_ROWS:
            d.text((w - 32, CHART_TOP - 28), f"+{len(chart.rows) - MAX_TOPIC_ROWS} more topics", font=small,
                   fill=MUTED, anchor="ra")  # fmt: skip
    for j, line in enumerate(wrap(d, clean(chart.note, 400), font(14), w - 96, lines=2)):
        d.text((48, h - CHART_FOOT + 12 + 18 * j), line, font=font(14), fill=MUTED)
    return img


def topic_chart_alt(chart: TopicChart) -> str:
    if not chart.rows:
        return f"{chart.title}, {clean(chart.member, 40)}: {chart.empty}"
    topics = "; ".join(
        f"{clean(r.title, 60)}: {r.percent}% over {r.reviews} review{'s' if r.reviews != 1 else ''}"
        + ("" if r.sure else " (too few to judge)")
        + (f", {r.trend}" if r.trend else "")
        for r in chart.rows
    )
    return f"{chart.title}, {clean(chart.member, 40)}: {topics}"


async def topic_chart_image(chart: TopicChart, filename: str = "progress.png") -> Image:
    data = await asyncio.to_thread(topic_chart_png, chart)
    return Image(data, filename, topic_chart_alt(chart)[:1000], chart.title)
