"""``interview-bot questions lint`` and ``questions stats``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bot.config import Config
from bot.questions.loader import BUILTIN_BANK, load_bank


def _paths(paths: list[Path], config: Config) -> list[Path]:
    if paths:
        return paths
    return ([BUILTIN_BANK] if config.include_builtin_bank else []) + [Path(p) for p in config.question_dirs]


def lint_command(paths: list[Path], config: Config) -> int:
    targets = _paths(paths, config)
    # A team bank may use our topics without re-declaring them: load ours for topic names only. Our synonym
    # groups come too, since a team's synonyms must not clash with them when the bot loads both.
    ours = [BUILTIN_BANK / "topics.yaml", BUILTIN_BANK / "synonyms.yaml"]
    extra_topics = [f for f in ours if f not in paths and f.exists()] if paths else []
    bank, issues = load_bank(extra_topics + targets, near_duplicates=True)
    for issue in issues:
        print(issue)
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    print(
        f"{len(bank.questions)} questions checked in {', '.join(str(p) for p in targets)}: "
        f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    )
    return 1 if errors else 0


def stats_command(paths: list[Path], config: Config) -> int:
    bank, issues = load_bank(_paths(paths, config))
    by = Counter((q.topic, q.difficulty) for q in bank.questions.values())
    width = max((len(t) for t in bank.topics), default=10)
    print(f"{'topic':<{width}}  easy  medium  hard  total")
    for topic in sorted(bank.topics):
        e, m, h = (by[(topic, d)] for d in ("easy", "medium", "hard"))
        print(f"{topic:<{width}}  {e:>4}  {m:>6}  {h:>4}  {e + m + h:>5}")
    totals = Counter(q.difficulty for q in bank.questions.values())
    print(
        f"{'all':<{width}}  {totals['easy']:>4}  {totals['medium']:>6}  {totals['hard']:>4}  {len(bank.questions):>5}"
    )
    legacy = sum(1 for q in bank.questions.values() if q.legacy)
    if legacy:
        print(f"({legacy} legacy questions, not posted unless a channel opts in)")
    if issues:
        print(f"{len(issues)} problem(s) while loading: run `interview-bot questions lint`")
    return 0
