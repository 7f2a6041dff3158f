"""Rubric hints: how well the keyword matcher separates answers, and what it costs at reveal.

Figures: the share of key points found in each question's own reference answer and in answers to questions
of other topics (the built-in bank), the one-off build of the matcher, and the time to match one answer
(typical, reference-length, and a 100,000-character paste) and a 100-answer ballot.

Run: ``python -m bench.rubric``.
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import Result, report, summary
from bot import rubric
from bot.questions.loader import BUILTIN_BANK, load_bank


def _timed_ms(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


async def run(quick: bool) -> list[Result]:
    bank, _ = load_bank([BUILTIN_BANK])
    qs = bank.in_order()
    rubric.stem.cache_clear()
    started = time.perf_counter()
    matcher = rubric.KeywordMatcher.from_bank(bank)
    for q in qs:
        matcher.key_points(q)
    build_s = time.perf_counter() - started

    own = [matcher.match(q, q.answer) for q in qs]
    own_share = statistics.fmean(c.count / c.total for c in own)
    terms = {q.id: matcher.terms(q.answer) for q in qs}
    unrelated = [
        (c := matcher.match_terms(q, terms[o.id])).count / c.total for q in qs for o in qs if o.topic != q.topic
    ]

    # A typical member answer: the first few sentences of a reference answer, about 400 characters.
    typical = [(q, q.answer[:400]) for q in qs]
    rounds = 1 if quick else 5
    typical_ms = [_timed_ms(matcher.match, q, t) for _ in range(rounds) for q, t in typical]
    reference_ms = [_timed_ms(matcher.match, q, q.answer) for _ in range(rounds) for q in qs]
    huge_ms = [_timed_ms(matcher.match, q, (q.answer + "\n") * (100_000 // len(q.answer) + 1)) for q in qs[:20]]
    q = qs[0]
    ballot = {i: qs[i % len(qs)].answer[:600] for i in range(100)}
    ballot_ms = [_timed_ms(rubric.hints, matcher, q, ballot) for _ in range(3)]

    t, r, h = summary(typical_ms), summary(reference_ms), summary(huge_ms)
    return [
        Result("rubric", "own reference answers: key points found", own_share * 100, "%", ">= 60 %", own_share >= 0.6),
        Result(
            "rubric",
            "other topics' answers: key points found",
            statistics.fmean(unrelated) * 100,
            "%",
            "<= 5 %",
            statistics.fmean(unrelated) <= 0.05,
            detail={"pairs": len(unrelated), "at_half_or_more": sum(s >= 0.5 for s in unrelated)},
        ),
        Result("rubric", "build matcher for the bank (cold)", build_s * 1000, "ms", "< 3,000 ms", build_s < 3),
        Result("rubric", "match a 400-char answer p99", t["p99"], "ms", "< 10 ms", t["p99"] < 10, detail=t),
        Result("rubric", "match a reference answer p99", r["p99"], "ms", "< 20 ms", r["p99"] < 20, detail=r),
        Result("rubric", "match a 100,000-char answer p99", h["p99"], "ms", "< 200 ms", h["p99"] < 200, detail=h),
        Result("rubric", "hints for a 100-answer ballot", min(ballot_ms), "ms", "< 500 ms", min(ballot_ms) < 500),
    ]


if __name__ == "__main__":
    import asyncio

    report(asyncio.run(run("--quick" in sys.argv)))
