"""Rubric hints: the key-point matcher on the real bank, paraphrases, hostile text, the ballot and the reveal."""

from __future__ import annotations

import json
import logging
import statistics
import sys
import types
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.render import to_kwargs
from adapters.slack.render import to_blocks
from bot import messages, rubric
from bot.config import Config
from bot.models import Answer, Round, RoundState
from bot.questions.loader import BUILTIN_BANK, MAX_SYNONYM_CHARS, MAX_SYNONYMS_PER_GROUP, load_bank
from bot.questions.model import Bank, Question
from bot.rubric import Coverage, KeywordMatcher, Synonyms
from bot.store import rounds as round_store
from tests.conftest import start_runtime
from tests.test_engine import answer, setup_channel

DATA = Path(__file__).parent / "data"

_BUILT: tuple[Bank, KeywordMatcher] | None = None


def built() -> tuple[Bank, KeywordMatcher]:
    """The built-in bank and its matcher, built once for the module (hypothesis cannot take fixtures)."""
    global _BUILT
    if _BUILT is None:
        bank, _ = load_bank([BUILTIN_BANK])
        _BUILT = bank, KeywordMatcher.from_bank(bank)
    return _BUILT


@pytest.fixture
def matcher() -> KeywordMatcher:
    return built()[1]


def share(c: Coverage) -> float:
    return c.count / c.total


# -- the built-in bank ------------------------------------------------------------------------------------------


def test_each_reference_answer_covers_most_of_its_own_key_points(
    bank: Bank, matcher: KeywordMatcher, capsys: pytest.CaptureFixture[str]
) -> None:
    own = {q.id: share(matcher.match(q, q.answer)) for q in bank.in_order()}
    with capsys.disabled():
        cuts = [(0.0, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.01)]
        spread = ", ".join(f"[{a:.2f}, {b:.2f}): {sum(a <= v < b for v in own.values())}" for a, b in cuts)
        print(f"\nown answers: mean coverage {statistics.mean(own.values()):.3f} over {len(own)} questions; {spread}")
    assert statistics.mean(own.values()) >= 0.85
    assert min(own.values()) > 0, [q for q, v in own.items() if v == 0]
    low = [q for q, v in own.items() if v < 0.6]
    assert len(low) <= len(own) // 20, low


