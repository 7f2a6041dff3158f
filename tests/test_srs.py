"""The spaced-repetition maths, checked against FSRS's published parameters, formulas and examples.

Sources for the numbers written below:
- FSRS-6 default parameters w0..w20: py-fsrs 6.x ``fsrs.scheduler.DEFAULT_PARAMETERS`` (the same values are
  published in the FSRS wiki, "The Algorithm", open-spaced-repetition/fsrs4anki).
- Formulas (FSRS-6, same wiki page):
    initial stability      S0(G) = w[G-1]
    initial difficulty     D0(G) = w4 - e^(w5·(G-1)) + 1
    forgetting curve       R(t,S) = (1 + F·t/S)^(-w20), with F = 0.9^(-1/w20) - 1, so R(S,S) = 0.9
    interval               I(r,S) = S/F · (r^(-1/w20) - 1), so I(0.9,S) = S (rounded to whole days, at least 1)
    stability on recall    S' = S·(e^w8 · (11-D) · S^-w9 · (e^(w10·(1-R)) - 1) · [w15 if Hard] · [w16 if Easy] + 1)
    stability on a lapse   S' = min(w11 · D^-w12 · ((S+1)^w13 - 1) · e^(w14·(1-R)),  S / e^(w17·w18))
    difficulty update      D' = w7·D0(4) + (1-w7)·(D + ΔD·(10-D)/9), ΔD = -w6·(G-3)
- Intervals for S = 1 at desired retention 0.1 … 1.0: py-fsrs's own test suite (tests/test_basic.py,
  ``test_next_interval``): [3116769, 34793, 2508, 387, 90, 27, 9, 3, 1, 1].
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from fsrs import Rating, Scheduler

from bot.practice import srs
from bot.practice.reminders import next_fire
from bot.practice.skills import TopicSkill, topic_skills, trend_windows, weakest
from bot.questions.model import Bank
from bot.store.cards import Review

W = (
    0.212, 1.2931, 2.3065, 8.2956, 6.4133, 0.8334, 3.0194, 0.001, 1.8722, 0.1666, 0.796,
    1.4835, 0.0614, 0.2629, 1.6483, 0.6014, 1.8729, 0.5425, 0.0912, 0.0658, 0.1542,
)  # fmt: skip
F = 0.9 ** (-1 / W[20]) - 1
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def d0(g: int) -> float:
    return W[4] - math.exp(W[5] * (g - 1)) + 1


def r_of(t: float, s: float) -> float:
    return (1 + F * t / s) ** -W[20]


def test_we_use_the_published_default_parameters() -> None:
    assert srs.SCHEDULER.parameters == W
    assert srs.SCHEDULER.desired_retention == 0.9
    assert srs.SCHEDULER.learning_steps == () and srs.SCHEDULER.relearning_steps == ()
    assert not srs.SCHEDULER.enable_fuzzing


@pytest.mark.parametrize(
    ("rating", "stability", "difficulty", "days"),
    [
        # S0 = w[G-1]; D0 from the formula (Easy's D0 is below 1, so it is clamped to 1); the interval is S0
        # rounded to whole days, at least one.
        (Rating.Again, 0.212, 6.4133, 1),
        (Rating.Hard, 1.2931, 5.11217, 1),
        (Rating.Good, 2.3065, 2.11810, 2),
        (Rating.Easy, 8.2956, 1.0, 8),
    ],
)
def test_first_review_of_a_new_question(rating: Rating, stability: float, difficulty: float, days: int) -> None:
    card = srs.review(None, rating, T0)
    assert card.stability == pytest.approx(W[rating - 1]) == pytest.approx(stability)
    assert card.difficulty == pytest.approx(max(1.0, d0(rating)), abs=1e-9)
    assert card.difficulty == pytest.approx(difficulty, abs=1e-5)
    assert card.due == T0 + timedelta(days=days)
    assert card.reviews == 1 and card.lapses == (1 if rating == Rating.Again else 0)
    assert card.state == 2  # straight to Review: no same-day learning steps in a daily bot


def test_retrievability_is_ninety_percent_after_one_stability() -> None:
    card = srs.CardState(state=2, step=None, stability=10.0, difficulty=5.0, due=T0, last_review=T0)
    assert srs.retrievability(card, T0 + timedelta(days=10)) == pytest.approx(0.9, abs=1e-12)
    assert srs.retrievability(card, T0) == pytest.approx(1.0)
    assert srs.retrievability(card, T0 + timedelta(days=30)) == pytest.approx(r_of(30, 10.0))


def test_published_interval_examples() -> None:
    out = []
    for retention in [r / 10 for r in range(1, 11)]:
        s = Scheduler(
            desired_retention=retention,
            learning_steps=(),
            relearning_steps=(),
            maximum_interval=2**31 - 1,
            enable_fuzzing=False,
        )
        out.append(s._next_interval(stability=1.0))
    assert out == [3116769, 34793, 2508, 387, 90, 27, 9, 3, 1, 1]


def test_second_good_review_on_the_due_day() -> None:
    first = srs.review(None, Rating.Good, T0)
    second = srs.review(first, Rating.Good, first.due)
    r = r_of(2, 2.3065)
    assert r == pytest.approx(0.909493, abs=1e-6)
    s = 2.3065 * (math.exp(W[8]) * (11 - d0(3)) * 2.3065 ** -W[9] * (math.exp(W[10] * (1 - r)) - 1) + 1)
    assert second.stability == pytest.approx(s) == pytest.approx(10.96433, abs=1e-5)
    assert second.difficulty == pytest.approx(W[7] * d0(4) + (1 - W[7]) * d0(3)) == pytest.approx(2.11121, abs=1e-5)
    assert second.due == first.due + timedelta(days=11)


def test_a_lapse_shrinks_stability_and_comes_back_tomorrow() -> None:
    first = srs.review(None, Rating.Good, T0)
    lapsed = srs.review(first, Rating.Again, first.due)
    r = r_of(2, 2.3065)
    long_term = W[11] * d0(3) ** -W[12] * ((2.3065 + 1) ** W[13] - 1) * math.exp((1 - r) * W[14])
    assert lapsed.stability == pytest.approx(min(long_term, 2.3065 / math.exp(W[17] * W[18])))
    assert lapsed.stability == pytest.approx(0.60758, abs=1e-5)
    assert lapsed.due == first.due + timedelta(days=1) and lapsed.lapses == 1 and lapsed.reviews == 2
    # Difficulty rises on a lapse: ΔD = -w6·(1-3) = 2·w6, damped by (10-D)/9.
    d = d0(3)
    assert lapsed.difficulty == pytest.approx(W[7] * d0(4) + (1 - W[7]) * (d + 2 * W[6] * (10 - d) / 9))


def test_intervals_are_capped_at_a_year_and_deterministic() -> None:
    card = srs.review(None, Rating.Easy, T0)
    for _ in range(8):
        card = srs.review(card, Rating.Easy, card.due)
    assert card.due - card.last_review == timedelta(days=365)  # type: ignore[operator]
    again = srs.review(None, Rating.Easy, T0)
    for _ in range(8):
        again = srs.review(again, Rating.Easy, again.due)
    assert again == card  # no fuzz: every process computes the same schedule


def test_our_signals_map_to_ratings() -> None:
    assert srs.SELF_RATINGS == {"got": Rating.Good, "partly": Rating.Hard, "missed": Rating.Again}
    # (votes for this answer, votes of every answer in the round, top answer?)
    assert srs.daily_outcome(3, [3, 1, 0], top=True) == "top"
    assert srs.daily_outcome(2, [3, 2, 0], top=False) == "strong"  # at least half the top's votes
    assert srs.daily_outcome(1, [3, 1, 0], top=False) == "weak"
    assert srs.daily_outcome(0, [3, 1, 0], top=False) == "weak"
    assert srs.daily_outcome(0, [0, 0], top=False) == "quiet"  # nobody voted: no signal
    assert srs.daily_outcome(0, [0], top=True) == "quiet"  # "top" needs a vote
    assert {srs.DAILY_RATINGS[o] for o in ("top", "strong", "quiet", "weak")} == {Rating.Easy, Rating.Good, Rating.Hard}
    assert Rating.Again not in srs.DAILY_RATINGS.values()


def test_reminder_times_follow_the_local_clock() -> None:
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (UTC+1)
    assert next_fire("08:30", "Europe/Berlin", monday) == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert next_fire("09:30", "Europe/Berlin", monday) == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    # Already reminded today: moving the time later today waits for tomorrow.
    sent = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    assert next_fire("09:30", "Europe/Berlin", monday, sent) == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    # 02:30 does not exist on the spring-forward night (28 March 2027): it moves on by the gap, to 03:30 CEST.
    saturday = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    assert next_fire("02:30", "Europe/Berlin", saturday) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert next_fire("23:59", "Pacific/Kiritimati", monday) == datetime(2026, 11, 23, 9, 59, tzinfo=UTC)


def _reviews(qid: str, outcomes: list[tuple[str, int]], start: datetime) -> list[Review]:
    return [
        Review(qid, "daily" if o in srs.DAILY_RATINGS else "practice", o, int(r), start + timedelta(days=i))
        for i, (o, r) in enumerate(outcomes)
    ]


def test_topic_skills_rows_trend_and_weakest(bank: Bank) -> None:
    cnn = [q.id for q in bank.in_order() if q.topic == "cnn"][:2]
    act = [q.id for q in bank.in_order() if q.topic == "activations"][:1]
    got, partly, missed = ("got", Rating.Good), ("partly", Rating.Hard), ("missed", Rating.Again)
    history = [
        # cnn: missed, missed, partly, then got, got, got: 0, 0, .5 | 1, 1, 1 -> score 3.5/6, trend up (1 vs 1/6)
        *_reviews(cnn[0], [missed, missed, partly], T0),
        *_reviews(cnn[1], [got, got, got], T0 + timedelta(days=10)),
        # activations: a top daily answer then a weak one: 1.5 of 2 = 75%, too few to judge or trend
        *_reviews(act[0], [("top", Rating.Easy), ("weak", Rating.Hard)], T0),
        Review("no-longer-in-the-bank", "practice", "missed", 1, T0),
    ]
    now = T0 + timedelta(days=20)
    rows = topic_skills(history, bank, {cnn[0]: now - timedelta(days=1), cnn[1]: now + timedelta(days=3)}, now)
    by = {r.topic: r for r in rows}
    assert set(by) == {"cnn", "activations"}
    c = by["cnn"]
    assert (c.seen, c.reviews, c.well, c.partly, c.missed, c.due) == (2, 6, 3, 1, 2, 1)
    assert c.score == pytest.approx(3.5 / 6) and c.percent == 58 and c.sure
    assert c.recent == pytest.approx(1.0) and c.earlier == pytest.approx(1 / 6) and c.trend == "up"
    assert c.total == len(bank.by_topic()["cnn"])
    a = by["activations"]
    assert (a.seen, a.well, a.partly, a.trend, a.due, a.percent, a.sure) == (1, 1, 1, "new", 0, 75, False)
    # cnn is lower than nothing here, but activations has two reviews: cnn, which can be judged, comes first.
    assert [r.topic for r in rows] == ["cnn", "activations"]
    assert weakest(rows) is c
    assert weakest([a]) is a and not a.sure  # only first impressions: still a suggestion, flagged by ``sure``
    assert weakest([]) is None


def test_a_low_first_impression_never_outranks_a_judged_topic(bank: Bank) -> None:
    cnn = [q.id for q in bank.in_order() if q.topic == "cnn"][:3]
    act = [q.id for q in bank.in_order() if q.topic == "activations"][:1]
    history = [
        *[Review(q, "practice", "partly", Rating.Hard, T0 + timedelta(days=i)) for i, q in enumerate(cnn)],  # 50%
        Review(act[0], "practice", "missed", Rating.Again, T0),  # 0%, from one answer
    ]
    rows = topic_skills(history, bank, {}, T0 + timedelta(days=5))
    assert [(r.topic, r.percent, r.sure) for r in rows] == [("cnn", 50, True), ("activations", 0, False)]
    assert weakest(rows) is rows[0]


@pytest.mark.parametrize(
    ("points", "windows", "trend"),
    [
        ([], (None, None), "new"),
        ([1.0], (None, None), "new"),
        ([0.0, 1.0, 1.0, 1.0, 1.0], (None, None), "new"),  # five reviews: two windows of three do not fit
        ([0.0, 0.0, 0.5, 1.0, 1.0, 1.0], (1.0, 1 / 6), "up"),
        ([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], (2 / 3, 1.0), "down"),  # one miss in a window of three
        ([1.0, 1.0, 1.0, 1.0, 1.0, 0.5], (5 / 6, 1.0), "steady"),  # one "partly" is not a trend
        # Many reviews: the latest five against the five just before them; older ones do not count.
        ([0.0] * 20 + [1.0] * 5 + [1.0, 0.5, 1.0, 1.0, 0.5], (0.8, 1.0), "down"),
        ([0.0] * 20 + [0.5] * 5 + [0.5, 0.5, 1.0, 0.5, 0.5], (0.6, 0.5), "steady"),
    ],
)
def test_trend_compares_equal_windows_and_needs_enough_reviews(
    points: list[float], windows: tuple[float | None, float | None], trend: str
) -> None:
    recent, earlier = trend_windows(points)
    assert (recent, earlier) == (pytest.approx(windows[0]), pytest.approx(windows[1]))
    well, partly = points.count(1.0), points.count(0.5)
    row = TopicSkill("t", "T", 1, 1, len(points), well, partly, len(points) - well - partly, recent, earlier, 0)
    assert row.trend == trend
    assert row.score == (pytest.approx(sum(points) / len(points)) if points else 0.0)
