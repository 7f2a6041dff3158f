"""Rubric hints: which of a question's key points an answer seems to mention.

A hint, never a score: peers still vote. The default matcher is lexical and cheap. Text is normalised
(NFKC, case-folded, invisible and direction-control characters dropped, British spellings folded into
American ones, Snowball-stemmed, stop words dropped), phrases from the bank's synonym groups
(questions/synonyms.yaml) collapse into one group term, and each key point becomes a short list of
*concepts*: its content words, each satisfied by the word itself or by any synonym of it. A key point counts
as covered when the answer holds enough of its concept weight; a concept weighs its inverse document
frequency over the bank, so "network" or "model" count for less than "dropout" or "softmax".

An embedding matcher can be added in the config when ``sentence-transformers`` is installed; it is only
imported then.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import snowballstemmer

from bot.questions.model import Bank, Question

log = logging.getLogger(__name__)

# Matching reads at most this much of an answer: more than any chat message holds (Slack's limit is 40,000
# characters), and it bounds the work a pasted novel can cause at reveal.
MAX_MATCH_CHARS = 40_000
# A key point is covered when the answer holds at least this share of its concept weight. Tuned on the
# built-in bank (tests/test_rubric.py): 0.5 finds ~94% of the key points in each question's own reference
# answer and under 2% in answers to questions of other topics; lower shares start to credit those.
COVER_SHARE = 0.5

# Function words, and filler that says nothing about deep learning. Words that take part in technical
# phrases stay content words: "out" (out of memory), "one" (one-hot), "he" (He initialisation), "not" (NaN).
_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing done during each either else etc even every few for from
    further get gets getting give given gives had has have having her here hers herself him himself his how
    however i if in into is it its itself just let lets like may me might more most much must my myself
    neither nor now of on once only onto or other others our ours ourselves own per rather same she should
    since so some such than that the their theirs them themselves then there these they this those though
    through thus to too until upon us use used uses using very via vs versus was we were what when where
    whether which while who whom whose why will with within without would yet you your yours yourself
    yourselves eg ie simply basically actually really usually typically often generally mostly mainly
    quite particular particularly especially various several many lot lots thing things way ways instead
    still already always whereas hence therefore
    """.split()
)

# Characters that change nothing a reader sees but split or disguise words: zero-width spaces and joiners,
# the soft hyphen, word joiners, the byte-order mark, and bidirectional controls (RTL marks, overrides, isolates).
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
# "CNNs", "GPUs", "ReLUs": the stemmer does not know abbreviations, so their plural s goes before case-folding.
_ABBR_PLURAL = re.compile(r"\b([A-Z][A-Za-z0-9]*[A-Z0-9])s\b")
# Words (letters and digits, so "word2vec", "1x1" and "f1" stay whole), decimals ("0.25") and hyphenated
# compounds ("non-linear", "pre-trained"), which match both joined and as separate words. Markdown, code
# fences and punctuation fall between words.
_WORD = re.compile(r"\d+\.\d+|[^\W_]+(?:-[^\W_]+)*")
# British spellings folded into American ones before stemming (the stemmer keeps "normalis" and "normal"
# apart). Folding "noise" or "promise" as well is harmless: both sides of a match are folded the same way.
_ISE = re.compile(r"(?<=[a-z]{3})is(e|es|ed|ing|er|ers|ation|ations|ability|able)$")
_YSE = re.compile(r"(?<=[a-z]{3})ys(e|es|ed|ing|er|ers)$")
_OUR = re.compile(r"(?<=[a-z]{3})our(s|ed|ing|ite|ites)?$")
_CENTRE = re.compile(r"(?<=[a-z]{2})tre(s|d)?$")
_CENTRE_TO = {"": "ter", "s": "ters", "d": "tered"}

