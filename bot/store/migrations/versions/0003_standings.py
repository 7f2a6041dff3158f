"""standings: running totals per scope (channel or server), period (all time, week, month) and member

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "standings",
        sa.Column("scope", sa.String(length=96), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_standings_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scope", "period", "member_id", name=op.f("pk_standings")),
    )
    op.create_index(
        "ix_standings_rank",
        "standings",
        ["scope", "period", sa.text("points DESC"), "last_at", "member_id"],
        unique=False,
    )
    # Existing installs get their totals from `interview-bot db upgrade`, which rebuilds them from the ledger
    # after migrating (bot.store.scores.rebuild_totals): week and month keys need each channel's timezone.


def downgrade() -> None:
    op.drop_index("ix_standings_rank", table_name="standings")
    op.drop_table("standings")
