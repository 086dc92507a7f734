"""Tourism: the agencies' own sign-in accounts (manager, office staff, guides) and their
sessions, the agencies' idempotent writes, and who did each line of an agency's operations
log (tourism/tables.py).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tourism_agency_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("sign_in_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sign_in_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sign_in_locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tourism_agency_accounts"),
        sa.UniqueConstraint("login", name="uq_tourism_agency_accounts_login"),
    )
    op.create_index("ix_tourism_agency_accounts_agency", "tourism_agency_accounts", ["agency_id"], unique=False)
    op.create_table(
        "tourism_agency_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_tourism_agency_sessions"),
    )
    op.create_index("ix_tourism_agency_sessions_account", "tourism_agency_sessions", ["operator_id"], unique=False)
    op.create_table(
        "tourism_agency_writes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tourism_agency_writes"),
    )
    with op.batch_alter_table("tourism_ops_log") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=80), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tourism_ops_log") as batch:
        batch.drop_column("actor")
    op.drop_table("tourism_agency_writes")
    op.drop_index("ix_tourism_agency_sessions_account", table_name="tourism_agency_sessions")
    op.drop_table("tourism_agency_sessions")
    op.drop_index("ix_tourism_agency_accounts_agency", table_name="tourism_agency_accounts")
    op.drop_table("tourism_agency_accounts")
