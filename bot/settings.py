"""A channel's schedule and rules: stored per channel, defaults from the config file."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
Difficulty = Literal["easy", "medium", "hard"]
AnswerMode = Literal["thread", "blind"]

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

# Easier early in the week, hardest on Friday, anything at the weekend.
RAMP_PLAN: dict[str, list[Difficulty]] = {
    "mon": ["easy"],
    "tue": ["easy", "medium"],
    "wed": ["medium"],
    "thu": ["medium", "hard"],
    "fri": ["hard"],
    "sat": ["easy", "medium", "hard"],
    "sun": ["easy", "medium", "hard"],
}
ANY_PLAN: dict[str, list[Difficulty]] = {d: ["easy", "medium", "hard"] for d in WEEKDAYS}
PLANS = {"ramp": RAMP_PLAN, "any": ANY_PLAN}


def parse_hhmm(value: str) -> time:
    m = _HHMM.match(value.strip())
    if not m:
        raise ValueError(f"'{value}' is not a time of day like 09:00 (24-hour HH:MM, 00:00 to 23:59)")
    return time(int(m.group(1)), int(m.group(2)))


def check_timezone(name: str) -> str:
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        hint = _closest_timezone(name)
        extra = f" Did you mean {hint}?" if hint else ""
        raise ValueError(f"'{name}' is not an IANA timezone such as Europe/Berlin.{extra}") from None
    return name


def _closest_timezone(name: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, sorted(available_timezones()), n=1, cutoff=0.6)
    return match[0] if match else None


def parse_weekdays(value: str | list[str]) -> list[str]:
    """Accepts "mon-fri", "mon,wed,fri", "daily", "weekdays", "weekends" or a list."""
    items = value if isinstance(value, list) else [v for v in re.split(r"[,\s]+", value.strip().lower()) if v]
    out: list[str] = []
    for item in items:
        item = item.strip().lower()[:3] if item.lower() not in ("daily", "weekdays", "weekends") else item.lower()
        if item == "daily":
            out.extend(WEEKDAYS)
        elif item == "weekdays":
            out.extend(WEEKDAYS[:5])
        elif item == "weekends":
            out.extend(WEEKDAYS[5:])
        elif "-" in item:
            raise ValueError("a weekday range needs full names like mon-fri")
        elif item in WEEKDAYS:
            out.append(item)
        else:
            raise ValueError(f"'{item}' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
    if not out:
        raise ValueError("choose at least one weekday")
    return [d for d in WEEKDAYS if d in out]


def expand_weekday_text(value: str) -> list[str]:
    """Ranges such as "mon-fri" or "fri-mon" (wrapping) as well as the forms parse_weekdays takes."""
    parts: list[str] = []
    for chunk in re.split(r"[,\s]+", value.strip().lower()):
        if not chunk:
            continue
        if "-" in chunk and chunk not in ("daily",):
            a, _, b = chunk.partition("-")
            a, b = a[:3], b[:3]
            if a not in WEEKDAYS or b not in WEEKDAYS:
                raise ValueError(f"'{chunk}' is not a weekday range like mon-fri")
            i = WEEKDAYS.index(a)
            while True:
                parts.append(WEEKDAYS[i])
                if WEEKDAYS[i] == b:
                    break
                i = (i + 1) % 7
        else:
            parts.append(chunk)
    return parse_weekdays(parts)


Minutes = Annotated[int, Field(ge=5, le=23 * 60)]


class ChannelSettings(BaseModel):
    """Everything an admin can set for a channel. Stored as JSON; validated on every write."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    post_time: str = "09:00"
    timezone: str = "UTC"
    weekdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    answer_window_minutes: Minutes = 8 * 60
    voting_window_minutes: Minutes = 14 * 60
    topics: list[str] = Field(default_factory=list)  # empty means every topic
    difficulty_plan: dict[str, list[Difficulty]] = Field(default_factory=lambda: dict(RAMP_PLAN))
    answer_mode: AnswerMode = "thread"
    vote_cap: int = Field(default=3, ge=1, le=25)
    include_legacy: bool = False
    leaderboard_weekday: str = "fri"
    leaderboard_time: str = "17:00"

    @field_validator("post_time", "leaderboard_time")
    @classmethod
    def _time(cls, v: str) -> str:
        return parse_hhmm(v).strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekdays(cls, v: object) -> list[str]:
        if isinstance(v, str):
            return expand_weekday_text(v)
        if isinstance(v, list):
            return parse_weekdays([str(x) for x in v])
        raise ValueError("weekdays must be a list like [mon, tue] or text like mon-fri")

    @field_validator("leaderboard_weekday")
    @classmethod
    def _lb_day(cls, v: str) -> str:
        days = parse_weekdays([v])
        if len(days) != 1:
            raise ValueError("the leaderboard is posted on one weekday")
        return days[0]

    @field_validator("difficulty_plan", mode="before")
    @classmethod
    def _plan(cls, v: object) -> object:
        if isinstance(v, str):
            if v not in PLANS:
                raise ValueError(f"unknown difficulty plan '{v}': use {' or '.join(PLANS)}, or a mapping per weekday")
            return {k: list(x) for k, x in PLANS[v].items()}
        if isinstance(v, dict):
            for day in v:
                if day not in WEEKDAYS:
                    raise ValueError(f"difficulty plan: '{day}' is not a weekday (mon..sun)")
        return v

    @model_validator(mode="after")
    def _windows(self) -> ChannelSettings:
        # A round must close before the next day's post time, or two rounds would overlap.
        if self.answer_window_minutes + self.voting_window_minutes > 23 * 60:
            raise ValueError(
                "answer window plus voting window must be at most 23 hours, so a round closes before the next post"
            )
        return self

    def plan_for(self, weekday: str) -> list[str]:
        return list(self.difficulty_plan.get(weekday) or DIFFICULTIES)
