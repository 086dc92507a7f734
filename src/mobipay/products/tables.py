"""Products tables: the subscriptions of monthly operator products (the orders that pay
each period are partner orders, ``orders/tables.py``)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table

from mobipay.platform.db import metadata

product_subscriptions = Table(
    "product_subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("product", String(32), nullable=False),
    Column("state", String(12), nullable=False),  # pending | active | cancelled | ended | lapsed | failed
    Column("anchor", DateTime(timezone=True), nullable=False),  # the first period's start
    Column("cycle", Integer, nullable=False),  # the period paid for last (1: the purchase)
    Column("paid_until", DateTime(timezone=True), nullable=False),
    Column("order_id", String(40), nullable=False),  # the order paying period ``cycle``
    Column("renewal_order", String(40), nullable=True),  # a renewal at the provider now
    Column("reminded_cycle", Integer, nullable=False, server_default="0"),
    #: "user_id|product" while the subscription holds its product, NULL after: the unique index
    #: keeps one live subscription per product and subscriber even between racing requests.
    Column("live_key", String(80), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Index("uq_product_subscriptions_live", "live_key", unique=True),
    Index("ix_product_subscriptions_user", "user_id", "created_at"),
    Index("ix_product_subscriptions_due", "state", "paid_until"),
)
