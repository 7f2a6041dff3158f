"""replay history from before spaced repetition into srs cards: practice self-ratings and closed daily rounds

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21

0005 created the cards and the review log empty, so whatever a member did before upgrading (practice ratings in
``practice``, answers in closed daily rounds) scheduled nothing and was missing from /quiz stats. This replays
that history, oldest first, through the same FSRS scheduler and the same rules the live code uses (a practice
rating within 12 hours of the card's last review is a repeat and does not count; a daily answer is judged by
its round's votes), merged in time order with any reviews logged since 0005. Reviews already logged are never
written twice: a practice rating logged live has a review with the same member, question, outcome and time;
a daily round logged live has reviews carrying its round id.

Data only, no schema change. It reads the whole history once, which is fine for a one-off upgrade at the sizes
a chat bot's database reaches. It imports the scheduler (``bot.practice.srs``) on purpose: the cards must be
the ones that scheduler would have produced, or due dates would jump the first time a member rates again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op
from fsrs import Rating

from bot.practice import srs
from bot.practice.srs import CardState
from bot.store.tables import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The live rule (bot.store.cards.REPEAT_WINDOW), written out: a migration must not change when that code does.
REPEAT_WINDOW_HOURS = 12

# Only the columns this revision reads or writes, as they were at 0005.
practice = sa.table(
    "practice",
    sa.column("id", sa.Integer()),
    sa.column("member_id", sa.Integer()),
    sa.column("question_id", sa.String()),
    sa.column("rating", sa.String()),
    sa.column("created_at", UtcDateTime()),
)
rounds = sa.table(
    "rounds",
    sa.column("id", sa.Integer()),
    sa.column("question_id", sa.String()),
    sa.column("state", sa.String()),
    sa.column("closed_at", UtcDateTime()),
    sa.column("close_at", UtcDateTime()),
    sa.column("due_at", UtcDateTime()),
)
answers = sa.table("answers", sa.column("id", sa.Integer()), sa.column("round_id"), sa.column("member_id"))
votes = sa.table("votes", sa.column("answer_id", sa.Integer()))
srs_cards = sa.table(
    "srs_cards",
    sa.column("member_id", sa.Integer()),
    sa.column("question_id", sa.String()),
    sa.column("state", sa.Integer()),
    sa.column("step", sa.Integer()),
    sa.column("stability", sa.Float()),
    sa.column("difficulty", sa.Float()),
    sa.column("due", UtcDateTime()),
    sa.column("last_review", UtcDateTime()),
    sa.column("reviews", sa.Integer()),
    sa.column("lapses", sa.Integer()),
)
srs_reviews = sa.table(
    "srs_reviews",
    sa.column("id", sa.Integer()),
    sa.column("member_id", sa.Integer()),
    sa.column("question_id", sa.String()),
    sa.column("source", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("rating", sa.Integer()),
    sa.column("round_id", sa.Integer()),
    sa.column("reviewed_at", UtcDateTime()),
    sa.column("due_after", UtcDateTime()),
)


# A NamedTuple, not a dataclass: Alembic loads this file without registering it as a module, which dataclasses
# need to resolve postponed annotations.
class Event(NamedTuple):
    at: datetime
    order: int  # ties at the same instant keep the order they were read in
    source: str
    outcome: str
    rating: int
    round_id: int | None
    logged: int | None  # the srs_reviews id of one already logged: replayed to rebuild the card, not written again
    due_after: datetime | None  # as logged


def upgrade() -> None:
    conn = op.get_bind()
    events: dict[tuple[int, str], list[Event]] = {}
    order = 0

    def add(member_id: int, question_id: str, ev: Event) -> None:
        events.setdefault((member_id, question_id), []).append(ev)

    logged_practice: Counter[tuple[int, str, datetime, str]] = Counter()
    logged_rounds: set[tuple[int, int]] = set()
    existing = conn.execute(
        sa.select(
            srs_reviews.c.member_id,
            srs_reviews.c.question_id,
            srs_reviews.c.source,
            srs_reviews.c.outcome,
            srs_reviews.c.rating,
            srs_reviews.c.round_id,
            srs_reviews.c.reviewed_at,
            srs_reviews.c.due_after,
            srs_reviews.c.id,
        ).order_by(srs_reviews.c.reviewed_at, srs_reviews.c.id)
    ).all()
    for r in existing:
        order += 1
        ev = Event(r.reviewed_at, order, r.source, r.outcome, r.rating, r.round_id, r.id, r.due_after)
        add(r.member_id, r.question_id, ev)
        if r.source == "practice":
            logged_practice[(r.member_id, r.question_id, r.reviewed_at, r.outcome)] += 1
        elif r.round_id is not None:
            logged_rounds.add((r.round_id, r.member_id))

    new = 0
    for p in conn.execute(
        sa.select(practice.c.member_id, practice.c.question_id, practice.c.rating, practice.c.created_at).order_by(
            practice.c.created_at, practice.c.id
        )
    ).all():
        key = (p.member_id, p.question_id, p.created_at, p.rating)
        if logged_practice[key] > 0:  # rated since 0005: its review is already in the log
            logged_practice[key] -= 1
            continue
        if p.rating not in srs.SELF_RATINGS:
            continue  # not a rating the buttons ever offered: nothing to replay
        order += 1
        new += 1
        rating = int(srs.SELF_RATINGS[p.rating])
        add(p.member_id, p.question_id, Event(p.created_at, order, "practice", p.rating, rating, None, None, None))

    n_votes = sa.select(sa.func.count()).select_from(votes).where(votes.c.answer_id == answers.c.id).scalar_subquery()
    closed = conn.execute(
        sa.select(
            answers.c.round_id,
            answers.c.member_id,
            rounds.c.question_id,
            sa.func.coalesce(rounds.c.closed_at, rounds.c.close_at, rounds.c.due_at).label("at"),
            n_votes.label("votes"),
        )
        .select_from(answers.join(rounds, rounds.c.id == answers.c.round_id))
        .where(rounds.c.state == "closed", rounds.c.question_id.is_not(None))
        .order_by(answers.c.round_id, answers.c.id)
    ).all()
    by_round: dict[int, list[Any]] = {}
    for a in closed:
        by_round.setdefault(a.round_id, []).append(a)
    for round_id, rows in by_round.items():
        round_votes = [int(r.votes) for r in rows]
        best = max(round_votes)
        for r in rows:
            if (round_id, r.member_id) in logged_rounds:  # closed since 0005: already reviewed
                continue
            # As the close does: the most-voted answers share "top" (bot.scoring.score_round), then the votes
            # decide the rest (srs.daily_outcome).
            outcome = srs.daily_outcome(int(r.votes), round_votes, best > 0 and int(r.votes) == best)
            order += 1
            new += 1
            rating = int(srs.DAILY_RATINGS[outcome])
            add(r.member_id, r.question_id, Event(r.at, order, "daily", outcome, rating, round_id, None, None))

    if not new:
        return
    review_rows: list[dict[str, Any]] = []
    card_rows: list[dict[str, Any]] = []
    replaced: list[tuple[int, str]] = []
    moved: list[dict[str, Any]] = []
    for (member_id, question_id), evs in events.items():
        if all(e.logged is not None for e in evs):
            continue  # nothing new for this card: it stays exactly as the live code left it
        card: CardState | None = None
        for e in sorted(evs, key=lambda e: (e.at, e.order)):
            repeat = (
                card is not None
                and card.last_review is not None
                and (e.at - card.last_review).total_seconds() < REPEAT_WINDOW_HOURS * 3600
            )
            if e.logged is None and e.source == "practice" and repeat:
                continue  # the live code would have refused it as the same showing rated twice
            card = srs.review(card, Rating(e.rating), e.at)
            if e.logged is not None:
                if e.due_after != card.due:  # the card now knows its older history: the log tells the same story
                    moved.append({"review_id": e.logged, "due_after": card.due})
            else:
                review_rows.append(
                    {
                        "member_id": member_id,
                        "question_id": question_id,
                        "source": e.source,
                        "outcome": e.outcome,
                        "rating": e.rating,
                        "round_id": e.round_id,
                        "reviewed_at": e.at,
                        "due_after": card.due,
                    }
                )
        if card is None:
            continue
        replaced.append((member_id, question_id))
        card_rows.append(
            {
                "member_id": member_id,
                "question_id": question_id,
                "state": card.state,
                "step": card.step,
                "stability": card.stability,
                "difficulty": card.difficulty,
                "due": card.due,
                "last_review": card.last_review,
                "reviews": card.reviews,
                "lapses": card.lapses,
            }
        )
    for member_id, question_id in replaced:
        conn.execute(
            sa.delete(srs_cards).where(srs_cards.c.member_id == member_id, srs_cards.c.question_id == question_id)
        )
    if card_rows:
        conn.execute(sa.insert(srs_cards), card_rows)
    if review_rows:
        conn.execute(sa.insert(srs_reviews), review_rows)
    if moved:
        conn.execute(
            sa.update(srs_reviews)
            .where(srs_reviews.c.id == sa.bindparam("review_id"))
            .values(due_after=sa.bindparam("due_after")),
            moved,
        )


def downgrade() -> None:
    # The replayed reviews and cards are ordinary data from then on (later reviews build on them), so they stay.
    pass