def test_answers_to_other_topics_cover_few_key_points(
    bank: Bank, matcher: KeywordMatcher, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every question against the reference answer of every question in another topic."""
    qs = bank.in_order()
    answer_terms = {q.id: matcher.terms(q.answer) for q in qs}
    shares = [share(matcher.match_terms(q, answer_terms[o.id])) for q in qs for o in qs if o.topic != q.topic]
    half = sum(s >= 0.5 for s in shares)
    with capsys.disabled():
        print(
            f"\nunrelated answers: mean coverage {statistics.mean(shares):.3f} over {len(shares)} pairs; "
            f"{half} pairs ({half / len(shares):.2%}) at half or more"
        )
    assert statistics.mean(shares) <= 0.03
    assert half / len(shares) <= 0.005


def test_hand_written_paraphrases_are_matched(bank: Bank, matcher: KeywordMatcher) -> None:
    """Short answers in other words (abbreviations, other spellings) against a human grader's ticks."""
    cases = yaml.safe_load((DATA / "rubric_paraphrases.yaml").read_text())
    assert len(cases) >= 10
    expected = found = claimed = absent = 0
    for case in cases:
        q = bank.get(case["question"])
        assert q is not None, case["question"]
        got = set(matcher.match(q, case["answer"]).covered)
        expected += len(case["covers"])
        found += len(got & set(case["covers"]))
        absent += len(case["misses"])
        claimed += len(got & set(case["misses"]))
    assert found / expected >= 0.8, (found, expected)
    assert claimed <= absent // 10, (claimed, absent)


@pytest.mark.parametrize(
    ("question", "text", "point"),
    [
        ("activations-why-nonlinear", "Without a nonlinear activation, stacked linear layers collapse to one.", 1),
        ("normalisation-batch-norm", "BN normalizes every channel with the minibatch mean and variance", 0),
        ("normalisation-batch-norm", "batch normalisation: each channel normalised by mini-batch mean, variance", 0),
        ("training-learning-rate-too-low-high", "the LR is the step size that multiplies the gradient per update", 0),
        ("activations-dying-relu", "fix it with a lower learning rate, Kaiming init, normalization, leaky relu", 4),
        ("training-zero-constant-initialisation", "Random initialization breaks the symmetry", 3),
        ("cnn-1x1-convolution", "it is a dense layer over the channels applied at each pixel, weights shared", 0),
    ],
)
def test_synonyms_and_spellings(bank: Bank, matcher: KeywordMatcher, question: str, text: str, point: int) -> None:
    q = bank.get(question)
    assert q is not None
    assert point in matcher.match(q, text).covered, (q.key_points[point], text)


def test_normaliser_folds_spellings_abbreviation_plurals_and_compounds() -> None:
    def flat(text: str) -> list[str]:
        return [p for w in rubric.words(text) for p in w]

    assert flat("normalisation") == flat("normalization") == flat("Normalizing")
    assert flat("zero-centred") == flat("zero-centered")
    assert flat("behaviour, neighbour") == flat("behavior, neighbor")
    assert flat("CNNs GPUs ReLUs") == flat("CNN GPU ReLU")
    assert flat("the of and is") == []
    syn = Synonyms([["relu", "rectified linear unit"], ["learning rate", "lr"]])
    assert "≡relu" in rubric.terms("a Rectified Linear Unit", syn)
    assert "≡learn rate" in rubric.terms("lower the LR", syn)
    assert "≡relu" not in rubric.terms("a linear unit", syn)
    # A compound matches joined, spaced or hyphenated.
    for text in ("fine-tuning", "fine tuning", "finetuning"):
        assert {"finetun"} <= rubric.terms(text, syn) or {"fine", "tune"} <= rubric.terms(text, syn), text


# -- hostile and odd text -------------------------------------------------------------------------------------

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
BIDI = "\u202e\u202d\u2066\u2067\u2068\u2069\u200f\u061c"


def reference(bank: Bank, qid: str = "regularisation-dropout") -> Question:
    q = bank.get(qid)
    assert q is not None
    return q


def test_empty_and_odd_answers(bank: Bank, matcher: KeywordMatcher) -> None:
    q = reference(bank)
    for text in ("", "   ", "\n\n", "```\n```", "**", "🙂" * 50, "∂L/∂w = (ŷ - y)·x"):
        c = matcher.match(q, text)
        assert c.covered == () and c.total == len(q.key_points), text


def test_markdown_code_fences_and_invisible_characters_do_not_change_the_hint(
    bank: Bank, matcher: KeywordMatcher
) -> None:
    q = reference(bank)
    plain = matcher.match(q, q.answer)
    assert plain.count >= 3
    fenced = f"**My answer:**\n```text\n{q.answer}\n```\n> _quoted_ `code`"
    assert matcher.match(q, fenced).covered == plain.covered
    zw = ZERO_WIDTH[0].join(q.answer)  # a zero-width space between every character
    assert matcher.match(q, zw).covered == plain.covered
    rtl = "".join(ch + (BIDI[i % len(BIDI)] if ch == " " else "") for i, ch in enumerate(q.answer))
    assert matcher.match(q, rtl).covered == plain.covered
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in q.answer)  # NFKC folds these
    assert matcher.match(q, fullwidth).covered == plain.covered


def test_huge_answers_are_read_up_to_the_cap(bank: Bank, matcher: KeywordMatcher) -> None:
    q = reference(bank)
    huge = (q.answer + "\n") * (100_000 // len(q.answer) + 1)
    assert len(huge) > 100_000
    assert matcher.match(q, huge).covered == matcher.match(q, huge[: rubric.MAX_MATCH_CHARS]).covered
    # What lies past the cap is not read, so its cost is bounded whatever is pasted.
    assert matcher.match(q, "x " * 60_000 + q.answer).covered == ()
    # NFKC may expand a character eighteen-fold; the cleaned text is still capped.
    assert len(rubric.clean("\ufdfa" * 100_000)) <= rubric.MAX_MATCH_CHARS


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=600) | st.text(
    alphabet=st.sampled_from(list("abc xyz-_*`#\n.") + list(ZERO_WIDTH + BIDI)), max_size=300
)


@given(text=texts, extra=texts, qi=st.integers(min_value=0, max_value=10_000))
@settings(max_examples=200, deadline=None)
def test_matcher_on_any_text(text: str, extra: str, qi: int) -> None:
    bank, matcher = built()
    qs = bank.in_order()
    q = qs[qi % len(qs)]
    c = matcher.match(q, text)
    assert c.total == len(q.key_points)
    assert list(c.covered) == sorted(set(c.covered)) and all(0 <= i < c.total for i in c.covered)
    # Invisible characters anywhere change nothing; saying more never loses a key point.
    sprinkled = "".join(ch + ZERO_WIDTH[i % len(ZERO_WIDTH)] for i, ch in enumerate(text))
    assert matcher.match(q, sprinkled).covered == c.covered
    assert set(c.covered) <= set(matcher.match(q, text + "\n" + extra).covered)


