"""Faults and abuse (issue 8): hostile input to the command parser, the setup options, the question loader
and the renderers. Each property says what any input gives: a clear answer, never a stack trace, and nothing
changed when it is refused. Example counts come from the hypothesis profile (RELIABILITY=full for the long run).
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.discord.render import to_kwargs
from adapters.slack.render import to_blocks, to_message
from bot.clock import ManualClock
from bot.commands.parse import ParseError, parse, parse_duration
from bot.commands.spec import BY_PATH, COMMANDS
from bot.events import Actor, Place, TextCommand
from bot.messages import ballot, published_answer
from bot.models import Answer, Round, RoundState
from bot.ports import PlatformError
from bot.questions.loader import load_bank
from bot.questions.model import Bank
from bot.render import Field, Message, Reply, UserText
from bot.runtime import Runtime, build
from bot.store.db import create_engine
from bot.store.tables import channels
from tests.conftest import MONDAY_0800, RecordingPlatform, make_config

pytestmark = pytest.mark.faults

# What members type to break things: mass mentions on both platforms, Markdown, unbalanced fences,
# invisible and direction-changing characters, NUL and other controls, very long and empty text.
HOSTILE = [
    "",
    " ",
    "@everyone",
    "@here",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@123456789012345678>",
    "<@!123456789012345678>",
    "<@&456789012345678901>",
    "<@U0123ABC>",
    "<#C0123|general>",
    "**bold** __under__ ~~strike~~ `code` ||spoiler||",
    "```",
    "```python\nprint('open')",
    "````",
    "`",
    "> quote\n>>> block",
    "\u200b",
    "\u2060",
    "\ufeff",
    "\u202eevil\u202c",
    "\u2067isolated",
    "a\x00b",
    "\x1b[31mred\x1b[0m",
    "&amp; &lt; &gt; & < >",
    "名前 اسم שם",
    "😀" * 50,
    "x" * 5000,
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE), st.text(max_size=300), st.text(alphabet="`@<>!&*_~\n#|", max_size=60)
)


def _loop_runtime(tmp_path: Path, bank: Bank, **config: object) -> tuple[asyncio.AbstractEventLoop, Runtime]:
    """A runtime on its own event loop, for hypothesis tests (they are synchronous functions)."""
    loop = asyncio.new_event_loop()
    url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    platform = RecordingPlatform()
    rt = loop.run_until_complete(
        build(
            make_config(url, **config),
            {"shell": platform},
            clock=ManualClock(MONDAY_0800),
            bank=bank,
            db=create_engine(url),
        )
    )
    return loop, rt


class Fuzz(tuple[asyncio.AbstractEventLoop, Runtime]):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing case: not the whole bank
        return "<runtime>"


@pytest.fixture
def fuzz_runtime(tmp_path: Path, bank: Bank) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    loop, rt = _loop_runtime(tmp_path, bank, admins={"shell": ["host"]})
    try:
        yield Fuzz((loop, rt))
    finally:
        loop.run_until_complete(rt.close())
        loop.close()


PLACE = Place("shell", "local", "general", None, "general")
HOST = Actor("shell", "local", "host", "host")
MEMBER = Actor("shell", "local", "mallory", "mallory")


async def _table(rt: Runtime) -> list[tuple[Any, ...]]:
    async with rt.engine.read() as conn:
        return [tuple(r) for r in (await conn.execute(select(channels).order_by(channels.c.id))).all()]


async def _say(rt: Runtime, actor: Actor, text: str) -> str:
    out = await rt.core.handle(TextCommand(actor, PLACE, text))
    assert out and all(isinstance(r, Reply) for r in out)
    return "\n".join(f"{r.message.title or ''}\n{r.message.plain}".strip() for r in out if isinstance(r, Reply))


# -- commands --------------------------------------------------------------------------------------------

SETUP = BY_PATH[("quiz", "admin", "setup")]
SETUP_KEYS = [o.name for o in SETUP.options] + [a for o in SETUP.options for a in o.aliases]
SETUP_VALUES = [
    "25:00",
    "24:60",
    "23:59",
    "9:5",
    "-1:00",
    "09:00:00",
    "٠٩:٠٠",
    "Mars/Olympus",
    "Europe/Berlin",
    "europe/berlin",
    "../../etc/passwd",
    "UTC",
    "a" * 300,
    "8h",
    "90m",
    "0m",
    "4m",
    "99999h",
    "9" * 400 + "h",
    "1.5h",
    "1h30m",
    "²",
    "٣h",
    "-5m",
    "1e9",
    "mon-fri",
    "fri-mon",
    "montag",
    "daily",
    "weekends",
    ",,",
    "mon,,fri",
    "sun-",
    "0",
    "1",
    "25",
    "26",
    "-3",
    "007",
    "3.5",
    "cnn",
    "all",
    "astrology",
    "cnn,,training",
    "thread",
    "blind",
    "BLIND",
    "ramp",
    "any",
    "yes",
    "maybe",
    "fri@17:00",
    "sun@25:00",
    "@",
    "fri@",
    "@17:00",
    "#general",
    "<#C0123|general>",
    "<#999>",
    "@everyone",
    "<!channel>",
    "two words",
    "",
    "\u202e",
    "\u200b",
    "a\x00b",
    "'",
    '"',
]
setup_word = st.tuples(
    st.sampled_from([*SETUP_KEYS, "colour", "TIME", "Time-Zone", "x"]),
    st.sampled_from(["=", ":"]),
    st.one_of(st.sampled_from(SETUP_VALUES), st.text(max_size=20)),
).map(lambda t: f"{t[0]}{t[1]}{shlex.quote(t[2])}")


@given(words=st.lists(setup_word, max_size=5))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_any_setup_is_saved_or_explained_and_a_refusal_changes_nothing(
    fuzz_runtime: tuple[asyncio.AbstractEventLoop, Runtime], words: list[str]
) -> None:
    loop, rt = fuzz_runtime
    line = "quiz admin setup " + " ".join(words)
    before = loop.run_until_complete(_table(rt))
    out = loop.run_until_complete(_say(rt, HOST, line))
    assert "Something went wrong" not in out, line
    if not out.startswith(("Daily question set up", "Settings saved")):
        assert "Usage: `/quiz admin setup" in out or "Try `/quiz help`" in out, (line, out)
        assert loop.run_until_complete(_table(rt)) == before, line


VOCABULARY = sorted({w for c in COMMANDS for w in c.path[1:]} | {"quiz", "/quiz", "admin", "help"})
command_text = st.lists(
    st.one_of(st.sampled_from(VOCABULARY), setup_word, st.sampled_from(HOSTILE[:20]), st.text(max_size=12)),
    max_size=6,
).map(" ".join)


@given(text=command_text)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_any_command_text_from_a_member_gets_an_answer_and_changes_no_settings(
    fuzz_runtime: tuple[asyncio.AbstractEventLoop, Runtime], text: str
) -> None:
    loop, rt = fuzz_runtime
    before = loop.run_until_complete(_table(rt))
    out = loop.run_until_complete(_say(rt, MEMBER, text))
    assert out and "Something went wrong" not in out, text
    assert loop.run_until_complete(_table(rt)) == before, text


@given(text=command_text)
def test_the_parser_gives_a_command_or_a_usage_message(text: str) -> None:
    try:
        parsed = parse(text)
    except ParseError as exc:
        assert exc.message and (exc.spec is None or exc.spec.usage().startswith("/quiz"))
    else:
        assert parsed.spec in COMMANDS and all(isinstance(v, str) for v in parsed.options.values())


@given(st.one_of(st.sampled_from(SETUP_VALUES), st.text(max_size=40)))
def test_durations_are_minutes_or_a_value_error(value: str) -> None:
    try:
        minutes = parse_duration(value)
    except ValueError as exc:
        assert "not a duration" in str(exc)
    else:
        assert 0 <= minutes < 10**12


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("time=25:00", "not a time of day"),
        ("time=24:60", "not a time of day"),
        ("timezone=Mars/Olympus", "not an IANA timezone"),
        ("days=someday", "not a weekday"),
        ("days=sun-", "not a weekday range"),
        ("answer=0m", "greater than or equal to 5"),
        ("answer=99999h", "less than or equal to 1380"),
        ("answer=" + "9" * 400 + "h", "not a duration"),  # was an OverflowError: "Something went wrong"
        ("cap=0", "greater than or equal to 1"),
        ("cap=26", "less than or equal to 25"),
        ("cap=²", "whole number"),  # was int("²"): "invalid literal for int()"
        ("channel=@everyone", "is not a channel"),
        ("channel='two words'", "is not a channel"),
        ("colour=red", "`colour` is not an option"),
        ("time=09:00 time=10:00", "`time` is given twice"),
        ("time=09:00 at=10:00", "`time` is given twice"),
        ('tz="Europe/Berlin', "quote is not closed"),
    ],
)
async def test_setup_values_out_of_range_are_explained_and_change_nothing(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime], options: str, expected: str
) -> None:
    from tests.conftest import start_runtime

    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock, admins={"shell": ["host"]})
    await _say(rt, HOST, "quiz admin setup time=08:00")
    before = await _table(rt)
    out = await _say(rt, HOST, f"quiz admin setup {options}")
    assert expected in out and "Usage: `/quiz admin setup" in out, out
    assert await _table(rt) == before
    assert platform.sent == []


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("I can't see #general: invite me first.", "I can't see #general: invite me first."),
        (PlatformError("HTTP 503: upstream"), "couldn't check that I can post in #general: shell did not answer"),
        (PlatformError("Slack said token_revoked", permanent=True), "couldn't check that I can post in #general"),
    ],
)
async def test_setup_in_a_channel_the_bot_cannot_use_is_explained_and_changes_nothing(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime], problem: Any, expected: str
) -> None:
    from tests.conftest import start_runtime
    from tests.test_faults_permissions import snapshot

    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock, admins={"shell": ["host"]})
    await _say(rt, HOST, "quiz admin setup time=08:00")
    before = await snapshot(rt)
    platform.channel_problems["general"] = problem
    out = await _say(rt, HOST, "quiz admin setup time=10:00 cap=1")
    assert expected in out and "That setup was not saved." in out and "Usage:" not in out, out
    assert ("try again" in out) == (isinstance(problem, PlatformError) and not problem.permanent), out
    assert await snapshot(rt) == before
    # Bad options are explained without asking the platform; a member is refused before it too.
    asked = len(platform.checked)
    assert "not a time of day" in await _say(rt, HOST, "quiz admin setup time=25:00")
    assert "only this server's admins" in await _say(rt, MEMBER, "quiz admin setup time=10:00")
    assert len(platform.checked) == asked
    # Another channel named in the options is the one checked.
    platform.channel_problems.clear()
    platform.channel_problems["C0123ABC"] = "I am not in #daily-questions."
    out = await _say(rt, HOST, "quiz admin setup channel=<#C0123ABC|daily-questions>")
    assert "I am not in #daily-questions." in out and platform.checked[-1].channel_id == "C0123ABC", out
    assert await snapshot(rt) == before
    assert platform.sent == []


async def test_resume_in_a_channel_the_bot_cannot_use_stays_paused(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    from tests.conftest import start_runtime
    from tests.test_faults_permissions import snapshot

    rt, platform = await start_runtime(runtimes, sqlite_url, bank, clock, admins={"shell": ["host"]})
    await _say(rt, HOST, "quiz admin setup time=08:00")
    await _say(rt, HOST, "quiz admin pause")
    before = await snapshot(rt)
    for problem in ("I am missing the Send Messages permission in #general.", PlatformError("timeout")):
        platform.channel_problems["general"] = problem
        out = await _say(rt, HOST, "quiz admin resume")
        assert "Still paused." in out and "Resumed" not in out, out
        assert await snapshot(rt) == before
    platform.channel_problems.clear()
    assert "Resumed" in await _say(rt, HOST, "quiz admin resume")


async def test_a_slack_channel_reference_names_the_channel(
    sqlite_url: str, bank: Bank, clock: ManualClock, runtimes: list[Runtime]
) -> None:
    """Slack sends a picked channel as <#C0123|general>; it was stored as the id "#C0123|general"."""
    from tests.conftest import start_runtime

    rt, _ = await start_runtime(runtimes, sqlite_url, bank, clock, admins={"shell": ["host"]})
    out = await _say(rt, HOST, "quiz admin setup channel=<#C0123ABC|daily-questions>")
    assert "Daily question set up" in out
    async with rt.engine.read() as conn:
        rows = (await conn.execute(select(channels.c.channel_id, channels.c.name))).all()
    assert [tuple(r) for r in rows] == [("C0123ABC", "daily-questions")]


