"""Alliance programmes, member stores, brand privileges, subscriber brands (instore/alliances.py).

Five in-store tables (programmes, their privilege rules, member stores, subscribers' brands
from the operator's CRM, one row per privileged payment with its points), and on
``merchant_trades`` the fen a merchant gave off a payment (``privilege_amount``: neither paid
nor settled).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instore_alliance_programmes',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=500), server_default='', nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
    )
    op.create_table(
        'instore_alliance_rules',
        sa.Column('programme_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('brand', sa.String(length=12), nullable=False),
        sa.Column('min_level', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.Column('min_spend', sa.BigInteger(), nullable=False),
        sa.Column('cap', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('programme_id', 'seq', name='pk_instore_alliance_rules'),
    )
    with op.batch_alter_table('instore_alliance_rules', schema=None) as batch_op:
        batch_op.create_index('ix_instore_alliance_rules_brand', ['brand', 'programme_id'], unique=False)
    op.create_table(
        'instore_alliance_members',
        sa.Column('programme_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('merchant_name', sa.String(length=128), nullable=False),
        sa.Column('store_name', sa.String(length=128), nullable=False),
        sa.Column('city', sa.String(length=32), nullable=False),
        sa.Column('mcc', sa.String(length=4), nullable=False),
        sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('programme_id', 'store_id', name='pk_instore_alliance_members'),
    )
    with op.batch_alter_table('instore_alliance_members', schema=None) as batch_op:
        batch_op.create_index('ix_instore_alliance_members_store', ['store_id'], unique=False)
        batch_op.create_index('ix_instore_alliance_members_city', ['city', 'mcc'], unique=False)
        batch_op.create_index('ix_instore_alliance_members_merchant', ['merchant_id'], unique=False)
    op.create_table(
        'instore_subscriber_brands',
        sa.Column('msisdn', sa.String(length=16), nullable=False),
        sa.Column('brand', sa.String(length=12), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('msisdn'),
    )
    op.create_table(
        'instore_alliance_privileges',
        sa.Column('trade_id', sa.String(length=40), nullable=False),
        sa.Column('programme_id', sa.String(length=40), nullable=False),
        sa.Column('programme_name', sa.String(length=64), nullable=False),
        sa.Column('payer_id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=12), nullable=False),
        sa.Column('brand', sa.String(length=12), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('rule_value', sa.BigInteger(), nullable=False),
        sa.Column('rule_text', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('discount', sa.BigInteger(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('trade_id'),
    )
    with op.batch_alter_table('instore_alliance_privileges', schema=None) as batch_op:
        batch_op.create_index('ix_instore_alliance_privileges_payer', ['payer_id', 'created_at'], unique=False)
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('privilege_amount', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('merchant_trades', schema=None) as batch_op:
        batch_op.drop_column('privilege_amount')
    with op.batch_alter_table('instore_alliance_privileges', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_alliance_privileges_payer')
    op.drop_table('instore_alliance_privileges')
    op.drop_table('instore_subscriber_brands')
    with op.batch_alter_table('instore_alliance_members', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_alliance_members_merchant')
        batch_op.drop_index('ix_instore_alliance_members_city')
        batch_op.drop_index('ix_instore_alliance_members_store')
    op.drop_table('instore_alliance_members')
    with op.batch_alter_table('instore_alliance_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_alliance_rules_brand')
    op.drop_table('instore_alliance_rules')
    op.drop_table('instore_alliance_programmes')