# -- the synonyms file ------------------------------------------------------------------------------------------


def test_synonyms_file_loads_and_schema_agrees() -> None:
    bank, issues = load_bank([BUILTIN_BANK])
    assert [i for i in issues if "synonym" in i.message] == []
    assert bank.synonyms["relu"][:2] == ("relu", "rectified linear unit")
    assert "bn" in bank.synonyms["batch normalisation"]
    schema = json.loads((BUILTIN_BANK / "schema.json").read_text())["properties"]["synonyms"]
    assert schema["propertyNames"]["maxLength"] == MAX_SYNONYM_CHARS
    listed = schema["additionalProperties"]["oneOf"][1]
    assert listed["maxItems"] == MAX_SYNONYMS_PER_GROUP - 1  # the key is a term of the group too
    assert listed["items"]["maxLength"] == MAX_SYNONYM_CHARS


def test_team_synonyms_merge_with_ours(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text("synonyms:\n  relu: [rectifier unit]\n  mixture of experts: moe\n")
    bank, issues = load_bank([BUILTIN_BANK, tmp_path])
    assert [i for i in issues if i.severity == "error"] == []
    assert "rectifier unit" in bank.synonyms["relu"] and "rectified linear unit" in bank.synonyms["relu"]
    assert bank.synonyms["mixture of experts"] == ("mixture of experts", "moe")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("synonyms: [relu, rectifier]\n", 1, "'synonyms' must map a term to a list"),
        ("synonyms:\n  relu: []\n", 2, "synonyms of 'relu' must be a non-empty list"),
        ("synonyms:\n  relu: {a: b}\n", 2, "synonyms of 'relu' must be a non-empty list"),
        ("synonyms:\n  relu: [rectifier]\n  lr:\n    - " + "x" * 81 + "\n", 3, "1 to 80 characters"),
        ("synonyms:\n  relu: [rectifier, 3]\n", 2, "each term must be text"),
        ("synonyms:\n  relu: [rectifier]\n  relu: [other]\n", 3, "appears twice"),
        ("synonyms:\n  relu: [rectifier]\n  learning rate: [lr, Rectifier]\n", 3, "also in the group of 'relu'"),
        ("synonyms:\n  a: [the, of]\n", 2, "has no words to match on"),
        ("synonyms:\n  big: [" + ", ".join(f"w{i}" for i in range(30)) + "]\n", 2, "at most 30 terms"),
        ("synonym:\n  relu: [rectifier]\n", 1, "unknown top-level key 'synonym' (expected questions, topics, synonyms"),
    ],
)
def test_broken_synonyms_are_reported_with_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    f = tmp_path / "bank.yaml"
    f.write_text(body)
    _, issues = load_bank([f])
    hits = [i for i in issues if message in i.message]
    assert hits and hits[0].line == line and hits[0].path == str(f), issues


def test_lint_cli_reports_a_broken_synonyms_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    f = tmp_path / "synonyms.yaml"
    f.write_text("synonyms:\n  relu: [rectifier]\n  gelu: []\n")
    assert main(["questions", "lint", str(f)]) == 1
    assert f"{f}:3: error: synonyms of 'gelu' must be a non-empty list" in capsys.readouterr().out
    # A team's synonym that clashes with one of ours is caught by lint, not first at start-up.
    f.write_text("synonyms:\n  rectifier unit: [ReLU]\n")
    assert main(["questions", "lint", str(f)]) == 1
    assert "synonym 'ReLU' of 'rectifier unit' is also in the group of 'relu'" in capsys.readouterr().out


# -- the ballot -------------------------------------------------------------------------------------------------

ROUND = Round(
    id=7,
    channel_id=1,
    slot="2026-01-05",
    scheduled=True,
    question_id="regularisation-dropout",
    state=RoundState.REVEALING,
    answer_mode="thread",
    vote_cap=3,
    due_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    posted_at=None,
    reveal_at=None,
    close_at=None,
    revealed_at=None,
    closed_at=None,
    message_id=None,
    thread_id=None,
    lease_owner=None,
    lease_until=None,
    note=None,
)


