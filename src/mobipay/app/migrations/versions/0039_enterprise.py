"""Enterprise one-card (enterprise/tables.py): employers (a merchant account with its
allowance rules), employees, closed-loop merchants, enrolment imports, funding runs and
lines, allowance payments, month closes, readers with their nonces, and attendance taps.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enterprise_closed_loop',
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('employer_id', 'merchant_id', name='pk_enterprise_closed_loop')
    )
    op.create_table('enterprise_employees',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), server_default='', nullable=False),
    sa.Column('employee_no', sa.String(length=32), server_default='', nullable=False),
    sa.Column('allowance_account', sa.String(length=80), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active_msisdn', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_employees'))
    )
    with op.batch_alter_table('enterprise_employees', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_employees_employer', ['employer_id', 'state'], unique=False)
        batch_op.create_index('ix_enterprise_employees_user', ['user_id', 'state'], unique=False)
        batch_op.create_index('ux_enterprise_employees_active_msisdn', ['active_msisdn'], unique=True)

    op.create_table('enterprise_employers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('funds_account', sa.String(length=80), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_employers'))
    )
    op.create_table('enterprise_funding_lines',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('employee_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'employee_id', name='pk_enterprise_funding_lines')
    )
    with op.batch_alter_table('enterprise_funding_lines', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_funding_lines_employee', ['employee_id', 'created_at'], unique=False)

    op.create_table('enterprise_funding_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('employees', sa.Integer(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_funding_runs'))
    )
    with op.batch_alter_table('enterprise_funding_runs', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_funding_runs_employer', ['employer_id', 'created_at'], unique=False)

    op.create_table('enterprise_imports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_imports'))
    )
    op.create_table('enterprise_month_closes',
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('rule', sa.String(length=8), nullable=False),
    sa.Column('employees', sa.Integer(), nullable=False),
    sa.Column('kept', sa.BigInteger(), nullable=False),
    sa.Column('returned', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('employer_id', 'month', name='pk_enterprise_month_closes')
    )
    op.create_table('enterprise_payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('employee_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('store_id', sa.String(length=40), nullable=True),
    sa.Column('trade_id', sa.String(length=40), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('allowance', sa.BigInteger(), nullable=False),
    sa.Column('wallet', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('window', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_payments'))
    )
    with op.batch_alter_table('enterprise_payments', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_payments_employee_day', ['employee_id', 'day', 'window'], unique=False)
        batch_op.create_index('ix_enterprise_payments_employer', ['employer_id', 'created_at'], unique=False)

    op.create_table('enterprise_reader_nonces',
    sa.Column('reader_id', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reader_id', 'nonce', name='pk_enterprise_reader_nonces')
    )
    op.create_table('enterprise_readers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_readers'))
    )
    with op.batch_alter_table('enterprise_readers', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_readers_employer', ['employer_id'], unique=False)

    op.create_table('enterprise_taps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('reader_id', sa.String(length=40), nullable=False),
    sa.Column('employer_id', sa.String(length=40), nullable=False),
    sa.Column('employee_id', sa.String(length=40), nullable=False),
    sa.Column('token_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name=('pk_enterprise_taps')),
    sa.UniqueConstraint('reader_id', 'token_id', 'at', name='uq_enterprise_taps_once')
    )
    with op.batch_alter_table('enterprise_taps', schema=None) as batch_op:
        batch_op.create_index('ix_enterprise_taps_employee', ['employer_id', 'employee_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('enterprise_taps', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_taps_employee')

    op.drop_table('enterprise_taps')
    with op.batch_alter_table('enterprise_readers', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_readers_employer')

    op.drop_table('enterprise_readers')
    op.drop_table('enterprise_reader_nonces')
    with op.batch_alter_table('enterprise_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_payments_employer')
        batch_op.drop_index('ix_enterprise_payments_employee_day')

    op.drop_table('enterprise_payments')
    op.drop_table('enterprise_month_closes')
    op.drop_table('enterprise_imports')
    with op.batch_alter_table('enterprise_funding_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_funding_runs_employer')

    op.drop_table('enterprise_funding_runs')
    with op.batch_alter_table('enterprise_funding_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_enterprise_funding_lines_employee')

    op.drop_table('enterprise_funding_lines')
    op.drop_table('enterprise_employers')
    with op.batch_alter_table('enterprise_employees', schema=None) as batch_op:
        batch_op.drop_index('ux_enterprise_employees_active_msisdn')
        batch_op.drop_index('ix_enterprise_employees_user')
        batch_op.drop_index('ix_enterprise_employees_employer')

    op.drop_table('enterprise_employees')
    op.drop_table('enterprise_closed_loop')
