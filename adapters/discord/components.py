"""Buttons and menus that keep working after a restart.

Each is a ``DynamicItem``: its whole state is the custom id ("vote:12:40", "practice:show:cnn-padding"),
so after a restart discord.py rebuilds it from any old message and hands the press to the core.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from adapters.discord.client import QuizBot

# discord.py routes a press to the first class whose template fully matches the custom id, whatever the
# component type, so buttons and menus need templates that cannot both match. Everything the core puts in a
# custom id starts with one of these words; render.py ends a menu's id with ":m<number>".
BUTTON = re.compile(r"(?!.*:m\d+$)(?:vote|practice|answer|forget):[\w:.#-]{1,90}")
MENU = re.compile(r"vote:\d+:m\d+")


class CoreButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON):
    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> CoreButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: QuizBot = interaction.client  # type: ignore[assignment]
        await bot.component_pressed(interaction, self.item.custom_id or "", ())


class CoreSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=MENU):
    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Select[Any], match: re.Match[str], /
    ) -> CoreSelect:
        return cls(item)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: QuizBot = interaction.client  # type: ignore[assignment]
        custom_id = (self.item.custom_id or "").rsplit(":m", 1)[0]  # drop the menu number render.py added
        await bot.component_pressed(interaction, custom_id, tuple(self.item.values))
