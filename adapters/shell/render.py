"""Neutral messages as terminal text."""

from __future__ import annotations

import re

from adapters.base import strip_controls
from bot.render import Message, UserText

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)


def render(msg: Message, button_numbers: list[int] | None = None) -> str:
    out: list[str] = []
    if msg.title:
        out.append(f"== {msg.title} ==")
    # Our own Markdown loses its ** markers in the terminal; a member's text is shown exactly as typed.
    body = "".join(strip_controls(p.text) if isinstance(p, UserText) else _BOLD.sub(r"\1", p) for p in msg.parts)
    if body:
        out.append(body)
    for f in msg.fields:
        value = f.value if "\n" not in f.value else "\n  " + f.value.replace("\n", "\n  ")
        out.append(f"{f.name}: {value}")
    if msg.buttons and button_numbers:
        out.append("  ".join(f"[{n}] {b.label}" for n, b in zip(button_numbers, msg.buttons, strict=True)))
    if msg.select is not None:
        out.append(f"({msg.select.placeholder}: use /vote N)")
    if msg.footer:
        out.append(f"({msg.footer})")
    return "\n".join(out)
