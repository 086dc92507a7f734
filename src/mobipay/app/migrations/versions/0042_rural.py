"""Rural e-commerce: agents (village payment service points), their staff, sessions and
transactions, cash-outs waiting for the customer's code, commissions, fraud flags, numbers
registered at agents; the marketplace's sellers, products, orders in escrow, shipment
events, price subscriptions and prices (rural/tables.py).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0042'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rural_agents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('licence', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('super_id', sa.String(length=40), nullable=True),
    sa.Column('province', sa.String(length=32), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('county', sa.String(length=32), nullable=False),
    sa.Column('township', sa.String(length=32), nullable=False),
    sa.Column('village', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('cash', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('bank_account', sa.String(length=40), nullable=True),
    sa.Column('bank_token', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_agents'))
    )
    op.create_index('ix_rural_agents_place', 'rural_agents', ['county', 'township', 'village'], unique=False)
    op.create_index('ix_rural_agents_super', 'rural_agents', ['super_id'], unique=False)
    op.create_index('ux_rural_agents_licence', 'rural_agents', ['licence'], unique=True)
    op.create_index('ux_rural_agents_msisdn', 'rural_agents', ['msisdn'], unique=True)
    op.create_table('rural_cashouts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('customer', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('started_by', sa.String(length=8), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('wrong', sa.Integer(), server_default='0', nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('txn_id', sa.String(length=40), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_cashouts'))
    )
    op.create_index('ix_rural_cashouts_agent', 'rural_cashouts', ['agent_id', 'state'], unique=False)
    op.create_index('ix_rural_cashouts_pending', 'rural_cashouts', ['customer', 'state'], unique=False)
    op.create_table('rural_commissions',
    sa.Column('txn_id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=6), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('paid_in', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('txn_id', 'agent_id', name='pk_rural_commissions')
    )
    op.create_index('ix_rural_commissions_month', 'rural_commissions', ['month', 'state', 'agent_id'], unique=False)
    op.create_table('rural_flags',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('txn_id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('rule', sa.String(length=24), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_flags'))
    )
    op.create_index('ix_rural_flags_state', 'rural_flags', ['state', 'created_at'], unique=False)
    op.create_index('ix_rural_flags_txn', 'rural_flags', ['txn_id'], unique=False)
    op.create_table('rural_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('seller_id', sa.String(length=40), nullable=False),
    sa.Column('buyer', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('paid_by', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('county', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('tracking_no', sa.String(length=40), nullable=True),
    sa.Column('shipment_seen', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pickup_hash', sa.String(length=64), nullable=True),
    sa.Column('pickup_wrong', sa.Integer(), server_default='0', nullable=False),
    sa.Column('release_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispute_reason', sa.String(length=200), nullable=True),
    sa.Column('decide_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_orders'))
    )
    op.create_index('ix_rural_orders_buyer', 'rural_orders', ['buyer', 'created_at'], unique=False)
    op.create_index('ix_rural_orders_due', 'rural_orders', ['state', 'release_at'], unique=False)
    op.create_index('ix_rural_orders_seller', 'rural_orders', ['seller_id', 'created_at'], unique=False)
    op.create_table('rural_price_subs',
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('county', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('msisdn', 'product', 'county', name='pk_rural_price_subs')
    )
    op.create_index('ix_rural_price_subs_topic', 'rural_price_subs', ['product', 'county'], unique=False)
    op.create_table('rural_prices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('county', sa.String(length=32), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_prices'))
    )
    op.create_index('ix_rural_prices_topic', 'rural_prices', ['product', 'county', 'published_at'], unique=False)
    op.create_table('rural_products',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('seller_id', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=80), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=80), nullable=False),
    sa.Column('photos', sa.Text(), nullable=False),
    sa.Column('delivery', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_products'))
    )
    op.create_index('ix_rural_products_seller', 'rural_products', ['seller_id'], unique=False)
    op.create_table('rural_registrations',
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('msisdn', name=op.f('pk_rural_registrations'))
    )
    op.create_table('rural_sellers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('county', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_sellers'))
    )
    op.create_index('ux_rural_sellers_msisdn', 'rural_sellers', ['msisdn'], unique=True)
    op.create_table('rural_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_rural_sessions'))
    )
    op.create_table('rural_shipment_events',
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('place', sa.String(length=80), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id', 'seq', name='pk_rural_shipment_events')
    )
    op.create_table('rural_staff',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_staff'))
    )
    op.create_index('ix_rural_staff_agent', 'rural_staff', ['agent_id'], unique=False)
    op.create_index('ux_rural_staff_msisdn', 'rural_staff', ['msisdn'], unique=True)
    op.create_table('rural_txns',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('customer', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=True),
    sa.Column('flags', sa.String(length=120), server_default='', nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rural_txns'))
    )
    op.create_index('ix_rural_txns_agent', 'rural_txns', ['agent_id', 'created_at'], unique=False)
    op.create_index('ix_rural_txns_agent_day', 'rural_txns', ['agent_id', 'kind', 'day'], unique=False)
    op.create_index('ix_rural_txns_customer_day', 'rural_txns', ['customer', 'kind', 'day'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rural_txns_customer_day', table_name='rural_txns')
    op.drop_index('ix_rural_txns_agent_day', table_name='rural_txns')
    op.drop_index('ix_rural_txns_agent', table_name='rural_txns')
    op.drop_table('rural_txns')
    op.drop_index('ux_rural_staff_msisdn', table_name='rural_staff')
    op.drop_index('ix_rural_staff_agent', table_name='rural_staff')
    op.drop_table('rural_staff')
    op.drop_table('rural_shipment_events')
    op.drop_table('rural_sessions')
    op.drop_index('ux_rural_sellers_msisdn', table_name='rural_sellers')
    op.drop_table('rural_sellers')
    op.drop_table('rural_registrations')
    op.drop_index('ix_rural_products_seller', table_name='rural_products')
    op.drop_table('rural_products')
    op.drop_index('ix_rural_prices_topic', table_name='rural_prices')
    op.drop_table('rural_prices')
    op.drop_index('ix_rural_price_subs_topic', table_name='rural_price_subs')
    op.drop_table('rural_price_subs')
    op.drop_index('ix_rural_orders_seller', table_name='rural_orders')
    op.drop_index('ix_rural_orders_due', table_name='rural_orders')
    op.drop_index('ix_rural_orders_buyer', table_name='rural_orders')
    op.drop_table('rural_orders')
    op.drop_index('ix_rural_flags_txn', table_name='rural_flags')
    op.drop_index('ix_rural_flags_state', table_name='rural_flags')
    op.drop_table('rural_flags')
    op.drop_index('ix_rural_commissions_month', table_name='rural_commissions')
    op.drop_table('rural_commissions')
    op.drop_index('ix_rural_cashouts_pending', table_name='rural_cashouts')
    op.drop_index('ix_rural_cashouts_agent', table_name='rural_cashouts')
    op.drop_table('rural_cashouts')
    op.drop_index('ux_rural_agents_msisdn', table_name='rural_agents')
    op.drop_index('ux_rural_agents_licence', table_name='rural_agents')
    op.drop_index('ix_rural_agents_super', table_name='rural_agents')
    op.drop_index('ix_rural_agents_place', table_name='rural_agents')
    op.drop_table('rural_agents')
