"""In-store payments: store cities and the daily limits of merchant QR payments.

Stores get the city their codes print (tags 60 and 64); a session records how it was
opened (an SMS code proves the device holds the number: a bound device, the second factor
of a QR payment with the PIN); and each payer has one row a Beijing day counting what they
paid by static and by dynamic codes, updated in the payment's transaction (PBoC 2017/296).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 11:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('merchant_stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('city', sa.String(length=32), server_default='', nullable=False))
    with op.batch_alter_table('wallet_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proven_by', sa.String(length=8), server_default='', nullable=False))
    op.create_table(
        'instore_daily_usage',
        sa.Column('payer_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('static_fen', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('dynamic_fen', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('dynamic_weak_fen', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('payer_id', 'day'),
    )


def downgrade() -> None:
    op.drop_table('instore_daily_usage')
    with op.batch_alter_table('wallet_sessions', schema=None) as batch_op:
        batch_op.drop_column('proven_by')
    with op.batch_alter_table('merchant_stores', schema=None) as batch_op:
        batch_op.drop_column('city')
