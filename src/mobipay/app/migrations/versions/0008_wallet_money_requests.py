"""Money requests: ask a number for an amount; the payer pays (with PIN) or declines.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:51:51.794527
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_money_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('requester_id', sa.String(length=40), nullable=False),
    sa.Column('requester_msisdn', sa.String(length=16), nullable=False),
    sa.Column('payer_msisdn', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=64), server_default='', nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transfer_id', sa.String(length=160), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_money_requests'))
    )
    with op.batch_alter_table('wallet_money_requests', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_money_requests_payer', ['payer_msisdn', 'created_at'], unique=False)
        batch_op.create_index('ix_wallet_money_requests_requester', ['requester_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wallet_money_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_money_requests_requester')
        batch_op.drop_index('ix_wallet_money_requests_payer')

    op.drop_table('wallet_money_requests')