# The stemmer object keeps state while it works, and matching may run in worker threads.
_STEMMER = snowballstemmer.stemmer("english")
_STEMMER_LOCK = threading.Lock()
_STOP_STEMS = frozenset(_STEMMER.stemWord(w) for w in _STOP_WORDS)
_GROUP = "≡"  # the prefix of a synonym group's term: _WORD can never produce it


@dataclass(frozen=True)
class Coverage:
    """Which key points (indexes into ``Question.key_points``) an answer seems to mention."""

    covered: tuple[int, ...]
    total: int

    @property
    def count(self) -> int:
        return len(self.covered)


class Matcher(Protocol):
    def match(self, q: Question, text: str) -> Coverage: ...


# -- normalising ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One case-folded word in its matching form: British spelling folded, then Snowball-stemmed."""
    word = _ISE.sub(r"iz\1", word)
    word = _YSE.sub(r"yz\1", word)
    if word not in ("your", "hour", "four", "pour", "tour", "sour", "flour"):
        word = _OUR.sub(r"or\1", word)
    word = _CENTRE.sub(lambda m: _CENTRE_TO[m.group(1) or ""], word)
    with _STEMMER_LOCK:
        return str(_STEMMER.stemWord(word))


def clean(text: str) -> str:
    """NFKC, case-folded, without invisible characters and links: the text the tokeniser reads."""
    # Cut again after NFKC: a single character can expand to eighteen (U+FDFA).
    text = unicodedata.normalize("NFKC", text[:MAX_MATCH_CHARS])[:MAX_MATCH_CHARS]
    text = _ABBR_PLURAL.sub(r"\1", _URL.sub(" ", _INVISIBLE.sub("", text)))
    return text.casefold()


@lru_cache(maxsize=65536)
def _analyse(raw: str) -> tuple[str, ...]:
    """A token as stemmed parts (several for a hyphenated compound), or () for a stop word or a lone letter."""
    if "-" not in raw:
        if raw in _STOP_WORDS or (len(raw) == 1 and not raw.isdigit()):
            return ()
        return (stem(raw),)
    return tuple(stem(p) for p in raw.split("-") if p)


def words(text: str) -> list[tuple[str, ...]]:
    """The content words of a text, stemmed, each as its hyphen-separated parts (most have one part)."""
    return [w for w in map(_analyse, _WORD.findall(clean(text))) if w]


def _joined(parts: Sequence[str]) -> str:
    return stem("".join(parts)) if len(parts) > 1 else parts[0]


# -- synonyms -------------------------------------------------------------------------------------------------


class Synonyms:
    """Synonym groups as phrase tables over stemmed words. A group's term is ``≡`` and its first phrase."""

    def __init__(self, groups: Iterable[Sequence[str]]) -> None:
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        self.groups: dict[str, list[tuple[str, ...]]] = {}
        for group in groups:
            phrases = [p for p in map(self.phrase, group) if p]
            if not phrases:
                continue
            gid = _GROUP + " ".join(phrases[0])
            members = self.groups.setdefault(gid, [])
            for p in phrases:
                if p not in members:
                    members.append(p)
                    self._phrases.setdefault(p[0], []).append((p, gid))
        for table in self._phrases.values():
            table.sort(key=lambda item: -len(item[0]))  # longest phrase first

    @staticmethod
    def phrase(text: str) -> tuple[str, ...]:
        """A synonym as the word sequence it matches (compounds joined)."""
        return tuple(_joined(w) for w in words(text))

    def find(self, seq: Sequence[str], i: int) -> Iterator[tuple[int, str]]:
        """Every synonym phrase starting at seq[i], longest first, as (length, group term)."""
        for phrase, gid in self._phrases.get(seq[i], ()):
            if tuple(seq[i : i + len(phrase)]) == phrase:
                yield len(phrase), gid


# -- matching -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    """One thing a key point says: present when every term of any one alternative is in the answer."""

    alternatives: tuple[tuple[str, ...], ...]
    weight: float

    def present(self, answer: frozenset[str]) -> bool:
        return any(all(t in answer for t in alt) for alt in self.alternatives)