def answers(n: int, name: str = "member", text: str = "some words " * 40) -> list[Answer]:
    return [Answer(i, 7, i, f"{name}{i}", f"u{i}", None, text, i) for i in range(1, n + 1)]


def body_length(parts: Sequence[object]) -> int:
    return sum(len(getattr(p, "text", p)) for p in parts)  # type: ignore[arg-type]


def test_ballot_shows_hints_labelled_as_hints(bank: Bank, matcher: KeywordMatcher) -> None:
    q = reference(bank)
    a = answers(2)
    hints = {1: matcher.match(q, q.answer), 2: matcher.match(q, "")}
    [msg] = messages.ballot(ROUND, a, datetime(2026, 1, 6, tzinfo=UTC), "UTC", hints)
    text = msg.plain
    assert "Automatic hint, not a score" in text
    numbers = ", ".join(str(i + 1) for i in hints[1].covered)
    assert f"↳ hint: covers {hints[1].count} of {len(q.key_points)} key points ({numbers})" in text
    assert f"↳ hint: covers 0 of {len(q.key_points)} key points" in text
    # The reference answer numbers its key points, so "(1, 2)" means something.
    assert "1. " + q.key_points[0] in messages.reveal(q).fields[0].value
    # Without hints the ballot is as before.
    [plain] = messages.ballot(ROUND, a, datetime(2026, 1, 6, tzinfo=UTC), "UTC")
    assert "hint" not in plain.plain


@pytest.mark.parametrize("n", [1, 5, 12, 20, 21, 40])
def test_ballot_with_many_hinted_answers_fits_one_message(n: int) -> None:
    a = answers(n, name="a_long_display_name*with*markdown", text="word " * 400)
    hints = {x.id: Coverage((0, 2, 3, 5), 6) for x in a}
    [msg] = messages.ballot(ROUND, a, datetime(2026, 1, 6, tzinfo=UTC), "UTC", hints)
    assert msg.title == "Vote" and msg.plain.count("↳ hint: covers 4 of 6 key points") == n
    assert body_length(msg.parts) <= messages.BALLOT_BUDGET
    description = to_kwargs(msg)["embed"].description
    assert len(description) <= 4096 and "shortened: too long" not in description  # Discord did not clip it
    blocks = to_blocks(msg)
    assert len(blocks) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


@pytest.mark.parametrize(("n", "name"), [(120, "a_long_display_name*with*markdown"), (130, "ann"), (260, "*" * 40)])
def test_a_long_ballot_goes_on_in_more_messages_with_every_answer_votable_once(n: int, name: str) -> None:
    a = answers(n, name=name, text="word " * 400)
    hints = {x.id: Coverage((0, 2, 3, 5), 6) for x in a}
    pages = messages.ballot(ROUND, a, datetime(2026, 1, 6, tzinfo=UTC), "UTC", hints)
    assert len(pages) > 1 and [p.title for p in pages] == [
        f"Vote: ballot {i}/{len(pages)}" for i in range(1, len(pages) + 1)
    ]
    votable: list[str] = []
    for i, page in enumerate(pages, start=1):
        assert page.select is not None and not page.buttons
        first, last = page.select.options[0].number, page.select.options[-1].number
        assert f"Ballot {i} of {len(pages)}**: answers {first}–{last} of {n}" in page.plain
        assert "Shortened to fit (names only" in page.plain  # the listing says what it left out
        assert body_length(page.parts) <= messages.BALLOT_BUDGET
        for x in a[(first or 0) - 1 : last]:  # each answer of the page is listed with its number
            assert f"\n**{x.position}.** " in page.plain
        votable += [o.value for o in page.select.options]
        kwargs = to_kwargs(page)
        assert len(kwargs["embed"].description) <= 4096 and "shortened: too long" not in kwargs["embed"].description
        assert len(kwargs["view"].children) <= 5
        blocks = to_blocks(page)
        assert len(blocks) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
        menus = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
        assert len(menus) == 1 and len(menus[0]["options"]) <= 100
    assert sorted(votable, key=int) == [str(x.id) for x in a]  # every answer, exactly once


# -- the reveal -------------------------------------------------------------------------------------------------


