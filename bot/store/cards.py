"""Spaced-repetition cards (one per member and question) and their review log. The maths is in bot.practice.srs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fsrs import Rating
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Answer
from bot.practice import srs
from bot.practice.srs import CardState
from bot.store.dialect import insert
from bot.store.tables import srs_cards, srs_reviews


@dataclass(frozen=True)
class Review:
    question_id: str
    source: str  # practice | daily
    outcome: str
    rating: int
    reviewed_at: datetime


def _card(row: Any) -> CardState:
    return CardState(
        state=row.state,
        step=row.step,
        stability=row.stability,
        difficulty=row.difficulty,
        due=row.due,
        last_review=row.last_review,
        reviews=row.reviews,
        lapses=row.lapses,
    )


def _values(card: CardState) -> dict[str, Any]:
    return {
        "state": card.state,
        "step": card.step,
        "stability": card.stability,
        "difficulty": card.difficulty,
        "due": card.due,
        "last_review": card.last_review,
        "reviews": card.reviews,
        "lapses": card.lapses,
    }


async def get(conn: AsyncConnection, member_id: int, question_id: str) -> CardState | None:
    row = (
        await conn.execute(
            select(srs_cards).where(srs_cards.c.member_id == member_id, srs_cards.c.question_id == question_id)
        )
    ).first()
    return _card(row) if row else None


# A second rating of the same question this soon is the same showing rated twice (a double click, or a change of
# mind on an old message), not a new recall: it is refused rather than counted. No card is ever due again this
# soon (intervals are whole days), so a question served as due can always be rated.
REPEAT_WINDOW = timedelta(hours=12)


@dataclass(frozen=True)
class Rated:
    before: CardState | None
    after: CardState  # on a refused repeat, the card as it stands
    recorded: bool


async def rate(conn: AsyncConnection, member_id: int, question_id: str, outcome: str, now: datetime) -> Rated:
    """A practice self-rating: review the card and log it, unless it repeats a rating made moments ago."""
    before = await get(conn, member_id, question_id)
    if before is not None and before.last_review is not None and now - before.last_review < REPEAT_WINDOW:
        return Rated(before, before, recorded=False)
    after = srs.review(before, srs.SELF_RATINGS[outcome], now)
    if before is None:
        stmt = (
            insert(conn, srs_cards)
            .values(member_id=member_id, question_id=question_id, **_values(after))
            .on_conflict_do_nothing(index_elements=["member_id", "question_id"])
            .returning(srs_cards.c.member_id)
        )
    else:
        # Compare-and-set on the review count: two presses racing in two processes move the card once.
        stmt = (
            update(srs_cards)
            .where(
                srs_cards.c.member_id == member_id,
                srs_cards.c.question_id == question_id,
                srs_cards.c.reviews == before.reviews,
            )
            .values(**_values(after))
            .returning(srs_cards.c.member_id)
        )
    if (await conn.execute(stmt)).first() is None:  # another process rated it in between
        current = await get(conn, member_id, question_id)
        assert current is not None
        return Rated(current, current, recorded=False)
    await conn.execute(
        insert(conn, srs_reviews).values(
            member_id=member_id,
            question_id=question_id,
            source="practice",
            outcome=outcome,
            rating=int(srs.SELF_RATINGS[outcome]),
            reviewed_at=now,
            due_after=after.due,
        )
    )
    return Rated(before, after, recorded=True)


async def record_round(
    conn: AsyncConnection, round_id: int, question_id: str, answers: Sequence[Answer], top_ids: set[int], now: datetime
) -> int:
    """Review every answerer's card for the round's question by how their answer did (``srs.daily_outcome``).
    Called in the transaction that closes the round; a retried close reviews nobody twice. Returns reviews
    written."""
    if not answers:
        return 0
    member_ids = [a.member_id for a in answers]
    rows = (
        await conn.execute(
            select(srs_cards).where(srs_cards.c.question_id == question_id, srs_cards.c.member_id.in_(member_ids))
        )
    ).all()
    before = {r.member_id: _card(r) for r in rows}
    round_votes = [a.votes for a in answers]
    planned: dict[int, tuple[str, Rating, CardState]] = {}
    for a in answers:
        outcome = srs.daily_outcome(a.votes, round_votes, a.id in top_ids)
        rating = srs.DAILY_RATINGS[outcome]
        planned[a.member_id] = (outcome, rating, srs.review(before.get(a.member_id), rating, now))
    stmt = (
        insert(conn, srs_reviews)
        .values(
            [
                {
                    "member_id": m,
                    "question_id": question_id,
                    "source": "daily",
                    "outcome": outcome,
                    "rating": int(rating),
                    "round_id": round_id,
                    "reviewed_at": now,
                    "due_after": card.due,
                }
                for m, (outcome, rating, card) in planned.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["round_id", "member_id"])
        .returning(srs_reviews.c.member_id)
    )
    written = [r.member_id for r in (await conn.execute(stmt)).all()]
    if written:
        up = insert(conn, srs_cards)
        cols = _values(planned[written[0]][2]).keys()
        up = up.on_conflict_do_update(
            index_elements=["member_id", "question_id"], set_={c: up.excluded[c] for c in cols}
        )
        await conn.execute(
            up, [{"member_id": m, "question_id": question_id, **_values(planned[m][2])} for m in written]
        )
    return len(written)


async def schedule(conn: AsyncConnection, member_id: int) -> dict[str, datetime]:
    """Every question the member has a card for, with when it is due."""
    q = select(srs_cards.c.question_id, srs_cards.c.due).where(srs_cards.c.member_id == member_id)
    return {r.question_id: r.due for r in (await conn.execute(q)).all()}


async def due_counts(conn: AsyncConnection, member_ids: Iterable[int], now: datetime) -> dict[int, list[str]]:
    """For each member, the questions due now: what a reminder reports. One query for a whole batch."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    q = (
        select(srs_cards.c.member_id, srs_cards.c.question_id)
        .where(srs_cards.c.member_id.in_(ids), srs_cards.c.due <= now)
        .order_by(srs_cards.c.member_id, srs_cards.c.due)
    )
    out: dict[int, list[str]] = {}
    for r in (await conn.execute(q)).all():
        out.setdefault(r.member_id, []).append(r.question_id)
    return out


async def reviews(conn: AsyncConnection, member_id: int) -> list[Review]:
    """The member's review history, oldest first."""
    q = (
        select(
            srs_reviews.c.question_id,
            srs_reviews.c.source,
            srs_reviews.c.outcome,
            srs_reviews.c.rating,
            srs_reviews.c.reviewed_at,
        )
        .where(srs_reviews.c.member_id == member_id)
        .order_by(srs_reviews.c.reviewed_at, srs_reviews.c.id)
    )
    return [Review(r.question_id, r.source, r.outcome, r.rating, r.reviewed_at) for r in (await conn.execute(q)).all()]


async def count_reviews(conn: AsyncConnection, member_id: int) -> int:
    q = select(func.count()).select_from(srs_reviews).where(srs_reviews.c.member_id == member_id)
    return int((await conn.execute(q)).scalar_one())


async def forget(conn: AsyncConnection, member_id: int) -> int:
    """Erase the member's cards and review log; returns the reviews erased."""
    n = (await conn.execute(delete(srs_reviews).where(srs_reviews.c.member_id == member_id))).rowcount or 0
    await conn.execute(delete(srs_cards).where(and_(srs_cards.c.member_id == member_id)))
    return int(n)
