"""Transit: operators, lines, stations, validators, taps, trips, riders, deny list, clearings, disputes.

Twelve tables (transit/tables.py). A tap's id is a hash of its token, validator and time, so
a duplicate upload finds the same row; trips carry their fare step by step; the deny list of
wallets owing a fare is versioned as the NFC one is.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transit_operators',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('bank_account', sa.String(length=34), nullable=False),
        sa.Column('account_code', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_operators'),
    )
    with op.batch_alter_table('transit_operators', schema=None) as batch_op:
        batch_op.create_index('ux_transit_operators_name', ['city', 'name'], unique=True)
    op.create_table(
        'transit_lines',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_lines'),
    )
    with op.batch_alter_table('transit_lines', schema=None) as batch_op:
        batch_op.create_index('ux_transit_lines_name', ['operator_id', 'name'], unique=True)
    op.create_table(
        'transit_stations',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('line_id', sa.String(length=40), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('position_m', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_stations'),
    )
    with op.batch_alter_table('transit_stations', schema=None) as batch_op:
        batch_op.create_index('ix_transit_stations_operator', ['operator_id'], unique=False)
        batch_op.create_index('ux_transit_stations_name', ['line_id', 'name'], unique=True)
    op.create_table(
        'transit_validators',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('line_id', sa.String(length=40), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=True),
        sa.Column('role', sa.String(length=8), nullable=False),
        sa.Column('label', sa.String(length=60), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('deny_version', sa.String(length=40), server_default='', nullable=False),
        sa.Column('deny_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_transit_validators'),
    )
    with op.batch_alter_table('transit_validators', schema=None) as batch_op:
        batch_op.create_index('ix_transit_validators_operator', ['operator_id'], unique=False)
    op.create_table(
        'transit_validator_nonces',
        sa.Column('validator_id', sa.String(length=40), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('validator_id', 'nonce', name='pk_transit_validator_nonces'),
    )
    op.create_table(
        'transit_taps',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('validator_id', sa.String(length=40), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('role', sa.String(length=8), nullable=False),
        sa.Column('station_id', sa.String(length=40), nullable=True),
        sa.Column('tapped_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('atc', sa.Integer(), nullable=False),
        sa.Column('trip_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_taps'),
    )
    with op.batch_alter_table('transit_taps', schema=None) as batch_op:
        batch_op.create_index('ix_transit_taps_operator_day', ['operator_id', 'day'], unique=False)
    op.create_table(
        'transit_trips',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('account_code', sa.String(length=64), nullable=False),
        sa.Column('msisdn', sa.String(length=24), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('entry_station_id', sa.String(length=40), nullable=True),
        sa.Column('exit_station_id', sa.String(length=40), nullable=True),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('open_side', sa.String(length=8), server_default='', nullable=False),
        sa.Column('missing', sa.String(length=8), server_default='', nullable=False),
        sa.Column('meters', sa.Integer(), server_default='0', nullable=False),
        sa.Column('base', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('transfer_discount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('tier_discount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('cap_discount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('fare', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('transfer_id', sa.String(length=64), nullable=True),
        sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('priced_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_transit_trips'),
    )
    with op.batch_alter_table('transit_trips', schema=None) as batch_op:
        batch_op.create_index('ix_transit_trips_operator_day', ['operator_id', 'day'], unique=False)
        batch_op.create_index('ix_transit_trips_state', ['state', 'start_at'], unique=False)
        batch_op.create_index('ix_transit_trips_user', ['user_id', 'state', 'start_at'], unique=False)
    op.create_table(
        'transit_riders',
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('month', sa.String(length=7), server_default='', nullable=False),
        sa.Column('month_spent', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('day', sa.Date(), nullable=True),
        sa.Column('day_spent', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('last_end', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_mode', sa.String(length=8), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('user_id', 'city', name='pk_transit_riders'),
    )
    op.create_table(
        'transit_deny_list',
        sa.Column('token_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('listed', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_id', name='pk_transit_deny_list'),
    )
    with op.batch_alter_table('transit_deny_list', schema=None) as batch_op:
        batch_op.create_index('ix_transit_deny_list_user', ['user_id'], unique=False)
        batch_op.create_index('ix_transit_deny_list_version', ['version'], unique=False)
    op.create_table(
        'transit_deny_version',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_deny_version'),
    )
    op.create_table(
        'transit_clearings',
        sa.Column('id', sa.String(length=60), nullable=False),
        sa.Column('operator_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('taps', sa.Integer(), nullable=False),
        sa.Column('trips', sa.Integer(), nullable=False),
        sa.Column('base', sa.BigInteger(), nullable=False),
        sa.Column('discounts', sa.BigInteger(), nullable=False),
        sa.Column('fares', sa.BigInteger(), nullable=False),
        sa.Column('debts', sa.BigInteger(), nullable=False),
        sa.Column('refunds', sa.BigInteger(), nullable=False),
        sa.Column('net', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('payout_id', sa.String(length=64), nullable=True),
        sa.Column('file', sa.Text(), nullable=False),
        sa.Column('operator_taps', sa.Integer(), nullable=True),
        sa.Column('operator_fares', sa.BigInteger(), nullable=True),
        sa.Column('reconciled', sa.String(length=10), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transit_clearings'),
    )
    op.create_table(
        'transit_disputes',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('trip_id', sa.String(length=40), nullable=False),
        sa.Column('tap_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('refund', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('decided_by', sa.String(length=80), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_transit_disputes'),
    )
    with op.batch_alter_table('transit_disputes', schema=None) as batch_op:
        batch_op.create_index('ux_transit_disputes_tap', ['tap_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_transit_disputes_tap', table_name='transit_disputes')
    op.drop_table('transit_disputes')
    op.drop_table('transit_clearings')
    op.drop_table('transit_deny_version')
    op.drop_index('ix_transit_deny_list_user', table_name='transit_deny_list')
    op.drop_index('ix_transit_deny_list_version', table_name='transit_deny_list')
    op.drop_table('transit_deny_list')
    op.drop_table('transit_riders')
    op.drop_index('ix_transit_trips_operator_day', table_name='transit_trips')
    op.drop_index('ix_transit_trips_state', table_name='transit_trips')
    op.drop_index('ix_transit_trips_user', table_name='transit_trips')
    op.drop_table('transit_trips')
    op.drop_index('ix_transit_taps_operator_day', table_name='transit_taps')
    op.drop_table('transit_taps')
    op.drop_table('transit_validator_nonces')
    op.drop_index('ix_transit_validators_operator', table_name='transit_validators')
    op.drop_table('transit_validators')
    op.drop_index('ix_transit_stations_operator', table_name='transit_stations')
    op.drop_index('ux_transit_stations_name', table_name='transit_stations')
    op.drop_table('transit_stations')
    op.drop_index('ux_transit_lines_name', table_name='transit_lines')
    op.drop_table('transit_lines')
    op.drop_index('ux_transit_operators_name', table_name='transit_operators')
    op.drop_table('transit_operators')
