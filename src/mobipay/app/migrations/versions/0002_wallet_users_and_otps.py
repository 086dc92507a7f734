"""Wallet subscribers (by E.164 number) and the one-time codes sent to them (hashed).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:27:25.168473
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_otps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_otps'))
    )
    with op.batch_alter_table('wallet_otps', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_otps_latest', ['msisdn', 'purpose', 'sent_at'], unique=False)

    op.create_table('wallet_users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('operator', sa.String(length=16), nullable=False),
    sa.Column('virtual_operator', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('tier', sa.SmallInteger(), nullable=False),
    sa.Column('account_code', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_users')),
    sa.UniqueConstraint('account_code', name=op.f('uq_wallet_users_account_code')),
    sa.UniqueConstraint('msisdn', name=op.f('uq_wallet_users_msisdn'))
    )


def downgrade() -> None:
    op.drop_table('wallet_users')
    with op.batch_alter_table('wallet_otps', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_otps_latest')

    op.drop_table('wallet_otps')