def terms(text: str, synonyms: Synonyms) -> frozenset[str]:
    """Everything in an answer a concept can be satisfied by: its stems, compounds joined and in parts, and
    the group term of every synonym phrase in it."""
    ws = words(text)
    out: set[str] = set()
    joined: list[str] = []
    parts: list[str] = []
    for w in ws:
        out.update(w)
        joined.append(_joined(w))
        parts.extend(w)
    out.update(joined)
    # Phrases are looked for with compounds joined ("nonlinear unit") and split ("batch-norm" as "batch norm").
    for seq in (joined, parts) if len(parts) > len(joined) else (joined,):
        for i in range(len(seq)):
            # Every phrase, not only the longest: "Kaiming init" is He initialisation, and Kaiming too.
            out.update(gid for _, gid in synonyms.find(seq, i))
    return frozenset(out)


def concepts(key_point: str, synonyms: Synonyms, idf: Callable[[str], float]) -> tuple[Concept, ...]:
    """A key point as concepts. A synonym phrase is one concept (its group, or all its own words); any other
    word is one concept (itself; a compound joined or as its content words)."""
    ws = words(key_point)
    seq = [_joined(w) for w in ws]
    out: list[Concept] = []
    seen: set[tuple[tuple[str, ...], ...]] = set()
    i = 0
    while i < len(seq):
        hit = next(synonyms.find(seq, i), None)
        if hit:
            length, gid = hit
            alts = [(gid,), tuple(seq[i : i + length])]
            i += length
        else:
            # A compound counts joined ("allzero") or as its content words ("zero": "all" and "per" say little).
            content = tuple(p for p in ws[i] if p not in _STOP_STEMS) or ws[i]
            alts = [(seq[i],)] + ([content] if len(ws[i]) > 1 else [])
            i += 1
        unique = tuple(dict.fromkeys(alts))
        if unique in seen:
            continue
        seen.add(unique)
        # Weighed by its commonest form, so a rare way of writing a common idea does not make it weigh more.
        out.append(Concept(unique, min(max(idf(t) for t in alt) for alt in unique)))
    return tuple(out)


def is_covered(points: Sequence[Concept], answer: frozenset[str], share: float = COVER_SHARE) -> bool:
    total = sum(c.weight for c in points)
    if total <= 0:
        return False  # a key point with no words (a bare formula) is never claimed
    have = sum(c.weight for c in points if c.present(answer))
    return have >= share * total - 1e-9


