"""Campaign bulk disbursements: funders, their members (each with a key, maker or checker) and
nonces, campaigns, batches, their sub-batches (the run's progress) and rows.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaign_bulk_funders',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('contact', sa.String(length=16), nullable=False),
        sa.Column('account_code', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'campaign_bulk_members',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('funder_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('roles', sa.String(length=32), nullable=False),
        sa.Column('secret', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('campaign_bulk_members', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_bulk_members_funder_id', ['funder_id'], unique=False)
    op.create_table(
        'campaign_bulk_nonces',
        sa.Column('member_id', sa.String(length=40), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('member_id', 'nonce', name='pk_campaign_bulk_nonces'),
    )
    with op.batch_alter_table('campaign_bulk_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_bulk_nonces_seen', ['seen_at'], unique=False)
    op.create_table(
        'campaign_bulk_campaigns',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('funder_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('account_code', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('campaign_bulk_campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_bulk_campaigns_funder_id', ['funder_id'], unique=False)
    op.create_table(
        'campaign_bulk_batches',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('campaign_id', sa.String(length=40), nullable=False),
        sa.Column('funder_id', sa.String(length=40), nullable=False),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('file_name', sa.String(length=128), server_default='', nullable=False),
        sa.Column('file_sha256', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=256), server_default='', nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_valid', sa.Integer(), nullable=False),
        sa.Column('amount_valid', sa.BigInteger(), nullable=False),
        sa.Column('max_invalid_pct', sa.Integer(), nullable=False),
        sa.Column('claim_days', sa.Integer(), nullable=False),
        sa.Column('sub_batches', sa.Integer(), nullable=False),
        sa.Column('paid_rows', sa.Integer(), server_default='0', nullable=False),
        sa.Column('paid_amount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('waiting_rows', sa.Integer(), server_default='0', nullable=False),
        sa.Column('waiting_amount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('failed_rows', sa.Integer(), server_default='0', nullable=False),
        sa.Column('failed_amount', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=False),
        sa.Column('approved_by', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('funder_id', 'idempotency_key', name='uq_campaign_bulk_batches_key'),
    )
    with op.batch_alter_table('campaign_bulk_batches', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_bulk_batches_campaign_id', ['campaign_id'], unique=False)
    op.create_table(
        'campaign_bulk_sub_batches',
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('batch_id', 'n', name='pk_campaign_bulk_sub_batches'),
    )
    op.create_table(
        'campaign_bulk_rows',
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('row_id', sa.String(length=64), nullable=False),
        sa.Column('msisdn', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('note', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=28), nullable=False),
        sa.Column('error_code', sa.String(length=40), nullable=True),
        sa.Column('transfer_id', sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint('batch_id', 'seq', name='pk_campaign_bulk_rows'),
    )


def downgrade() -> None:
    for table in ('campaign_bulk_rows', 'campaign_bulk_sub_batches', 'campaign_bulk_batches',
                  'campaign_bulk_campaigns', 'campaign_bulk_nonces', 'campaign_bulk_members', 'campaign_bulk_funders'):
        op.drop_table(table)
