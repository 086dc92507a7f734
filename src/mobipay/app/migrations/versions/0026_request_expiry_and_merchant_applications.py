"""Money requests expired by the worker; merchant application statuses.

The worker stores ``expired`` on due money requests (the index is its scan); an applicant
reads and resubmits a merchant application with a token kept as its SHA-256, and says what
was added with a resubmission.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 10:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wallet_money_requests', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_money_requests_due', ['state', 'expires_at'], unique=False)
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('application_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('applicant_note', sa.String(length=500), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('applicant_note')
        batch_op.drop_column('application_token_hash')
    with op.batch_alter_table('wallet_money_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_money_requests_due')
