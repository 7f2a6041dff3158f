"""The core as adapters see it: hand it an event, get back what to say.

``Core.handle`` is the single entry point for everything members do. Everything the bot does on its own
(posting, revealing, closing) goes through ``Engine`` and the adapters' ``Platform.send``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from bot import messages
from bot.commands import adaptive
from bot.commands.handlers import Commands, UsageError, practice_reply
from bot.commands.parse import ParseError, parse, usage_text
from bot.engine import Engine
from bot.events import (
    Actor,
    ButtonPressed,
    Command,
    Event,
    FormSubmitted,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    Place,
    TextCommand,
)
from bot.ingest import AnswerIn, Ingest, SeenIn, VoteIn, tombstone
from bot.models import Round, RoundState
from bot.render import FormField, Message, OpenForm, React, Reply, Response
from bot.store import answers as answer_store
from bot.store import channels as channel_store
from bot.store import rounds as round_store
from bot.store import scores as score_store
from bot.store import seen
from bot.store.answers import VoteResult
from bot.usertext import storable, visible

log = logging.getLogger(__name__)

# Stored whole, however long: but a form field has to have some limit, and the platforms' own is 4,000.
BLIND_ANSWER_MAX = 4000


class Core:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.commands = Commands(engine, self._changed)
        self.ingest = Ingest(engine)
        self._listeners: list[Callable[[int], Awaitable[object]]] = []

    def on_channel_change(self, listener: Callable[[int], Awaitable[object]]) -> None:
        """The scheduler registers here to re-plan a channel after a command changed it."""
        self._listeners.append(listener)

    async def _changed(self, channel_pk: int) -> None:
        for listener in self._listeners:
            await listener(channel_pk)

    async def first_delivery(self, platform: str, event_id: str) -> bool:
        """True the first time a platform delivers this event id, in any process; False for a redelivery."""
        return await self.ingest.first_delivery(SeenIn(platform, event_id, self.engine.now()))

    async def handle(self, event: Event) -> list[Response]:
        try:
            match event:
                case TextCommand():
                    return await self._text_command(event)
                case Command():
                    return await self.commands.run(event)
                case MessagePosted():
                    return await self._answer_posted(event)
                case MessageEdited():
                    return await self._answer_edited(event)
                case MessageDeleted():
                    return await self._answer_deleted(event)
                case ButtonPressed():
                    return await self._button(event)
                case FormSubmitted():
                    return await self._form(event)
        except UsageError as exc:
            return [Reply(messages.say(str(exc)))]
        except Exception:
            # A bug or an outage must not leave the member staring at a silent failure, on any platform;
            # the details go to the log, where whoever runs the bot can see them.
            log.exception("failed to handle %s", type(event).__name__)
            return [Reply(messages.say("Something went wrong on my side; it is logged. Please try again in a moment."))]
        return []

    async def _text_command(self, event: TextCommand) -> list[Response]:
        try:
            parsed = parse(event.text)
        except ParseError as exc:
            body = exc.message + (f"\n\n{usage_text(exc.spec)}" if exc.spec else "\nTry `/quiz help`.")
            return [Reply(messages.say(body))]
        return await self.commands.run(Command(event.actor, event.place, parsed.spec.path, parsed.options))

    # -- answers in a round's thread ----------------------------------------------------------------------

    @asynccontextmanager
    async def _open_round(self, place: Place) -> AsyncIterator[tuple[AsyncConnection, Round] | None]:
        """The round of the thread a message is in, locked for this transaction, while it still takes answers.

        None when the message is not in a round's thread, or the round is revealed: from the reveal on,
        answers are frozen so the ballot shows exactly what voters read, and the thread is for discussion."""
        async with self.engine.tx() as conn:
            rnd = None
            if place.thread_id is not None:
                rnd = await round_store.for_thread(
                    conn, place.platform, place.space_id, place.channel_id, place.thread_id
                )
            yield (conn, rnd) if rnd is not None and rnd.state == RoundState.OPEN else None

    async def _answer_posted(self, event: MessagePosted) -> list[Response]:
        text = storable(event.text)
        if event.actor.is_bot or not visible(text) or event.place.thread_id is None:
            return []
        item = AnswerIn(event.place, event.actor, event.message_id, text, self.engine.now())
        # Later messages by the same member are discussion; only their first one is the answer.
        return [React("recorded")] if await self.ingest.answer(item) else []

    async def _answer_edited(self, event: MessageEdited) -> list[Response]:
        if event.actor.is_bot:
            return []
        async with self._open_round(event.place) as found:
            if found is None:
                return []
            conn, rnd = found
            text = storable(event.text)
            if not visible(text):  # edited down to nothing anyone could read: as good as deleted
                await answer_store.delete_by_message(conn, rnd.id, event.message_id)
                return []
            now = self.engine.now()
            if await answer_store.edit_by_message(conn, rnd.id, event.message_id, text, now):
                return [React("updated")]
            if await self._tombstoned(conn, event.place, event.message_id):
                return []
            # An edit can overtake the message it edits (platforms do not promise order): the edited text
            # is the answer, and the original, arriving later, finds the member has answered already.
            member = await channel_store.ensure_member(conn, event.actor, now)
            added = await answer_store.add(conn, rnd.id, member.id, event.message_id, text, now)
        return [React("recorded")] if added else []

    async def _answer_deleted(self, event: MessageDeleted) -> list[Response]:
        async with self._open_round(event.place) as found:
            if found is not None:
                conn, rnd = found
                await answer_store.delete_by_message(conn, rnd.id, event.message_id)
                # Remember the deletion, so a late delivery of the message itself cannot bring it back.
                await seen.mark(
                    conn, event.place.platform, tombstone(event.place, event.message_id), self.engine.now()
                )
        return []

    @staticmethod
    async def _tombstoned(conn: AsyncConnection, place: Place, message_id: str) -> bool:
        return await seen.is_marked(conn, place.platform, tombstone(place, message_id))

    # -- buttons and forms --------------------------------------------------------------------------------

    async def _button(self, event: ButtonPressed) -> list[Response]:
        kind, _, rest = event.custom_id.partition(":")
        if kind == "vote":
            return await self._vote(event, rest)
        if kind == "practice":
            return await self._practice_button(event.actor, rest)
        if kind == "answer":
            return self._blind_form(rest)
        if kind == "forget" and rest == "confirm":
            return await self._forget(event.actor)
        log.info("ignoring unknown button %r", event.custom_id[:100])
        return [Reply(messages.say("That button is no longer in use."))]

    async def _vote(self, event: ButtonPressed, rest: str) -> list[Response]:
        parts = rest.split(":")
        try:
            round_id = int(parts[0])
            # A menu carries the answer in its value (a long ballot may span several menus); a button in its id.
            answer_id = int(event.values[0]) if event.values else int(parts[1])
        except (ValueError, IndexError):
            return [Reply(messages.say("That vote button is broken; please use the ballot in the thread."))]
        done = await self.ingest.vote(VoteIn(event.place, event.actor, round_id, answer_id, self.engine.now()))
        if done.outcome is None:
            return [Reply(messages.say(done.refused or "I can't find that round."))]
        out = done.outcome
        left = f"{out.remaining} vote{'s' if out.remaining != 1 else ''} left this round"
        text = {
            VoteResult.RECORDED: f"Vote recorded for {out.author}'s answer. You have {left}.",
            VoteResult.ALREADY: f"You already voted for {out.author}'s answer. You have {left}.",
            VoteResult.OWN: "You can't vote for your own answer.",
            VoteResult.CAP: f"You have used all {done.cap} of your votes this round.",
            VoteResult.UNKNOWN: "That answer is not on this round's ballot.",
        }[out.result]
        return [Reply(Message(parts=(text,)))]

    async def _practice_button(self, actor: Actor, rest: str) -> list[Response]:
        action, _, arg = rest.partition(":")
        bank = self.engine.bank
        if action == "next":
            try:
                return await practice_reply(self.commands, actor, arg or None, None)
            except UsageError:
                return await practice_reply(self.commands, actor, None, None)
        qid, _, rating = arg.partition(":")
        q = bank.get(qid)
        if q is None:
            return [Reply(messages.say("That question is no longer in the bank. Try `/quiz practice` again."))]
        if action == "show":
            return [Reply(messages.practice_answer(q))]
        if action == "rate" and rating in ("got", "partly", "missed"):
            return await adaptive.rate(self.engine, actor, q, rating)  # schedules the question's next review
        return [Reply(messages.say("That button is no longer in use."))]

    def _blind_form(self, rest: str) -> list[Response]:
        if not rest.isdigit():
            return [Reply(messages.say("That answer button is broken."))]
        return [
            OpenForm(
                f"answer:{rest}",
                "Your answer",
                (FormField("answer", "Answer", "Only you see this until the reveal", True, BLIND_ANSWER_MAX),),
            )
        ]

    async def _form(self, event: FormSubmitted) -> list[Response]:
        kind, _, rest = event.custom_id.partition(":")
        if kind != "answer" or not rest.isdigit():
            return [Reply(messages.say("That form is no longer in use."))]
        text = storable(event.values.get("answer", ""))
        if not visible(text):
            return [Reply(messages.say("Your answer was empty, so nothing was saved."))]
        now = self.engine.now()
        async with self.engine.tx() as conn:
            rnd = await round_store.get(conn, int(rest), lock=True)
            ch = await channel_store.get(conn, rnd.channel_id) if rnd else None
            if rnd is None or ch is None or (ch.platform, ch.space_id) != (event.place.platform, event.place.space_id):
                return [Reply(messages.say("I can't find that round."))]
            if rnd.state != RoundState.OPEN:
                return [Reply(messages.say("Answers for this round are closed: it has been revealed."))]
            member = await channel_store.ensure_member(conn, event.actor, now)
            new = await answer_store.put_blind(conn, rnd.id, member.id, text, now)
        verb = "saved" if new else "replaced"
        return [
            Reply(messages.say(f"Your answer is {verb}. It stays private until the reveal; submit again to change it."))
        ]

    async def _forget(self, actor: Actor) -> list[Response]:
        async with self.engine.tx() as conn:
            member = await channel_store.find_member(conn, actor.platform, actor.space_id, actor.user_id)
            if member is None:
                return [Reply(messages.say("I hold no data about you here."))]
            counts = await score_store.forget(conn, member.id)
        log.info("erased member %s on request", member.id)
        return [
            Reply(
                messages.say(
                    f"Done: erased {counts['answers']} answers, {counts['votes']} votes, {counts['points']} point "
                    f"records and {counts['practice']} practice ratings."
                )
            )
        ]


