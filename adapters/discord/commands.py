"""The slash commands: `/quiz ...` for everyone and `/quiz-admin ...` for people with Manage Server.

Discord hides `/quiz-admin` from members without Manage Server (default_permissions), and the core checks
again in code, because server admins can change who sees a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import available_timezones

import discord
from discord import app_commands

if TYPE_CHECKING:
    from adapters.discord.client import QuizBot

_ZONES = sorted(available_timezones())


def register(tree: app_commands.CommandTree[Any], bot: QuizBot) -> None:
    quiz = app_commands.Group(name="quiz", description="Daily interview practice", guild_only=True)
    admin = app_commands.Group(
        name="quiz-admin",
        description="Set up and run the daily question in this server",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    async def topic_choices(_: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        cur = current.lower()
        topics = bot.runtime.bank.topics.items()
        return [
            app_commands.Choice(name=f"{title} ({tid})"[:100], value=tid)
            for tid, title in sorted(topics)
            if cur in tid or cur in title.lower()
        ][:25]

    async def zone_choices(_: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        cur = current.lower().replace(" ", "_")
        return [app_commands.Choice(name=z, value=z) for z in _ZONES if cur in z.lower()][:25]

    @quiz.command(name="practice", description="A private practice question: due reviews first, then new ones")
    @app_commands.describe(topic="A topic (start typing)", difficulty="easy, medium or hard")
    @app_commands.autocomplete(topic=topic_choices)
    async def practice(
        interaction: discord.Interaction[Any],
        topic: str | None = None,
        difficulty: Literal["easy", "medium", "hard"] | None = None,
    ) -> None:
        await bot.run_command(interaction, ("quiz", "practice"), {"topic": topic, "difficulty": difficulty})

    @quiz.command(name="leaderboard", description="Top members this week, this month or all time")
    async def leaderboard(
        interaction: discord.Interaction[Any],
        period: Literal["week", "month", "all"] = "week",
        scope: Literal["channel", "server"] = "channel",
    ) -> None:
        await bot.run_command(interaction, ("quiz", "leaderboard"), {"period": period, "scope": scope})

    @quiz.command(name="stats", description="Answers, votes, streaks and rank, yours or a member's")
    @app_commands.describe(member="Whose stats (default: yours)", chart="Attach a chart of progress per topic")
    async def stats(
        interaction: discord.Interaction[Any], member: discord.Member | None = None, chart: bool | None = None
    ) -> None:
        options = {"member": str(member.id) if member else None}
        if chart is not None:
            options["chart"] = "yes" if chart else "no"
        await bot.run_command(interaction, ("quiz", "stats"), options)

    @quiz.command(name="topics", description="The topics and how many questions each has")
    async def topics(interaction: discord.Interaction[Any]) -> None:
        await bot.run_command(interaction, ("quiz", "topics"), {})

    @quiz.command(name="forget-me", description="Erase your answers, votes, points and practice history")
    async def forget_me(interaction: discord.Interaction[Any]) -> None:
        await bot.run_command(interaction, ("quiz", "forget-me"), {})

    @quiz.command(name="review", description="How many practice questions are due for review, per topic")
    async def review(interaction: discord.Interaction[Any]) -> None:
        await bot.run_command(interaction, ("quiz", "review"), {})

    @quiz.command(name="remind", description="A daily direct message when reviews are due; or turn it off")
    @app_commands.describe(
        time="Local time, 24-hour HH:MM",
        timezone="IANA timezone, e.g. Europe/Berlin (start typing)",
        action="off stops the reminder; on restarts it",
    )
    @app_commands.autocomplete(timezone=zone_choices)
    async def remind(
        interaction: discord.Interaction[Any],
        time: str | None = None,
        timezone: str | None = None,
        action: Literal["off", "on"] | None = None,
    ) -> None:
        options = {"time": time, "timezone": timezone, "action": action}
        await bot.run_command(interaction, ("quiz", "remind"), options)

    @quiz.command(name="help", description="What the bot does and its commands")
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await bot.run_command(interaction, ("quiz", "help"), {})

    @admin.command(name="setup", description="Start or change the daily question in a channel")
    @app_commands.describe(
        channel="Where to post (default: here)",
        time="Post time, 24-hour HH:MM",
        timezone="IANA timezone, e.g. Europe/Berlin (start typing)",
        days="Weekdays: mon-fri, daily, mon,wed,fri",
        topics="Comma-separated topic ids, or all",
        answer="Answer window, like 8h or 90m",
        voting="Voting window, like 14h",
        mode="thread: answers in the thread; blind: private until the reveal",
        cap="Votes each member may cast per round",
        plan="ramp: easier early in the week; any",
        legacy="Include legacy questions",
        leaderboard="Weekly leaderboard day and time, like fri@17:00",
    )
    @app_commands.autocomplete(timezone=zone_choices)
    async def setup(
        interaction: discord.Interaction[Any],
        channel: app_commands.Transform[Any, PickedChannel] | None = None,
        time: str | None = None,
        timezone: str | None = None,
        days: str | None = None,
        topics: str | None = None,
        answer: str | None = None,
        voting: str | None = None,
        mode: Literal["thread", "blind"] | None = None,
        cap: app_commands.Range[int, 1, 25] | None = None,
        plan: Literal["ramp", "any"] | None = None,
        legacy: bool | None = None,
        leaderboard: str | None = None,
    ) -> None:
        options = {
            "time": time,
            "timezone": timezone,
            "days": days,
            "topics": topics,
            "answer": answer,
            "voting": voting,
            "mode": mode,
            "cap": cap,
            "plan": plan,
            "legacy": None if legacy is None else ("yes" if legacy else "no"),
            "leaderboard": leaderboard,
        }
        if channel is not None:
            options.update(channel=str(channel.id), channel_name=getattr(channel, "name", None))
        await bot.run_command(interaction, ("quiz", "admin", "setup"), options)

    def simple(name: str, description: str) -> None:
        async def callback(interaction: discord.Interaction[Any]) -> None:
            await bot.run_command(interaction, ("quiz", "admin", name), {})

        admin.add_command(app_commands.Command(name=name, description=description, callback=callback))

    for name, description in (
        ("show", "This channel's settings and next scheduled times"),
        ("pause", "Stop daily questions here (the running round still finishes)"),
        ("resume", "Start daily questions again"),
        ("post-now", "Post a question now"),
        ("reveal-now", "Reveal the running round's answer and open voting now"),
        ("close-now", "Close voting on the running round now and award points"),
        ("skip", "Skip the running round, or the next one if none is running"),
    ):
        simple(name, description)

    tree.add_command(quiz)
    tree.add_command(admin)


class PickedChannel(app_commands.Transformer[Any]):
    """setup's `channel` option. The picker offers text and announcement channels; the pick is passed on as it
    came (id and name) instead of being looked up in discord.py's cache, which fails the whole command, with no
    reply, for a channel not cached or of another kind. The core asks the platform whether the bot can run a
    daily question there (DiscordPlatform.check_channel) and tells the admin what is wrong if not."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return value  # an AppCommandChannel (or AppCommandThread): id, name and type, as Discord resolved them
