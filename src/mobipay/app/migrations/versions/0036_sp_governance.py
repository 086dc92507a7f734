"""SP governance: SPs, services, subscriptions, charges, complaints, violations, settlement.

Nine tables of the sp context (sp/tables.py): the SP registry and its services, the
subscriptions with the confirmation decision and its reason, the charges (kept, never
deleted: charge records are kept at least five months), complaints, staff decisions and the
penalties they put in force, the monthly settlements, and the nonces of the SPs' signed
API calls.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sp_api_nonces',
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sp_code', 'nonce', name=op.f('pk_sp_api_nonces'))
    )
    op.create_table('sp_charges',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('service_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('detail', sa.String(length=120), server_default='', nullable=False),
    sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_charges'))
    )
    op.create_index('ix_sp_charges_sp', 'sp_charges', ['sp_code', 'created_at'], unique=False)
    op.create_index('ix_sp_charges_state', 'sp_charges', ['state'], unique=False)
    op.create_index('ix_sp_charges_sub', 'sp_charges', ['subscription_id'], unique=False)
    op.create_table('sp_complaints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_complaints'))
    )
    op.create_index('ix_sp_complaints_sp', 'sp_complaints', ['sp_code', 'created_at'], unique=False)
    op.create_table('sp_decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('cls', sa.String(length=16), server_default='', nullable=False),
    sa.Column('level', sa.String(length=8), server_default='', nullable=False),
    sa.Column('rung', sa.Integer(), server_default='0', nullable=False),
    sa.Column('measures', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('maker', sa.String(length=64), nullable=False),
    sa.Column('checker', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('appeal', sa.Text(), nullable=True),
    sa.Column('appeal_outcome', sa.String(length=12), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_decisions'))
    )
    op.create_index('ix_sp_decisions_sp', 'sp_decisions', ['sp_code', 'created_at'], unique=False)
    op.create_table('sp_penalties',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('decision_id', sa.String(length=40), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('measure', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_penalties'))
    )
    op.create_index('ix_sp_penalties_sp', 'sp_penalties', ['sp_code', 'decided_at'], unique=False)
    op.create_table('sp_providers',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('licence', sa.String(length=32), nullable=False),
    sa.Column('hotline', sa.String(length=20), nullable=False),
    sa.Column('share_bp', sa.Integer(), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('exited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('port_shielded', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('settlement_suspended', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('forced_confirmation', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('api_secret', sa.String(length=64), server_default='', nullable=False),
    sa.Column('settlement_account', sa.String(length=40), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_sp_providers'))
    )
    op.create_table('sp_settlements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('refunds', sa.BigInteger(), nullable=False),
    sa.Column('operator_share', sa.BigInteger(), nullable=False),
    sa.Column('deductions', sa.BigInteger(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payout_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_settlements'))
    )
    op.create_table('sp_services',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('cycle', sa.String(length=12), nullable=False),
    sa.Column('online', sa.Boolean(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['sp_code'], ['sp_providers.code'], name=op.f('fk_sp_services_sp_code_sp_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_services'))
    )
    op.create_index('ux_sp_services_keyword', 'sp_services', ['sp_code', 'keyword'], unique=True)
    op.create_table('sp_subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('sp_code', sa.String(length=16), nullable=False),
    sa.Column('service_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('asked', sa.Boolean(), nullable=False),
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=120), nullable=False),
    sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_charge_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['sp_services.id'], name=op.f('fk_sp_subscriptions_service_id_sp_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_subscriptions'))
    )
    op.create_index('ix_sp_subscriptions_due', 'sp_subscriptions', ['state', 'next_charge_at'], unique=False)
    op.create_index('ix_sp_subscriptions_msisdn', 'sp_subscriptions', ['msisdn', 'ordered_at'], unique=False)
    op.create_index('ix_sp_subscriptions_sp', 'sp_subscriptions', ['sp_code', 'ordered_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sp_subscriptions_sp', table_name='sp_subscriptions')
    op.drop_index('ix_sp_subscriptions_msisdn', table_name='sp_subscriptions')
    op.drop_index('ix_sp_subscriptions_due', table_name='sp_subscriptions')
    op.drop_table('sp_subscriptions')
    op.drop_index('ux_sp_services_keyword', table_name='sp_services')
    op.drop_table('sp_services')
    op.drop_table('sp_settlements')
    op.drop_table('sp_providers')
    op.drop_index('ix_sp_penalties_sp', table_name='sp_penalties')
    op.drop_table('sp_penalties')
    op.drop_index('ix_sp_decisions_sp', table_name='sp_decisions')
    op.drop_table('sp_decisions')
    op.drop_index('ix_sp_complaints_sp', table_name='sp_complaints')
    op.drop_table('sp_complaints')
    op.drop_index('ix_sp_charges_sub', table_name='sp_charges')
    op.drop_index('ix_sp_charges_state', table_name='sp_charges')
    op.drop_index('ix_sp_charges_sp', table_name='sp_charges')
    op.drop_table('sp_charges')
    op.drop_table('sp_api_nonces')
