"""Console operator accounts with their sessions; reversal requests (maker-checker)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 22:50:40.040943
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_operator_sessions'))
    )
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_operator_sessions_operator', ['operator_id'], unique=False)

    op.create_table('operators',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.Text(), nullable=False),
    sa.Column('disabled', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('name', name=op.f('uq_operators_name'))
    )
    op.create_table('reversal_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('transfer_id', sa.String(length=160), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('request_reason', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reversal_id', sa.String(length=160), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reversal_requests'))
    )
    with op.batch_alter_table('reversal_requests', schema=None) as batch_op:
        batch_op.create_index('ix_reversal_requests_state', ['state', 'requested_at'], unique=False)
        batch_op.create_index('ix_reversal_requests_transfer', ['transfer_id'], unique=False)
        batch_op.create_index('uq_reversal_requests_pending', ['transfer_id'], unique=True, postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))



def downgrade() -> None:
    with op.batch_alter_table('reversal_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_reversal_requests_pending', postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
        batch_op.drop_index('ix_reversal_requests_transfer')
        batch_op.drop_index('ix_reversal_requests_state')

    op.drop_table('reversal_requests')
    op.drop_table('operators')
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_operator_sessions_operator')

    op.drop_table('operator_sessions')
