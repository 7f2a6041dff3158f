"""The words the bot says, as neutral messages. Kept apart from the logic so wording changes stay small."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.models import Answer, Channel, Round
from bot.questions.model import Question
from bot.render import Button, Field, Message, Select, SelectOption, Style, UserText
from bot.rubric import Coverage
from bot.schedule import format_local
from bot.store.scores import Standing

DIFFICULTY_LABEL = {"easy": "Easy", "medium": "Medium", "hard": "Hard"}
EXCERPT = 140
# Platforms cap buttons per message (Discord 25 in five rows, Slack 25 per actions block): past this, a menu.
MAX_BALLOT_BUTTONS = 20
# The ballot's body stays under Discord's 4,096-character embed description (escaping a member's name may add
# a few characters): past this, excerpts get shorter, then hints lose their key-point numbers, then excerpts go.
BALLOT_BUDGET = 3600
HINT_NOTE = (
    "↳ Automatic hint, not a score: which numbered key points of the reference answer an answer seems to "
    "mention. Your votes decide.\n"
)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1].rstrip() + "…"


def daily_post(channel: Channel, rnd: Round, q: Question, topic_title: str) -> Message:
    tz = channel.settings.timezone
    how = (
        "Reply in the thread below with your answer: your first message counts, and you can edit it until the reveal."
        if rnd.answer_mode == "thread"
        else "Press **Answer privately**: answers stay hidden until the reveal, then everyone's is published together."
    )
    reveal = format_local(rnd.reveal_at, tz) if rnd.reveal_at else "soon"
    buttons = (Button(f"answer:{rnd.id}", "Answer privately", Style.PRIMARY),) if rnd.answer_mode == "blind" else ()
    return Message(
        title="Question of the day",
        parts=(q.question,),
        fields=(
            Field("Topic", topic_title, inline=True),
            Field("Difficulty", DIFFICULTY_LABEL.get(q.difficulty, q.difficulty), inline=True),
            Field("Reveal", reveal, inline=True),
            Field("How to answer", how),
        ),
        buttons=buttons,
        footer=f"question {q.id}",
        thread_name=f"Answers: {excerpt(q.question, 80)}",
    )


def reveal(q: Question) -> Message:
    # Numbered, so that the ballot's hints can refer to them ("key points 1, 3").
    points = "\n".join(f"{n}. {p}" for n, p in enumerate(q.key_points, start=1))
    follow = "\n".join(f"- {f}" for f in q.follow_ups)
    fields = [Field("Key points", points)]
    if follow:
        fields.append(Field("Follow-up questions to think about", follow))
    return Message(title="Reference answer", parts=(q.answer,), fields=tuple(fields))


def published_answer(a: Answer) -> Message:
    """A blind-mode answer made public at reveal. Every byte of it is the member's, so it is all UserText."""
    return Message(
        parts=(f"**{a.position}.** ", UserText(a.display_name), " answered:\n", UserText(a.text, markdown=True))
    )


def hint(c: Coverage, numbers: bool = True) -> str:
    """An answer's rubric hint, worded as a guess about key points and never as a score."""
    which = f" ({', '.join(str(i + 1) for i in c.covered)})" if numbers and c.covered else ""
    return f"↳ hint: covers {c.count} of {c.total} key points{which}"


