"""Post times, weeks and DST edges, in the channel's timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.schedule import latest_post_slot, local_instant, month_start, next_leaderboard_slot, next_post_slot, week_start
from bot.settings import ChannelSettings


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_post_time_follows_the_channel_timezone() -> None:
    s = ChannelSettings(post_time="09:00", timezone="America/New_York", weekdays=["mon", "tue", "wed", "thu", "fri"])
    # Monday 23 Nov 2026, New York is UTC-5: 09:00 local is 14:00 UTC.
    slot = next_post_slot(s, utc(2026, 11, 23, 12, 0))
    assert slot.at == utc(2026, 11, 23, 14, 0) and slot.key == "2026-11-23"
    # Friday after the post: the next one is Monday, not Saturday.
    assert next_post_slot(s, utc(2026, 11, 27, 15, 0)).key == "2026-11-30"


def test_spring_forward_gap_moves_the_post_later_by_the_gap() -> None:
    # Europe/Berlin skips 02:00-03:00 on Sunday 29 March 2026.
    s = ChannelSettings(post_time="02:30", timezone="Europe/Berlin", weekdays="daily")
    slot = next_post_slot(s, utc(2026, 3, 28, 12, 0))
    assert slot.key == "2026-03-29"
    assert slot.at == utc(2026, 3, 29, 1, 30)  # 03:30 CEST


def test_fall_back_repeated_hour_posts_once_at_the_first() -> None:
    # Europe/Berlin repeats 02:00-03:00 on Sunday 25 October 2026.
    s = ChannelSettings(post_time="02:30", timezone="Europe/Berlin", weekdays="daily")
    slot = next_post_slot(s, utc(2026, 10, 24, 12, 0))
    assert slot.at == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first occurrence
    after = next_post_slot(s, slot.at)
    assert after.key == "2026-10-26"  # not a second post in the repeated hour


def test_daily_post_keeps_local_time_across_dst() -> None:
    s = ChannelSettings(post_time="09:00", timezone="Europe/London", weekdays="daily")
    before = next_post_slot(s, utc(2026, 3, 28, 10, 0))  # Sunday 29 March, the change day (BST from 01:00 UTC)
    assert before.at == utc(2026, 3, 29, 8, 0)
    winter = next_post_slot(s, utc(2026, 3, 27, 10, 0))
    assert winter.at == utc(2026, 3, 28, 9, 0)


def test_week_starts_monday_midnight_local_even_across_dst() -> None:
    # Sunday 1 Nov 2026 is the US fall-back day; the week from Monday 26 Oct starts at EDT midnight.
    assert week_start(utc(2026, 11, 1, 12, 0), "America/New_York") == utc(2026, 10, 26, 4, 0)
    assert week_start(utc(2026, 11, 2, 12, 0), "America/New_York") == utc(2026, 11, 2, 5, 0)
    # Just after local midnight Monday in Tokyo it is still Sunday in UTC: the week is Tokyo's.
    assert week_start(utc(2026, 11, 22, 15, 30), "Asia/Tokyo") == utc(2026, 11, 22, 15, 0)
    assert month_start(utc(2026, 11, 30, 23, 30), "Pacific/Auckland") == utc(2026, 11, 30, 11, 0)


def test_latest_slot_and_weekdays() -> None:
    s = ChannelSettings(post_time="09:00", timezone="UTC", weekdays="mon,wed")
    assert latest_post_slot(s, utc(2026, 11, 24, 12, 0)).key == "2026-11-23"  # type: ignore[union-attr]
    assert latest_post_slot(s, utc(2026, 11, 25, 8, 59)).key == "2026-11-23"  # type: ignore[union-attr]
    assert latest_post_slot(s, utc(2026, 11, 25, 9, 0)).key == "2026-11-25"  # type: ignore[union-attr]


def test_leaderboard_slot() -> None:
    s = ChannelSettings(leaderboard_weekday="fri", leaderboard_time="17:00", timezone="Asia/Kolkata")
    slot = next_leaderboard_slot(s, utc(2026, 11, 23, 0, 0))
    assert slot.at == utc(2026, 11, 27, 11, 30)


def test_local_instant_is_inverse_of_local_time() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Australia/Sydney")
    for day in range(1, 366, 7):
        d = (datetime(2026, 1, 1) + timedelta(days=day)).date()
        from datetime import time

        at = local_instant(d, time(9, 0), tz)
        assert at.astimezone(tz).hour == 9 and at.astimezone(tz).date() == d
