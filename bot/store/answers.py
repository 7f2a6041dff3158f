"""Answers and votes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Answer
from bot.store.dialect import insert, insert_for, prebuilt
from bot.store.tables import answers, members, votes


@dataclass(frozen=True)
class NewAnswer:
    round_id: int
    member_id: int
    message_id: str | None
    text: str
    now: datetime


async def add(
    conn: AsyncConnection, round_id: int, member_id: int, message_id: str | None, text: str, now: datetime
) -> bool:
    """The member's answer for the round; False when they already have one (their first message counts)."""
    return bool(await add_many(conn, [NewAnswer(round_id, member_id, message_id, text, now)]))


_add_answers = prebuilt(
    lambda d: insert_for(d, answers)
    .on_conflict_do_nothing(index_elements=["round_id", "member_id"])
    .returning(answers.c.round_id, answers.c.member_id)
)
_add_votes = prebuilt(lambda d: insert_for(d, votes).on_conflict_do_nothing(index_elements=["answer_id", "voter_id"]))


async def add_many(conn: AsyncConnection, rows: Sequence[NewAnswer]) -> set[tuple[int, int]]:
    """Answers for several rounds and members at once; the (round, member) pairs whose answer this inserted.

    A member's first answer in a round wins: rows for a pair that already has an answer (or that came earlier
    in ``rows``) insert nothing."""
    first: dict[tuple[int, int], NewAnswer] = {}
    for r in rows:
        first.setdefault((r.round_id, r.member_id), r)
    if not first:
        return set()
    stmt = _add_answers(conn)
    params = [
        {
            "round_id": r.round_id,
            "member_id": r.member_id,
            "message_id": r.message_id,
            "text": r.text,
            "created_at": r.now,
            "updated_at": r.now,
        }
        for r in first.values()
    ]
    return {(row.round_id, row.member_id) for row in (await conn.execute(stmt, params)).all()}


async def put_blind(conn: AsyncConnection, round_id: int, member_id: int, text: str, now: datetime) -> bool:
    """A private answer from a form. Submitting again replaces it. Returns True when it was new.

    The caller holds the round locked, so the look-up and the write cannot race another submission."""
    existing = await of_member(conn, round_id, member_id)
    if existing is None:
        await conn.execute(
            insert(conn, answers).values(
                round_id=round_id, member_id=member_id, message_id=None, text=text, created_at=now, updated_at=now
            )
        )
        return True
    await conn.execute(
        update(answers)
        .where(answers.c.round_id == round_id, answers.c.member_id == member_id)
        .values(text=text, updated_at=now)
    )
    return False


