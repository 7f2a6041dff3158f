"""The terminal conversation: one local channel, any number of members, and a clock you can move on.

Lines starting with ``/`` are commands (``/quiz ...`` goes to the core exactly as Slack text would); any
other line is a message in the open round's thread, i.e. an answer from whoever is typing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.base import strip_controls
from adapters.shell.platform import ShellPlatform
from bot.clock import ManualClock, OffsetClock
from bot.commands.parse import parse_duration
from bot.events import (
    Actor,
    ButtonPressed,
    FormSubmitted,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    Place,
    TextCommand,
)
from bot.render import OpenForm, React, Reply, Response
from bot.runtime import Runtime
from bot.schedule import format_local
from bot.store import channels as channel_store

SPACE = "local"
REACTIONS = {"recorded": "✓ answer recorded", "updated": "✓ answer updated", "refused": "✗ not accepted"}

HELP = """\
You are in a local channel. Lines you type are messages; lines starting with / are commands.
  /as NAME            type as another member (e.g. /as alice); admins are listed under admins.shell in the config
  /who                who has typed here
  any other text      your answer in the open question's thread (your first message counts)
  /edit TEXT          edit your answer          /delete   delete your answer
  /vote N             vote for answer N on the ballot
  /click N            press button [N]
  /quiz ...           every bot command: /quiz help, /quiz practice, /quiz leaderboard, /quiz admin setup ...
  /wait 8h            move the clock on (runs whatever falls due: reveal, close, the next day's post)
  /time               the bot's current time        /help   this text        /quit   leave"""


@dataclass
class ShellSession:
    runtime: Runtime
    platform: ShellPlatform
    write: Callable[[str], None]
    clock: OffsetClock | ManualClock | None = None
    user: str = "host"
    channel: str = "general"
    members: set[str] = field(default_factory=set)
    my_answer: dict[str, str] = field(default_factory=dict)  # user -> message id of their answer
    pending_form: tuple[str, str] | None = None  # (user, custom_id) waiting for the next line

    def actor(self) -> Actor:
        admins = self.runtime.config.admins.get("shell", [])
        return Actor("shell", SPACE, self.user, self.user, is_admin=self.user in admins)

    def place(self, thread: str | None = None) -> Place:
        return Place("shell", SPACE, self.channel, thread, self.channel)

    async def ensure_channel(self) -> None:
        """The shell's channel exists from the first run, so a newcomer can /quiz admin post-now at once."""
        engine = self.runtime.engine
        async with engine.tx() as conn:
            existing = await channel_store.find(conn, "shell", SPACE, self.channel)
            if existing is None:
                ch, _ = await channel_store.save(conn, self.place(), self.runtime.config.channel_defaults, engine.now())
                pk = ch.id
            else:
                pk = existing.id
        await self.runtime.scheduler.plan(pk)

    def prompt(self) -> str:
        return f"{self.user}> "

    async def run(self, lines: AsyncIterator[bytes | str]) -> None:
        self.write(HELP)
        self.write(f"\nYou are '{self.user}'. Try: /quiz admin post-now")
        async for raw in lines:
            if isinstance(raw, bytes):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.write("That line is not valid UTF-8 text, so nothing was sent.")
                    continue
            else:
                line = raw
            line = strip_controls(line.rstrip("\r\n"))
            if not await self.handle_line(line):
                break

    async def handle_line(self, line: str) -> bool:
        """One line of input. Returns False to quit."""
        if self.pending_form is not None:
            user, custom_id = self.pending_form
            self.pending_form = None
            if user == self.user:
                await self._dispatch(FormSubmitted(self.actor(), self.place(), custom_id, {"answer": line}))
                return True
        stripped = line.strip()
        if not stripped:
            return True
        if not stripped.startswith("/"):
            await self._say(line)
            return True
        word, _, rest = stripped[1:].partition(" ")
        word = word.lower()
        rest = rest.strip()
        if word in ("quit", "exit", "q"):
            return False
        handler = {
            "help": self._help,
            "as": self._as,
            "who": self._who,
            "edit": self._edit,
            "delete": self._delete,
            "vote": self._vote,
            "click": self._click,
            "wait": self._wait,
            "time": self._time,
            "quiz": self._quiz,
        }.get(word)
        if handler is None:
            self.write(f"Unknown command /{word}. Type /help for the list.")
            return True
        await handler(rest)
        return True

    async def _help(self, _: str) -> None:
        self.write(HELP)

    async def _as(self, name: str) -> None:
        name = name.strip().lstrip("@")
        if not re.fullmatch(r"[\w.-]{1,32}", name):
            self.write("Usage: /as NAME (letters, digits, . _ -; up to 32 characters)")
            return
        self.user = name
        self.members.add(name)
        admin = " (admin)" if self.actor().is_admin else ""
        self.write(f"You are now '{name}'{admin}.")

    async def _who(self, _: str) -> None:
        admins = set(self.runtime.config.admins.get("shell", []))
        names = sorted(self.members | {self.user})
        self.write("Members: " + ", ".join(n + (" (admin)" if n in admins else "") for n in names))

    async def _say(self, text: str) -> None:
        self.members.add(self.user)
        thread = self.platform.current_thread
        if thread is None:
            self.write("(No question is open. An admin can post one with /quiz admin post-now.)")
            return
        mid = self.platform.next_id()
        responses = await self.runtime.core.handle(MessagePosted(self.actor(), self.place(thread), mid, text))
        if any(isinstance(r, React) and r.emoji == "recorded" for r in responses):
            self.my_answer[self.user] = mid
        self._show(responses)

    async def _edit(self, text: str) -> None:
        mid = self.my_answer.get(self.user)
        if mid is None or not text:
            self.write("Usage: /edit NEW TEXT (after you have answered)")
            return
        thread = self.platform.current_thread
        self._show(await self.runtime.core.handle(MessageEdited(self.actor(), self.place(thread), mid, text)))

    async def _delete(self, _: str) -> None:
        mid = self.my_answer.pop(self.user, None)
        if mid is None:
            self.write("You have no answer to delete.")
            return
        thread = self.platform.current_thread
        self._show(await self.runtime.core.handle(MessageDeleted(self.place(thread), mid)))
        self.write("Your answer is deleted. A new message will count as your answer.")

    async def _vote(self, arg: str) -> None:
        if not arg.isdigit() or int(arg) not in self.platform.ballot:
            shown = (
                f" ({min(self.platform.ballot)} to {max(self.platform.ballot)})"
                if self.platform.ballot
                else " (no ballot is open yet)"
            )
            self.write(f"Usage: /vote N, the number of an answer on the ballot{shown}")
            return
        custom_id, value = self.platform.ballot[int(arg)]
        values = (value,) if value else ()
        press = ButtonPressed(self.actor(), self.place(self.platform.current_thread), custom_id, values)
        self._show(await self.runtime.core.handle(press))

    async def _click(self, arg: str) -> None:
        if not arg.isdigit() or int(arg) not in self.platform.buttons:
            self.write("Usage: /click N, where [N] is a button shown above")
            return
        button = self.platform.buttons[int(arg)]
        press = ButtonPressed(self.actor(), self.place(self.platform.current_thread), button.custom_id)
        self._show(await self.runtime.core.handle(press))

    async def _quiz(self, rest: str) -> None:
        event = TextCommand(self.actor(), self.place(self.platform.current_thread), "quiz " + rest)
        self._show(await self.runtime.core.handle(event))

    async def _wait(self, arg: str) -> None:
        if self.clock is None:
            self.write("This shell runs on real time; /wait is not available.")
            return
        try:
            minutes = parse_duration(arg or "")
        except ValueError as exc:
            self.write(f"Usage: /wait DURATION, like 8h, 30m or 1h30m ({exc})")
            return
        if not 0 < minutes <= 14 * 24 * 60:
            self.write("Wait between 1 minute and 14 days.")
            return
        # Step through the interval so each transition happens at its own time, in order.
        step = timedelta(minutes=min(minutes, 30))
        left = timedelta(minutes=minutes)
        while left > timedelta(0):
            delta = min(step, left)
            self.clock.advance(delta)
            left -= delta
            await self.runtime.engine.tick()
        await self.runtime.scheduler.plan_all()
        await self._time("")

    async def _time(self, _: str) -> None:
        engine = self.runtime.engine
        tz = self.runtime.config.channel_defaults.timezone
        self.write(f"The bot's clock: {format_local(engine.now(), tz)}")

    def _show(self, responses: list[Response]) -> None:
        for r in responses:
            if isinstance(r, Reply):
                who = "only you see this" if r.ephemeral else "everyone sees this"
                self.write(f"\n[to {self.user}, {who}]")
                self.platform.show(r.message, prefix="  ")
            elif isinstance(r, React):
                self.write(REACTIONS.get(r.emoji, r.emoji))
            elif isinstance(r, OpenForm):
                self.pending_form = (self.user, r.custom_id)
                field = r.fields[0].label if r.fields else "Answer"
                self.write(f"[{r.title}] Type your {field.lower()} on the next line (it stays private):")

    async def _dispatch(self, event: FormSubmitted) -> None:
        self._show(await self.runtime.core.handle(event))
