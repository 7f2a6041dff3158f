"""The question bank: the built-in bank is clean, and the linter reports every kind of error with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.questions import yamlsafe
from bot.questions.loader import BUILTIN_BANK, bank_files, load_bank
from bot.questions.model import MAX_ANSWER_CHARS
from bot.questions.yamlsafe import YamlProblem, load

DATA = Path(__file__).parent / "data"


def test_builtin_bank_is_lint_clean_and_large() -> None:
    bank, issues = load_bank([BUILTIN_BANK], near_duplicates=True)
    assert [str(i) for i in issues] == []
    assert len(bank.questions) >= 200
    assert set(q.topic for q in bank.questions.values()) <= set(bank.topics)
    for level in ("easy", "medium", "hard"):
        assert sum(q.difficulty == level for q in bank.questions.values()) >= 20


def test_json_schema_agrees_with_the_loader() -> None:
    schema = json.loads((BUILTIN_BANK / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for f in bank_files([BUILTIN_BANK]):
        jsonschema.validate(yaml.safe_load(f.read_text()), schema)
    assert schema["$defs"]["question"]["properties"]["answer"]["maxLength"] == MAX_ANSWER_CHARS


def test_answers_render_on_both_platforms() -> None:
    bank, _ = load_bank([BUILTIN_BANK])
    for q in bank.questions.values():
        # Code blocks may hold anything (a "# comment" is not a heading): check the prose around them.
        text = "".join(part for i, part in enumerate(q.answer.split("```")) if i % 2 == 0)
        assert "$$" not in text and "\\frac" not in text, q.id  # no LaTeX
        assert not any(line.lstrip().startswith("#") for line in text.splitlines()), q.id  # no headings
        assert "<" not in text.replace("<=", "").replace("< ", "").replace("<-", "") or "`" in text, q.id
        assert "](" not in text, q.id  # no links
        assert 3 <= len(q.key_points) <= 6, q.id


def test_seed_inventory_is_fully_accounted_for() -> None:
    """Every seed question is covered by a question, or left out with a reason in the bank's README."""
    inventory = yaml.safe_load((BUILTIN_BANK / "_review" / "seed-inventory.yaml").read_text())["items"]
    bank, _ = load_bank([BUILTIN_BANK])
    covered = {ref for q in bank.questions.values() for ref in q.seeds}
    readme = (BUILTIN_BANK / "README.md").read_text()
    missing = [i["ref"] for i in inventory if i["ref"] not in covered and f"`{i['ref']}`" not in readme]
    assert missing == []
    unknown = covered - {i["ref"] for i in inventory}
    assert unknown == set()


def test_broken_bank_reports_every_error_with_its_line() -> None:
    bank, issues = load_bank([DATA / "broken-bank"], near_duplicates=True)
    text = [str(i) for i in issues]
    path = str(DATA / "broken-bank" / "broken.yaml")
    expected = [
        f"{path}:11: error: duplicate id 'team-good-question' (first at {path}:5)",
        f"{path}:17: error: question 'team-missing-answer': missing required field 'answer'",
        f"{path}:23: error: question 'team-unknown-topic': unknown topic 'astrology'",
        f"{path}:30: error: question 'team-bad-difficulty': 'difficulty' must be one of 'easy', 'medium' or 'hard'",
        f"{path}:34: error: question 'team-near-duplicate' is nearly the same as 'team-good-question'",
    ]
    for e in expected:
        assert any(t.startswith(e) for t in text), (e, text)
    assert len(text) == len(expected)
    # The valid questions still load: a broken team bank never takes the good questions down with it.
    assert set(bank.questions) == {"team-good-question", "team-near-duplicate"}


