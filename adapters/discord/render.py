"""Neutral messages as Discord message arguments: content or an embed, and a view of buttons or menus.

Limits applied here are Discord's: content 2,000, embed description 4,096, field value 1,024, 25 fields,
button label 80, 25 options per select menu, 5 component rows.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from typing import Any

import discord

from adapters.discord.components import CoreButton, CoreSelect
from bot.render import (
    Image,
    Message,
    SelectOption,
    Style,
    UserText,
    balance_fences,
    clean_user_text,
    clip_markdown,
)

STYLES = {
    Style.PRIMARY: discord.ButtonStyle.primary,
    Style.SECONDARY: discord.ButtonStyle.secondary,
    Style.SUCCESS: discord.ButtonStyle.success,
    Style.DANGER: discord.ButtonStyle.danger,
}
COLOUR = discord.Colour.blurple()


def user_text(part: UserText) -> str:
    """A member's text, made harmless: mentions broken (the client also sends AllowedMentions.none()),
    Markdown escaped unless it is a whole answer, whose code fences are then balanced so they cannot
    swallow the rest of our message."""
    text = discord.utils.escape_mentions(clean_user_text(part.text, inline=not part.markdown))
    if not part.markdown:
        return discord.utils.escape_markdown(text)
    return balance_fences(text)


def own_text(text: str) -> str:
    """Our own words can quote what a member typed (an unknown timezone, a topic): never a ping either."""
    return discord.utils.escape_mentions(text)


def body(msg: Message) -> str:
    return "".join(user_text(p) if isinstance(p, UserText) else own_text(p) for p in msg.parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Discord refuses an embed whose title, description, field names and values and footer add up to more.
EMBED_TOTAL = 6000
CUT = "\n(shortened: too long for Discord)"


def to_kwargs(msg: Message) -> dict[str, Any]:
    """Keyword arguments for ``Messageable.send`` / ``followup.send`` / ``response.send_message``."""
    kwargs: dict[str, Any] = {}
    text = body(msg)
    if msg.title or msg.fields or msg.footer or len(text) > 2000:
        title = _clip(own_text(msg.title), 256) if msg.title else None
        footer = _clip(own_text(msg.footer), 2048) if msg.footer else ""
        fields = [
            (_clip(own_text(f.name), 256), clip_markdown(own_text(f.value), 1024) or "-", f.inline)
            for f in msg.fields[:25]
        ]
        # Over the total, the description gives way first (keeping some of it), then the last fields.
        keep = min(len(text), 500)

        def fixed() -> int:
            return len(title or "") + len(footer) + sum(len(n) + len(v) for n, v, _ in fields)

        while fields and fixed() > EMBED_TOTAL - keep:
            fields.pop()
        room = EMBED_TOTAL - fixed()
        embed = discord.Embed(title=title, colour=COLOUR)
        if text:
            limit = min(4096, room)
            # Cut text says so in words: a lone "…" is easy to miss at the end of a long listing.
            embed.description = text if len(text) <= limit else clip_markdown(text, limit - len(CUT)) + CUT
        for name, value, inline in fields:
            embed.add_field(name=name, value=value, inline=inline)
        if footer:
            embed.set_footer(text=footer)
        kwargs["embed"] = embed
    else:
        kwargs["content"] = text or "-"
    if msg.image is not None:
        file = to_file(msg.image)
        kwargs["file"] = file
        if "embed" in kwargs:  # the picture shows inside the embed, under its text, instead of above it
            kwargs["embed"].set_image(url=f"attachment://{file.filename}")
    view = to_view(msg)
    if view is not None:
        kwargs["view"] = view
    return kwargs


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def to_file(image: Image) -> discord.File:
    """A fresh upload each time: a discord.File is read once. Its name is what ``attachment://`` refers to."""
    name = _SAFE_NAME.sub("_", image.filename)[-100:] or "image.png"
    return discord.File(io.BytesIO(image.data), filename=name, description=_clip(image.alt, 1024) or None)


def without_image(msg: Message) -> Message:
    return replace(msg, image=None)


def to_view(msg: Message) -> discord.ui.View | None:
    if not msg.buttons and msg.select is None:
        return None
    view = discord.ui.View(timeout=None)  # state lives in custom ids, so the view outlives this process
    for b in msg.buttons[:25]:
        view.add_item(
            CoreButton(discord.ui.Button(label=_clip(b.label, 80), style=STYLES[b.style], custom_id=b.custom_id))
        )
    if msg.select is not None:
        options = list(msg.select.options)
        rows = 5 - -(-min(len(msg.buttons), 25) // 5)  # a menu takes a whole row; buttons go five to a row
        if len(options) > 25 * rows:
            # The core splits a ballot into messages that fit (messages.BALLOT_PAGE); cutting here would
            # leave answers nobody can vote for, so refuse loudly instead.
            raise ValueError(f"{len(options)} options do not fit one Discord message ({rows} menus of 25)")
        # One menu holds 25 options; a long ballot gets several menus ("vote:12:m1", "vote:12:m2", ...).
        for n, start in enumerate(range(0, len(options), 25), start=1):
            chunk = options[start : start + 25]
            menu = discord.ui.Select(
                custom_id=f"{msg.select.custom_id}:m{n}",
                placeholder=_clip(f"{msg.select.placeholder} ({_span(chunk)})", 150),
                options=[discord.SelectOption(label=_clip(o.label, 100), value=o.value[:100]) for o in chunk],
            )
            view.add_item(CoreSelect(menu))
    return view


def _span(chunk: list[SelectOption]) -> str:
    """Which answers a menu holds ("26–50"), so a voter can find #37 without opening every menu."""
    first, last = chunk[0].number, chunk[-1].number
    if first is None or last is None:
        return f"{chunk[0].label[:20]}…"
    return str(first) if first == last else f"{first}–{last}"
