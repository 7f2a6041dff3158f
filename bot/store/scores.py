"""The points ledger and everything computed from it: leaderboards, ranks, stats.

Points are only ever inserted, one row per (round, member, reason); a total is a SUM over a period. That
makes any period a query, makes a retried close harmless, and leaves nothing to read-modify-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import cards as card_store
from bot.store import reminders as reminder_store
from bot.store.dialect import insert
from bot.store.tables import answers, channels, ledger, members, practice, rounds, standings, votes


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


def channel_scope(channel_id: int) -> str:
    return f"c:{channel_id}"


def space_scope(platform: str, space_id: str) -> str:
    return f"s:{platform}:{space_id}"[:96]


def week_key(when: datetime, tz: str) -> str:
    local = when.astimezone(ZoneInfo(tz)).date()
    return f"w:{local - timedelta(days=local.weekday())}"


def month_key(when: datetime, tz: str) -> str:
    return f"m:{when.astimezone(ZoneInfo(tz)):%Y-%m}"


def _keys(channel_id: int, platform: str, space_id: str, tz: str, when: datetime) -> list[tuple[str, str]]:
    periods = ("all", week_key(when, tz), month_key(when, tz))
    return [(scope, p) for scope in (channel_scope(channel_id), space_scope(platform, space_id)) for p in periods]


async def _channel_info(conn: AsyncConnection, ids: set[int]) -> dict[int, tuple[str, str, str]]:
    from bot.store.channels import SETTINGS_TEXT, _settings

    q = select(channels.c.id, channels.c.platform, channels.c.space_id, SETTINGS_TEXT).where(channels.c.id.in_(ids))
    return {r.id: (r.platform, r.space_id, _settings(r.settings).timezone) for r in (await conn.execute(q)).all()}


async def _add_standings(conn: AsyncConnection, increments: dict[tuple[str, str, int], tuple[int, datetime]]) -> None:
    if not increments:
        return
    stmt = insert(conn, standings)
    stmt = stmt.on_conflict_do_update(
        index_elements=["scope", "period", "member_id"],
        set_={
            "points": standings.c.points + stmt.excluded.points,
            "last_at": case(
                (stmt.excluded.last_at > standings.c.last_at, stmt.excluded.last_at), else_=standings.c.last_at
            ),
        },
    )
    params = [
        {"scope": sc, "period": pe, "member_id": m, "points": pts, "last_at": at}
        for (sc, pe, m), (pts, at) in increments.items()
    ]
    await conn.execute(stmt, params)


async def award(conn: AsyncConnection, rows: Sequence[Award], now: datetime) -> int:
    """Append awards to the ledger; a row that already exists (a retried close) is left as it was. The
    standings grow by exactly the rows written here, in the same transaction. Returns rows written."""
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
    info = await _channel_info(conn, {r.channel_id for r in written})
    increments: dict[tuple[str, str, int], tuple[int, datetime]] = {}
    for r in written:
        platform, space, tz = info[r.channel_id]
        for scope, period in _keys(r.channel_id, platform, space, tz, now):
            pts, _ = increments.get((scope, period, r.member_id), (0, now))
            increments[(scope, period, r.member_id)] = (pts + r.points, now)
    await _add_standings(conn, increments)
    return len(written)


async def rebuild_totals(conn: AsyncConnection) -> None:
    """Recompute every standing from the ledger (after a bulk load or an upgrade, or to check them)."""
    await conn.execute(delete(standings))
    info = await _channel_info(conn, {r.id for r in (await conn.execute(select(channels.c.id))).all()})
    totals: dict[tuple[str, str, int], tuple[int, datetime]] = {}
    result = await conn.stream(select(ledger.c.channel_id, ledger.c.member_id, ledger.c.points, ledger.c.created_at))
    async for r in result:
        platform, space, tz = info[r.channel_id]
        for key in _keys(r.channel_id, platform, space, tz, r.created_at):
            pts, at = totals.get((key[0], key[1], r.member_id), (0, r.created_at))
            totals[(key[0], key[1], r.member_id)] = (pts + r.points, max(at, r.created_at))
    items = list(totals.items())
    for start in range(0, len(items), 5000):
        await _add_standings(conn, dict(items[start : start + 5000]))


async def leaderboard(conn: AsyncConnection, scope: str, period: str, limit: int = 10) -> list[Standing]:
    """Top members of a scope and period. Ties: whoever reached the total first, then whoever joined first.
    Reads the rank index in order and stops after ``limit`` rows, however many members there are."""
    q = (
        select(standings.c.member_id, standings.c.points, members.c.user_id, members.c.display_name)
        .join(members, members.c.id == standings.c.member_id)
        .where(standings.c.scope == scope, standings.c.period == period, standings.c.points > 0)
        .order_by(standings.c.points.desc(), standings.c.last_at.asc(), standings.c.member_id.asc())
        .limit(limit)
    )
    rows = (await conn.execute(q)).all()
    return [Standing(i, r.member_id, r.user_id, r.display_name, int(r.points)) for i, r in enumerate(rows, start=1)]


async def standing_of(conn: AsyncConnection, scope: str, period: str, member_id: int) -> Standing | None:
    """The member's own rank under the same order as :func:`leaderboard`: a count along the rank index."""
    me = (
        await conn.execute(
            select(standings.c.points, standings.c.last_at, members.c.user_id, members.c.display_name)
            .join(members, members.c.id == standings.c.member_id)
            .where(standings.c.scope == scope, standings.c.period == period, standings.c.member_id == member_id)
        )
    ).first()
    if me is None or me.points <= 0:
        return None
    # Members ahead, as three range counts that each read one contiguous stretch of the rank index (an OR of
    # the three conditions makes planners scan the whole scope): more points; as many points but reached
    # earlier; as many at the same moment but joined earlier.
    same = (standings.c.scope == scope, standings.c.period == period)
    counts = [
        select(func.count()).select_from(standings).where(*same, *cond).scalar_subquery()
        for cond in (
            (standings.c.points > me.points,),
            (standings.c.points == me.points, standings.c.last_at < me.last_at),
            (standings.c.points == me.points, standings.c.last_at == me.last_at, standings.c.member_id < member_id),
        )
    ]
    # The three counts travel as one statement: one trip to the database, each still one index range.
    ahead = (await conn.execute(select(counts[0] + counts[1] + counts[2]))).scalar_one()
    return Standing(int(ahead) + 1, member_id, me.user_id, me.display_name, int(me.points))


