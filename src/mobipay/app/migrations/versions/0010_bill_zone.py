"""The bill zone: the biller registry and the bills fetched for subscribers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 19:51:47.451952
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bill_billers',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('province', sa.String(length=32), nullable=False),
    sa.Column('id_label', sa.String(length=64), nullable=False),
    sa.Column('id_regex', sa.String(length=256), nullable=False),
    sa.Column('fetch', sa.String(length=12), nullable=False),
    sa.Column('amount_rule', sa.String(length=12), nullable=False),
    sa.Column('min_fen', sa.BigInteger(), nullable=False),
    sa.Column('max_fen', sa.BigInteger(), nullable=False),
    sa.Column('opens', sa.String(length=5), nullable=False),
    sa.Column('closes', sa.String(length=5), nullable=False),
    sa.Column('adapter', sa.String(length=32), nullable=False),
    sa.Column('latency_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_bill_billers'))
    )
    with op.batch_alter_table('bill_billers', schema=None) as batch_op:
        batch_op.create_index('ix_bill_billers_city', ['city', 'category'], unique=False)

    op.create_table('bill_fetched',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('biller', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('bill_number', sa.String(length=64), nullable=False),
    sa.Column('amount_due', sa.BigInteger(), nullable=False),
    sa.Column('customer_name', sa.String(length=64), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_fetched'))
    )
    with op.batch_alter_table('bill_fetched', schema=None) as batch_op:
        batch_op.create_index('ix_bill_fetched_user', ['user_id', 'fetched_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('bill_fetched', schema=None) as batch_op:
        batch_op.drop_index('ix_bill_fetched_user')

    op.drop_table('bill_fetched')
    with op.batch_alter_table('bill_billers', schema=None) as batch_op:
        batch_op.drop_index('ix_bill_billers_city')

    op.drop_table('bill_billers')