def write(tmp_path: Path, body: str | bytes) -> Path:
    f = tmp_path / "bank.yaml"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    return f


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("questions:\n  - id: a\n    topic: [unclosed\n", 4, "invalid YAML"),
        ("a: &x [1]\nb: *x\n", 2, "aliases"),
        ("questions: !!python/object:os.system {}\n", 1, "custom YAML tags are not allowed"),
        ("questions: !include other.yaml\n", 1, "custom YAML tags are not allowed"),
        ("questions: []\nquestions: []\n", 2, "appears twice"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("questions: {}\n", 1, "must be a list"),
        ("stuff: 1\n", 1, "unknown top-level key 'stuff'"),
        (b"questions: []\n# caf\xe9\n", 2, "not valid UTF-8"),
    ],
)
def test_hostile_and_malformed_files(tmp_path: Path, body: str | bytes, line: int, message: str) -> None:
    f = write(tmp_path, body)
    _, issues = load_bank([f])
    assert issues and issues[0].line == line and message in issues[0].message, issues


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lol = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(ord("b"), ord("j")):
        prev = chr(i - 1)
        lol += f"{chr(i)}: &{chr(i)} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    _, issues = load_bank([write(tmp_path, lol)])
    assert "aliases" in issues[0].message


def test_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(YamlProblem, match="larger than"):
        load("x: " + "y" * (3 * 1024 * 1024))


def test_over_long_answer(tmp_path: Path) -> None:
    q = {
        "topics": {"t1": "T"},
        "questions": [
            {
                "id": "t1-long",
                "topic": "t1",
                "difficulty": "easy",
                "question": "A question with a very long answer?",
                "answer": "word " * 400,
                "key_points": ["a1", "b1", "c1"],
            }
        ],
    }
    _, issues = load_bank([write(tmp_path, yaml.safe_dump(q))])
    assert any("'answer' is longer than 1800 characters" in i.message for i in issues)


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_loader_survives_any_text(text: str) -> None:
    try:
        load(text)
    except YamlProblem as exc:
        assert exc.line >= 1 and exc.message


def test_lint_cli_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["questions", "lint", str(DATA / "broken-bank")]) == 1
    out = capsys.readouterr().out
    assert "broken.yaml:17: error" in out and "5 errors" in out
    assert main(["questions", "lint"]) == 0
    assert main(["questions", "stats"]) == 0
    assert "total" in capsys.readouterr().out


def test_team_bank_is_loaded_beside_ours_and_a_broken_one_does_not_stop_start(tmp_path: Path) -> None:
    from bot.config import Config
    from bot.runtime import load_configured_bank

    cfg = Config.model_validate({"question_dirs": [str(DATA / "broken-bank"), str(tmp_path / "missing")]})
    bank = load_configured_bank(cfg)
    assert "team-good-question" in bank.questions and len(bank.questions) > 200
    assert any("no such file or directory" in p for p in bank.problems)


@pytest.mark.parametrize("loader", yamlsafe._LOADERS, ids=lambda c: c.__name__)
def test_both_yaml_loaders_keep_the_same_rules(loader: type) -> None:
    """libyaml parses when it is installed, pure Python when not: the rules and line numbers must not differ."""
    ok = yamlsafe.load("a: 1\nb:\n  c: [x, y]\n", loader)
    assert ok == {"a": 1, "b": {"c": ["x", "y"]}} and ok.lines.keys == {"a": 1, "b": 2}
    cases = {
        "a: &x [1, 2]\nb: *x\n": (2, "aliases"),
        "a: 1\nb: 2\na: 3\n": (3, "appears twice"),
        "a: !!python/object:os.system x\n": (1, "custom YAML tags"),
        "a: " + "[" * 60 + "]" * 60 + "\n": (1, "nested more than"),
        "a: [1, 2\nb: 3\n": (2, "invalid YAML"),
        "? [k]\n: v\n": (1, "plain text"),
    }
    for text, (line, words) in cases.items():
        with pytest.raises(yamlsafe.YamlProblem) as err:
            yamlsafe.load(text, loader)
        assert words in err.value.message and err.value.line == line, (text, err.value.line, err.value.message)
