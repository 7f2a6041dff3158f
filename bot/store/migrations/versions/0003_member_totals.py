"""member_totals: running totals per channel and member, derived from the ledger

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
        "member_totals",
        sa.Column("channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_member_totals_channel_id_channels"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_totals_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("channel_id", "member_id", name=op.f("pk_member_totals")),
    )
    op.create_index("ix_member_totals_rank", "member_totals", ["channel_id", "points", "last_at"], unique=False)
    # Existing installs: the totals of everything already in the ledger.
    op.execute(
        "INSERT INTO member_totals (channel_id, member_id, points, last_at) "
        "SELECT channel_id, member_id, SUM(points), MAX(created_at) FROM ledger GROUP BY channel_id, member_id"
    )


def downgrade() -> None:
    op.drop_index("ix_member_totals_rank", table_name="member_totals")
    op.drop_table("member_totals")
