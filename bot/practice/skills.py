"""Per-topic skills from a member's review history: the one place that says how well a topic went.

``/quiz stats`` text, its chart, the trend and *Practise next* all read the rows computed here, so they cannot
disagree.

How well one review went is the judgement that scheduled it (its FSRS rating), turned into points: went well 1
(Got it; a daily answer with at least half the top answer's votes, or in a round where nobody got a vote),
partly ½ (Partly; a daily answer with fewer votes), missed 0 (Missed it). Why this definition:

- it is the signal the schedule already acts on, so a topic the stats call weak is one whose questions come back
  soon, and a member's own "Got it" and their peers' votes count the same way;
- a topic's score is the plain average over all its reviews, so a member can check it from the three counts we
  show next to it (well + ½ partly, over the reviews);
- a daily answer is never "missed" (see ``srs.daily_outcome``): votes compare answers with each other.

The trend says where the topic is heading, separately from the score, so a member who improved sees it without
their early misses being hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fsrs import Rating
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.questions.model import Bank
from bot.store import cards as card_store
from bot.store.cards import Review

# How each FSRS rating reads to a member, and what it is worth.
WENT: dict[int, str] = {Rating.Again: "missed", Rating.Hard: "partly", Rating.Good: "well", Rating.Easy: "well"}
POINTS: dict[str, float] = {"well": 1.0, "partly": 0.5, "missed": 0.0}

# The definition, as the stats message and the chart say it to a member (one line).
SCORE_MEANING = (
    "% = average of your reviews in the topic: Got it, or a daily answer with at least half the top answer's "
    "votes, counts 1; Partly, or fewer votes, half; Missed it 0."
)

# Below this many reviews a topic's score is a first impression: one answer says little about a whole topic. Such
# topics are shown, flagged, and sorted after the ones we can judge, so "weakest" is never decided by one answer.
SURE_REVIEWS = 3

# The trend compares the latest reviews with as many just before them: equal windows, so both halves weigh the
# same. Each window holds min(TREND_WINDOW, reviews // 2) reviews and needs at least TREND_MIN_WINDOW, so a topic
# needs 2 * TREND_MIN_WINDOW reviews before it has a trend at all. The averages must differ by TREND_STEP: with
# three-review windows a single "partly" in place of a "got it" moves an average by 1/6 (not enough), one miss by
# 1/3 (enough); with five-review windows it takes two half-steps or one miss. One review never flips the trend.
TREND_WINDOW = 5
TREND_MIN_WINDOW = 3
TREND_STEP = 0.2
TREND_MIN_REVIEWS = 2 * TREND_MIN_WINDOW


@dataclass(frozen=True)
class TopicSkill:
    topic: str
    title: str
    seen: int  # distinct questions reviewed
    total: int  # questions in the topic in the bank today
    reviews: int
    well: int
    partly: int
    missed: int
    recent: float | None  # average of the latest window, when the topic has enough reviews for a trend
    earlier: float | None  # average of the window before it
    due: int  # cards due now

    @property
    def score(self) -> float:
        """How well the topic went, 0..1: the average of its reviews' points."""
        return (self.well + 0.5 * self.partly) / self.reviews if self.reviews else 0.0

    @property
    def percent(self) -> int:
        """The score as everything shows it: text, chart and its alt text round the same way."""
        return round(self.score * 100)

    @property
    def sure(self) -> bool:
        """Enough reviews to judge the topic by its score."""
        return self.reviews >= SURE_REVIEWS

    @property
    def trend(self) -> str:
        """up, down, steady, or new (too few reviews to tell)."""
        if self.recent is None or self.earlier is None:
            return "new"
        if self.recent - self.earlier >= TREND_STEP - 1e-9:
            return "up"
        if self.earlier - self.recent >= TREND_STEP - 1e-9:
            return "down"
        return "steady"


def order_key(s: TopicSkill) -> tuple[bool, float, int, str]:
    """Weakest first: topics we can judge before first impressions, then the lowest score, then the most due."""
    return (not s.sure, s.score, -s.due, s.title)


def trend_windows(points: Sequence[float]) -> tuple[float | None, float | None]:
    """(recent, earlier): the averages of the latest window and the one just before it, or (None, None) when
    there are too few reviews for two windows of TREND_MIN_WINDOW."""
    k = min(TREND_WINDOW, len(points) // 2)
    if k < TREND_MIN_WINDOW:
        return None, None
    return _mean(points[-k:]), _mean(points[-2 * k : -k])


def topic_skills(
    history: Sequence[Review], bank: Bank, due_by_question: Mapping[str, datetime], now: datetime
) -> list[TopicSkill]:
    """One row per topic the member has reviewed, weakest first (``order_key``). Questions no longer in the bank
    are left out: their topic is unknown."""
    by_topic: dict[str, list[Review]] = {}
    for r in history:
        q = bank.get(r.question_id)
        if q is not None:
            by_topic.setdefault(q.topic, []).append(r)
    due: dict[str, int] = {}
    for qid, when in due_by_question.items():
        q = bank.get(qid)
        if q is not None and when <= now:
            due[q.topic] = due.get(q.topic, 0) + 1
    sizes = bank.by_topic()
    rows = []
    for topic, reviews in by_topic.items():
        reviews = sorted(reviews, key=lambda r: r.reviewed_at)  # stable: the log's order breaks ties
        went = [WENT[r.rating] for r in reviews]
        recent, earlier = trend_windows([POINTS[w] for w in went])
        rows.append(
            TopicSkill(
                topic=topic,
                title=bank.topics.get(topic, topic),
                seen=len({r.question_id for r in reviews}),
                total=len(sizes.get(topic, [])),
                reviews=len(reviews),
                well=went.count("well"),
                partly=went.count("partly"),
                missed=went.count("missed"),
                recent=recent,
                earlier=earlier,
                due=due.get(topic, 0),
            )
        )
    return sorted(rows, key=order_key)


def weakest(rows: Sequence[TopicSkill]) -> TopicSkill | None:
    """The topic to practise next: the first row in ``order_key`` order. It is a first impression (``sure`` is
    False) only when no topic has enough reviews yet, and callers say so. None until something was reviewed."""
    return min(rows, key=order_key, default=None)


async def skills_for(conn: AsyncConnection, member_id: int, bank: Bank, now: datetime) -> list[TopicSkill]:
    """The member's per-topic rows, weakest first: the data behind ``/quiz stats`` and its chart."""
    history = await card_store.reviews(conn, member_id)
    if not history:
        return []
    return topic_skills(history, bank, await card_store.schedule(conn, member_id), now)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
