"""Lottery tickets and imported draws.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 20:11:30.859314
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lottery_draws',
    sa.Column('game', sa.String(length=8), nullable=False),
    sa.Column('issue', sa.String(length=8), nullable=False),
    sa.Column('numbers', sa.Text(), nullable=False),
    sa.Column('prizes', sa.Text(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('game', 'issue', name='pk_lottery_draws')
    )
    op.create_table('lottery_tickets',
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('game', sa.String(length=8), nullable=False),
    sa.Column('issue', sa.String(length=8), nullable=False),
    sa.Column('bets', sa.Text(), nullable=False),
    sa.Column('multiplier', sa.Integer(), nullable=False),
    sa.Column('cost', sa.BigInteger(), nullable=False),
    sa.Column('prize', sa.BigInteger(), nullable=True),
    sa.Column('tier', sa.Integer(), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_lottery_tickets'))
    )
    with op.batch_alter_table('lottery_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_lottery_tickets_issue', ['game', 'issue'], unique=False)
        batch_op.create_index('ix_lottery_tickets_user', ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lottery_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_lottery_tickets_user')
        batch_op.drop_index('ix_lottery_tickets_issue')

    op.drop_table('lottery_tickets')
    op.drop_table('lottery_draws')
