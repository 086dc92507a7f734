"""NFC wallet: device tokens, limited-use keys, taps (online and offline), deny list.

A token keeps no key (they are derived from the issuer key); a key row keeps its limits and
use; a tap is unique per token and ATC (dedupe of offline uploads, replay refusal); the deny
list is versioned so terminals fetch deltas.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instore_nfc_tokens',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('msisdn', sa.String(length=24), nullable=False),
        sa.Column('account_code', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('device_id', sa.String(length=128), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('suspended_by', sa.String(length=12), server_default='', nullable=False),
        sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('atc_high', sa.Integer(), server_default='0', nullable=False),
        sa.Column('key_seq', sa.Integer(), server_default='0', nullable=False),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instore_nfc_tokens', schema=None) as batch_op:
        batch_op.create_index('ux_instore_nfc_tokens_key', ['user_id', 'idempotency_key'], unique=True)
    op.create_table(
        'instore_nfc_keys',
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('max_taps', sa.Integer(), nullable=False),
        sa.Column('max_amount', sa.BigInteger(), nullable=False),
        sa.Column('used_taps', sa.Integer(), server_default='0', nullable=False),
        sa.Column('used_amount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('token_id', 'seq', name='pk_instore_nfc_keys'),
    )
    with op.batch_alter_table('instore_nfc_keys', schema=None) as batch_op:
        batch_op.create_index('ux_instore_nfc_keys_key', ['token_id', 'idempotency_key'], unique=True)
    op.create_table(
        'instore_nfc_taps',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('atc', sa.Integer(), nullable=False),
        sa.Column('key_seq', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('terminal_id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('charged', sa.BigInteger(), nullable=False),
        sa.Column('tapped_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('cryptogram', sa.String(length=16), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('transfer_id', sa.String(length=160), nullable=True),
        sa.Column('trade_id', sa.String(length=40), nullable=True),
        sa.Column('upload_id', sa.String(length=40), nullable=True),
        sa.Column('idempotency_key', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instore_nfc_taps', schema=None) as batch_op:
        batch_op.create_index('ux_instore_nfc_taps_atc', ['token_id', 'atc'], unique=True)
        batch_op.create_index('ux_instore_nfc_taps_key', ['terminal_id', 'idempotency_key'], unique=True)
        batch_op.create_index('ix_instore_nfc_taps_debts', ['user_id', 'state'], unique=False)
        batch_op.create_index('ix_instore_nfc_taps_trade', ['trade_id'], unique=False)
    op.create_table(
        'instore_nfc_deny_list',
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('listed', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=12), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_id'),
    )
    with op.batch_alter_table('instore_nfc_deny_list', schema=None) as batch_op:
        batch_op.create_index('ix_instore_nfc_deny_list_version', ['version'], unique=False)
    op.create_table(
        'instore_nfc_deny_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO instore_nfc_deny_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table('instore_nfc_deny_version')
    with op.batch_alter_table('instore_nfc_deny_list', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_nfc_deny_list_version')
    op.drop_table('instore_nfc_deny_list')
    with op.batch_alter_table('instore_nfc_taps', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_nfc_taps_trade')
        batch_op.drop_index('ix_instore_nfc_taps_debts')
        batch_op.drop_index('ux_instore_nfc_taps_key')
        batch_op.drop_index('ux_instore_nfc_taps_atc')
    op.drop_table('instore_nfc_taps')
    with op.batch_alter_table('instore_nfc_keys', schema=None) as batch_op:
        batch_op.drop_index('ux_instore_nfc_keys_key')
    op.drop_table('instore_nfc_keys')
    with op.batch_alter_table('instore_nfc_tokens', schema=None) as batch_op:
        batch_op.drop_index('ux_instore_nfc_tokens_key')
    op.drop_table('instore_nfc_tokens')
