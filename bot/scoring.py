"""Turning a closed round into points. Pure: the engine supplies answers and streaks, we return awards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import Scoring
from bot.models import Answer
from bot.store.scores import Award


@dataclass(frozen=True)
class RoundScore:
    awards: list[Award]
    totals: dict[int, int]  # member id -> points this round
    top_answer_ids: set[int]


def streak_bonus(rules: Scoring, streak: int) -> int:
    """``streak`` counts this round: answering 3 rounds in a row gives 2 * step on the third, up to the cap."""
    return min(rules.streak_step * max(streak - 1, 0), rules.streak_cap)


def score_round(
    rules: Scoring, channel_id: int, round_id: int, answers: Sequence[Answer], streaks: dict[int, int]
) -> RoundScore:
    awards: list[Award] = []
    best = max((a.votes for a in answers), default=0)
    # Every answer with the most votes shares the top-answer bonus; no bonus when nobody got a vote.
    top = {a.id for a in answers if best > 0 and a.votes == best}
    for a in answers:
        awards.append(Award(a.member_id, channel_id, round_id, "participation", rules.participation))
        if a.votes:
            awards.append(Award(a.member_id, channel_id, round_id, "votes", rules.per_vote * a.votes))
        if a.id in top:
            awards.append(Award(a.member_id, channel_id, round_id, "top_answer", rules.top_answer))
        bonus = streak_bonus(rules, streaks.get(a.member_id, 1))
        if bonus:
            awards.append(Award(a.member_id, channel_id, round_id, "streak", bonus))
    totals: dict[int, int] = {}
    for w in awards:
        totals[w.member_id] = totals.get(w.member_id, 0) + w.points
    return RoundScore(awards, totals, top)