class KeywordMatcher:
    """The default matcher. Build it once per bank: each question's key points are analysed once, then cached."""

    def __init__(self, synonyms: Synonyms, documents: Iterable[str] = (), share: float = COVER_SHARE) -> None:
        self.synonyms = synonyms
        self.share = share
        df: Counter[str] = Counter()
        n = 0
        for doc in documents:
            n += 1
            df.update(terms(doc, synonyms))
        self._df = df
        self._n = n
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[tuple[Concept, ...], ...]] = {}

    @classmethod
    def from_bank(cls, bank: Bank, share: float = COVER_SHARE) -> KeywordMatcher:
        """Synonyms from the bank's synonym files; word weights from its questions, answers and key points."""
        docs = (f"{q.question}\n{q.answer}\n" + "\n".join(q.key_points) for q in bank.in_order())
        return cls(Synonyms(bank.synonyms.values()), docs, share)

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; a term the bank never uses counts as rare."""
        return math.log((1 + self._n) / (1 + self._df.get(term, 0))) + 1.0

    def key_points(self, q: Question) -> tuple[tuple[Concept, ...], ...]:
        key = (q.id, q.key_points)
        cached = self._cache.get(key)
        if cached is None:
            cached = tuple(concepts(p, self.synonyms, self.idf) for p in q.key_points)
            self._cache[key] = cached
        return cached

    def terms(self, text: str) -> frozenset[str]:
        return terms(text, self.synonyms)

    def match_terms(self, q: Question, answer: frozenset[str]) -> Coverage:
        points = self.key_points(q)
        return Coverage(tuple(i for i, p in enumerate(points) if is_covered(p, answer, self.share)), len(points))

    def match(self, q: Question, text: str) -> Coverage:
        return self.match_terms(q, self.terms(text))


# -- optional: sentence embeddings -------------------------------------------------------------------------------

Encode = Callable[[Sequence[str]], Sequence[Sequence[float]]]
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
MAX_SENTENCES = 64


class RubricError(Exception):
    """An optional matcher cannot be used as configured; the message says what to do."""


class EmbeddingMatcher:
    """A key point is covered when some sentence of the answer lies close to it in an embedding space.

    ``encode`` turns texts into vectors (any model: sentence-transformers through load_embedding_matcher, or a
    function of your own). Key-point vectors are computed once per question."""

    def __init__(self, encode: Encode, threshold: float = 0.6) -> None:
        self.encode = encode
        self.threshold = threshold
        self._cache: dict[tuple[str, tuple[str, ...]], list[list[float]]] = {}

    def _unit(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for v in self.encode(texts):
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out

    def match(self, q: Question, text: str) -> Coverage:
        key = (q.id, q.key_points)
        points = self._cache.get(key)
        if points is None:
            points = self._cache[key] = self._unit(list(q.key_points))
        cleaned = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text[:MAX_MATCH_CHARS]))
        sentences = [s.strip() for s in _SENTENCE_END.split(cleaned) if len(s.strip()) > 2][:MAX_SENTENCES]
        if not sentences:
            return Coverage((), len(points))
        vectors = self._unit(sentences)
        hit = tuple(
            i
            for i, p in enumerate(points)
            if max(sum(a * b for a, b in zip(p, v, strict=False)) for v in vectors) >= self.threshold
        )
        return Coverage(hit, len(points))


class EitherMatcher:
    """A key point is covered when any of the matchers finds it: embeddings add paraphrases to keywords."""

    def __init__(self, *matchers: Matcher) -> None:
        self.matchers = matchers

    def match(self, q: Question, text: str) -> Coverage:
        found: set[int] = set()
        total = len(q.key_points)
        for m in self.matchers:
            found.update(m.match(q, text).covered)
        return Coverage(tuple(sorted(found)), total)


def load_embedding_matcher(model: str, threshold: float = 0.6) -> EmbeddingMatcher:
    """An EmbeddingMatcher over a sentence-transformers model (a name in the local cache, or a directory).

    sentence-transformers is not a dependency of the bot: it is imported here and only here."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise RubricError(
            "hints.embedding_model is set, but sentence-transformers is not installed "
            "(pip install sentence-transformers), so hints use keywords only"
        ) from None
    try:
        st: Any = SentenceTransformer(model)
    except Exception as exc:  # the library raises many kinds (OSError, ValueError, HTTP errors)
        raise RubricError(f"cannot load the embedding model '{model}' ({exc}), so hints use keywords only") from None

    def encode(texts: Sequence[str]) -> Sequence[Sequence[float]]:
        return [list(map(float, v)) for v in st.encode(list(texts))]

    return EmbeddingMatcher(encode, threshold)


def matcher_for(bank: Bank, embedding_model: str | None = None, threshold: float = 0.6) -> Matcher:
    """The bank's keyword matcher, joined by an embedding matcher when one is configured and can be loaded.
    Slow the first time (the bank's word weights, the model): call it off the event loop."""
    keywords = KeywordMatcher.from_bank(bank)
    if not embedding_model:
        return keywords
    try:
        return EitherMatcher(keywords, load_embedding_matcher(embedding_model, threshold))
    except RubricError as exc:
        log.warning("%s", exc)
        return keywords


def hints(matcher: Matcher, q: Question, answers: Mapping[int, str]) -> dict[int, Coverage]:
    """Coverage of each answer (by answer id) of one question."""
    return {aid: matcher.match(q, text) for aid, text in answers.items()}
