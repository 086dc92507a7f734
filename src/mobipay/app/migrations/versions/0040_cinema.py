"""Cinema e-tickets: cinemas, halls with seat maps, films, shows, orders and the seats they hold
(cinema/tables.py).

Seven tables. ``cinema_seats`` has one row per locked or sold seat of a show under the
primary key (show, seat): the database itself refuses a second buyer of a seat. Orders keep
only a keyed hash of their code string (unique).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0040'
down_revision = '0039'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cinema_cinemas',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('city', sa.String(length=16), nullable=False),
        sa.Column('address', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_cinema_cinemas')
        )
    op.create_index('ix_cinema_cinemas_city', 'cinema_cinemas', ['city', 'id'], unique=False)
    op.create_index('ux_cinema_cinemas_store', 'cinema_cinemas', ['store_id'], unique=True)
    op.create_table('cinema_films',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('title', sa.String(length=120), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_cinema_films')
        )
    op.create_table('cinema_halls',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('cinema_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('layout', sa.Text(), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_cinema_halls')
        )
    op.create_index('ix_cinema_halls_cinema', 'cinema_halls', ['cinema_id'], unique=False)
    op.create_table('cinema_kiosk_guard',
        sa.Column('cinema_id', sa.String(length=40), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locks', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('cinema_id', name='pk_cinema_kiosk_guard')
        )
    op.create_table('cinema_orders',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('msisdn', sa.String(length=16), nullable=False),
        sa.Column('cinema_id', sa.String(length=40), nullable=False),
        sa.Column('show_id', sa.String(length=40), nullable=False),
        sa.Column('seats', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('code_nonce', sa.Integer(), server_default='0', nullable=False),
        sa.Column('changes', sa.Integer(), server_default='0', nullable=False),
        sa.Column('changed_from', sa.String(length=40), nullable=True),
        sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('collected_by', sa.String(length=40), nullable=True),
        sa.Column('collect_request', sa.String(length=64), nullable=True),
        sa.Column('refund_fee', sa.BigInteger(), nullable=True),
        sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('refund_key', sa.String(length=64), nullable=True),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('trade_id', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_cinema_orders')
        )
    op.create_index('ix_cinema_orders_due', 'cinema_orders', ['state', 'locked_until'], unique=False)
    op.create_index('ix_cinema_orders_show', 'cinema_orders', ['show_id', 'state'], unique=False)
    op.create_index('ix_cinema_orders_user', 'cinema_orders', ['user_id', 'created_at'], unique=False)
    op.create_index('ux_cinema_orders_code', 'cinema_orders', ['code_hash'], unique=True)
    op.create_table('cinema_seats',
        sa.Column('show_id', sa.String(length=40), nullable=False),
        sa.Column('seat', sa.String(length=8), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('show_id', 'seat', name='pk_cinema_seats')
        )
    op.create_index('ix_cinema_seats_due', 'cinema_seats', ['state', 'locked_until'], unique=False)
    op.create_index('ix_cinema_seats_order', 'cinema_seats', ['order_id'], unique=False)
    op.create_table('cinema_shows',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('cinema_id', sa.String(length=40), nullable=False),
        sa.Column('hall_id', sa.String(length=40), nullable=False),
        sa.Column('film_id', sa.String(length=40), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('list_price', sa.BigInteger(), nullable=False),
        sa.Column('price', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_cinema_shows')
        )
    op.create_index('ix_cinema_shows_cinema', 'cinema_shows', ['cinema_id', 'starts_at'], unique=False)
    op.create_index('ix_cinema_shows_hall', 'cinema_shows', ['hall_id', 'starts_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cinema_shows_hall', table_name='cinema_shows')
    op.drop_index('ix_cinema_shows_cinema', table_name='cinema_shows')
    op.drop_table('cinema_shows')
    op.drop_index('ix_cinema_seats_order', table_name='cinema_seats')
    op.drop_index('ix_cinema_seats_due', table_name='cinema_seats')
    op.drop_table('cinema_seats')
    op.drop_index('ux_cinema_orders_code', table_name='cinema_orders')
    op.drop_index('ix_cinema_orders_user', table_name='cinema_orders')
    op.drop_index('ix_cinema_orders_show', table_name='cinema_orders')
    op.drop_index('ix_cinema_orders_due', table_name='cinema_orders')
    op.drop_table('cinema_orders')
    op.drop_table('cinema_kiosk_guard')
    op.drop_index('ix_cinema_halls_cinema', table_name='cinema_halls')
    op.drop_table('cinema_halls')
    op.drop_table('cinema_films')
    op.drop_index('ux_cinema_cinemas_store', table_name='cinema_cinemas')
    op.drop_index('ix_cinema_cinemas_city', table_name='cinema_cinemas')
    op.drop_table('cinema_cinemas')
