"""Operator product subscriptions and insurance cancellation retries.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 10:40:00

Cancellation retries need no schema: each attempt is a partner order of its own.
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('product_subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('anchor', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('paid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('renewal_order', sa.String(length=40), nullable=True),
    sa.Column('reminded_cycle', sa.Integer(), server_default='0', nullable=False),
    sa.Column('live_key', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_subscriptions'))
    )
    with op.batch_alter_table('product_subscriptions', schema=None) as batch_op:
        batch_op.create_index('uq_product_subscriptions_live', ['live_key'], unique=True)
        batch_op.create_index('ix_product_subscriptions_user', ['user_id', 'created_at'], unique=False)
        batch_op.create_index('ix_product_subscriptions_due', ['state', 'paid_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('product_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_product_subscriptions_due')
        batch_op.drop_index('ix_product_subscriptions_user')
        batch_op.drop_index('uq_product_subscriptions_live')

    op.drop_table('product_subscriptions')
