"""Merchant portal operator accounts (argon2id password and refund PIN, role) and their sessions.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 22:51:16.305630
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merchant_operator_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_merchant_operator_sessions'))
    )
    with op.batch_alter_table('merchant_operator_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_merchant_operator_sessions_operator', ['operator_id'], unique=False)

    op.create_table('merchant_operators',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('refund_pin_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('pin_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pin_locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_operators'))
    )
    with op.batch_alter_table('merchant_operators', schema=None) as batch_op:
        batch_op.create_index('uq_merchant_operators_name', ['merchant_id', 'name'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('merchant_operators', schema=None) as batch_op:
        batch_op.drop_index('uq_merchant_operators_name')

    op.drop_table('merchant_operators')
    with op.batch_alter_table('merchant_operator_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_merchant_operator_sessions_operator')

    op.drop_table('merchant_operator_sessions')
