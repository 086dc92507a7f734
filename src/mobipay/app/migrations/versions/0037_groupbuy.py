"""Group-buy: deals, orders, vouchers and their consumptions (groupbuy/tables.py).

Seven tables: deals with their stock counter, the stores where a deal is valid, orders,
vouchers (only a keyed hash of each code), consumptions by shops (with the request id as
the idempotency key), refunds, and each store's count of wrong codes.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'groupbuy_deals',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('title', sa.String(length=120), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('price', sa.BigInteger(), nullable=False),
        sa.Column('market_price', sa.BigInteger(), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=False),
        sa.Column('stock_left', sa.Integer(), nullable=False),
        sa.Column('sale_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sale_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('per_user_limit', sa.Integer(), nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('refund_anytime', sa.Boolean(), nullable=False),
        sa.Column('refund_on_expiry', sa.Boolean(), nullable=False),
        sa.Column('group_min', sa.Integer(), server_default='0', nullable=False),
        sa.Column('group_deadline', sa.DateTime(timezone=True), nullable=True),
        sa.Column('group_state', sa.String(length=8), nullable=False),
        sa.Column('lat_e6', sa.Integer(), nullable=True),
        sa.Column('lon_e6', sa.Integer(), nullable=True),
        sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_groupbuy_deals'),
    )
    with op.batch_alter_table('groupbuy_deals', schema=None) as batch_op:
        batch_op.create_index('ix_groupbuy_deals_city', ['city', 'category', 'id'], unique=False)
        batch_op.create_index('ix_groupbuy_deals_group', ['group_state', 'group_deadline'], unique=False)
        batch_op.create_index('ix_groupbuy_deals_valid', ['valid_until'], unique=False)
    op.create_table(
        'groupbuy_deal_shops',
        sa.Column('deal_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('deal_id', 'store_id', name='pk_groupbuy_deal_shops'),
    )
    op.create_table(
        'groupbuy_orders',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('deal_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('msisdn', sa.String(length=16), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_groupbuy_orders'),
    )
    with op.batch_alter_table('groupbuy_orders', schema=None) as batch_op:
        batch_op.create_index('ix_groupbuy_orders_buyer', ['deal_id', 'user_id'], unique=False)
        batch_op.create_index('ix_groupbuy_orders_day', ['created_at'], unique=False)
        batch_op.create_index('ix_groupbuy_orders_user', ['user_id', 'created_at'], unique=False)
    op.create_table(
        'groupbuy_vouchers',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('deal_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('code_nonce', sa.Integer(), server_default='0', nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('consumption_id', sa.String(length=40), nullable=True),
        sa.Column('refund_id', sa.String(length=40), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_groupbuy_vouchers'),
    )
    with op.batch_alter_table('groupbuy_vouchers', schema=None) as batch_op:
        batch_op.create_index('ix_groupbuy_vouchers_deal', ['deal_id', 'state'], unique=False)
        batch_op.create_index('ix_groupbuy_vouchers_order', ['order_id', 'seq'], unique=False)
        batch_op.create_index('ux_groupbuy_vouchers_code', ['code_hash'], unique=True)
    op.create_table(
        'groupbuy_consumptions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('deal_id', sa.String(length=40), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('operator', sa.String(length=80), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reversed_by', sa.String(length=80), nullable=True),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('trade_id', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_groupbuy_consumptions'),
    )
    with op.batch_alter_table('groupbuy_consumptions', schema=None) as batch_op:
        batch_op.create_index('ix_groupbuy_consumptions_day', ['merchant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_groupbuy_consumptions_due', ['state', 'created_at'], unique=False)
        batch_op.create_index('ux_groupbuy_consumptions_request', ['merchant_id', 'request_id'], unique=True)
    op.create_table(
        'groupbuy_refunds',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_groupbuy_refunds'),
    )
    with op.batch_alter_table('groupbuy_refunds', schema=None) as batch_op:
        batch_op.create_index('ix_groupbuy_refunds_order', ['order_id'], unique=False)
    op.create_table(
        'groupbuy_shop_guard',
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locks', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', 'store_id', name='pk_groupbuy_shop_guard'),
    )


def downgrade() -> None:
    op.drop_table('groupbuy_shop_guard')
    op.drop_table('groupbuy_refunds')
    op.drop_table('groupbuy_consumptions')
    op.drop_table('groupbuy_vouchers')
    op.drop_table('groupbuy_orders')
    op.drop_table('groupbuy_deal_shops')
    op.drop_table('groupbuy_deals')
