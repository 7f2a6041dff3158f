"""When things happen, as pure functions of a channel's settings and an instant. No I/O, easy to test.

Wall-clock rules, in the channel's IANA timezone:
- A post time that does not exist on a day (the clocks jump forward over it) moves forward by the gap:
  02:30 on a spring-forward night in Europe/Berlin posts at 03:30 local.
- A post time that happens twice (the clocks go back) uses the first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from bot.settings import WEEKDAYS, ChannelSettings, parse_hhmm


@dataclass(frozen=True)
class Slot:
    local_date: date
    at: datetime  # UTC

    @cached_property  # read three times per channel in a fan-out of thousands
    def key(self) -> str:
        return self.local_date.isoformat()

    @property
    def weekday(self) -> str:
        return WEEKDAYS[self.local_date.weekday()]


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local date, with the DST rules above."""
    # fold=0 picks the first of two repeated times; on a nonexistent time it applies the offset from before
    # the gap, which lands exactly one gap-length later in real time: the "move forward by the gap" rule.
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def _slots(days: list[str], at: time, tz: ZoneInfo, around: datetime, back: int, ahead: int) -> list[Slot]:
    today = around.astimezone(tz).date()
    out: list[Slot] = []
    for offset in range(-back, ahead + 1):
        d = today + timedelta(days=offset)
        if WEEKDAYS[d.weekday()] in days:
            out.append(Slot(d, local_instant(d, at, tz)))
    return out


def latest_post_slot(s: ChannelSettings, now: datetime) -> Slot | None:
    """The most recent scheduled post at or before ``now`` (within the last 8 days)."""
    tz = ZoneInfo(s.timezone)
    past = [x for x in _slots(s.weekdays, parse_hhmm(s.post_time), tz, now, 8, 1) if x.at <= now]
    return past[-1] if past else None


def next_post_slot(s: ChannelSettings, after: datetime) -> Slot:
    """The first scheduled post strictly after ``after``."""
    tz = ZoneInfo(s.timezone)
    future = [x for x in _slots(s.weekdays, parse_hhmm(s.post_time), tz, after, 1, 8) if x.at > after]
    return future[0]


def latest_leaderboard_slot(s: ChannelSettings, now: datetime) -> Slot | None:
    tz = ZoneInfo(s.timezone)
    past = [x for x in _slots([s.leaderboard_weekday], parse_hhmm(s.leaderboard_time), tz, now, 8, 1) if x.at <= now]
    return past[-1] if past else None


def next_leaderboard_slot(s: ChannelSettings, after: datetime) -> Slot:
    tz = ZoneInfo(s.timezone)
    slots = _slots([s.leaderboard_weekday], parse_hhmm(s.leaderboard_time), tz, after, 1, 8)
    return next(x for x in slots if x.at > after)


def week_start(now: datetime, tz_name: str) -> datetime:
    """Monday 00:00 of the current week in the channel's timezone, as UTC."""
    tz = ZoneInfo(tz_name)
    local = now.astimezone(tz).date()
    monday = local - timedelta(days=local.weekday())
    return local_instant(monday, time(0, 0), tz)


def month_start(now: datetime, tz_name: str) -> datetime:
    tz = ZoneInfo(tz_name)
    local = now.astimezone(tz).date()
    return local_instant(local.replace(day=1), time(0, 0), tz)


def local_date(now: datetime, tz_name: str) -> date:
    return now.astimezone(ZoneInfo(tz_name)).date()


def format_local(when: datetime, tz_name: str) -> str:
    """'Mon 23 Nov 09:00 Europe/Berlin': how we show a time to members."""
    local = when.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %d %b %H:%M} {tz_name}"
