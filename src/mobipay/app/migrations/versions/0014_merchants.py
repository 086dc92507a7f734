"""Merchants: applications and review, stores, API apps and keys, nonces, trades, refunds,
notifications, settlements and the red-envelope zone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 21:03:46.885654
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merchant_apps',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('sign_type', sa.String(length=8), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=True),
    sa.Column('previous_key', sa.Text(), nullable=True),
    sa.Column('previous_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hmac_key', sa.String(length=64), nullable=True),
    sa.Column('notify_url', sa.String(length=512), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_merchant_apps'))
    )
    with op.batch_alter_table('merchant_apps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchant_apps_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('merchant_nonces',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'nonce', name='pk_merchant_nonces')
    )
    with op.batch_alter_table('merchant_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_merchant_nonces_seen', ['seen_at'], unique=False)

    op.create_table('merchant_notifications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('trade_id', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=256), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_notifications'))
    )
    with op.batch_alter_table('merchant_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_merchant_notifications_due', ['state', 'next_at'], unique=False)

    op.create_table('merchant_refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('trade_id', sa.String(length=40), nullable=False),
    sa.Column('out_request_no', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('transfer_id', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_refunds'))
    )
    with op.batch_alter_table('merchant_refunds', schema=None) as batch_op:
        batch_op.create_index('uq_merchant_refunds_request', ['trade_id', 'out_request_no'], unique=True)

    op.create_table('merchant_settlements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('refunds', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('payout_order_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_settlements'))
    )
    with op.batch_alter_table('merchant_settlements', schema=None) as batch_op:
        batch_op.create_index('uq_merchant_settlements_day', ['merchant_id', 'day'], unique=True)

    op.create_table('merchant_stores',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('address', sa.String(length=256), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_stores'))
    )
    with op.batch_alter_table('merchant_stores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchant_stores_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('merchant_trades',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('subject', sa.String(length=256), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=True),
    sa.Column('store_id', sa.String(length=40), nullable=True),
    sa.Column('coupon_amount', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('notify_url', sa.String(length=512), server_default='', nullable=False),
    sa.Column('payer_id', sa.String(length=40), nullable=True),
    sa.Column('transfer_id', sa.String(length=160), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_trades'))
    )
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.create_index('uq_merchant_trades_out', ['merchant_id', 'out_trade_no'], unique=True)

    op.create_table('merchants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('legal_person', sa.String(length=64), nullable=False),
    sa.Column('contact_msisdn', sa.String(length=16), nullable=False),
    sa.Column('mcc', sa.String(length=4), nullable=False),
    sa.Column('website', sa.String(length=256), server_default='', nullable=False),
    sa.Column('settlement_account', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=500), server_default='', nullable=False),
    sa.Column('fee_bps', sa.Integer(), nullable=False),
    sa.Column('settlement_days', sa.Integer(), server_default='1', nullable=False),
    sa.Column('per_trade_limit', sa.BigInteger(), nullable=False),
    sa.Column('daily_limit', sa.BigInteger(), nullable=False),
    sa.Column('account_code', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_merchants_credit_code'))
    )
    op.create_table('rp_campaigns',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('face', sa.BigInteger(), nullable=False),
    sa.Column('min_spend', sa.BigInteger(), nullable=False),
    sa.Column('budget', sa.BigInteger(), nullable=False),
    sa.Column('valid_days', sa.Integer(), nullable=False),
    sa.Column('account_code', sa.String(length=128), nullable=False),
    sa.Column('reserved_code', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rp_campaigns'))
    )
    op.create_table('rp_coupons',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('face', sa.BigInteger(), nullable=False),
    sa.Column('min_spend', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('trade_id', sa.String(length=40), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rp_coupons'))
    )
    with op.batch_alter_table('rp_coupons', schema=None) as batch_op:
        batch_op.create_index('ix_rp_coupons_due', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_rp_coupons_user', ['user_id', 'state'], unique=False)
        batch_op.create_index('uq_rp_coupons_one_each', ['campaign_id', 'user_id'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('rp_coupons', schema=None) as batch_op:
        batch_op.drop_index('uq_rp_coupons_one_each')
        batch_op.drop_index('ix_rp_coupons_user')
        batch_op.drop_index('ix_rp_coupons_due')

    op.drop_table('rp_coupons')
    op.drop_table('rp_campaigns')
    op.drop_table('merchants')
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.drop_index('uq_merchant_trades_out')

    op.drop_table('merchant_trades')
    with op.batch_alter_table('merchant_stores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchant_stores_merchant_id'))

    op.drop_table('merchant_stores')
    with op.batch_alter_table('merchant_settlements', schema=None) as batch_op:
        batch_op.drop_index('uq_merchant_settlements_day')

    op.drop_table('merchant_settlements')
    with op.batch_alter_table('merchant_refunds', schema=None) as batch_op:
        batch_op.drop_index('uq_merchant_refunds_request')

    op.drop_table('merchant_refunds')
    with op.batch_alter_table('merchant_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_merchant_notifications_due')

    op.drop_table('merchant_notifications')
    with op.batch_alter_table('merchant_nonces', schema=None) as batch_op:
        batch_op.drop_index('ix_merchant_nonces_seen')

    op.drop_table('merchant_nonces')
    with op.batch_alter_table('merchant_apps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchant_apps_merchant_id'))

    op.drop_table('merchant_apps')