# -- the question loader ---------------------------------------------------------------------------------

GOOD = """\
topics:
  fuzz: Fuzzing
questions:
  - id: fuzz-good
    topic: fuzz
    difficulty: easy
    question: What does a fuzzer feed a program?
    answer: Inputs generated to explore its behaviour, many of them malformed, to find crashes.
    key_points: [generated input, malformed cases, crashes found]
"""

yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
question_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just("fuzz-x"), st.text(max_size=20), yaml_values),
        "topic": st.one_of(st.just("fuzz"), yaml_values),
        "difficulty": st.one_of(st.sampled_from(["easy", "medium", "hard", "extreme"]), yaml_values),
        "question": yaml_values,
        "answer": yaml_values,
        "key_points": yaml_values,
        "follow_ups": yaml_values,
        "legacy": yaml_values,
    },
)
documents = st.one_of(
    yaml_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.fixed_dictionaries({"questions": st.lists(question_like, max_size=3)}).map(yaml.safe_dump),
    st.text(max_size=300),
    st.sampled_from(
        [
            "? [a]\n: b\n",  # a list as a key: was a TypeError out of the loader
            "questions:\n  - ? {id: x}\n    : y\n",
            "a: !!timestamp nonsense\n",  # was an AttributeError
            "a: !!float abc\n",  # was a ValueError
            "a: !!python/object/apply:os.system ['true']\n",
            "a: &x 1\nb: *x\n",
            "[" * 3000,
            "{" * 3000,
            "- " * 3000 + "x",
            "questions:\n" + "  " * 500 + "- x\n",
            "%YAML 9.9\n--- 1\n",
            "a: 1\n---\nb: 2\n",
            "\ufeffquestions: []\n",
            "questions: [\x00]\n",
        ]
    ),
)


