"""A member's progress per topic, from what they did with each question: the rows of the stats chart."""

from __future__ import annotations

from collections.abc import Mapping

from bot.cards import TopicRow
from bot.questions.model import Bank
from bot.store.progress import QuestionOutcomes


def topic_rows(bank: Bank, per_question: Mapping[str, QuestionOutcomes]) -> tuple[TopicRow, ...]:
    """One row per topic the member met, in the bank's topic order. Questions no longer in the bank are left
    out: their topic is unknown."""
    by_topic = bank.by_topic()
    seen: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    good: dict[str, int] = {}
    for qid, o in per_question.items():
        q = bank.get(qid)
        if q is None or o.outcomes <= 0:
            continue
        seen[q.topic] = seen.get(q.topic, 0) + 1
        outcomes[q.topic] = outcomes.get(q.topic, 0) + o.outcomes
        good[q.topic] = good.get(q.topic, 0) + o.good
    return tuple(
        TopicRow(bank.topics.get(t, t), seen[t], outcomes[t], good[t], len(by_topic.get(t, [])) or None)
        for t in by_topic
        if t in seen
    )
