"""Lottery: the tax withheld from a prize, prizes that wait for a claim, and the issues
whose sales the lottery centre closed.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 10:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lottery_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claim_required', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'lottery_closed_issues',
        sa.Column('game', sa.String(length=8), nullable=False),
        sa.Column('issue', sa.String(length=8), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('game', 'issue', name='pk_lottery_closed_issues'),
    )


def downgrade() -> None:
    op.drop_table('lottery_closed_issues')
    with op.batch_alter_table('lottery_tickets', schema=None) as batch_op:
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claim_required')
        batch_op.drop_column('tax')
