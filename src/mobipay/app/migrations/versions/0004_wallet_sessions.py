"""Client-app sessions: hashed access and rotating refresh tokens per device, revocable.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:33:47.157244
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('device_id', sa.String(length=128), nullable=False),
    sa.Column('device_name', sa.String(length=128), server_default='', nullable=False),
    sa.Column('access_hash', sa.String(length=64), nullable=False),
    sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refresh_hash', sa.String(length=64), nullable=False),
    sa.Column('previous_refresh_hash', sa.String(length=64), nullable=True),
    sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_sessions')),
    sa.UniqueConstraint('access_hash', name=op.f('uq_wallet_sessions_access_hash')),
    sa.UniqueConstraint('refresh_hash', name=op.f('uq_wallet_sessions_refresh_hash'))
    )
    with op.batch_alter_table('wallet_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_sessions_previous_refresh_hash'), ['previous_refresh_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_wallet_sessions_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wallet_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_wallet_sessions_previous_refresh_hash'))

    op.drop_table('wallet_sessions')
