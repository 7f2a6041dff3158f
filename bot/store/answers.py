"""Answers and votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Answer
from bot.store.dialect import insert
from bot.store.tables import answers, members, votes


async def add(
    conn: AsyncConnection, round_id: int, member_id: int, message_id: str | None, text: str, now: datetime
) -> bool:
    """The member's answer for the round; False when they already have one (their first message counts)."""
    stmt = (
        insert(conn, answers)
        .values(
            round_id=round_id, member_id=member_id, message_id=message_id, text=text, created_at=now, updated_at=now
        )
        .on_conflict_do_nothing(index_elements=["round_id", "member_id"])
        .returning(answers.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


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


async def cast(
    conn: AsyncConnection, round_id: int, answer_id: int, voter_id: int, cap: int, now: datetime
) -> VoteOutcome:
    """One vote per voter per answer, never for oneself, at most ``cap`` per voter per round.

    The caller holds the round row locked, so the cap cannot be overrun by two clicks at once."""
    # One query answers every question the rules ask: whose answer, how many votes used, voted for it already?
    used_q = (
        select(func.count()).select_from(votes).where(votes.c.round_id == round_id, votes.c.voter_id == voter_id)
    ).scalar_subquery()
    already_q = (
        select(func.count()).select_from(votes).where(votes.c.answer_id == answer_id, votes.c.voter_id == voter_id)
    ).scalar_subquery()
    row = (
        await conn.execute(
            select(answers.c.member_id, members.c.display_name, used_q.label("used"), already_q.label("already"))
            .join(members, members.c.id == answers.c.member_id)
            .where(answers.c.id == answer_id, answers.c.round_id == round_id)
        )
    ).first()
    if row is None:
        used = (await conn.execute(select(used_q))).scalar_one()
        return VoteOutcome(VoteResult.UNKNOWN, cap - used)
    used = int(row.used)
    if row.member_id == voter_id:
        return VoteOutcome(VoteResult.OWN, cap - used, row.display_name)
    if row.already:
        return VoteOutcome(VoteResult.ALREADY, cap - used, row.display_name)
    if used >= cap:
        return VoteOutcome(VoteResult.CAP, 0, row.display_name)
    inserted = (
        await conn.execute(
            insert(conn, votes)
            .values(round_id=round_id, answer_id=answer_id, voter_id=voter_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["answer_id", "voter_id"])
            .returning(votes.c.id)
        )
    ).first()
    if inserted is None:
        return VoteOutcome(VoteResult.ALREADY, cap - used, row.display_name)
    return VoteOutcome(VoteResult.RECORDED, cap - used - 1, row.display_name)


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
