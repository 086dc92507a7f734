"""Saved bills (reminders, autopay) and complaints about bill payments.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 20:05:14.415086
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bill_complaints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('biller', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('description', sa.String(length=500), server_default='', nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), server_default='0', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.String(length=500), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_complaints'))
    )
    with op.batch_alter_table('bill_complaints', schema=None) as batch_op:
        batch_op.create_index('ix_bill_complaints_due', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_bill_complaints_payment', ['payment_id'], unique=False)
        batch_op.create_index('ix_bill_complaints_user', ['user_id', 'created_at'], unique=False)

    op.create_table('bill_saved',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('biller', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('nickname', sa.String(length=32), server_default='', nullable=False),
    sa.Column('autopay_limit', sa.BigInteger(), nullable=True),
    sa.Column('last_bill_number', sa.String(length=64), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_saved'))
    )
    with op.batch_alter_table('bill_saved', schema=None) as batch_op:
        batch_op.create_index('ix_bill_saved_checked', ['checked_at'], unique=False)
        batch_op.create_index('uq_bill_saved', ['user_id', 'biller', 'customer_id'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('bill_saved', schema=None) as batch_op:
        batch_op.drop_index('uq_bill_saved')
        batch_op.drop_index('ix_bill_saved_checked')

    op.drop_table('bill_saved')
    with op.batch_alter_table('bill_complaints', schema=None) as batch_op:
        batch_op.drop_index('ix_bill_complaints_user')
        batch_op.drop_index('ix_bill_complaints_payment')
        batch_op.drop_index('ix_bill_complaints_due')

    op.drop_table('bill_complaints')
