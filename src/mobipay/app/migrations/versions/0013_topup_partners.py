"""Internet partners selling top-up, and the nonces of their signed requests.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 20:37:43.439665
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('topup_partner_nonces',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'nonce', name='pk_topup_partner_nonces')
    )
    with op.batch_alter_table('topup_partner_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_topup_partner_nonces_seen', ['seen_at'], unique=False)

    op.create_table('topup_partners',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('commission_bps', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('account_code', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topup_partners'))
    )


def downgrade() -> None:
    op.drop_table('topup_partners')
    with op.batch_alter_table('topup_partner_nonces', schema=None) as batch_op:
        batch_op.drop_index('ix_topup_partner_nonces_seen')

    op.drop_table('topup_partner_nonces')
