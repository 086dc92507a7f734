"""KPI by the payment definitions of docs/kpi.md: volumes per province and city with the sold
value (GMV) beside the amount paid; subscribers' home region; every day folded again.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wallet_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('home_province', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('home_city', sa.String(length=32), nullable=True))
    # The rollups were folded by the old definitions: start again (the worker folds every day anew).
    op.drop_table('kpi_volume_daily')
    op.create_table('kpi_volume_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('province', sa.String(length=16), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('gmv', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'product', 'province', 'city', name=op.f('pk_kpi_volume_daily'))
    )
    op.create_table('kpi_product_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('gmv', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'product', name=op.f('pk_kpi_product_daily'))
    )
    op.create_table('kpi_place_totals',
    sa.Column('through_day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('province', sa.String(length=16), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('gmv', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('through_day', 'product', 'province', 'city', name=op.f('pk_kpi_place_totals'))
    )
    op.create_table('kpi_signups_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('users', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_kpi_signups_daily'))
    )
    op.create_table('kpi_recent_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('through', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_kpi_recent_state'))
    )
    op.create_table('kpi_recent_volume',
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('province', sa.String(length=16), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('gmv', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('product', 'province', 'city', name=op.f('pk_kpi_recent_volume'))
    )
    op.create_table('kpi_recent_payers',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('new_in_month', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_kpi_recent_payers'))
    )
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.create_index('ix_merchant_trades_expires_at', ['expires_at'], unique=False)
    op.execute("DELETE FROM kpi_fold_state")
    op.execute("DELETE FROM kpi_distinct_actives")
    op.execute("DELETE FROM kpi_active_daily")
    op.execute("DELETE FROM kpi_outcomes_daily")


def downgrade() -> None:
    op.drop_table('kpi_signups_daily')
    op.drop_table('kpi_recent_payers')
    op.drop_table('kpi_recent_volume')
    op.drop_table('kpi_recent_state')
    op.drop_table('kpi_place_totals')
    op.drop_table('kpi_product_daily')
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.drop_index('ix_merchant_trades_expires_at')
    op.drop_table('kpi_volume_daily')
    op.create_table('kpi_volume_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'product', 'city', name=op.f('pk_kpi_volume_daily'))
    )
    op.execute("DELETE FROM kpi_fold_state")
    op.execute("DELETE FROM kpi_distinct_actives")
    with op.batch_alter_table('wallet_users', schema=None) as batch_op:
        batch_op.drop_column('home_city')
        batch_op.drop_column('home_province')
