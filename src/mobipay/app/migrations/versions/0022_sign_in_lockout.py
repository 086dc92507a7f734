"""Per-account sign-in lockout: wrong passwords counted on console and merchant portal accounts.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('operators', 'merchant_operators'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('sign_in_failures', sa.Integer(), server_default='0', nullable=False))
            batch_op.add_column(sa.Column('sign_in_failed_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column('sign_in_locked_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ('merchant_operators', 'operators'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('sign_in_locked_until')
            batch_op.drop_column('sign_in_failed_at')
            batch_op.drop_column('sign_in_failures')
