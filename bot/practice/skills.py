"""Per-topic skills from a member's review history: what ``/quiz stats`` shows and a chart can be drawn from.

Every review (a practice self-rating, or a daily answer judged at the round's close) has a score: missed 0,
partly or few votes 0.5, got it, well voted or top answer 1 (``srs.SCORE`` by FSRS rating). A topic's level is
the mean score of its reviews; its trend compares the most recent reviews with the ones before them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.practice.srs import SCORE
from bot.questions.model import Bank
from bot.store import cards as card_store
from bot.store.cards import Review

# A trend needs this many reviews in the topic; it compares the latest (at most RECENT) with all before them.
TREND_MIN_REVIEWS = 4
RECENT = 5
# A change in mean score (0..1) smaller than this is "steady".
TREND_STEP = 0.1


@dataclass(frozen=True)
class TopicSkill:
    topic: str
    title: str
    seen: int  # distinct questions reviewed
    reviews: int
    got: int  # practice self-ratings
    partly: int
    missed: int
    top: int  # daily answers: the round's top answer
    strong: int  # at least half the top answer's votes
    quiet: int  # a round where nobody got a vote
    weak: int  # fewer than half the top answer's votes
    score: float  # mean review score, 0..1
    recent: float | None  # mean of the latest reviews, when there are enough for a trend
    earlier: float | None  # mean of the reviews before those
    due: int  # cards due now

    @property
    def trend(self) -> str:
        """up, down, steady, or new (too few reviews to tell)."""
        if self.recent is None or self.earlier is None:
            return "new"
        if self.recent - self.earlier >= TREND_STEP:
            return "up"
        if self.earlier - self.recent >= TREND_STEP:
            return "down"
        return "steady"

    @property
    def level(self) -> float:
        """How well the topic is going now: the recent mean when there is a trend, else the overall mean."""
        return self.recent if self.recent is not None else self.score


def topic_skills(
    history: Sequence[Review], bank: Bank, due_by_question: Mapping[str, datetime], now: datetime
) -> list[TopicSkill]:
    """One row per topic the member has reviewed, weakest first. Questions no longer in the bank are left out."""
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
    rows = []
    for topic, reviews in by_topic.items():
        reviews = sorted(reviews, key=lambda r: r.reviewed_at)
        scores = [SCORE[r.rating] for r in reviews]
        recent = earlier = None
        if len(scores) >= TREND_MIN_REVIEWS:
            k = min(RECENT, len(scores) // 2)
            recent, earlier = _mean(scores[-k:]), _mean(scores[:-k])
        outcomes = [r.outcome for r in reviews]
        rows.append(
            TopicSkill(
                topic=topic,
                title=bank.topics.get(topic, topic),
                seen=len({r.question_id for r in reviews}),
                reviews=len(reviews),
                got=outcomes.count("got"),
                partly=outcomes.count("partly"),
                missed=outcomes.count("missed"),
                top=outcomes.count("top"),
                strong=outcomes.count("strong"),
                quiet=outcomes.count("quiet"),
                weak=outcomes.count("weak"),
                score=_mean(scores),
                recent=recent,
                earlier=earlier,
                due=due.get(topic, 0),
            )
        )
    return sorted(rows, key=lambda s: (s.level, -s.due, s.title))


def weakest(rows: Sequence[TopicSkill]) -> TopicSkill | None:
    """The topic to practise next: the lowest level, then the most due. None until something was reviewed."""
    return min(rows, key=lambda s: (s.level, -s.due, s.title), default=None)


async def skills_for(conn: AsyncConnection, member_id: int, bank: Bank, now: datetime) -> list[TopicSkill]:
    """The member's per-topic rows, weakest first: the data behind ``/quiz stats`` (and any chart of it)."""
    history = await card_store.reviews(conn, member_id)
    if not history:
        return []
    return topic_skills(history, bank, await card_store.schedule(conn, member_id), now)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