def _load_beside_good(tmp_path: Path, body: bytes) -> tuple[Bank, list[str], Path]:
    (tmp_path / "a-good.yaml").write_text(GOOD)
    bad = tmp_path / "b-fuzzed.yaml"
    bad.write_bytes(body)
    bank, issues = load_bank([tmp_path])
    return bank, [str(i) for i in issues], bad


def _check_issues_name_file_and_line(issues: list[str], bad: Path) -> None:
    for text in issues:
        assert re.match(rf"{re.escape(str(bad))}:\d+: (error|warning): \S", text), text


@given(doc=documents)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_any_yaml_document_gives_issues_with_file_and_line_and_keeps_the_other_files(tmp_path: Path, doc: str) -> None:
    bank, issues, bad = _load_beside_good(tmp_path, doc.encode("utf-8", "surrogatepass"))
    assert "fuzz-good" in bank.questions
    _check_issues_name_file_and_line(issues, bad)


@given(body=st.binary(max_size=400))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_any_bytes_give_issues_with_file_and_line_and_keep_the_other_files(tmp_path: Path, body: bytes) -> None:
    bank, issues, bad = _load_beside_good(tmp_path, body)
    assert "fuzz-good" in bank.questions
    _check_issues_name_file_and_line(issues, bad)


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    bad = tmp_path / "b-huge.yaml"
    with bad.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NULs on disk in no time
    (tmp_path / "a-good.yaml").write_text(GOOD)
    bank, issues = load_bank([tmp_path])
    assert "fuzz-good" in bank.questions
    assert [str(i) for i in issues] == [f"{bad}:1: error: file is larger than 2 MiB"]


