"""The schema. Change it only together with a new Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations (and SQLite batch mode) can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite keeps no offset, so we store UTC and re-attach it on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database: always pass timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # On SQLite the generic path runs two Python functions per value (ours, then the dialect's string
        # formatting); the daily fan-out binds 50,000 datetimes, nearly all equal (one "now", one lease, one
        # reveal time), and that was a fifth of its time. One cached function gives the same text.
        if dialect.name == "sqlite":
            return _sqlite_utc_text
        return super().bind_processor(dialect)


@lru_cache(maxsize=1024)
def _sqlite_utc_text(value: datetime | None) -> str | None:
    """What SQLAlchemy's SQLite DATETIME stores ("2026-11-23 09:00:05.000000"), for an aware datetime, in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database: always pass timezone-aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER PRIMARY KEY

channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("space_id", String(64), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("name", String(200), nullable=True),
    Column("settings", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    # Slots before this instant are never posted or caught up: set on setup and on resume.
    Column("active_since", UtcDateTime(), nullable=False),
    Column("paused_reason", Text, nullable=True),
    # Who ran setup: told when the channel needs an admin, on platforms with no obvious owner to ask.
    Column("contact_user_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("platform", "space_id", "channel_id", name="uq_channels_place"),
)

members = Table(
    "members",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("space_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("platform", "space_id", "user_id", name="uq_members_identity"),
)

# A round is one question in one channel. (channel_id, slot) is unique: inserting the row IS the claim
# on the post, so two processes can never post the same slot. States:
#   posting -> open -> revealing -> revealed -> closing -> closed
#   missed (a slot that was too late to post), skipped (by an admin, or an empty pool)
# The "-ing" states are held under a lease (lease_owner, lease_until) and taken over when it expires.
rounds = Table(
    "rounds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("slot", String(40), nullable=False),  # local date "2026-11-23", or "2026-11-23#2" for extra rounds
    Column("scheduled", Boolean, nullable=False),
    Column("question_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),
    Column("answer_mode", String(16), nullable=False),
    Column("vote_cap", Integer, nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("posted_at", UtcDateTime(), nullable=True),
    Column("reveal_at", UtcDateTime(), nullable=True),
    Column("close_at", UtcDateTime(), nullable=True),
    Column("revealed_at", UtcDateTime(), nullable=True),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("thread_id", String(64), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("note", Text, nullable=True),
    UniqueConstraint("channel_id", "slot", name="uq_rounds_channel_slot"),
    Index("ix_rounds_thread", "thread_id"),
    Index("ix_rounds_state_channel", "state", "channel_id"),
    Index("ix_rounds_slot", "slot"),  # the sweep asks which channels already have today's round
)

answers = Table(
    "answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("round_id", ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(64), nullable=True),  # null for blind answers submitted through a form
    Column("text", Text, nullable=False),
    Column("position", Integer, nullable=True),  # ballot number, fixed at reveal
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("round_id", "member_id", name="uq_answers_round_member"),
    Index("ix_answers_message", "message_id"),
    Index("ix_answers_member", "member_id"),
)

votes = Table(
    "votes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("round_id", ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False),
    Column("answer_id", ForeignKey("answers.id", ondelete="CASCADE"), nullable=False),
    Column("voter_id", ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("answer_id", "voter_id", name="uq_votes_answer_voter"),
    Index("ix_votes_round_voter", "round_id", "voter_id"),
)

# Append-only: every point ever awarded, with why. Totals for any period are sums over this table.
ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("channel_id", ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("round_id", ForeignKey("rounds.id", ondelete="CASCADE"), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("points", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Closing a round twice (a retry after a crash) must not pay twice.
    UniqueConstraint("round_id", "member_id", "reason", name="uq_ledger_round_member_reason"),
    Index("ix_ledger_channel_time", "channel_id", "created_at"),
    Index("ix_ledger_member", "member_id"),
)

# Derived from the ledger, so every leaderboard is a short index read: each member's points per scope
# ("c:<channel id>" or "s:<platform>:<space id>") and period ("all", "w:<Monday>", "m:<yyyy-mm>", in the
# channel's timezone). Written only in the transaction that appends the ledger rows it sums, from the rows
# that insert actually wrote, so a retried close adds nothing; `scores.rebuild_totals` recomputes it.
standings = Table(
    "standings",
    metadata,
    Column("scope", String(96), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("last_at", UtcDateTime(), nullable=False),
)
# Rank order: most points, then whoever got there first, then whoever joined first. Every board reads it in
# order and stops after ten rows; a member's rank is a count along it.
Index(
    "ix_standings_rank",
    standings.c.scope,
    standings.c.period,
    standings.c.points.desc(),
    standings.c.last_at,
    standings.c.member_id,
)

# Exactly-once for transitions that are not a round row: the weekly leaderboard post.
claims = Table(
    "claims",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("period", String(40), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=False),
    Column("done_at", UtcDateTime(), nullable=True),
    UniqueConstraint("channel_id", "kind", "period", name="uq_claims_channel_kind_period"),
)

# Deliveries already processed, by the platform's own event id: Slack redelivers an event it thinks we missed.
seen_events = Table(
    "seen_events",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("seen_at", UtcDateTime(), nullable=False),
    Index("ix_seen_events_seen_at", "seen_at"),
)

practice = Table(
    "practice",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("question_id", String(64), nullable=False),
    Column("rating", String(16), nullable=False),  # got | partly | missed
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_practice_member", "member_id", "created_at"),
)

# Spaced repetition (FSRS): one card per member and question, holding the scheduler's state. A card exists once
# the member has been judged on the question (a self-rating in practice, or a daily answer's outcome at close).
srs_cards = Table(
    "srs_cards",
    metadata,
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("question_id", String(64), primary_key=True),
    Column("state", Integer, nullable=False),  # fsrs.State: 1 learning, 2 review, 3 relearning
    Column("step", Integer, nullable=True),
    Column("stability", Float, nullable=True),
    Column("difficulty", Float, nullable=True),
    Column("due", UtcDateTime(), nullable=False),
    Column("last_review", UtcDateTime(), nullable=True),
    Column("reviews", Integer, nullable=False),
    Column("lapses", Integer, nullable=False),  # reviews rated Again
    Index("ix_srs_cards_member_due", "member_id", "due"),
)

# Every review that moved a card, practice or daily: the history behind /quiz stats' per-topic skills.
srs_reviews = Table(
    "srs_reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("question_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # practice | daily
    Column("outcome", String(16), nullable=False),  # got | partly | missed, or daily: top | strong | quiet | weak
    Column("rating", Integer, nullable=False),  # fsrs.Rating: 1 again, 2 hard, 3 good, 4 easy
    # The daily round judged; unique with the member, so a retried close reviews nobody twice.
    Column("round_id", ForeignKey("rounds.id", ondelete="SET NULL"), nullable=True),
    Column("reviewed_at", UtcDateTime(), nullable=False),
    Column("due_after", UtcDateTime(), nullable=False),  # when the card came due again after this review
    UniqueConstraint("round_id", "member_id", name="uq_srs_reviews_round_member"),
    Index("ix_srs_reviews_member_time", "member_id", "reviewed_at"),
)

# A member's daily reminder of due reviews, by direct message. ``next_at`` is the next firing in UTC (null when
# off), so finding what is due is one index range read however many members and timezones there are. Claimed
# under a lease before sending, so one process sends it once; a crash mid-send leaves it to the lease's expiry.
reminders = Table(
    "reminders",
    metadata,
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("at_time", String(5), nullable=False),  # local HH:MM
    Column("timezone", String(64), nullable=False),
    Column("next_at", UtcDateTime(), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("last_sent_at", UtcDateTime(), nullable=True),
    Column("failures", Integer, nullable=False),  # direct messages that failed in a row
    Column("last_error", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_reminders_next_at", "next_at"),
)
