"""Alembic environment: runs migrations on the URL given by ``mobipay db upgrade``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import mobipay.backoffice.tables  # registers the operator accounts, console sessions and reversal requests
import mobipay.bills.tables  # registers the bill-zone tables
import mobipay.campaigns.tables  # registers the campaign batches, segments, draws and deliveries
import mobipay.channels.sms.tables  # registers the SMS channel's tables
import mobipay.cinema.tables  # registers the cinemas, shows, seats and tickets
import mobipay.confirmations.tables  # registers the confirmation table
import mobipay.enterprise.tables  # registers the employers, allowances and attendance
import mobipay.groupbuy.tables  # registers the group-buy deals, orders and vouchers
import mobipay.instore.tables  # registers the in-store terminals and their nonces
import mobipay.ledger.tables  # registers the ledger tables with the metadata
import mobipay.lottery.tables  # registers the lottery tables
import mobipay.merchants.tables  # registers the merchant tables (with the portal's operators)
import mobipay.orders.tables  # registers the partner order tables
import mobipay.platform.audit  # registers the audit table
import mobipay.platform.outbox  # registers the outbox tables
import mobipay.products.tables  # registers the product subscriptions
import mobipay.protection.tables  # registers the handset protection tables
import mobipay.reporting.rollups  # registers the indexes behind the console
import mobipay.reporting.tables  # registers the KPI rollups
import mobipay.rural.tables  # registers the agents, float, commissions and the rural marketplace
import mobipay.sp.tables  # registers the SP governance tables
import mobipay.topup.tables  # registers the top-up partner tables
import mobipay.tourism.tables  # registers the officers, directory, work orders and evidence
import mobipay.transit.tables  # registers the transit operators, fares, taps and clearing
import mobipay.wallet.tables  # noqa: F401  (registers the wallet tables)
from mobipay.platform.db import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
