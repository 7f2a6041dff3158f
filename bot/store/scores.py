"""The points ledger and everything computed from it: leaderboards, ranks, stats.

Points are only ever inserted, one row per (round, member, reason); a total is a SUM over a period. That
makes any period a query, makes a retried close harmless, and leaves nothing to read-modify-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, and_, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.questions.select import Usage
from bot.store.dialect import insert
from bot.store.tables import answers, ledger, member_totals, members, practice, rounds, votes


@dataclass(frozen=True)
class Award:
    member_id: int
    channel_id: int
    round_id: int | None
    reason: str
    points: int


@dataclass(frozen=True)
class Standing:
    rank: int
    member_id: int
    user_id: str
    display_name: str
    points: int


async def award(conn: AsyncConnection, rows: Sequence[Award], now: datetime) -> int:
    """Append awards to the ledger; a row that already exists (a retried close) is left as it was. The running
    totals grow by exactly the rows written here, in the same transaction. Returns rows written."""
    values = [{**r.__dict__, "created_at": now} for r in rows if r.points]
    if not values:
        return 0
    stmt = (
        insert(conn, ledger)
        .values(values)
        .on_conflict_do_nothing(index_elements=["round_id", "member_id", "reason"])
        .returning(ledger.c.channel_id, ledger.c.member_id, ledger.c.points)
    )
    written = (await conn.execute(stmt)).all()
    added: dict[tuple[int, int], int] = {}
    for row in written:
        added[(row.channel_id, row.member_id)] = added.get((row.channel_id, row.member_id), 0) + row.points
    if added:
        up = insert(conn, member_totals).values(
            [{"channel_id": c, "member_id": m, "points": p, "last_at": now} for (c, m), p in added.items()]
        )
        up = up.on_conflict_do_update(
            index_elements=["channel_id", "member_id"],
            set_={
                "points": member_totals.c.points + up.excluded.points,
                "last_at": case(
                    (up.excluded.last_at > member_totals.c.last_at, up.excluded.last_at), else_=member_totals.c.last_at
                ),
            },
        )
        await conn.execute(up)
    return len(written)


async def rebuild_totals(conn: AsyncConnection) -> None:
    """Recompute the running totals from the ledger (after a bulk load, or to check them)."""
    await conn.execute(delete(member_totals))
    await conn.execute(
        member_totals.insert().from_select(
            ["channel_id", "member_id", "points", "last_at"],
            select(
                ledger.c.channel_id, ledger.c.member_id, func.sum(ledger.c.points), func.max(ledger.c.created_at)
            ).group_by(ledger.c.channel_id, ledger.c.member_id),
        )
    )


def _totals(channel_ids: Sequence[int], since: datetime | None, until: datetime | None) -> Subquery:
    """Points and time of the last point per member over a period. All time comes from the running totals
    (one row per member and channel) instead of summing every ledger row ever written."""
    if since is None and until is None:
        return (
            select(
                member_totals.c.member_id,
                func.sum(member_totals.c.points).label("points"),
                func.max(member_totals.c.last_at).label("last_at"),
            )
            .where(member_totals.c.channel_id.in_(list(channel_ids)))
            .group_by(member_totals.c.member_id)
            .subquery()
        )
    conds: list[ColumnElement[bool]] = [ledger.c.channel_id.in_(list(channel_ids))]
    if since is not None:
        conds.append(ledger.c.created_at >= since)
    if until is not None:
        conds.append(ledger.c.created_at < until)
    return (
        select(
            ledger.c.member_id,
            func.sum(ledger.c.points).label("points"),
            func.max(ledger.c.created_at).label("last_at"),
        )
        .where(*conds)
        .group_by(ledger.c.member_id)
        .subquery()
    )


async def leaderboard(
    conn: AsyncConnection,
    channel_ids: Sequence[int],
    since: datetime | None,
    until: datetime | None,
    limit: int = 10,
) -> list[Standing]:
    """Top members by points. Tie-break: whoever reached the total first ranks higher, then by name."""
    if not channel_ids:
        return []
    t = _totals(channel_ids, since, until)
    q = (
        select(t.c.member_id, t.c.points, members.c.user_id, members.c.display_name)
        .join(members, members.c.id == t.c.member_id)
        .where(t.c.points > 0)
        .order_by(t.c.points.desc(), t.c.last_at.asc(), members.c.display_name.asc(), t.c.member_id.asc())
        .limit(limit)
    )
    rows = (await conn.execute(q)).all()
    return [Standing(i, r.member_id, r.user_id, r.display_name, int(r.points)) for i, r in enumerate(rows, start=1)]


async def standing_of(
    conn: AsyncConnection,
    channel_ids: Sequence[int],
    member_id: int,
    since: datetime | None,
    until: datetime | None,
) -> Standing | None:
    """The member's own rank under the same ordering as :func:`leaderboard`, without listing everyone."""
    if not channel_ids:
        return None
    t = _totals(channel_ids, since, until)
    me = (
        await conn.execute(
            select(t.c.points, t.c.last_at, members.c.user_id, members.c.display_name)
            .join(members, members.c.id == t.c.member_id)
            .where(t.c.member_id == member_id)
        )
    ).first()
    if me is None or not me.points:
        return None
    ahead = (
        await conn.execute(
            select(func.count())
            .select_from(t.join(members, members.c.id == t.c.member_id))
            .where(
                t.c.points > 0,
                or_(
                    t.c.points > me.points,
                    and_(t.c.points == me.points, t.c.last_at < me.last_at),
                    and_(
                        t.c.points == me.points,
                        t.c.last_at == me.last_at,
                        or_(
                            members.c.display_name < me.display_name,
                            and_(members.c.display_name == me.display_name, t.c.member_id < member_id),
                        ),
                    ),
                ),
            )
        )
    ).scalar_one()
    return Standing(int(ahead) + 1, member_id, me.user_id, me.display_name, int(me.points))


