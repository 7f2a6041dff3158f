"""Typed commands: parsing, usage help, validation of admin input, and property tests for the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.parse import ParseError, parse, parse_duration
from tests.shell_helpers import open_terminal


def test_paths_options_and_positionals() -> None:
    p = parse('/quiz admin setup time=09:00 tz="America/New_York" days:mon-fri')
    assert p.spec.path == ("quiz", "admin", "setup")
    assert p.options == {"time": "09:00", "timezone": "America/New_York", "days": "mon-fri"}
    p = parse("quiz practice hard")
    assert p.options == {"difficulty": "hard"}
    p = parse("quiz practice cnn EASY")
    assert p.options == {"topic": "cnn", "difficulty": "easy"}
    p = parse("leaderboard month server")
    assert p.options == {"period": "month", "scope": "server"}
    assert parse("").spec.path == ("quiz", "help")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quiz leaderbord", "Did you mean `/quiz leaderboard`"),
        ("quiz admin", "Which admin command?"),
        ("quiz practice colour=red", "`colour` is not an option"),
        ("quiz leaderboard period=year", "must be one of week, month, all"),
        ('quiz practice topic="cnn', "quote is not closed"),
        ("quiz topics extra", "I don't know what `extra` means"),
    ],
)
def test_bad_commands_explain_themselves(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace("`", "`")):
        parse(text)


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_parser_never_fails_with_anything_but_a_parse_error(text: str) -> None:
    try:
        parsed = parse(text)
    except ParseError as exc:
        assert exc.message
    else:
        assert parsed.spec.path[0] == "quiz"


@given(
    st.lists(st.sampled_from(["time=09:00", "tz=UTC", "days=mon", "cap=2", "x", "a=b", "mode=blind", "'"]), max_size=6)
)
def test_setup_option_combinations_parse_or_explain(words: list[str]) -> None:
    try:
        parse("quiz admin setup " + " ".join(words))
    except ParseError as exc:
        assert exc.spec is None or exc.spec.path == ("quiz", "admin", "setup")


def test_durations() -> None:
    assert parse_duration("8h") == 480 and parse_duration("90m") == 90 and parse_duration("1h30m") == 90
    assert parse_duration("1.5h") == 90 and parse_duration("45") == 45
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/quiz admin setup time=25:00", "not a time of day"),
        ("/quiz admin setup timezone=Mars/Olympus", "not an IANA timezone"),
        ("/quiz admin setup topics=astrology", "There is no topic `astrology`"),
        ("/quiz admin setup answer=forever", "not a duration"),
        ("/quiz admin setup cap=lots", "whole number"),
        ("/quiz admin setup cap=99", "vote_cap"),
        ("/quiz admin setup answer=20h voting=10h", "at most 23 hours"),
        ("/quiz admin setup legacy=maybe", "Say yes or no"),
    ],
)
async def test_setup_rejects_bad_values_and_changes_nothing(sqlite_url, bank, clock, runtimes, line, expected):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    before = await t.type("/quiz admin show")
    out = await t.type(line)
    assert expected in out and "Usage: `/quiz admin setup" in out
    assert await t.type("/quiz admin show") == before


async def test_every_admin_command_is_refused_to_a_member(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    await t.type("/as mallory")
    for cmd in ("setup time=10:00", "show", "pause", "resume", "post-now", "reveal-now", "close-now", "skip"):
        assert "only this server's admins" in await t.type(f"/quiz admin {cmd}"), cmd
    assert t.platform.sent == []


async def test_admin_pause_resume_skip_and_show(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    assert "Next question: Mon 23 Nov 09:00 UTC" in await t.type("/quiz admin show")
    assert "Paused" in await t.type("/quiz admin pause")
    assert "already paused" in await t.type("/quiz admin pause")
    await t.type("/wait 2h")
    assert t.platform.sent == []
    assert "Resumed. Next question: Tue 24 Nov 09:00 UTC" in await t.type("/quiz admin resume")
    assert "will be skipped" in await t.type("/quiz admin skip")
    await t.type("/wait 24h")
    assert t.platform.sent == []  # Tuesday skipped in advance
    await t.type("/quiz admin post-now")
    assert "Skipped the running round" in await t.type("/quiz admin skip")
    assert "no round with open voting" in await t.type("/quiz admin close-now")


async def test_unknown_and_help(sqlite_url, bank, clock, runtimes):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    out = await t.type("/quiz help")
    assert "/quiz admin setup" in out  # host is an admin
    await t.type("/as bob")
    out = await t.type("/quiz help")
    assert "/quiz practice" in out and "/quiz admin" not in out
    assert "Unknown command /dance" in await t.type("/dance")
    assert "Usage: /vote N" in await t.type("/vote 3")


async def test_an_unexpected_failure_gets_a_friendly_reply_and_a_log_line(
    sqlite_url, bank, clock, runtimes, caplog, monkeypatch
):  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)

    async def broken(_cmd):  # type: ignore[no-untyped-def]
        raise RuntimeError("database on fire")

    monkeypatch.setattr(t.runtime.core.commands, "run", broken)
    out = await t.type("/quiz topics")
    assert "Something went wrong on my side" in out and "database on fire" not in out
    assert any("database on fire" in (r.exc_text or str(r.exc_info)) for r in caplog.records)
