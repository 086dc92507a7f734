"""Handset protection: enrolments, claims and their moves, the business halls' replacement
stock, the IMEI blocklist, the claims' photos.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('protection_blocklist',
    sa.Column('imei', sa.String(length=15), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=True),
    sa.Column('added_by', sa.String(length=64), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('imei', name=op.f('pk_protection_blocklist'))
    )
    op.create_table('protection_claim_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protection_claim_events'))
    )
    op.create_index('ix_protection_claim_events_claim', 'protection_claim_events', ['claim_id', 'seq'], unique=True)
    op.create_table('protection_claims',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('enrolment_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('imei', sa.String(length=15), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('photos', sa.Text(), nullable=False),
    sa.Column('police_report', sa.String(length=32), nullable=True),
    sa.Column('warranty', sa.String(length=16), nullable=False),
    sa.Column('warranty_until', sa.Date(), nullable=True),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=True),
    sa.Column('checker', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('hall', sa.String(length=16), nullable=True),
    sa.Column('stock_id', sa.String(length=40), nullable=True),
    sa.Column('replacement_imei', sa.String(length=15), nullable=True),
    sa.Column('old_phone_returned', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('fee_transfer_id', sa.String(length=40), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_over_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protection_claims'))
    )
    op.create_index('ix_protection_claims_enrolment', 'protection_claims', ['enrolment_id'], unique=False)
    op.create_index('ix_protection_claims_imei', 'protection_claims', ['imei'], unique=False)
    op.create_index('ix_protection_claims_msisdn', 'protection_claims', ['msisdn'], unique=False)
    op.create_index('ix_protection_claims_state', 'protection_claims', ['state', 'state_since'], unique=False)
    op.create_table('protection_enrolments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('programme', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=20), nullable=False),
    sa.Column('imei', sa.String(length=15), nullable=False),
    sa.Column('live_imei', sa.String(length=15), nullable=True),
    sa.Column('brand', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('purchased_on', sa.Date(), nullable=False),
    sa.Column('receipt', sa.String(length=64), nullable=False),
    sa.Column('city', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('hall', sa.String(length=16), nullable=True),
    sa.Column('staff', sa.String(length=64), nullable=True),
    sa.Column('monthly_fee', sa.BigInteger(), nullable=False),
    sa.Column('damage_fee', sa.BigInteger(), nullable=False),
    sa.Column('loss_fee', sa.BigInteger(), nullable=False),
    sa.Column('payment', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enrolled_on', sa.Date(), nullable=False),
    sa.Column('covered_from', sa.Date(), nullable=False),
    sa.Column('periods_paid', sa.Integer(), nullable=False),
    sa.Column('paid_until', sa.Date(), nullable=False),
    sa.Column('lapsed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protection_enrolments')),
    sa.UniqueConstraint('live_imei', name=op.f('uq_protection_enrolments_live_imei'))
    )
    op.create_index('ix_protection_enrolments_due', 'protection_enrolments', ['state', 'paid_until'], unique=False)
    op.create_index('ix_protection_enrolments_imei', 'protection_enrolments', ['imei'], unique=False)
    op.create_index('ix_protection_enrolments_user', 'protection_enrolments', ['user_id'], unique=False)
    op.create_table('protection_stock',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('hall', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('imei', sa.String(length=15), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protection_stock')),
    sa.UniqueConstraint('imei', name=op.f('uq_protection_stock_imei'))
    )
    op.create_index('ix_protection_stock_pick', 'protection_stock', ['hall', 'model', 'state'], unique=False)
    op.create_table('protection_photos',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protection_photos'))
    )
    op.create_index('ix_protection_photos_user', 'protection_photos', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_protection_photos_user', table_name='protection_photos')
    op.drop_table('protection_photos')
    op.drop_index('ix_protection_stock_pick', table_name='protection_stock')
    op.drop_table('protection_stock')
    op.drop_index('ix_protection_enrolments_user', table_name='protection_enrolments')
    op.drop_index('ix_protection_enrolments_imei', table_name='protection_enrolments')
    op.drop_index('ix_protection_enrolments_due', table_name='protection_enrolments')
    op.drop_table('protection_enrolments')
    op.drop_index('ix_protection_claims_state', table_name='protection_claims')
    op.drop_index('ix_protection_claims_msisdn', table_name='protection_claims')
    op.drop_index('ix_protection_claims_imei', table_name='protection_claims')
    op.drop_index('ix_protection_claims_enrolment', table_name='protection_claims')
    op.drop_table('protection_claims')
    op.drop_index('ix_protection_claim_events_claim', table_name='protection_claim_events')
    op.drop_table('protection_claim_events')
    op.drop_table('protection_blocklist')