def ballot(
    rnd: Round,
    answers: Sequence[Answer],
    voting_ends: datetime,
    tz: str,
    hints: Mapping[int, Coverage] | None = None,
) -> Message:
    if not answers:
        return Message(parts=("Nobody answered this time. Tomorrow is another question!",))
    head = (
        f"Vote for the answers you found best: up to {rnd.vote_cap} vote{'s' if rnd.vote_cap != 1 else ''} each, "
        f"not for your own. Voting closes {format_local(voting_ends, tz)}.\n"
    )
    hints = hints or {}
    if any(a.id in hints for a in answers):
        head += HINT_NOTE

    def layout(limit: int, numbers: bool) -> list[str | UserText]:
        lines: list[str | UserText] = [head]
        for a in answers:
            lines += [f"\n**{a.position}.** ", UserText(a.display_name)]
            if limit:
                lines += [": ", UserText(excerpt(a.text, limit))]
            if a.id in hints:
                lines.append(f"{chr(10) if limit else ' '}{hint(hints[a.id], numbers)}")
        return lines

    # Many answers: shorter excerpts, then hints without numbers, then names alone (every answer is in the
    # thread above), until the ballot fits one message.
    for limit, numbers in ((EXCERPT, True), (100, True), (70, True), (40, True), (40, False), (0, False)):
        lines = layout(limit, numbers)
        if sum(len(p.text) if isinstance(p, UserText) else len(p) for p in lines) <= BALLOT_BUDGET:
            break
    if len(answers) <= MAX_BALLOT_BUTTONS:
        buttons = tuple(
            Button(f"vote:{rnd.id}:{a.id}", f"Vote {a.position}: {excerpt(a.display_name, 30)}", Style.SECONDARY)
            for a in answers
        )
        return Message(title="Vote", parts=tuple(lines), buttons=buttons)
    options = tuple(SelectOption(str(a.id), f"{a.position}. {excerpt(a.display_name, 60)}") for a in answers)
    return Message(title="Vote", parts=tuple(lines), select=Select(f"vote:{rnd.id}", "Choose an answer", options))


def results(answers: Sequence[Answer], awarded: dict[int, int], top_ids: set[int], streaks: dict[int, int]) -> Message:
    if not answers:
        return Message(title="Round closed", parts=("No answers, no points this round.",))
    ranked = sorted(answers, key=lambda a: (-a.votes, a.position or 0))
    parts: list[str | UserText] = []
    for a in ranked:
        badge = " 🏆" if a.id in top_ids else ""
        streak = f", streak {streaks[a.member_id]}" if streaks.get(a.member_id, 0) > 1 else ""
        parts += [
            f"- **{a.position}.** ",
            UserText(a.display_name),
            f"{badge}: {a.votes} vote{'s' if a.votes != 1 else ''}, +{awarded.get(a.member_id, 0)} points{streak}\n",
        ]
    return Message(title="Round closed: results", parts=tuple(parts))


def standings(title: str, rows: Sequence[Standing], me: Standing | None, empty: str) -> Message:
    if not rows:
        return Message(title=title, parts=(empty,))
    medals = {1: "🥇", 2: "🥈", 3: "🥉"}
    parts: list[str | UserText] = []
    for s in rows:
        parts += [f"{medals.get(s.rank, f'{s.rank}.')} ", UserText(s.display_name), f": {s.points} points\n"]
    if me is not None and all(s.member_id != me.member_id for s in rows):
        parts += [f"…\n{me.rank}. ", UserText(me.display_name), f" (you): {me.points} points\n"]
    return Message(title=title, parts=tuple(parts))


def practice_question(q: Question, topic_title: str) -> Message:
    return Message(
        title="Practice question",
        parts=(q.question,),
        fields=(
            Field("Topic", topic_title, inline=True),
            Field("Difficulty", DIFFICULTY_LABEL.get(q.difficulty, q.difficulty), inline=True),
        ),
        buttons=(Button(f"practice:show:{q.id}", "Show answer", Style.PRIMARY),),
        footer="Think it through (or write it down) before you look.",
    )


def practice_answer(q: Question) -> Message:
    base = reveal(q)
    return Message(
        title=base.title,
        parts=(*base.parts, "\n\nHow did you do?"),
        fields=base.fields,
        buttons=(
            Button(f"practice:rate:{q.id}:got", "Got it", Style.SUCCESS),
            Button(f"practice:rate:{q.id}:partly", "Partly", Style.SECONDARY),
            Button(f"practice:rate:{q.id}:missed", "Missed it", Style.DANGER),
            Button(f"practice:next:{q.topic}", "Another one", Style.PRIMARY),
        ),
    )


def say(text: str, title: str | None = None) -> Message:
    return Message(title=title, parts=(text,))
