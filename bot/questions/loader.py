"""Reading bank directories into a Bank, collecting every problem with its file and line.

The same pass serves ``questions lint`` (report everything, exit non-zero) and start-up (keep every valid
question, report the rest, never crash): a broken team bank must not take the bot down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.questions.model import TOPIC_PATTERN, Bank, Question, QuestionSpec
from bot.questions.yamlsafe import MAX_FILE_BYTES, LineMap, YamlProblem, load


def _builtin_bank() -> Path:
    """The repository's questions/ (a checkout or editable install), else the copy a plain install put in
    <prefix>/share/interview-bot/questions."""
    import sys

    here = Path(__file__).resolve().parents[2] / "questions"
    installed = Path(sys.prefix) / "share" / "interview-bot" / "questions"
    return here if (here / "topics.yaml").exists() or not (installed / "topics.yaml").exists() else installed


BUILTIN_BANK = _builtin_bank()


@dataclass(frozen=True, order=True)
class Issue:
    path: str
    line: int
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass
class _Parsed:
    spec: QuestionSpec
    path: str
    line: int
    topic_line: int


def bank_files(paths: Iterable[Path]) -> list[Path]:
    """YAML files under the given files/directories. Names starting with '_' or '.' are not bank files."""
    out: list[Path] = []
    for p in paths:
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if f.suffix in (".yaml", ".yml") and f.is_file() and not any(s.startswith(("_", ".")) for s in rel):
                    out.append(f)
    return out


def load_bank(paths: Iterable[Path], *, near_duplicates: bool = False) -> tuple[Bank, list[Issue]]:
    issues: list[Issue] = []
    topics: dict[str, str] = {}
    synonyms: dict[str, _Group] = {}
    parsed: list[_Parsed] = []
    path_list = list(paths)
    for p in path_list:
        if not p.exists():
            issues.append(Issue(str(p), 1, "error", "no such file or directory"))
    files = bank_files(path_list)
    for f in files:
        _read_file(f, topics, parsed, issues, synonyms)

    bank = Bank(topics=topics, synonyms={k: tuple(g.terms) for k, g in synonyms.items()})
    issues.extend(_check_synonyms(synonyms))
    seen: dict[str, _Parsed] = {}
    for item in parsed:
        spec = item.spec
        where = f"{item.path}:{item.line}"
        if spec.id in seen:
            first = seen[spec.id]
            issues.append(
                Issue(item.path, item.line, "error", f"duplicate id '{spec.id}' (first at {first.path}:{first.line})")
            )
            continue
        seen[spec.id] = item
        if spec.topic not in topics:
            known = ", ".join(sorted(topics)) or "none declared"
            issues.append(
                Issue(
                    item.path,
                    item.topic_line,
                    "error",
                    f"question '{spec.id}': unknown topic '{spec.topic}' (declare it under 'topics:'; known: {known})",
                )
            )
            continue
        bank.questions[spec.id] = Question.from_spec(spec, where)
    if near_duplicates:
        issues.extend(find_near_duplicates([seen[q] for q in bank.questions]))
    issues.sort()
    bank.problems = [str(i) for i in issues if i.severity == "error"]
    return bank, issues


def _read_file(
    f: Path, topics: dict[str, str], parsed: list[_Parsed], issues: list[Issue], synonyms: dict[str, _Group]
) -> None:
    path = str(f)
    try:
        # A huge file is refused before it is read whole into memory.
        if f.stat().st_size > MAX_FILE_BYTES:
            issues.append(Issue(path, 1, "error", f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"))
            return
        raw = f.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        issues.append(Issue(path, line, "error", "the file is not valid UTF-8 text"))
        return
    except OSError as exc:
        issues.append(Issue(path, 1, "error", f"cannot read the file: {exc.strerror}"))
        return
    try:
        data = load(text)
    except YamlProblem as exc:
        issues.append(Issue(path, exc.line, "error", exc.message))
        return
    if data is None:
        issues.append(Issue(path, 1, "warning", "the file is empty"))
        return
    if not isinstance(data, LineMap):
        issues.append(
            Issue(path, 1, "error", "a bank file must be a mapping with 'questions:', 'topics:' and/or 'synonyms:'")
        )
        return
    for key in data:
        if key not in ("questions", "topics", "synonyms"):
            line = data.lines.keys.get(str(key), 1)
            issues.append(
                Issue(path, line, "error", f"unknown top-level key '{key}' (expected questions, topics, synonyms)")
            )
    _read_topics(data, path, topics, issues)
    _read_synonyms(data, path, synonyms, issues)
    questions = data.get("questions", [])
    if questions is None:
        return
    if not isinstance(questions, list):
        line = data.lines.keys.get("questions", 1)
        issues.append(Issue(path, line, "error", "'questions' must be a list of questions"))
        return
    for index, item in enumerate(questions):
        _read_question(item, index, data, path, parsed, issues)


def _read_topics(data: LineMap, path: str, topics: dict[str, str], issues: list[Issue]) -> None:
    declared = data.get("topics")
    if declared is None:
        return
    line = data.lines.keys.get("topics", 1)
    if not isinstance(declared, LineMap):
        issues.append(Issue(path, line, "error", "'topics' must map topic ids to titles (fundamentals: Basics)"))
        return
    for tid, title in declared.items():
        tline = declared.lines.keys.get(str(tid), line)
        if not isinstance(tid, str) or not re.match(TOPIC_PATTERN, tid):
            issues.append(Issue(path, tline, "error", f"topic id '{tid}' must be lowercase letters, digits, hyphens"))
        elif not isinstance(title, str) or not title.strip():
            issues.append(Issue(path, tline, "error", f"topic '{tid}' needs a title"))
        elif tid in topics and topics[tid] != title:
            issues.append(Issue(path, tline, "warning", f"topic '{tid}' declared again with another title"))
        else:
            topics[tid] = title


MAX_SYNONYM_CHARS = 80
MAX_SYNONYMS_PER_GROUP = 30


@dataclass
class _Group:
    """One synonym group as read so far: its terms (the key first) and where each term was declared."""

    terms: list[str]
    where: list[tuple[str, int]]  # (path, line) of each term


def _read_synonyms(data: LineMap, path: str, synonyms: dict[str, _Group], issues: list[Issue]) -> None:
    """``synonyms:`` maps a term to the other ways of writing it. A key declared in several files (a team bank
    adding to ours) merges into one group."""
    declared = data.get("synonyms")
    if declared is None:
        return
    line = data.lines.keys.get("synonyms", 1)
    if not isinstance(declared, LineMap):
        issues.append(Issue(path, line, "error", "'synonyms' must map a term to a list (relu: [rectifier])"))
        return
    for term, others in declared.items():
        tline = declared.lines.keys.get(str(term), line)
        if isinstance(others, str):
            others = [others]
        if not isinstance(others, list) or not others:
            issues.append(Issue(path, tline, "error", f"synonyms of '{term}' must be a non-empty list of terms"))
            continue
        terms = [term, *others]
        bad = [t for t in terms if not isinstance(t, str) or not t.strip() or len(t) > MAX_SYNONYM_CHARS]
        if bad:
            issues.append(
                Issue(
                    path,
                    tline,
                    "error",
                    f"synonyms of '{term}': each term must be text of 1 to {MAX_SYNONYM_CHARS} characters "
                    f"(not {bad[0]!r})",
                )
            )
            continue
        key = str(term).strip().casefold()
        group = synonyms.setdefault(key, _Group([], []))
        for t in terms:
            t = str(t).strip()
            if t.casefold() not in (g.casefold() for g in group.terms):
                group.terms.append(t)
                group.where.append((path, tline))
        if len(group.terms) > MAX_SYNONYMS_PER_GROUP:
            issues.append(
                Issue(path, tline, "error", f"synonyms of '{term}': at most {MAX_SYNONYMS_PER_GROUP} terms in a group")
            )
            del group.terms[MAX_SYNONYMS_PER_GROUP:], group.where[MAX_SYNONYMS_PER_GROUP:]


def _check_synonyms(synonyms: dict[str, _Group]) -> list[Issue]:
    """Terms the matcher cannot use: only stop words, or the same words in two groups (hints would then
    depend on which group happened to be read first)."""
    from bot.rubric import Synonyms

    issues: list[Issue] = []
    owner: dict[tuple[str, ...], str] = {}
    for key, group in synonyms.items():
        for t, (path, line) in zip(group.terms, group.where, strict=True):
            phrase = Synonyms.phrase(t)
            if not phrase:
                issues.append(Issue(path, line, "warning", f"synonym '{t}' of '{key}' has no words to match on"))
            elif phrase in owner and owner[phrase] != key:
                issues.append(
                    Issue(path, line, "error", f"synonym '{t}' of '{key}' is also in the group of '{owner[phrase]}'")
                )
            else:
                owner.setdefault(phrase, key)
    return issues


def _read_question(item: Any, index: int, data: LineMap, path: str, parsed: list[_Parsed], issues: list[Issue]) -> None:
    if not isinstance(item, LineMap):
        line = data.lines.keys.get("questions", 1)
        issues.append(Issue(path, line, "error", f"question #{index + 1} must be a mapping of fields"))
        return
    line = item.lines.start
    qid = item.get("id") if isinstance(item.get("id"), str) else f"#{index + 1}"
    try:
        spec = QuestionSpec.model_validate(dict(item))
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            fline = item.lines.keys.get(field, line)
            issues.append(Issue(path, fline, "error", f"question '{qid}': {_describe(err)}"))
        return
    parsed.append(_Parsed(spec, path, line, item.lines.keys.get("topic", line)))


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"missing required field '{loc}'"
    if kind == "extra_forbidden":
        return f"unknown field '{loc}' (see questions/AUTHORING.md for the fields)"
    if kind == "string_too_long":
        return f"'{loc}' is longer than {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"'{loc}' is shorter than {ctx.get('min_length')} characters"
    if kind in ("too_short", "too_long"):
        return f"'{loc}': {err['msg'].lower()}"
    if kind == "literal_error":
        return f"'{loc}' must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"'{loc}' must be lowercase letters, digits and hyphens (pattern {ctx.get('pattern')})"
    return f"'{loc}': {str(err['msg']).removeprefix('Value error, ')}"


_STOP = frozenset(
    "a an the of in on for to and or is are what why how when which does do can you your it its be with "
    "between vs versus from by as at that this these those explain describe define".split()
)


def _tokens(text: str) -> frozenset[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return frozenset(w.rstrip("s") if len(w) > 3 else w for w in words if w not in _STOP)


def find_near_duplicates(items: list[_Parsed]) -> list[Issue]:
    """Questions whose wording is nearly the same: a likely duplicate that should be merged."""
    import difflib

    issues: list[Issue] = []
    toks = [(_tokens(p.spec.question), p) for p in items]
    for i, (ta, a) in enumerate(toks):
        for tb, b in toks[i + 1 :]:
            if len(ta) < 3 or len(tb) < 3:
                continue
            jaccard = len(ta & tb) / len(ta | tb)
            if jaccard < 0.7:
                continue
            ratio = difflib.SequenceMatcher(None, a.spec.question.lower(), b.spec.question.lower()).ratio()
            if jaccard >= 0.85 or ratio >= 0.85:
                issues.append(
                    Issue(
                        b.path,
                        b.line,
                        "error",
                        f"question '{b.spec.id}' is nearly the same as '{a.spec.id}' ({a.path}:{a.line}): "
                        "merge them or make the difference clear",
                    )
                )
    return issues