async def leaderboard_between(
    conn: AsyncConnection, channel_ids: Sequence[int], since: datetime, until: datetime, limit: int = 10
) -> list[Standing]:
    """Top members over any window, summed from the ledger: the weekly post's rolling seven days."""
    if not channel_ids:
        return []
    t = (
        select(
            ledger.c.member_id,
            func.sum(ledger.c.points).label("points"),
            func.max(ledger.c.created_at).label("last_at"),
        )
        .where(ledger.c.channel_id.in_(list(channel_ids)), ledger.c.created_at >= since, ledger.c.created_at < until)
        .group_by(ledger.c.member_id)
        .subquery()
    )
    q = (
        select(t.c.member_id, t.c.points, members.c.user_id, members.c.display_name)
        .join(members, members.c.id == t.c.member_id)
        .where(t.c.points > 0)
        .order_by(t.c.points.desc(), t.c.last_at.asc(), t.c.member_id.asc())
        .limit(limit)
    )
    rows = (await conn.execute(q)).all()
    return [Standing(i, r.member_id, r.user_id, r.display_name, int(r.points)) for i, r in enumerate(rows, start=1)]


@dataclass(frozen=True)
class Counts:
    answers: int
    votes_received: int
    top_answers: int
    points: int
    practice: int


async def counts(conn: AsyncConnection, member_id: int, channel_ids: Sequence[int]) -> Counts:
    """A member's totals in these channels, as one statement of five counts (one trip to the database)."""
    chans = list(channel_ids)
    n_answers = (
        select(func.count())
        .select_from(answers.join(rounds, rounds.c.id == answers.c.round_id))
        .where(answers.c.member_id == member_id, rounds.c.channel_id.in_(chans))
        .scalar_subquery()
    )
    n_votes = (
        select(func.count())
        .select_from(
            votes.join(answers, answers.c.id == votes.c.answer_id).join(rounds, rounds.c.id == votes.c.round_id)
        )
        .where(answers.c.member_id == member_id, rounds.c.channel_id.in_(chans))
        .scalar_subquery()
    )
    tops = (
        select(func.count())
        .select_from(ledger)
        .where(ledger.c.member_id == member_id, ledger.c.reason == "top_answer", ledger.c.channel_id.in_(chans))
        .scalar_subquery()
    )
    points = (
        select(func.coalesce(func.sum(ledger.c.points), 0))
        .where(ledger.c.member_id == member_id, ledger.c.channel_id.in_(chans))
        .scalar_subquery()
    )
    n_practice = select(func.count()).select_from(practice).where(practice.c.member_id == member_id).scalar_subquery()
    row = (
        await conn.execute(
            select(
                n_answers.label("answers"),
                n_votes.label("votes"),
                tops.label("tops"),
                points.label("points"),
                n_practice.label("practice"),
            )
        )
    ).one()
    return Counts(int(row.answers), int(row.votes), int(row.tops), int(row.points), int(row.practice))


async def record_practice(conn: AsyncConnection, member_id: int, question_id: str, rating: str, now: datetime) -> None:
    await conn.execute(
        insert(conn, practice).values(member_id=member_id, question_id=question_id, rating=rating, created_at=now)
    )


async def forget(conn: AsyncConnection, member_id: int) -> dict[str, int]:
    """Erase a member: their answers (and the votes on them), their votes, their points, their practice (ratings,
    review schedule and history, reminder).

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
    await conn.execute(delete(standings).where(standings.c.member_id == member_id))
    counts["practice"] = int(
        (await conn.execute(delete(practice).where(practice.c.member_id == member_id))).rowcount or 0
    )
    # The spaced-repetition schedule, its review history and any reminder go too.
    counts["reviews"] = await card_store.forget(conn, member_id)
    await reminder_store.forget(conn, member_id)
    await conn.execute(delete(members).where(members.c.id == member_id))
    return counts
