"""Questions as the rest of the bot sees them, and the rules every question must meet."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ANSWER_CHARS = 1800  # one chat message on both Discord (2,000) and Slack, with room for our framing
MAX_QUESTION_CHARS = 500
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
TOPIC_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"


class QuestionSpec(BaseModel):
    """The schema of one question in a bank file (kept in step with questions/schema.json by a test)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=ID_PATTERN)
    topic: str = Field(pattern=TOPIC_PATTERN)
    difficulty: Literal["easy", "medium", "hard"]
    tags: list[str] = Field(default_factory=list)
    question: str = Field(min_length=10, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(min_length=40, max_length=MAX_ANSWER_CHARS)
    key_points: list[str] = Field(min_length=3, max_length=6)
    follow_ups: list[str] = Field(default_factory=list, max_length=4)
    seeds: list[str] = Field(default_factory=list)
    legacy: bool = False

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.match(TAG_PATTERN, t):
                raise ValueError(f"tag '{t}' must be lowercase letters, digits and hyphens")
        if len(set(v)) != len(v):
            raise ValueError("a tag is listed twice")
        return v

    @field_validator("key_points", "follow_ups")
    @classmethod
    def _items(cls, v: list[str]) -> list[str]:
        for item in v:
            if not isinstance(item, str) or len(item.strip()) < 3:
                raise ValueError("each item must be a sentence of text")
            if len(item) > 300:
                raise ValueError("each item must be at most 300 characters")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[str]) -> list[str]:
        for ref in v:
            if not re.match(r"^[0-9]{3}#[0-9A-Za-z-]+$", ref):
                raise ValueError(f"seed ref '{ref}' must look like 000#12")
        return v


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    difficulty: str
    question: str
    answer: str
    key_points: tuple[str, ...]
    tags: tuple[str, ...] = ()
    follow_ups: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()
    legacy: bool = False
    source: str = ""  # "path:line", for error messages

    @classmethod
    def from_spec(cls, spec: QuestionSpec, source: str) -> Question:
        return cls(
            id=spec.id,
            topic=spec.topic,
            difficulty=spec.difficulty,
            question=spec.question,
            answer=spec.answer,
            key_points=tuple(spec.key_points),
            tags=tuple(spec.tags),
            follow_ups=tuple(spec.follow_ups),
            seeds=tuple(spec.seeds),
            legacy=spec.legacy,
            source=source,
        )


@dataclass
class Bank:
    """All loaded questions by id, the declared topics, and what went wrong while loading."""

    questions: dict[str, Question] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Synonym groups for rubric hints (bot/rubric.py): a canonical term -> every way of saying it, itself first.
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _sorted: list[Question] | None = field(default=None, repr=False, compare=False)

    def get(self, question_id: str) -> Question | None:
        return self.questions.get(question_id)

    def in_order(self) -> list[Question]:
        """Every question sorted by id: a stable order, so a seeded random choice is the same everywhere."""
        if self._sorted is None or len(self._sorted) != len(self.questions):
            self._sorted = sorted(self.questions.values(), key=lambda q: q.id)
        return self._sorted

    def by_topic(self) -> dict[str, list[Question]]:
        out: dict[str, list[Question]] = {t: [] for t in self.topics}
        for q in self.questions.values():
            out.setdefault(q.topic, []).append(q)
        return out

    def resolve_topic(self, text: str) -> str | None:
        """A topic id from what a member typed: the id, its title, or an unambiguous prefix."""
        t = text.strip().lower()
        if t in self.topics:
            return t
        for tid, title in self.topics.items():
            if title.lower() == t:
                return tid
        starts = [tid for tid, title in self.topics.items() if tid.startswith(t) or title.lower().startswith(t)]
        return starts[0] if len(starts) == 1 else None