async def reveal_round(rt, platform, clock, ch, texts: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    clock.advance(timedelta(hours=1))
    await rt.engine.tick()
    async with rt.engine.tx() as conn:
        rnd = (await round_store.active(conn, ch.id))[0]
    q = rt.engine.bank.get(rnd.question_id)
    await answer(rt, ch, "alice", q.answer)
    await answer(rt, ch, "bob", "No idea, sorry.")
    clock.advance(timedelta(hours=8))
    await rt.engine.tick()
    ballot = next(m for _, m, _ in platform.sent if m.title == "Vote")
    return q, ballot


async def test_reveal_puts_hints_on_the_ballot(db_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, db_url, bank, clock)
    ch = await setup_channel(rt)
    q, ballot = await reveal_round(rt, platform, clock, ch)
    lines = [line for line in ballot.plain.splitlines() if line.startswith("↳ hint: covers")]
    assert len(lines) == 2
    alice = int(lines[0].split("covers ")[1].split(" of")[0])
    assert alice >= len(q.key_points) // 2 and lines[1].startswith("↳ hint: covers 0 of")
    assert "Automatic hint, not a score" in ballot.plain


async def test_hints_can_be_switched_off(sqlite_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock, hints={"enabled": False})
    ch = await setup_channel(rt)
    _, ballot = await reveal_round(rt, platform, clock, ch)
    assert "hint" not in ballot.plain and "alice" in ballot.plain


async def test_embedding_model_that_cannot_load_falls_back_to_keywords(  # type: ignore[no-untyped-def]
    sqlite_url, bank, clock, runtimes, caplog, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if it were not installed
    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock, hints={"embedding_model": "all-MiniLM-L6-v2"})
    ch = await setup_channel(rt)
    with caplog.at_level(logging.WARNING, logger="bot.rubric"):
        _, ballot = await reveal_round(rt, platform, clock, ch)
    assert "sentence-transformers is not installed" in caplog.text
    assert "↳ hint: covers" in ballot.plain


@pytest.mark.parametrize("part", ["matcher_for", "hints"])
async def test_a_failing_matcher_never_stops_the_reveal(sqlite_url, bank, clock, runtimes, monkeypatch, part) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(rubric, part, broken)
    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock)
    ch = await setup_channel(rt)
    _, ballot = await reveal_round(rt, platform, clock, ch)
    assert "alice" in ballot.plain and "hint" not in ballot.plain


# -- the optional embedding matcher --------------------------------------------------------------------------------


def bag_of_words(texts: Sequence[str]) -> list[list[float]]:
    """A stand-in sentence encoder: counts of stemmed words hashed into 64 buckets (deterministic)."""
    import zlib

    out = []
    for t in texts:
        v = [0.0] * 64
        for w in rubric.words(t):
            v[zlib.crc32(w[0].encode()) % 64] += 1.0
        out.append(v)
    return out


def test_embedding_matcher_logic_with_a_stand_in_encoder(bank: Bank) -> None:
    q = reference(bank)
    calls: list[int] = []

    def encode(texts: Sequence[str]) -> list[list[float]]:
        calls.append(len(texts))
        return bag_of_words(texts)

    m = rubric.EmbeddingMatcher(encode, threshold=0.7)
    own = m.match(q, "\n".join(q.key_points))  # every key point is a sentence of this answer
    assert own.covered == tuple(range(len(q.key_points)))
    assert m.match(q, "Completely unrelated: the cat sat on the mat.").covered == ()
    assert m.match(q, "").covered == ()
    assert calls[0] == len(q.key_points) and calls.count(len(q.key_points)) == 1  # key points encoded once
    both = rubric.EitherMatcher(KeywordMatcher(Synonyms([])), m)
    assert both.match(q, q.key_points[2]).covered == (2,)


def test_load_embedding_matcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(rubric.RubricError, match="pip install sentence-transformers"):
        rubric.load_embedding_matcher("any-model")

    class FakeModel:
        def __init__(self, name: str) -> None:
            if name != "local-model":
                raise OSError("not found in the local cache")

        def encode(self, texts: list[str]) -> list[list[float]]:
            return bag_of_words(texts)

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    with pytest.raises(rubric.RubricError, match="cannot load the embedding model 'other'"):
        rubric.load_embedding_matcher("other")
    m = rubric.load_embedding_matcher("local-model", threshold=0.9)
    assert m.encode(["relu relu"]) == bag_of_words(["relu relu"])


def test_config_hints_section() -> None:
    assert Config().hints.enabled and Config().hints.embedding_model is None
    with pytest.raises(ValueError, match="embedding_threshold"):
        Config.model_validate({"hints": {"embedding_threshold": 2}})
