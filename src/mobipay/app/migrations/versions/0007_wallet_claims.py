"""Money sent to numbers without a wallet, waiting in suspense to be claimed or returned.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 18:45:23.157014
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_claims',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('transfer_id', sa.String(length=160), nullable=False),
    sa.Column('sender_id', sa.String(length=40), nullable=False),
    sa.Column('sender_msisdn', sa.String(length=16), nullable=False),
    sa.Column('recipient_msisdn', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_claims')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_wallet_claims_transfer_id'))
    )
    with op.batch_alter_table('wallet_claims', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_claims_due', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_wallet_claims_recipient', ['recipient_msisdn', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wallet_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_claims_recipient')
        batch_op.drop_index('ix_wallet_claims_due')

    op.drop_table('wallet_claims')
