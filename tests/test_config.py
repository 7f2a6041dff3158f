"""Configuration: defaults, environment, and clear errors that name the file, line and setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.settings import ChannelSettings


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no interview-bot.yaml here
    cfg = load_config(None, env={})
    assert cfg.platform is None and cfg.database_url.startswith("sqlite+aiosqlite:///")
    assert cfg.scoring.participation == 10 and cfg.channel_defaults.post_time == "09:00"


def test_environment_overrides_file_and_tokens_stay_secret(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("platform: shell\ndatabase_url: sqlite+aiosqlite:///a.db\n")
    cfg = load_config(f, env={"DATABASE_URL": "postgresql+asyncpg://u@h/db", "DISCORD_TOKEN": "abc.def.secret-token"})
    assert cfg.database_url == "postgresql+asyncpg://u@h/db"
    assert cfg.secrets.discord_token is not None
    assert "secret-token" not in repr(cfg) and "secret-token" not in str(cfg.secrets)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("platform: shell\nscoring:\n  participation: [1, 2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+:\d+: invalid YAML"):
        load_config(f, env={})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("scoring:\n  participaton: 5\n", "scoring.participaton: unknown setting"),
        ("channel_defaults:\n  timezone: Europe/Berln\n", "Did you mean Europe/Berlin"),
        ("channel_defaults:\n  post_time: '25:00'\n", "not a time of day"),
        ("channel_defaults:\n  answer_window_minutes: 1200\n  voting_window_minutes: 600\n", "at most 23 hours"),
        ("platform: telegram\n", "platform"),
        ("discord_token: abc\n", "secrets are read only from the environment"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_invalid_settings_are_explained(tmp_path: Path, body: str, expected: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError, match=expected):
        load_config(f, env={})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", ["mon", "tue", "wed", "thu", "fri"]),
        ("fri-mon", ["mon", "fri", "sat", "sun"]),
        ("daily", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        ("weekends", ["sat", "sun"]),
        ("Monday, Wednesday", ["mon", "wed"]),
    ],
)
def test_weekday_forms(text: str, days: list[str]) -> None:
    assert ChannelSettings(weekdays=text).weekdays == days
