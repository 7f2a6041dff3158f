"""Neutral messages as Block Kit, with a plain-text fallback for notifications.

Slack's limits are applied here: header 150 characters, section text 3,000, section fields 10 of 2,000,
25 elements per actions block, button text 75, 100 options per menu, 50 blocks per message.
"""

from __future__ import annotations

import re
from typing import Any

from bot.render import Message, Style, UserText

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)


def escape(text: str) -> str:
    """Slack's three control characters. Escaped, `<!channel>` or `<@U123>` in a member's text is just text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What Slack delivers is escaped the same way: store what the member typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn(text: str) -> str:
    """Our Markdown to Slack's mrkdwn: **bold** becomes *bold*; lists and code read the same."""
    return _BOLD.sub(r"*\1*", text)


def body(msg: Message) -> str:
    out = []
    for p in msg.parts:
        if isinstance(p, UserText):
            t = escape(p.text)
            out.append(t + ("\n```" if p.markdown and t.count("```") % 2 else ""))
        else:
            out.append(mrkdwn(p))
    return "".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(_BOLD.sub(r"\1", text) or "-", limit), "emoji": True}


def _sections(text: str) -> list[dict[str, Any]]:
    chunks, rest = [], text
    while rest:
        cut = rest.rfind("\n", 0, 3000) if len(rest) > 3000 else len(rest)
        cut = cut if cut > 0 else 3000
        chunks.append(rest[:cut])
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
        for n, start in enumerate(range(0, min(len(options), 500), 100), start=1):
            elements.append(
                {
                    "type": "static_select",
                    "action_id": f"{msg.select.custom_id}:m{n}",
                    "placeholder": _plain(msg.select.placeholder, 150),
                    "options": [{"text": _plain(o.label, 75), "value": o.value} for o in options[start : start + 100]],
                }
            )
    for start in range(0, len(elements), 25):
        blocks.append({"type": "actions", "elements": elements[start : start + 25]})
    if msg.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(mrkdwn(msg.footer), 3000)}]})
    return blocks[:50]


def fallback(msg: Message) -> str:
    """The notification text: what a phone shows, and what screen readers read first."""
    head = f"{msg.title}: " if msg.title else ""
    return _clip(head + body(msg).replace("\n", " "), 300) or "interview-bot"


def to_message(msg: Message) -> dict[str, Any]:
    return {"text": fallback(msg), "blocks": to_blocks(msg)}
