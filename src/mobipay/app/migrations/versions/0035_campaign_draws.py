"""Campaign segments (saved subscriber queries, bulk SMS batches), prize draws (frozen entry
lists, committed seeds, named lottery draws, prizes in order), prizes won and their delivery
runs and stops, and the prize inventory.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-04 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_segments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('criteria', sa.Text(), nullable=False),
    sa.Column('last_count', sa.Integer(), nullable=True),
    sa.Column('counted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_campaign_segments'),
    sa.UniqueConstraint('name', name='uq_campaign_segments_name')
    )
    op.create_table('campaign_sms_batches',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name='pk_campaign_sms_batches')
    )
    op.create_table('campaign_prize_items',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('reserved >= 0 AND reserved <= on_hand', name=op.f('ck_campaign_prize_items_stock')),
    sa.PrimaryKeyConstraint('code', name='pk_campaign_prize_items')
    )
    op.create_table('campaign_draws',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.Column('criteria', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('game', sa.String(length=8), nullable=False),
    sa.Column('issue', sa.String(length=8), nullable=False),
    sa.Column('draw_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('entry_salt', sa.String(length=32), nullable=False),
    sa.Column('seed_hash', sa.String(length=64), nullable=False),
    sa.Column('list_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.Column('claim_days', sa.Integer(), nullable=False),
    sa.Column('commitment', sa.Text(), nullable=False),
    sa.Column('reveal', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_campaign_draws'),
    sa.UniqueConstraint('idempotency_key', name='uq_campaign_draws_idempotency_key')
    )
    op.create_table('campaign_draw_entries',
    sa.Column('draw_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('entry', sa.String(length=32), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('draw_id', 'position', name='pk_campaign_draw_entries'),
    sa.UniqueConstraint('draw_id', 'msisdn', name='uq_campaign_draw_entries_msisdn')
    )
    op.create_table('campaign_draw_prizes',
    sa.Column('draw_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('draw_id', 'number', name='pk_campaign_draw_prizes')
    )
    op.create_table('campaign_awards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('draw_id', sa.String(length=40), nullable=False),
    sa.Column('prize_number', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('entry', sa.String(length=32), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=200), server_default='', nullable=False),
    sa.Column('receiver', sa.String(length=64), server_default='', nullable=False),
    sa.Column('claim_by', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_campaign_awards'),
    sa.UniqueConstraint('draw_id', 'prize_number', name='uq_campaign_awards_prize')
    )
    op.create_table('campaign_delivery_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('vehicle', sa.String(length=32), nullable=False),
    sa.Column('driver', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_campaign_delivery_runs')
    )
    op.create_table('campaign_delivery_stops',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('award_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=200), server_default='', nullable=False),
    sa.Column('proof_kind', sa.String(length=12), nullable=True),
    sa.Column('proof_sha256', sa.String(length=64), nullable=True),
    sa.Column('proof_file', sa.String(length=300), nullable=True),
    sa.Column('receiver', sa.String(length=64), server_default='', nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_campaign_delivery_stops'),
    sa.UniqueConstraint('run_id', 'seq', name='uq_campaign_delivery_stops_seq')
    )
    op.create_index('ix_campaign_awards_due', 'campaign_awards', ['state', 'claim_by'], unique=False)
    op.create_index('ix_campaign_delivery_stops_award', 'campaign_delivery_stops', ['award_id'], unique=False)


def downgrade() -> None:
    op.drop_table('campaign_delivery_stops')
    op.drop_table('campaign_delivery_runs')
    op.drop_table('campaign_awards')
    op.drop_table('campaign_draw_prizes')
    op.drop_table('campaign_draw_entries')
    op.drop_table('campaign_draws')
    op.drop_table('campaign_prize_items')
    op.drop_table('campaign_sms_batches')
    op.drop_table('campaign_segments')
