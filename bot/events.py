"""Neutral inbound events: what happened on a platform, with identities the core can check."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """Who did something. ``is_admin`` is the platform's word (Manage Server, workspace admin)."""

    platform: str
    space_id: str  # Discord guild, Slack workspace (team), "local" for the shell
    user_id: str
    display_name: str
    is_admin: bool = False
    is_bot: bool = False


@dataclass(frozen=True)
class Place:
    """Where it happened. ``thread_id`` is set for messages inside a round's thread."""

    platform: str
    space_id: str
    channel_id: str
    thread_id: str | None = None
    channel_name: str | None = None


@dataclass(frozen=True)
class Command:
    """A slash command: ``path`` like ("quiz", "admin", "setup"), already-split options."""

    actor: Actor
    place: Place
    path: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TextCommand:
    """A command typed as text (Slack's ``/quiz admin setup time=09:00``, the shell): parsed by the core."""

    actor: Actor
    place: Place
    text: str


@dataclass(frozen=True)
class MessagePosted:
    actor: Actor
    place: Place
    message_id: str
    text: str


@dataclass(frozen=True)
class MessageEdited:
    actor: Actor
    place: Place
    message_id: str
    text: str


@dataclass(frozen=True)
class MessageDeleted:
    place: Place
    message_id: str


@dataclass(frozen=True)
class ButtonPressed:
    actor: Actor
    place: Place
    custom_id: str
    values: tuple[str, ...] = ()  # chosen options of a select menu


@dataclass(frozen=True)
class FormSubmitted:
    actor: Actor
    place: Place
    custom_id: str
    values: dict[str, str] = field(default_factory=dict)


Event = Command | TextCommand | MessagePosted | MessageEdited | MessageDeleted | ButtonPressed | FormSubmitted
