"""The bot's configuration: a YAML file plus environment variables, validated once at start.

Secrets (tokens, signing secrets) come only from the environment and are held as ``SecretStr`` so they
never show up in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.settings import ChannelSettings

DEFAULT_CONFIG_PATH = Path("interview-bot.yaml")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///interview-bot.db"


class ConfigError(Exception):
    """A configuration problem, phrased for the person running the bot."""


class Scoring(BaseModel):
    model_config = ConfigDict(extra="forbid")

    participation: int = Field(default=10, ge=0, le=1000)
    per_vote: int = Field(default=5, ge=0, le=1000)
    top_answer: int = Field(default=15, ge=0, le=1000)
    # Streak bonus: streak_step points for every consecutive round answered before this one, at most streak_cap.
    streak_step: int = Field(default=2, ge=0, le=1000)
    streak_cap: int = Field(default=20, ge=0, le=10000)


class Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A daily post missed while the bot was down is still made if we are at most this late; else it is skipped.
    late_post_grace_minutes: int = Field(default=60, ge=0, le=12 * 60)
    late_leaderboard_grace_minutes: int = Field(default=6 * 60, ge=0, le=48 * 60)
    # How long a process may hold a transition before another process may take it over.
    lease_seconds: int = Field(default=120, ge=2, le=3600)
    # The safety-net sweep that catches anything a precise job missed (another process's change, a retry).
    sweep_seconds: int = Field(default=60, ge=1, le=3600)


class ShellOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = "general"
    user: str = "host"


class HintOptions(BaseModel):
    """Rubric hints on the ballot: which key points each answer seems to mention (bot/rubric.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Optional: a sentence-transformers model (a name in its local cache, or a directory) that adds
    # paraphrase matching to the keyword matcher. Needs `pip install sentence-transformers`; off by default.
    embedding_model: str | None = None
    embedding_threshold: float = Field(default=0.6, gt=0.0, le=1.0)


class Secrets(BaseModel):
    discord_token: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_client_secret: SecretStr | None = None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal["shell", "discord", "slack"] | None = None
    database_url: str = DEFAULT_DATABASE_URL
    question_dirs: list[str] = Field(default_factory=list)
    include_builtin_bank: bool = True
    admins: dict[str, list[str]] = Field(default_factory=lambda: {"shell": ["host"]})
    channel_defaults: ChannelSettings = Field(default_factory=ChannelSettings)
    scoring: Scoring = Field(default_factory=Scoring)
    timing: Timing = Field(default_factory=Timing)
    shell: ShellOptions = Field(default_factory=ShellOptions)
    # Pictures next to the text: the weekly leaderboard card and the /quiz stats chart. Off: text only.
    images: bool = True
    hints: HintOptions = Field(default_factory=HintOptions)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)
    source: str = Field(default="(defaults)", exclude=True)


_ENV = {
    "DATABASE_URL": "database_url",
    "INTERVIEW_BOT_PLATFORM": "platform",
    "INTERVIEW_BOT_LOG_LEVEL": "log_level",
    "INTERVIEW_BOT_LOG_FORMAT": "log_format",
}
_SECRET_ENV = {
    "DISCORD_TOKEN": "discord_token",
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_APP_TOKEN": "slack_app_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_CLIENT_SECRET": "slack_client_secret",
}


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the YAML file (if any) and the environment. Raises ConfigError with file, line and field."""
    env = dict(os.environ if env is None else env)
    explicit = path is not None or "INTERVIEW_BOT_CONFIG" in env
    path = path or Path(env.get("INTERVIEW_BOT_CONFIG", DEFAULT_CONFIG_PATH))
    data: dict[str, Any] = {}
    source = "(defaults)"
    if path.exists():
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config file must be a mapping of settings, not {type(loaded).__name__}")
        for key in ("token", "discord_token", "slack_bot_token", "signing_secret", "secrets"):
            if key in loaded:
                raise ConfigError(
                    f"{path}: '{key}' does not belong in the config file: secrets are read only from the "
                    "environment (DISCORD_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET)"
                )
        data = loaded
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    for var, key in _ENV.items():
        if env.get(var):
            data[key] = env[var]
    secrets = {key: env[var] for var, key in _SECRET_ENV.items() if env.get(var)}
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None
    cfg.secrets = Secrets.model_validate(secrets)
    cfg.source = source
    return cfg


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling; see the README's configuration section)"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)
