"""The shell's side of ``bot.ports.Platform``: the bot's channel posts, printed to the terminal."""

from __future__ import annotations

import itertools
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from adapters.shell.render import render
from bot.events import Place
from bot.models import Channel
from bot.ports import Sent
from bot.render import Button, Image, Message


@dataclass
class ShellPlatform:
    write: Callable[[str], None]
    name: str = "shell"
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Buttons shown so far, numbered for /click; the latest ballot, numbered for /vote.
    buttons: dict[int, Button] = field(default_factory=dict)
    ballot: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    current_thread: str | None = None
    sent: list[tuple[str | None, Message]] = field(default_factory=list)
    direct: list[tuple[str, Message]] = field(default_factory=list)  # (user, message) sent by direct message

    # Message ids must never repeat across sessions on the same database: a round's thread is found by id.
    session: str = field(default_factory=lambda: secrets.token_hex(3))
    # Where pictures (the leaderboard card, the stats chart) are saved for you to open; a temp folder if unset.
    image_dir: Path | None = None

    def next_id(self) -> str:
        return f"m{self.session}-{next(self._ids)}"

    def show(self, msg: Message, prefix: str = "") -> None:
        numbers = []
        for b in msg.buttons:
            n = len(self.buttons) + 1
            self.buttons[n] = b
            numbers.append(n)
        self._remember_ballot(msg)
        text = render(msg, numbers)
        if msg.image is not None:
            text += f"\n{self.save_image(msg.image)}"
        self.write("\n".join(prefix + line for line in text.splitlines()) if prefix else text)

    def save_image(self, image: Image) -> str:
        """A terminal cannot show a picture: save it and say where. The text above already says the same."""
        folder = self.image_dir or Path(tempfile.gettempdir()) / "interview-bot-images"
        name = f"{self.session}-{next(self._ids)}-{_SAFE_NAME.sub('_', image.filename)[-80:]}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(image.data)  # small and local: not worth a thread
        except OSError as exc:
            return f"(picture not saved: {exc})"
        return f"(picture: {folder / name})"

    def _remember_ballot(self, msg: Message) -> None:
        votes = [b for b in msg.buttons if b.custom_id.startswith("vote:")]
        if votes:
            self.ballot = {i: (b.custom_id, None) for i, b in enumerate(votes, start=1)}
        elif msg.select is not None and msg.select.custom_id.startswith("vote:"):
            # A long ballot comes as several messages of the same round: /vote N takes the answer's own number,
            # whichever message listed it. A new round's ballot starts afresh.
            same_round = any(cid == msg.select.custom_id for cid, _ in self.ballot.values())
            numbered = {
                o.number if o.number is not None else i: (msg.select.custom_id, o.value)
                for i, o in enumerate(msg.select.options, start=1)
            }
            self.ballot = {**self.ballot, **numbered} if same_round else numbered

    async def send(
        self,
        channel: Channel,
        message: Message,
        thread_id: str | None = None,
        *,
        key: str | None = None,
        maybe_sent_since: datetime | None = None,
    ) -> Sent:
        mid = self.next_id()
        self.sent.append((thread_id, message))
        where = f"#{channel.name or channel.channel_id}" + (" › thread" if thread_id else "")
        self.write(f"\n[{where}] interview-bot:")
        self.show(message, prefix="  ")
        if message.thread_name:
            self.current_thread = mid
            self.write(f"  (thread opened: {message.thread_name}. Type your answer as a plain line.)")
            return Sent(mid, mid)
        return Sent(mid)

    def owns(self, channel: Channel) -> bool:
        return True

    async def check_channel(self, place: Place) -> str | None:
        # Any channel name is a channel in the terminal: posts to it are printed like the others.
        return None

    async def notify_admins(self, channel: Channel, message: Message) -> None:
        self.write("\n[admin notice]")
        self.show(message, prefix="  ")

    async def send_direct(self, space_id: str, user_id: str, message: Message) -> None:
        # In the shell every member shares one terminal: a direct message is printed, addressed to them.
        self.direct.append((user_id, message))
        self.write(f"\n[direct message to {user_id}] interview-bot:")
        self.show(message, prefix="  ")


_SAFE_NAME = re.compile(r"[^\w.-]")


def image_dir_for(database_url: str) -> Path | None:
    """Pictures go next to a SQLite database file (where the user already looks); None means a temp folder."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)
    except Exception:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve().parent / "interview-bot-images"