# -- rendering: what reaches each platform ----------------------------------------------------------------

DISCORD_MASS = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
SLACK_SPECIAL = re.compile(r"<[!@#][^>]*>")


def _round() -> Round:
    return Round(
        id=7,
        channel_id=1,
        slot="2026-11-23",
        scheduled=True,
        question_id="q",
        state=RoundState.REVEALED,
        answer_mode="thread",
        vote_cap=3,
        due_at=MONDAY_0800,
        posted_at=MONDAY_0800,
        reveal_at=MONDAY_0800,
        close_at=MONDAY_0800,
        revealed_at=MONDAY_0800,
        closed_at=None,
        message_id="m",
        thread_id="t",
        lease_owner=None,
        lease_until=None,
        note=None,
    )


def _answers(texts: list[str], names: list[str]) -> list[Answer]:
    return [
        Answer(
            id=i + 1,
            round_id=7,
            member_id=i + 1,
            display_name=n,
            user_id=f"u{i}",
            message_id=str(i),
            text=t,
            position=i + 1,
        )
        for i, (t, n) in enumerate(zip(texts, names, strict=False))
    ]


def _hostile_messages(texts: list[str], names: list[str]) -> list[Message]:
    answers = _answers(texts, names)
    msgs = ballot(_round(), answers, MONDAY_0800, "UTC") if answers else []
    msgs += [published_answer(a) for a in answers]
    msgs.append(
        Message(title="Stats", parts=("Stats for ", UserText(names[0] if names else "")), fields=(Field("n", "1"),))
    )
    return msgs


