"""What each subscriber has paid out (lifetime, year, day), for the tier and daily limits.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:36:20.259407
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_usage',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('lifetime', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('year', sa.Integer(), server_default='0', nullable=False),
    sa.Column('year_total', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('day', sa.Date(), nullable=True),
    sa.Column('day_total', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_wallet_usage'))
    )


def downgrade() -> None:
    op.drop_table('wallet_usage')
