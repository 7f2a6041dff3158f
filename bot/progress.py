"""A member's progress per topic as chart rows: the same rows, order and scores as the stats text."""

from __future__ import annotations

from collections.abc import Sequence

from bot.cards import TopicRow
from bot.practice.skills import TopicSkill

# The chart has no arrows in its font: the trend in words (the text uses the same words after an arrow).
TREND_WORDS = {"up": "improving", "down": "slipping", "steady": "steady", "new": ""}


def topic_rows(skills: Sequence[TopicSkill]) -> tuple[TopicRow, ...]:
    """One chart row per topic, in the order given (weakest first, as ``skills_for`` returns them)."""
    return tuple(
        TopicRow(s.title, s.seen, s.reviews, s.score, s.total or None, s.sure, TREND_WORDS[s.trend]) for s in skills
    )
