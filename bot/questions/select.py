"""Choosing the next daily question for a channel."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.questions.model import Bank, Question
from bot.settings import ChannelSettings


@dataclass(frozen=True)
class Usage:
    times: int
    last_round: int  # higher = more recent


def eligible(bank: Bank, settings: ChannelSettings) -> list[Question]:
    """The channel's pool: its topics (all when none chosen), legacy questions only if the channel opted in."""
    topics = set(settings.topics)
    return [
        q for q in bank.in_order() if (not topics or q.topic in topics) and (settings.include_legacy or not q.legacy)
    ]


def choose(
    pool: Iterable[Question],
    difficulties: Iterable[str],
    usage: Mapping[str, Usage],
    rng: random.Random,
) -> Question | None:
    """Least-used questions first, so nothing repeats until the whole pool has been asked; among equals, random.

    The day's difficulties narrow the choice when they can; when none of the pool has them the day's plan is
    ignored rather than posting nothing.
    """
    pool = list(pool)
    if not pool:
        return None
    wanted = set(difficulties)
    preferred = [q for q in pool if q.difficulty in wanted] or pool
    if not usage:
        return rng.choice(preferred)  # a new channel: everything is fresh
    least = min(usage.get(q.id, Usage(0, -1)).times for q in preferred)
    fresh = [q for q in preferred if usage.get(q.id, Usage(0, -1)).times == least]
    if least > 0:
        # A new cycle: still avoid the most recently asked ones where we can.
        recent = max(usage[q.id].last_round for q in fresh)
        older = [q for q in fresh if usage[q.id].last_round != recent]
        fresh = older or fresh
    # The pool comes in id order (Bank.in_order), so a seeded rng picks the same question everywhere.
    return rng.choice(fresh)
