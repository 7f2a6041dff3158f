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
# A ballot message's listing stays under Discord's 4,096-character embed description, counted as if every
# character a platform may escape were escaped: past this, excerpts get shorter, then hints lose their key-point
# numbers, then excerpts go, then hints, and past that the ballot goes on in another message.
BALLOT_BUDGET = 3900
# Answers per ballot message: Discord's four menus of 25 (a message has five rows) and one Slack menu of 100.
BALLOT_PAGE = 100
# A name in the listing: display names are short on Discord (32) but may be long elsewhere.
BALLOT_NAME = 40
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


# How much of each answer the ballot's listing shows, richest first: an excerpt of so many characters (0: the
# name alone) and the hint with its key-point numbers, without them, or left out.
_FULL, _PLAIN, _NONE = "numbers", "plain", "none"
_LEVELS = ((EXCERPT, _FULL), (100, _FULL), (70, _FULL), (40, _FULL), (40, _PLAIN), (0, _PLAIN), (0, _NONE))
# Characters a platform may escape (Discord puts a backslash before Markdown, a zero-width space after an @):
# counted twice, so that the listing still fits once the adapter has escaped it.
_ESCAPED = frozenset("\\*_~`|>#-[]()<@:&")


def _cost(part: str | UserText) -> int:
    if isinstance(part, str):
        return len(part)
    return len(part.text) + sum(ch in _ESCAPED for ch in part.text)


def _entry(a: Answer, flat: str, limit: int, mode: str, hints: Mapping[int, Coverage]) -> list[str | UserText]:
    """One answer's lines in the listing: its number and name, an excerpt of ``flat`` (its text on one line),
    the hint."""
    lines: list[str | UserText] = [f"\n**{a.position}.** ", UserText(excerpt(a.display_name, BALLOT_NAME))]
    if limit:
        lines += [": ", UserText(flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…")]
    if a.id in hints and mode != _NONE:
        lines.append(f"{chr(10) if limit else ' '}{hint(hints[a.id], mode == _FULL)}")
    return lines


def _pack(costs: Sequence[int], budget: int, most: int = BALLOT_PAGE) -> list[int]:
    """Where each ballot message starts: as many answers as fit its text budget and ``most`` per message."""
    starts, used = [0], 0
    for i, c in enumerate(costs):
        if i > starts[-1] and (used + c > budget or i - starts[-1] >= most):
            starts.append(i)
            used = 0
        used += c
    return starts


def _shortened(limit: int, mode: str, hinted: bool) -> str:
    """Says plainly what the listing leaves out, so nobody takes a cut excerpt for the whole answer."""
    cuts = []
    if limit == 0:
        cuts.append("names only")
    elif limit < EXCERPT:
        cuts.append(f"excerpts cut to {limit} characters")
    if hinted and mode == _PLAIN:
        cuts.append("hints without key-point numbers")
    elif hinted and mode == _NONE:
        cuts.append("no hints")
    if not cuts:
        return ""
    return f"Shortened to fit ({', '.join(cuts)}): every answer is in full in the thread.\n"


def ballot(
    rnd: Round,
    answers: Sequence[Answer],
    voting_ends: datetime,
    tz: str,
    hints: Mapping[int, Coverage] | None = None,
) -> list[Message]:
    """The ballot: one message, or several ("Vote: ballot 2/3") when the answers do not fit one.

    Every answer is listed and votable in exactly one of them. A message holds at most BALLOT_PAGE answers
    (Discord shows them in four menus of 25, Slack in one menu of 100) and a listing within BALLOT_BUDGET.
    The fewest messages win over richer text: a busy thread would rather read one ballot of names than five
    of excerpts, and every answer is in the thread above anyway."""
    if not answers:
        return [Message(parts=("Nobody answered this time. Tomorrow is another question!",))]
    votes = f"up to {rnd.vote_cap} vote{'s' if rnd.vote_cap != 1 else ''} each"
    closes = format_local(voting_ends, tz)
    rules = f"Vote for the answers you found best: {votes}, not for your own. Voting closes {closes}.\n"
    hints = hints or {}
    hinted = any(a.id in hints for a in answers)
    # Room for the longest header a message can get (rules, the hint note, what was shortened, which ballot).
    reserve = len(rules) + len(HINT_NOTE) + max(len(_shortened(*level, True)) for level in _LEVELS) + 120
    budget = BALLOT_BUDGET - reserve
    flat = {a.id: " ".join(a.text.split()) for a in answers}  # once for every level: answers can be long

    def layout(limit: int, mode: str) -> tuple[list[list[str | UserText]], list[int]]:
        entries = [_entry(a, flat[a.id], limit, mode, hints) for a in answers]
        return entries, [sum(_cost(p) for p in e) for e in entries]

    # Each level costs no more per answer than the one before, so the last needs the fewest messages: take
    # the richest level that needs no more than it.
    pages = len(_pack(layout(*_LEVELS[-1])[1], budget))
    for limit, mode in _LEVELS:
        entries, costs = layout(limit, mode)
        if len(_pack(costs, budget)) == pages:
            break
    # Even messages read better than a full one and a stub (1–65 and 66–130, not 1–100 and 101–130): the
    # smallest share per message that still needs no extra message.
    most = -(-len(answers) // pages)
    while len(starts := _pack(costs, budget, most)) > pages:
        most += 1
    out = []
    for page, (start, end) in enumerate(zip(starts, [*starts[1:], len(answers)], strict=True), start=1):
        chunk = answers[start:end]
        head = rules
        if pages > 1:
            first, last = chunk[0].position, chunk[-1].position
            head = (
                f"**Ballot {page} of {pages}**: answers {first}–{last} of {len(answers)}; "
                "your votes count across all of them.\n" + head
            )
        if mode != _NONE and any(a.id in hints for a in chunk):
            head += HINT_NOTE
        head += _shortened(limit, mode, hinted)
        parts: list[str | UserText] = [head]
        for e in entries[start:end]:
            parts += e
        title = "Vote" if pages == 1 else f"Vote: ballot {page}/{pages}"
        if len(answers) <= MAX_BALLOT_BUTTONS:  # always one message: twenty names fit any budget
            buttons = tuple(
                Button(f"vote:{rnd.id}:{a.id}", f"Vote {a.position}: {excerpt(a.display_name, 30)}", Style.SECONDARY)
                for a in chunk
            )
            out.append(Message(title=title, parts=tuple(parts), buttons=buttons))
            continue
        options = tuple(
            SelectOption(str(a.id), f"{a.position}. {excerpt(a.display_name, 60)}", number=a.position) for a in chunk
        )
        out.append(
            Message(title=title, parts=tuple(parts), select=Select(f"vote:{rnd.id}", "Choose an answer", options))
        )
    return out


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
