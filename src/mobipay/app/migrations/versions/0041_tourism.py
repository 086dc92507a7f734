"""Tourism enforcement (旅游通): officers and their sessions, the directory (agencies, staff,
places), news and policies, filed tour contracts, complaint work orders and their steps,
route replays, refunds, penalties, evidence and its chain of custody, and the agencies' sales
network, operations log and guides' check-ins (tourism/tables.py).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tourism_officers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('badge', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('sign_in_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sign_in_failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sign_in_locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_officers'),
    sa.UniqueConstraint('badge', name='uq_tourism_officers_badge')
    )
    op.create_table('tourism_officer_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name='pk_tourism_officer_sessions')
    )
    op.create_table('tourism_agencies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('licence', sa.String(length=32), nullable=False),
    sa.Column('manager', sa.String(length=40), nullable=False),
    sa.Column('manager_phone', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=120), nullable=False),
    sa.Column('penalty_points', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_agencies'),
    sa.UniqueConstraint('licence', name='uq_tourism_agencies_licence')
    )
    op.create_table('tourism_staff',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('licence', sa.String(length=32), server_default='', nullable=False),
    sa.Column('penalty_points', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_staff')
    )
    op.create_table('tourism_places',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('phone', sa.String(length=20), server_default='', nullable=False),
    sa.Column('address', sa.String(length=120), server_default='', nullable=False),
    sa.Column('person', sa.String(length=40), server_default='', nullable=False),
    sa.Column('unit', sa.String(length=80), server_default='', nullable=False),
    sa.Column('lat_e6', sa.Integer(), nullable=True),
    sa.Column('lon_e6', sa.Integer(), nullable=True),
    sa.Column('radius_m', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_places')
    )
    op.create_table('tourism_news',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('title', sa.String(length=160), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_news')
    )
    op.create_table('tourism_contracts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('tourist_name', sa.String(length=40), nullable=False),
    sa.Column('tourist_phone', sa.String(length=16), nullable=False),
    sa.Column('tour_date', sa.String(length=10), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('itinerary', sa.Text(), nullable=False),
    sa.Column('guide_id', sa.String(length=40), nullable=True),
    sa.Column('driver_id', sa.String(length=40), nullable=True),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_contracts')
    )
    op.create_table('tourism_work_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('complainant_name', sa.String(length=40), nullable=False),
    sa.Column('complainant_phone', sa.String(length=16), nullable=False),
    sa.Column('complainants', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('guide_id', sa.String(length=40), nullable=True),
    sa.Column('driver_id', sa.String(length=40), nullable=True),
    sa.Column('contract_id', sa.String(length=40), nullable=True),
    sa.Column('tour_date', sa.String(length=10), nullable=False),
    sa.Column('tour_starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tour_ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('itinerary', sa.Text(), nullable=False),
    sa.Column('cause', sa.String(length=20), nullable=False),
    sa.Column('facts', sa.Text(), nullable=False),
    sa.Column('demands', sa.Text(), nullable=False),
    sa.Column('location_consent', sa.Boolean(), nullable=False),
    sa.Column('before_court', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('group_id', sa.String(length=40), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accept_by', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reply_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mediate_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refusal', sa.Text(), nullable=True),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('record', sa.Text(), nullable=True),
    sa.Column('escalation', sa.Integer(), server_default='0', nullable=False),
    sa.Column('escalated_step', sa.String(length=8), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_work_orders')
    )
    op.create_table('tourism_order_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('step', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_order_steps')
    )
    op.create_table('tourism_route_replays',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=8), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('from_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('to_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('track', sa.Text(), nullable=False),
    sa.Column('stops', sa.Text(), nullable=False),
    sa.Column('verdicts', sa.Text(), nullable=False),
    sa.Column('stay_distance_m', sa.Integer(), nullable=False),
    sa.Column('stay_minutes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_route_replays')
    )
    op.create_table('tourism_refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('tourist_phone', sa.String(length=16), nullable=False),
    sa.Column('transfer_id', sa.String(length=80), nullable=True),
    sa.Column('bank_reference', sa.String(length=64), nullable=True),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_refunds')
    )
    op.create_table('tourism_penalties',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('target_kind', sa.String(length=8), nullable=False),
    sa.Column('target_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('points', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_penalties')
    )
    op.create_table('tourism_evidence',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('county', sa.String(length=6), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('content_type', sa.String(length=24), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat_e6', sa.Integer(), nullable=True),
    sa.Column('lon_e6', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=200), server_default='', nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_evidence')
    )
    op.create_table('tourism_custody',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('evidence_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('device', sa.String(length=64), server_default='', nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_custody')
    )
    op.create_table('tourism_agency_outlets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=120), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('manager', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_agency_outlets')
    )
    op.create_table('tourism_ops_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('agency_id', sa.String(length=40), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_ops_log')
    )
    op.create_table('tourism_checkins',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('guide_id', sa.String(length=40), nullable=False),
    sa.Column('spot_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat_e6', sa.Integer(), nullable=False),
    sa.Column('lon_e6', sa.Integer(), nullable=False),
    sa.Column('distance_m', sa.Integer(), nullable=False),
    sa.Column('at_spot', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_tourism_checkins')
    )
    op.create_index('ix_tourism_officer_sessions_officer', 'tourism_officer_sessions', ['operator_id'], unique=False)
    op.create_index('ix_tourism_agencies_county', 'tourism_agencies', ['county', 'name'], unique=False)
    op.create_index('ix_tourism_staff_agency', 'tourism_staff', ['agency_id', 'role'], unique=False)
    op.create_index('ix_tourism_staff_county', 'tourism_staff', ['county', 'name'], unique=False)
    op.create_index('ix_tourism_places_county', 'tourism_places', ['county', 'kind', 'name'], unique=False)
    op.create_index('ix_tourism_news_county', 'tourism_news', ['county', 'kind', 'published_at'], unique=False)
    op.create_index('ix_tourism_contracts_agency', 'tourism_contracts', ['agency_id', 'tour_date'], unique=False)
    op.create_index('ix_tourism_work_orders_county', 'tourism_work_orders', ['county', 'state', 'received_at'], unique=False)
    op.create_index('ix_tourism_work_orders_group', 'tourism_work_orders', ['agency_id', 'cause', 'tour_date'], unique=False)
    op.create_index('ix_tourism_order_steps_order', 'tourism_order_steps', ['order_id', 'id'], unique=False)
    op.create_index('ix_tourism_route_replays_order', 'tourism_route_replays', ['order_id', 'created_at'], unique=False)
    op.create_index('ix_tourism_refunds_order', 'tourism_refunds', ['order_id'], unique=False)
    op.create_index('ix_tourism_penalties_target', 'tourism_penalties', ['target_kind', 'target_id'], unique=False)
    op.create_index('ix_tourism_evidence_order', 'tourism_evidence', ['order_id', 'captured_at'], unique=False)
    op.create_index('ix_tourism_custody_evidence', 'tourism_custody', ['evidence_id', 'id'], unique=False)
    op.create_index('ix_tourism_agency_outlets_agency', 'tourism_agency_outlets', ['agency_id', 'kind'], unique=False)
    op.create_index('ix_tourism_ops_log_agency', 'tourism_ops_log', ['agency_id', 'id'], unique=False)
    op.create_index('ix_tourism_checkins_contract', 'tourism_checkins', ['contract_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_table('tourism_checkins')
    op.drop_table('tourism_ops_log')
    op.drop_table('tourism_agency_outlets')
    op.drop_table('tourism_custody')
    op.drop_table('tourism_evidence')
    op.drop_table('tourism_penalties')
    op.drop_table('tourism_refunds')
    op.drop_table('tourism_route_replays')
    op.drop_table('tourism_order_steps')
    op.drop_table('tourism_work_orders')
    op.drop_table('tourism_contracts')
    op.drop_table('tourism_news')
    op.drop_table('tourism_places')
    op.drop_table('tourism_staff')
    op.drop_table('tourism_agencies')
    op.drop_table('tourism_officer_sessions')
    op.drop_table('tourism_officers')