@dataclass(frozen=True)
class Counts:
    answers: int
    votes_received: int
    top_answers: int
    points: int
    practice: int


async def counts(conn: AsyncConnection, member_id: int, channel_ids: Sequence[int]) -> Counts:
    chans = list(channel_ids)
    n_answers = (
        await conn.execute(
            select(func.count())
            .select_from(answers.join(rounds, rounds.c.id == answers.c.round_id))
            .where(answers.c.member_id == member_id, rounds.c.channel_id.in_(chans))
        )
    ).scalar_one()
    n_votes = (
        await conn.execute(
            select(func.count())
            .select_from(
                votes.join(answers, answers.c.id == votes.c.answer_id).join(rounds, rounds.c.id == votes.c.round_id)
            )
            .where(answers.c.member_id == member_id, rounds.c.channel_id.in_(chans))
        )
    ).scalar_one()
    tops = (
        await conn.execute(
            select(func.count())
            .select_from(ledger)
            .where(ledger.c.member_id == member_id, ledger.c.reason == "top_answer", ledger.c.channel_id.in_(chans))
        )
    ).scalar_one()
    points = (
        await conn.execute(
            select(func.coalesce(func.sum(ledger.c.points), 0)).where(
                ledger.c.member_id == member_id, ledger.c.channel_id.in_(chans)
            )
        )
    ).scalar_one()
    n_practice = (
        await conn.execute(select(func.count()).select_from(practice).where(practice.c.member_id == member_id))
    ).scalar_one()
    return Counts(int(n_answers), int(n_votes), int(tops), int(points), int(n_practice))


async def record_practice(conn: AsyncConnection, member_id: int, question_id: str, rating: str, now: datetime) -> None:
    await conn.execute(
        insert(conn, practice).values(member_id=member_id, question_id=question_id, rating=rating, created_at=now)
    )


async def forget(conn: AsyncConnection, member_id: int) -> dict[str, int]:
    """Erase a member: their answers (and the votes on them), their votes, their points, their practice.

    Deleting from the ledger is the one exception to append-only: a person's right to be forgotten wins."""
    counts: dict[str, int] = {}
    own_answers = select(answers.c.id).where(answers.c.member_id == member_id).scalar_subquery()
    counts["votes"] = int(
        (
            await conn.execute(
                delete(votes).where(or_(votes.c.voter_id == member_id, votes.c.answer_id.in_(own_answers)))
            )
        ).rowcount
        or 0
    )
    counts["answers"] = int((await conn.execute(delete(answers).where(answers.c.member_id == member_id))).rowcount or 0)
    counts["points"] = int((await conn.execute(delete(ledger).where(ledger.c.member_id == member_id))).rowcount or 0)
    await conn.execute(delete(member_totals).where(member_totals.c.member_id == member_id))
    counts["practice"] = int(
        (await conn.execute(delete(practice).where(practice.c.member_id == member_id))).rowcount or 0
    )
    await conn.execute(delete(members).where(members.c.id == member_id))
    return counts


async def practice_usage(conn: AsyncConnection, member_id: int) -> dict[str, Usage]:
    """How often and how recently the member practised each question: least-practised come first."""
    q = (
        select(practice.c.question_id, func.count().label("n"), func.max(practice.c.id).label("last"))
        .where(practice.c.member_id == member_id)
        .group_by(practice.c.question_id)
    )
    return {r.question_id: Usage(int(r.n), int(r.last)) for r in (await conn.execute(q)).all()}
