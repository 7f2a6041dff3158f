"""What a member did with each question: daily answers and practice ratings, for the progress chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import RoundState
from bot.store.tables import answers, practice, rounds, votes


@dataclass
class QuestionOutcomes:
    """How often a member met one question, and how often it went well."""

    outcomes: int = 0
    good: int = 0


async def question_outcomes(
    conn: AsyncConnection, member_id: int, channel_ids: Sequence[int]
) -> dict[str, QuestionOutcomes]:
    """Per question id: daily answers in these channels (good when the answer received a vote; only rounds
    that closed count, since votes are final only then) and practice ratings ("got" is good). A member has
    one answer per round and at most three ratings per practised question, so both reads stay small."""
    out: dict[str, QuestionOutcomes] = {}
    chans = list(channel_ids)
    if chans:
        voted = select(func.count()).select_from(votes).where(votes.c.answer_id == answers.c.id).scalar_subquery()
        q = (
            select(rounds.c.question_id, voted.label("votes"))
            .select_from(answers.join(rounds, rounds.c.id == answers.c.round_id))
            .where(
                answers.c.member_id == member_id,
                rounds.c.channel_id.in_(chans),
                rounds.c.state == RoundState.CLOSED.value,
                rounds.c.question_id.is_not(None),
            )
        )
        for r in (await conn.execute(q)).all():
            o = out.setdefault(r.question_id, QuestionOutcomes())
            o.outcomes += 1
            o.good += int(r.votes > 0)
    q2 = (
        select(practice.c.question_id, practice.c.rating, func.count().label("n"))
        .where(practice.c.member_id == member_id)
        .group_by(practice.c.question_id, practice.c.rating)
    )
    for r in (await conn.execute(q2)).all():
        o = out.setdefault(r.question_id, QuestionOutcomes())
        o.outcomes += int(r.n)
        o.good += int(r.n) if r.rating == "got" else 0
    return out
