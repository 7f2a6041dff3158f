"""Discord rendering: user text can never ping or break the layout, and Discord's limits are respected."""

from __future__ import annotations

import discord
import pytest

from adapters.discord import shards_from_env
from adapters.discord.render import to_kwargs
from bot.render import Button, Field, Message, Select, SelectOption, UserText


def test_user_text_cannot_mention_anyone() -> None:
    msg = Message(parts=("Answer: ", UserText("@everyone look <@123456789012345678> <@&876543210987654321> @here")))
    content = to_kwargs(msg)["content"]
    assert "@everyone" not in content and "@here" not in content
    assert "<@123456789012345678>" not in content and "<@&876543210987654321>" not in content


def test_excerpts_escape_markdown_but_whole_answers_keep_code() -> None:
    short = to_kwargs(Message(parts=(UserText("**bold** `code` ```"),)))["content"]
    assert "\\*\\*bold\\*\\*" in short
    whole = to_kwargs(Message(parts=("x\n", UserText("```python\nprint(1)\n", markdown=True))))["content"]
    assert whole.count("```") == 2  # the unclosed fence was closed so it cannot swallow what follows


def test_embeds_and_limits() -> None:
    msg = Message(
        title="T" * 300,
        parts=("d" * 5000,),
        fields=tuple(Field(f"f{i}", "v" * 2000) for i in range(30)),
        footer="question x",
    )
    embed: discord.Embed = to_kwargs(msg)["embed"]
    assert len(embed.title or "") == 256 and 0 < len(embed.description or "") <= 4096
    assert 0 < len(embed.fields) <= 25 and all(len(f.value or "") <= 1024 for f in embed.fields)
    # Discord refuses an embed over 6,000 characters in all (this test once accepted 4,096 + 25 x 1,024).
    assert len(embed) <= 6000


def test_long_text_without_title_goes_in_an_embed() -> None:
    kwargs = to_kwargs(Message(parts=("x" * 2500,)))
    assert "content" not in kwargs and len(kwargs["embed"].description) == 2500


def test_buttons_and_menus() -> None:
    buttons = tuple(Button(f"vote:1:{i}", f"Vote {i}") for i in range(3))
    view = to_kwargs(Message(parts=("x",), buttons=buttons))["view"]
    ids = [c.item.custom_id for c in view.children]  # type: ignore[attr-defined]
    assert ids == ["vote:1:0", "vote:1:1", "vote:1:2"] and view.timeout is None
    options = tuple(SelectOption(str(i), f"{i}. name") for i in range(60))
    view = to_kwargs(Message(parts=("x",), select=Select("vote:9", "Choose", options)))["view"]
    menus = [c.item for c in view.children]  # type: ignore[attr-defined]
    assert [m.custom_id for m in menus] == ["vote:9:m1", "vote:9:m2", "vote:9:m3"]
    assert [len(m.options) for m in menus] == [25, 25, 10]


def test_shard_ranges() -> None:
    assert shards_from_env({}) == (None, None)
    assert shards_from_env({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "2,3"}) == ([2, 3], 4)
    assert shards_from_env({"DISCORD_SHARD_COUNT": "2"}) == ([0, 1], 2)
    with pytest.raises(ValueError, match="between 0"):
        shards_from_env({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "5"})
