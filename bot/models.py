"""Rows as the core uses them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.settings import ChannelSettings


class RoundState(StrEnum):
    POSTING = "posting"
    OPEN = "open"
    REVEALING = "revealing"
    REVEALED = "revealed"
    CLOSING = "closing"
    CLOSED = "closed"
    MISSED = "missed"
    SKIPPED = "skipped"


ACTIVE_STATES = (
    RoundState.POSTING,
    RoundState.OPEN,
    RoundState.REVEALING,
    RoundState.REVEALED,
    RoundState.CLOSING,
)
# Rounds that really happened (for streaks and "no repeat" bookkeeping).
HELD_STATES = (*ACTIVE_STATES, RoundState.CLOSED)


@dataclass(frozen=True)
class Channel:
    id: int
    platform: str
    space_id: str
    channel_id: str
    name: str | None
    settings: ChannelSettings
    enabled: bool
    active_since: datetime
    paused_reason: str | None
    contact_user_id: str | None = None

    @property
    def label(self) -> str:
        return f"#{self.name}" if self.name else f"channel {self.channel_id}"


@dataclass(frozen=True)
class Round:
    id: int
    channel_id: int
    slot: str
    scheduled: bool
    question_id: str | None
    state: RoundState
    answer_mode: str
    vote_cap: int
    due_at: datetime
    posted_at: datetime | None
    reveal_at: datetime | None
    close_at: datetime | None
    revealed_at: datetime | None
    closed_at: datetime | None
    message_id: str | None
    thread_id: str | None
    lease_owner: str | None
    lease_until: datetime | None
    note: str | None


@dataclass(frozen=True)
class Member:
    id: int
    platform: str
    space_id: str
    user_id: str
    display_name: str


@dataclass(frozen=True)
class Answer:
    id: int
    round_id: int
    member_id: int
    display_name: str
    user_id: str
    message_id: str | None
    text: str
    position: int | None
    votes: int = 0
