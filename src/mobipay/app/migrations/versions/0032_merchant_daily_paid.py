"""Merchants' daily totals: one row per merchant and Beijing day, the merchant's daily limit
checked against it in the paying transaction (it was a SUM over the day's trades, whose cost
grew with them and which two concurrent payments could both pass). Today's row is filled from
the trades paid so far today, so the limit holds across the upgrade.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 16:00:00
"""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'merchant_daily_paid',
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('paid_fen', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', 'day', name='pk_merchant_daily_paid'),
    )
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    trades = sa.table('merchant_trades', sa.column('merchant_id', sa.String), sa.column('amount', sa.BigInteger),
                      sa.column('paid_at', sa.DateTime(timezone=True)))
    since = start.astimezone(UTC)
    rows = op.get_bind().execute(sa.select(trades.c.merchant_id, sa.func.sum(trades.c.amount)).where(
        trades.c.paid_at >= since, trades.c.paid_at < since + timedelta(days=1)).group_by(trades.c.merchant_id))
    today = [{"merchant_id": m, "day": start.date(), "paid_fen": int(total)} for m, total in rows]
    if today:
        op.bulk_insert(table, today)


def downgrade() -> None:
    op.drop_table('merchant_daily_paid')
