"""KPI: distinct actives cached per range of folded days; kpi_active_daily by user.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25 23:12:39.238698
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kpi_distinct_actives',
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('end_day', sa.Date(), nullable=False),
    sa.Column('users', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('first_day', 'end_day', name=op.f('pk_kpi_distinct_actives'))
    )
    with op.batch_alter_table('kpi_active_daily', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_active_daily_user', ['user_id', 'day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('kpi_active_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_kpi_active_daily_user')

    op.drop_table('kpi_distinct_actives')
