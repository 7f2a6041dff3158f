"""Spaced repetition with FSRS (the py-fsrs library): our signals in, a card's next due time out.

Pure: no I/O. ``bot.store.cards`` keeps the card state and the review log; this module only decides.

Configuration, for a bot people practise with once or twice a day:

- No learning or relearning steps. FSRS's defaults bring a new or forgotten card back after 1 and 10 minutes,
  which suits flashcards drilled in one sitting; an interview question answered in a chat comes back at the
  earliest the next day. Without steps every rating goes straight to a whole-day interval (at least one day).
- Desired retention 0.9 (FSRS's own default): the question comes back when the model expects a 90% chance
  that the member still knows it.
- At most a year between reviews: interview knowledge is wanted within months, not decades.
- No fuzz: the library's fuzz uses the global random generator, which would make due dates differ between
  processes and runs. Deterministic intervals keep every process, test and restart in agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fsrs import Card, Rating, Scheduler, State

DESIRED_RETENTION = 0.9
MAXIMUM_INTERVAL_DAYS = 365

SCHEDULER = Scheduler(
    desired_retention=DESIRED_RETENTION,
    learning_steps=(),
    relearning_steps=(),
    maximum_interval=MAXIMUM_INTERVAL_DAYS,
    enable_fuzzing=False,
)

# A member's own verdict after seeing the reference answer. "Got it" is a plain successful recall (Good), not
# Easy: members rate generously, and Easy would push a question out by more than a week on first sight.
# "Partly" is a recall with real gaps (Hard: shorter interval, higher difficulty); "missed" is a lapse (Again).
SELF_RATINGS: dict[str, Rating] = {"got": Rating.Good, "partly": Rating.Hard, "missed": Rating.Again}

# A daily answer, judged by the round's votes when it closes (see ``daily_outcome``).
DAILY_RATINGS: dict[str, Rating] = {
    "top": Rating.Easy,
    "strong": Rating.Good,
    "quiet": Rating.Good,
    "weak": Rating.Hard,
}


def daily_outcome(votes: int, round_votes: Sequence[int], top: bool) -> str:
    """How a daily answer went, from the votes it and the round's other answers received.

    - ``top``: the round's most-voted answer (ties share it; needs at least one vote). Peers preferred it over
      every other answer, the strongest evidence we get that the member knows the subject: Easy.
    - ``strong``: at least half the top answer's votes. A good answer that lost narrowly: Good.
    - ``quiet``: nobody in the round received a vote. No peer signal at all; the member still produced an answer
      from memory, so it counts as a plain successful recall: Good.
    - ``weak``: fewer than half the top answer's votes (none included) while others were voted for: Hard.

    Never Again: votes are relative and capped, so a correct answer can collect none when a better one stood
    beside it. Only the member can say they missed a question (the practice "Missed it" button)."""
    if top and votes > 0:
        return "top"
    best = max(round_votes, default=0)
    if best == 0:
        return "quiet"
    return "strong" if votes > 0 and 2 * votes >= best else "weak"


@dataclass(frozen=True)
class CardState:
    """What we store of an FSRS card (the library's Card, minus its id: ours is member and question)."""

    state: int
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reviews: int = 0
    lapses: int = 0


def review(card: CardState | None, rating: Rating, now: datetime) -> CardState:
    """The card after one review at ``now``; ``None`` is a question the member has never been judged on."""
    now = now.astimezone(UTC)  # the library insists on UTC
    if card is None:
        fs = Card(card_id=0, due=now)  # an explicit id: without one the library sleeps a millisecond per card
        reviews, lapses = 0, 0
    else:
        fs = Card(
            card_id=0,
            state=State(card.state),
            step=card.step,
            stability=card.stability,
            difficulty=card.difficulty,
            due=card.due.astimezone(UTC),
            last_review=card.last_review.astimezone(UTC) if card.last_review else None,
        )
        reviews, lapses = card.reviews, card.lapses
    after, _ = SCHEDULER.review_card(fs, rating, now)
    return CardState(
        state=int(after.state),
        step=after.step,
        stability=after.stability,
        difficulty=after.difficulty,
        due=after.due,
        last_review=after.last_review,
        reviews=reviews + 1,
        lapses=lapses + (1 if rating == Rating.Again else 0),
    )


def retrievability(card: CardState, now: datetime) -> float:
    """The model's probability that the member would answer the question correctly right now."""
    if card.stability is None or card.last_review is None:
        return 0.0
    fs = Card(card_id=0, state=State(card.state), stability=card.stability, last_review=card.last_review, due=card.due)
    return float(SCHEDULER.get_card_retrievability(fs, now.astimezone(UTC)))
