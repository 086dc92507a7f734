"""KPI rollups (volume, outcomes and actives per Shanghai day, the fold watermark) and the indexes the console needs.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 23:00:49.638266
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kpi_active_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('day', 'user_id', name=op.f('pk_kpi_active_daily'))
    )
    op.create_table('kpi_fold_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('folded_until', sa.Date(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_kpi_fold_state'))
    )
    op.create_table('kpi_outcomes_daily',
    sa.Column('decided_day', sa.Date(), nullable=False),
    sa.Column('created_day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('succeeded', sa.BigInteger(), nullable=False),
    sa.Column('failed', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('decided_day', 'created_day', 'product', name=op.f('pk_kpi_outcomes_daily'))
    )
    with op.batch_alter_table('kpi_outcomes_daily', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_outcomes_daily_created', ['created_day'], unique=False)

    op.create_table('kpi_volume_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=24), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'product', 'city', name=op.f('pk_kpi_volume_daily'))
    )
    with op.batch_alter_table('ledger_transfers', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transfers_code_created', ['code', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_ledger_transfers_created', ['created_at', 'id'], unique=False)

    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.create_index('ix_merchant_trades_closed_at', ['closed_at'], unique=False)
        batch_op.create_index('ix_merchant_trades_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_merchant_trades_paid_at', ['paid_at'], unique=False)

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.create_index('ix_merchants_state_created', ['state', 'created_at'], unique=False)

    with op.batch_alter_table('partner_orders', schema=None) as batch_op:
        batch_op.create_index('ix_partner_orders_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_partner_orders_settled_at', ['settled_at'], unique=False)

    with op.batch_alter_table('partner_recon_items', schema=None) as batch_op:
        batch_op.create_index('ix_partner_recon_items_open', ['resolution', 'day'], unique=False)

    with op.batch_alter_table('wallet_users', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_users_created_at', ['created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wallet_users', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_users_created_at')

    with op.batch_alter_table('partner_recon_items', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_recon_items_open')

    with op.batch_alter_table('partner_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_orders_settled_at')
        batch_op.drop_index('ix_partner_orders_created_at')

    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_index('ix_merchants_state_created')

    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.drop_index('ix_merchant_trades_paid_at')
        batch_op.drop_index('ix_merchant_trades_created_at')
        batch_op.drop_index('ix_merchant_trades_closed_at')

    with op.batch_alter_table('ledger_transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transfers_created')
        batch_op.drop_index('ix_ledger_transfers_code_created')

    op.drop_table('kpi_volume_daily')
    with op.batch_alter_table('kpi_outcomes_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_kpi_outcomes_daily_created')

    op.drop_table('kpi_outcomes_daily')
    op.drop_table('kpi_fold_state')
    op.drop_table('kpi_active_daily')
