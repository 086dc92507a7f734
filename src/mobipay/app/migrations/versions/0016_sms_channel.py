"""SMS channel: messages in and out, opt-outs; which reply used a confirmation

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 22:19:18.275322
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_inbound',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=24), nullable=False),
    sa.Column('receiver', sa.String(length=24), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbound')),
    sa.UniqueConstraint('gateway_id', name=op.f('uq_sms_inbound_gateway_id'))
    )
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.create_index('ix_sms_inbound_sender', ['sender', 'received_at'], unique=False)

    op.create_table('sms_optouts',
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('msisdn', name=op.f('pk_sms_optouts'))
    )
    op.create_table('sms_outbound',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('to', sa.String(length=16), nullable=False),
    sa.Column('template', sa.String(length=48), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('coding', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbound'))
    )
    with op.batch_alter_table('sms_outbound', schema=None) as batch_op:
        batch_op.create_index('ix_sms_outbound_to', ['to', 'created_at'], unique=False)

    with op.batch_alter_table('confirmations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_by', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('confirmations', schema=None) as batch_op:
        batch_op.drop_column('used_by')

    with op.batch_alter_table('sms_outbound', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_outbound_to')

    op.drop_table('sms_outbound')
    op.drop_table('sms_optouts')
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_inbound_sender')

    op.drop_table('sms_inbound')
