"""The command table: one entry per command, used for parsing, usage help and the adapters' registration."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]
    summary: str
    options: tuple[Option, ...] = ()
    positional: tuple[str, ...] = ()  # option names that may also be given without key=
    admin: bool = False
    examples: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def usage(self) -> str:
        opts = " ".join(f"[{o.name}=…]" if o.name not in self.positional else f"[{o.name}]" for o in self.options)
        return f"/{self.name} {opts}".rstrip()

    def option(self, key: str) -> Option | None:
        key = key.lower().replace("_", "-")
        for o in self.options:
            if key == o.name or key in o.aliases:
                return o
        return None


DIFFICULTY = Option("difficulty", "easy, medium or hard", ("level",), ("easy", "medium", "hard"))

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(("quiz", "help"), "What the bot does and every command"),
    CommandSpec(
        ("quiz", "practice"),
        "A private practice question: reviews that are due first, then new ones",
        (Option("topic", "a topic id or name (see /quiz topics)"), DIFFICULTY),
        positional=("topic", "difficulty"),
        examples=("/quiz practice", "/quiz practice cnn hard"),
    ),
    CommandSpec(
        ("quiz", "leaderboard"),
        "Top members this week, this month or all time",
        (
            Option("period", "week, month or all", choices=("week", "month", "all")),
            Option(
                "scope", "channel or server (every channel of this server/workspace)", choices=("channel", "server")
            ),
        ),
        positional=("period", "scope"),
        examples=("/quiz leaderboard", "/quiz leaderboard month server"),
    ),
    CommandSpec(
        ("quiz", "stats"),
        "Answers, votes, streaks and rank, yours or a member's",
        (
            Option("member", "whose stats (default: yours)", ("user",)),
            Option("chart", "attach a chart of progress per topic: yes (default) or no", choices=("yes", "no")),
        ),
        positional=("member",),
        examples=("/quiz stats", "/quiz stats @someone chart=no"),
    ),
    CommandSpec(
        ("quiz", "review"),
        "How many practice questions are due for review, now and this week, per topic",
    ),
    CommandSpec(
        ("quiz", "remind"),
        "A daily direct message when you have reviews due, at your time; `off` stops it",
        (
            Option("action", "off stops the reminder, on restarts it", choices=("off", "on")),
            Option("time", "local time, 24-hour HH:MM", ("at",)),
            Option("timezone", "IANA timezone such as Europe/Berlin", ("tz",)),
        ),
        positional=("action", "time", "timezone"),
        examples=("/quiz remind time=08:30 timezone=Europe/Berlin", "/quiz remind off"),
    ),
    CommandSpec(("quiz", "topics"), "The topics and how many questions each has"),
    CommandSpec(("quiz", "forget-me"), "Erase your answers, votes, points and practice history"),
    CommandSpec(
        ("quiz", "admin", "setup"),
        "Start or change the daily question in this channel",
        (
            Option("time", "post time, 24-hour HH:MM", ("post-time", "at")),
            Option("timezone", "IANA timezone such as Europe/Berlin", ("tz",)),
            Option("days", "weekdays: mon-fri, daily, mon,wed,fri", ("weekdays",)),
            Option("topics", "comma-separated topic ids, or all"),
            Option("answer", "answer window, like 8h or 90m", ("answer-window",)),
            Option("voting", "voting window, like 14h", ("voting-window", "vote")),
            Option(
                "mode",
                "thread (answers in the thread) or blind (private, published at reveal)",
                choices=("thread", "blind"),
            ),
            Option("cap", "votes each member may cast per round", ("votes", "vote-cap")),
            Option("plan", "difficulty plan: ramp (easy early in the week) or any", ("difficulty",), ("ramp", "any")),
            Option("legacy", "include legacy questions: yes or no"),
            Option("leaderboard", "weekly leaderboard day and time, like fri@17:00"),
            Option("channel", "the channel to set up (default: this one)"),
        ),
        admin=True,
        examples=("/quiz admin setup time=09:00 timezone=Europe/Berlin days=mon-fri topics=cnn,training",),
    ),
    CommandSpec(("quiz", "admin", "show"), "This channel's settings and next scheduled times", admin=True),
    CommandSpec(("quiz", "admin", "pause"), "Stop daily questions here (the running round still finishes)", admin=True),
    CommandSpec(("quiz", "admin", "resume"), "Start daily questions again", admin=True),
    CommandSpec(("quiz", "admin", "post-now"), "Post a question now", admin=True),
    CommandSpec(("quiz", "admin", "reveal-now"), "Reveal the running round's answer and open voting now", admin=True),
    CommandSpec(("quiz", "admin", "close-now"), "Close voting on the running round now and award points", admin=True),
    CommandSpec(("quiz", "admin", "skip"), "Skip the running round, or the next one if none is running", admin=True),
)

BY_PATH = {c.path: c for c in COMMANDS}
