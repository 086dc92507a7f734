"""In-store payments: POS terminals with their own keys and nonces.

Each terminal of a store keeps only the public half of its Ed25519 key; the nonces of its
signed requests are unique per terminal (replay protection) and pruned by age.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 11:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instore_terminals',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('label', sa.String(length=25), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('key_rotated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instore_terminals', schema=None) as batch_op:
        batch_op.create_index('ix_instore_terminals_store', ['merchant_id', 'store_id'], unique=False)
    op.create_table(
        'instore_terminal_nonces',
        sa.Column('terminal_id', sa.String(length=40), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('terminal_id', 'nonce', name='pk_instore_terminal_nonces'),
    )
    with op.batch_alter_table('instore_terminal_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_instore_terminal_nonces_seen', ['terminal_id', 'seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instore_terminal_nonces', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_terminal_nonces_seen')
    op.drop_table('instore_terminal_nonces')
    with op.batch_alter_table('instore_terminals', schema=None) as batch_op:
        batch_op.drop_index('ix_instore_terminals_store')
    op.drop_table('instore_terminals')