async def edit_by_message(conn: AsyncConnection, round_id: int, message_id: str, text: str, now: datetime) -> bool:
    stmt = (
        update(answers)
        .where(answers.c.round_id == round_id, answers.c.message_id == message_id)
        .values(text=text, updated_at=now)
        .returning(answers.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def delete_by_message(conn: AsyncConnection, round_id: int, message_id: str) -> bool:
    stmt = (
        delete(answers)
        .where(answers.c.round_id == round_id, answers.c.message_id == message_id)
        .returning(answers.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def of_member(conn: AsyncConnection, round_id: int, member_id: int) -> str | None:
    q = select(answers.c.text).where(answers.c.round_id == round_id, answers.c.member_id == member_id)
    row = (await conn.execute(q)).first()
    return row.text if row else None


async def for_round(conn: AsyncConnection, round_id: int) -> list[Answer]:
    """The round's answers with their authors and votes, in ballot order (then by arrival)."""
    n_votes = (
        select(votes.c.answer_id, func.count().label("n"))
        .where(votes.c.round_id == round_id)
        .group_by(votes.c.answer_id)
    ).subquery()
    q = (
        select(
            answers.c.id,
            answers.c.round_id,
            answers.c.member_id,
            members.c.display_name,
            members.c.user_id,
            answers.c.message_id,
            answers.c.text,
            answers.c.position,
            func.coalesce(n_votes.c.n, 0).label("votes"),
        )
        .join(members, members.c.id == answers.c.member_id)
        .outerjoin(n_votes, n_votes.c.answer_id == answers.c.id)
        .where(answers.c.round_id == round_id)
        .order_by(answers.c.position.is_(None), answers.c.position, answers.c.created_at, answers.c.id)
    )
    return [
        Answer(r.id, r.round_id, r.member_id, r.display_name, r.user_id, r.message_id, r.text, r.position, int(r.votes))
        for r in (await conn.execute(q)).all()
    ]


async def number(conn: AsyncConnection, round_id: int) -> list[Answer]:
    """Fix the ballot numbers at reveal: 1..n in order of arrival."""
    current = await for_round(conn, round_id)
    for pos, a in enumerate(sorted(current, key=lambda a: a.id), start=1):
        if a.position != pos:
            await conn.execute(update(answers).where(answers.c.id == a.id).values(position=pos))
    return await for_round(conn, round_id)


class VoteResult(StrEnum):
    RECORDED = "recorded"
    ALREADY = "already"
    OWN = "own"
    CAP = "cap"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VoteOutcome:
    result: VoteResult
    remaining: int
    author: str = ""


@dataclass(frozen=True)
class VoteRequest:
    round_id: int
    answer_id: int
    voter_id: int
    cap: int
    now: datetime


async def cast(
    conn: AsyncConnection, round_id: int, answer_id: int, voter_id: int, cap: int, now: datetime
) -> VoteOutcome:
    """One vote; see cast_many for the rules."""
    return (await cast_many(conn, [VoteRequest(round_id, answer_id, voter_id, cap, now)]))[0]


# Built once (see rounds._FOR_THREADS): the rules' two look-ups for a batch of votes.
_BALLOT = (
    select(answers.c.id, answers.c.round_id, answers.c.member_id, members.c.display_name)
    .join(members, members.c.id == answers.c.member_id)
    .where(answers.c.id.in_(bindparam("answer_ids", expanding=True)))
)
_CAST = select(votes.c.round_id, votes.c.answer_id, votes.c.voter_id).where(
    votes.c.round_id.in_(bindparam("round_ids", expanding=True)),
    votes.c.voter_id.in_(bindparam("voter_ids", expanding=True)),
)


async def cast_many(conn: AsyncConnection, requests: Sequence[VoteRequest]) -> list[VoteOutcome]:
    """Votes in the order given: one per voter per answer, never for oneself, at most ``cap`` per voter per round.

    Two queries read everything the rules need for the whole batch (the answers voted for, and the votes the
    voters already cast in those rounds); the rules then run here in order, so two votes of one batch count
    against each other's cap; one insert writes the accepted votes. The caller holds the rounds locked, so no
    other transaction can change those votes in between."""
    if not requests:
        return []
    answer_ids = sorted({r.answer_id for r in requests})
    round_ids = sorted({r.round_id for r in requests})
    voter_ids = sorted({r.voter_id for r in requests})
    ballot = {row.id: row for row in (await conn.execute(_BALLOT, {"answer_ids": answer_ids})).all()}
    used: dict[tuple[int, int], int] = {}
    cast_already: set[tuple[int, int]] = set()
    for row in (await conn.execute(_CAST, {"round_ids": round_ids, "voter_ids": voter_ids})).all():
        used[(row.round_id, row.voter_id)] = used.get((row.round_id, row.voter_id), 0) + 1
        cast_already.add((row.answer_id, row.voter_id))
    out: list[VoteOutcome] = []
    accepted: list[dict[str, object]] = []
    for r in requests:
        n = used.get((r.round_id, r.voter_id), 0)
        a = ballot.get(r.answer_id)
        if a is None or a.round_id != r.round_id:
            out.append(VoteOutcome(VoteResult.UNKNOWN, max(r.cap - n, 0)))
        elif a.member_id == r.voter_id:
            out.append(VoteOutcome(VoteResult.OWN, max(r.cap - n, 0), a.display_name))
        elif (r.answer_id, r.voter_id) in cast_already:
            out.append(VoteOutcome(VoteResult.ALREADY, max(r.cap - n, 0), a.display_name))
        elif n >= r.cap:
            out.append(VoteOutcome(VoteResult.CAP, 0, a.display_name))
        else:
            used[(r.round_id, r.voter_id)] = n + 1
            cast_already.add((r.answer_id, r.voter_id))
            accepted.append(
                {"round_id": r.round_id, "answer_id": r.answer_id, "voter_id": r.voter_id, "created_at": r.now}
            )
            out.append(VoteOutcome(VoteResult.RECORDED, r.cap - n - 1, a.display_name))
    if accepted:
        # The conflict clause is a second guard only: the rounds are locked, so nothing can race these rows.
        await conn.execute(_add_votes(conn), accepted)
    return out


async def answered_by(conn: AsyncConnection, member_ids: list[int], round_ids: list[int]) -> dict[int, set[int]]:
    """Which of the rounds each member answered: one query for everyone on a ballot."""
    out: dict[int, set[int]] = {m: set() for m in member_ids}
    if not member_ids or not round_ids:
        return out
    q = select(answers.c.member_id, answers.c.round_id).where(
        answers.c.member_id.in_(member_ids), answers.c.round_id.in_(round_ids)
    )
    for r in (await conn.execute(q)).all():
        out[r.member_id].add(r.round_id)
    return out


async def answered_rounds(conn: AsyncConnection, member_id: int, round_ids: list[int]) -> set[int]:
    if not round_ids:
        return set()
    q = select(answers.c.round_id).where(answers.c.member_id == member_id, answers.c.round_id.in_(round_ids))
    return {r.round_id for r in (await conn.execute(q)).all()}
