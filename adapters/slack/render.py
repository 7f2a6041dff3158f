"""Neutral messages as Block Kit, with a plain-text fallback for notifications.

Slack's limits are applied here: header 150 characters, section text 3,000, section fields 10 of 2,000,
25 elements per actions block, button text 75, 100 options per menu, 50 blocks per message.
"""

from __future__ import annotations

import re
from typing import Any

from bot.render import FENCE, Message, Style, UserText, balance_fences, clean_user_text

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)


def escape(text: str) -> str:
    """Slack's three control characters. Escaped, `<!channel>` or `<@U123>` in a member's text is just text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What Slack delivers is escaped the same way: store what the member typed (less NULs, which
    PostgreSQL cannot store in text)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\x00", "")


def mrkdwn(text: str) -> str:
    """Our Markdown to Slack's mrkdwn: **bold** becomes *bold*; lists and code read the same.

    Escaped too: our words can quote what someone typed (an unknown timezone, a topic), and Slack reads
    `<!channel>` anywhere in mrkdwn; none of our own text means a Slack link or mention."""
    return _BOLD.sub(r"*\1*", escape(text))


_BACKTICKS = re.compile(r"`{2,}")


def user_text(part: UserText) -> str:
    """A member's text in mrkdwn: escaped so it cannot notify anyone. A whole answer keeps its code blocks,
    closed if left open; a name or excerpt inside our lines cannot open one (mrkdwn has no backslash escape,
    so a zero-width space splits a run of backticks)."""
    text = escape(clean_user_text(part.text, inline=not part.markdown))
    if part.markdown:
        return balance_fences(text)
    return _BACKTICKS.sub(lambda m: "\u200b".join(m.group(0)), text)


def body(msg: Message) -> str:
    return "".join(user_text(p) if isinstance(p, UserText) else mrkdwn(p) for p in msg.parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(_BOLD.sub(r"\1", text) or "-", limit), "emoji": True}


SECTION_TEXT = 3000
MAX_BLOCKS = 50


def _sections(text: str) -> list[dict[str, Any]]:
    # Each section is laid out on its own: a code block cut at a section's end is closed there and reopened
    # at the start of the next, so neither shows the rest as code or as loose backticks.
    limit = SECTION_TEXT - 2 * (len(FENCE) + 1)
    chunks: list[str] = []
    rest, reopen = text, False
    while rest:
        cut = rest.rfind("\n", 0, limit) if len(rest) > limit else len(rest)
        cut = cut if cut > 0 else limit
        chunk = (FENCE + "\n" if reopen else "") + rest[:cut]
        reopen = chunk.count(FENCE) % 2 == 1
        chunks.append(chunk + ("\n" + FENCE if reopen else ""))
        rest = rest[cut:].lstrip("\n")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks if c.strip()]


def to_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if msg.title:
        blocks.append({"type": "header", "text": _plain(msg.title, 150)})
    blocks += _sections(body(msg))
    inline = [f for f in msg.fields if f.inline]
    for start in range(0, len(inline), 10):
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{f.name}*\n{mrkdwn(f.value)}", 2000)}
            for f in inline[start : start + 10]
        ]
        blocks.append({"type": "section", "fields": fields})
    for f in msg.fields:
        if not f.inline:
            blocks += _sections(f"*{f.name}*\n{mrkdwn(f.value)}")
    elements: list[dict[str, Any]] = []
    for b in msg.buttons:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": b.custom_id,
            "value": b.custom_id,
            "text": _plain(b.label, 75),
        }
        if b.style in (Style.PRIMARY, Style.SUCCESS):
            button["style"] = "primary"
        elif b.style == Style.DANGER:
            button["style"] = "danger"
        elements.append(button)
    if msg.select is not None:
        options = list(msg.select.options)
        # One menu holds 100 options. The core keeps a ballot message to 100 answers (messages.BALLOT_PAGE),
        # so this is one menu; more would still each be votable, in menus "vote:12:m1", "vote:12:m2", ...
        for n, start in enumerate(range(0, len(options), 100), start=1):
            chunk = options[start : start + 100]
            first, last = chunk[0].number, chunk[-1].number
            span = f" ({first}–{last})" if first is not None and last is not None and first != last else ""
            elements.append(
                {
                    "type": "static_select",
                    "action_id": f"{msg.select.custom_id}:m{n}",
                    "placeholder": _plain(msg.select.placeholder + span, 150),
                    "options": [{"text": _plain(o.label, 75), "value": o.value[:150]} for o in chunk],
                }
            )
    tail: list[dict[str, Any]] = []
    for start in range(0, len(elements), 25):
        tail.append({"type": "actions", "elements": elements[start : start + 25]})
    if msg.footer:
        tail.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(mrkdwn(msg.footer), 3000)}]})
    # Past Slack's 50 blocks the text gives way, never the buttons: a ballot must stay votable.
    if len(blocks) + len(tail) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - len(tail) - 1]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "(shortened: too long for Slack)"}]})
    return (blocks + tail)[:MAX_BLOCKS]


def fallback(msg: Message) -> str:
    """The notification text: what a phone shows, and what screen readers read first."""
    head = f"{msg.title}: " if msg.title else ""
    return _clip(head + body(msg).replace("\n", " "), 300) or "interview-bot"


def to_message(msg: Message) -> dict[str, Any]:
    return {"text": fallback(msg), "blocks": to_blocks(msg)}