def _discord_texts(kwargs: dict[str, Any]) -> list[str]:
    out = [kwargs.get("content") or ""]
    embed = kwargs.get("embed")
    if embed is not None:
        out += [embed.title or "", embed.description or "", embed.footer.text or ""]
        out += [f.name or "" for f in embed.fields] + [f.value or "" for f in embed.fields]
    return out


@given(texts=st.lists(hostile_text, min_size=0, max_size=30), names=st.lists(hostile_text, min_size=30, max_size=30))
def test_discord_messages_never_ping_break_layout_or_exceed_limits(texts: list[str], names: list[str]) -> None:
    for msg in _hostile_messages(texts, names):
        kwargs = to_kwargs(msg)
        for text in _discord_texts(kwargs):
            assert not DISCORD_MASS.search(text), text
            assert "\x00" not in text and "\u202e" not in text
        if "content" in kwargs:
            assert 0 < len(kwargs["content"]) <= 2000 and kwargs["content"].count("```") % 2 == 0
        else:
            embed = kwargs["embed"]
            assert len(embed) <= 6000 and len(embed.description or "") <= 4096
            assert all(len(f.value or "") <= 1024 for f in embed.fields)
            assert (embed.description or "").count("```") % 2 == 0
        view = kwargs.get("view")
        if view is not None:
            assert len(view.children) <= 25


def _slack_mrkdwn(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if b["type"] == "section":
            out += [b["text"]["text"]] if "text" in b else [f["text"] for f in b["fields"]]
        elif b["type"] == "context":
            out += [e["text"] for e in b["elements"]]
    return out


@given(texts=st.lists(hostile_text, min_size=0, max_size=30), names=st.lists(hostile_text, min_size=30, max_size=30))
def test_slack_messages_never_notify_break_layout_or_exceed_limits(texts: list[str], names: list[str]) -> None:
    from tests.fake_slack.server import _check_blocks

    for msg in _hostile_messages(texts, names):
        payload = to_message(msg)
        assert not SLACK_SPECIAL.search(payload["text"]) and len(payload["text"]) <= 300
        blocks = payload["blocks"]
        assert _check_blocks(blocks, max_blocks=50) == []
        for text in _slack_mrkdwn(blocks):
            assert not SLACK_SPECIAL.search(text), text
            assert text.count("```") % 2 == 0, text
            assert "\x00" not in text and "\u202e" not in text
        if msg.buttons:
            assert any(b["type"] == "actions" for b in blocks)


def test_a_100000_character_answer_keeps_the_ballot_votable_on_both_platforms() -> None:
    long = "```\n" + "x = 1\n" * 16_000 + "@everyone <!channel>"
    answers = _answers([long, "short"], ["ann", "ben"])
    for msg in (*ballot(_round(), answers, MONDAY_0800, "UTC"), published_answer(answers[0])):
        blocks = to_blocks(msg)
        assert len(blocks) <= 50 and all(len(t) <= 3000 for t in _slack_mrkdwn(blocks))
        assert all(t.count("```") % 2 == 0 for t in _slack_mrkdwn(blocks))
        kwargs = to_kwargs(msg)
        assert len(kwargs["embed"]) <= 6000 if "embed" in kwargs else len(kwargs["content"]) <= 2000
        if msg.buttons:
            assert [b for b in blocks if b["type"] == "actions"] and len(kwargs["view"].children) == 2
