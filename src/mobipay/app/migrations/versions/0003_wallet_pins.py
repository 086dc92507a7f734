"""Payment PINs (argon2id hashes) with their failure count and growing lockout.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:29:56.505814
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_pins',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lockouts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_wallet_pins'))
    )


def downgrade() -> None:
    op.drop_table('wallet_pins')
