"""In-store: refused payment codes counted per terminal across devices (guessing device
numbers), so a terminal is throttled past a limit per window (instore/paycode_throttle.py).

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-08 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instore_paycode_throttle",
        sa.Column("caller", sa.String(length=40), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", name="pk_instore_paycode_throttle"),
    )


def downgrade() -> None:
    op.drop_table("instore_paycode_throttle")
