"""Neutral outbound messages. Adapters translate these into embeds, Block Kit or terminal text.

Text is plain Markdown (``**bold**``, ``inline code``, ``-`` bullets). Any text that came from a user is
wrapped in :class:`UserText` inside ``Message.parts`` so that each adapter escapes it for its platform
(mentions neutralised, Slack control characters escaped) instead of trusting the core to know every syntax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Style(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    SUCCESS = "success"
    DANGER = "danger"


@dataclass(frozen=True)
class Button:
    custom_id: str  # carries all state ("vote:12:40"), so buttons keep working after a restart
    label: str
    style: Style = Style.SECONDARY


@dataclass(frozen=True)
class SelectOption:
    value: str
    label: str
    number: int | None = None  # the answer's number on a ballot: menus say which numbers they hold, /vote N


@dataclass(frozen=True)
class Select:
    custom_id: str
    placeholder: str
    options: tuple[SelectOption, ...]


@dataclass(frozen=True)
class UserText:
    """Text written by a member: adapters must escape it so it can never ping or inject markup.

    ``markdown`` marks a whole answer shown as written (its code blocks kept, fences balanced); otherwise
    the adapter also escapes Markdown, as for names and one-line excerpts inside our own layout."""

    text: str
    markdown: bool = False


Part = str | UserText


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True)
class Image:
    """A picture attached to a message (PNG bytes). The message's text always says everything the picture
    shows, so a platform that cannot attach it, or an upload that fails, still delivers the whole message."""

    data: bytes = field(repr=False)  # kept out of reprs: logs and test failures would fill with bytes
    filename: str
    alt: str  # what the picture shows, in words: screen readers, Discord's description, Slack's alt_txt
    title: str = ""  # a short caption, where a platform shows one next to the file


@dataclass(frozen=True)
class Message:
    """One message the bot sends. ``parts`` concatenate into the body; ``title`` and ``fields`` suit embeds/blocks."""

    parts: tuple[Part, ...] = ()
    title: str | None = None
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    select: Select | None = None
    footer: str | None = None
    # Set on a channel post to ask the adapter to open a thread on it with this name.
    thread_name: str | None = None
    # An optional picture (the weekly leaderboard card, a stats chart); the text above stays complete without it.
    image: Image | None = None

    @property
    def plain(self) -> str:
        """The body with user text unescaped: for logs, tests and the terminal."""
        return "".join(p.text if isinstance(p, UserText) else p for p in self.parts)


def text(*parts: Part, **kw: object) -> Message:
    return Message(parts=tuple(parts), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Reply:
    """The answer to something a member did. Ephemeral replies are seen by that member only."""

    message: Message
    ephemeral: bool = True


@dataclass(frozen=True)
class FormField:
    custom_id: str
    label: str
    placeholder: str = ""
    multiline: bool = True
    max_length: int = 4000


@dataclass(frozen=True)
class OpenForm:
    """Ask the adapter to show a form (Discord modal, Slack view); its submission comes back as FormSubmitted."""

    custom_id: str
    title: str
    fields: tuple[FormField, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class React:
    """Acknowledge a member's message with a reaction (e.g. an answer was recorded)."""

    emoji: str  # a neutral name: "recorded", "updated", "refused"


Response = Reply | OpenForm | React


# Characters that change how the text around them is laid out without showing themselves. Embeddings and
# overrides (U+202A..U+202E; U+202E flips the rest of a line) have no use that isolates do not serve better,
# so they go from every member's text; isolates (U+2066..U+2069) go from text set inside our own lines
# (names, ballot excerpts), where an unclosed one would reorder what follows it. C0/C1 controls (NUL,
# terminal escapes) go too: PostgreSQL cannot store NUL, and no platform shows the others.
_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e")
_ISOLATES = frozenset("\u2066\u2067\u2068\u2069")


def clean_user_text(text: str, *, inline: bool = False) -> str:
    """A member's text without layout-breaking invisible characters; ``inline`` for text inside our lines."""
    drop = _OVERRIDES | _ISOLATES if inline else _OVERRIDES
    return "".join(
        ch
        for ch in text
        if ch not in drop and (ch in "\n\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F))
    )


FENCE = "```"


def balance_fences(text: str) -> str:
    """Close a code block left open, so it cannot swallow whatever we put after it."""
    return text + "\n" + FENCE if text.count(FENCE) % 2 else text


def clip_markdown(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in … when cut, with any code block cut open closed again."""
    if len(text) <= limit:
        return text
    closing = "…\n" + FENCE
    if limit <= len(closing):
        return text[: max(limit, 0)]
    cut = text[: limit - len(closing)]
    if cut.count(FENCE) % 2:
        return cut + closing
    # A cut through the middle of a fence ("``" left at the end) must not become one with ours.
    return cut.rstrip("`") + "…"
