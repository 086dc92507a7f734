"""Payment codes (付款码) and micropay: device secrets, used time steps, micropay orders.

A device's payment-code secret is kept sealed (AES-256-GCM) with its random 8-digit device
number (unique); "device D used step S" is unique, so a code is paid once; a terminal's
micropay order is unique per merchant and out_trade_no and names the merchant trade it pays.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instore_paycode_devices',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('device_no', sa.String(length=8), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('session_id', sa.String(length=40), nullable=False),
        sa.Column('sealed_secret', sa.String(length=128), nullable=False),
        sa.Column('key_id', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instore_paycode_devices', schema=None) as batch_op:
        batch_op.create_index('ux_instore_paycode_devices_no', ['device_no'], unique=True)
        batch_op.create_index('ux_instore_paycode_devices_key', ['user_id', 'idempotency_key'], unique=True)
        batch_op.create_index('ix_instore_paycode_devices_session', ['session_id'], unique=False)
    op.create_table(
        'instore_paycode_uses',
        sa.Column('device_id', sa.String(length=40), nullable=False),
        sa.Column('step', sa.BigInteger(), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('device_id', 'step', name='pk_instore_paycode_uses'),
    )
    op.create_table(
        'instore_micropay_orders',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('terminal_id', sa.String(length=40), nullable=False),
        sa.Column('out_trade_no', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('subject', sa.String(length=256), nullable=False),
        sa.Column('payer_id', sa.String(length=40), nullable=False),
        sa.Column('device_id', sa.String(length=40), nullable=False),
        sa.Column('step', sa.BigInteger(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('trade_id', sa.String(length=40), nullable=True),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('close_reason', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instore_micropay_orders', schema=None) as batch_op:
        batch_op.create_index('ux_instore_micropay_orders_out_no', ['merchant_id', 'out_trade_no'], unique=True)
        batch_op.create_index('ix_instore_micropay_orders_payer', ['payer_id', 'state'], unique=False)
        batch_op.create_index('ix_instore_micropay_orders_due', ['state', 'expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instore_micropay_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_micropay_orders_due')
        batch_op.drop_index('ix_instore_micropay_orders_payer')
        batch_op.drop_index('ux_instore_micropay_orders_out_no')
    op.drop_table('instore_micropay_orders')
    op.drop_table('instore_paycode_uses')
    with op.batch_alter_table('instore_paycode_devices', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_paycode_devices_session')
        batch_op.drop_index('ux_instore_paycode_devices_key')
        batch_op.drop_index('ux_instore_paycode_devices_no')
    op.drop_table('instore_paycode_devices')
