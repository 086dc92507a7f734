"""Bill-zone tables: the biller registry and the bills fetched for subscribers (payments
themselves are partner orders, in platform)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table

from mobipay.platform.db import metadata

billers = Table(
    "bill_billers",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("category", String(24), nullable=False),
    Column("city", String(32), nullable=False),
    Column("province", String(32), nullable=False),
    Column("id_label", String(64), nullable=False),
    Column("id_regex", String(256), nullable=False),
    Column("fetch", String(12), nullable=False),
    Column("amount_rule", String(12), nullable=False),
    Column("min_fen", BigInteger, nullable=False),
    Column("max_fen", BigInteger, nullable=False),
    Column("opens", String(5), nullable=False),
    Column("closes", String(5), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("latency_ms", Integer, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_bill_billers_city", "city", "category"),
)

fetched_bills = Table(
    "bill_fetched",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("biller", String(32), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("bill_number", String(64), nullable=False),
    Column("amount_due", BigInteger, nullable=False),
    Column("customer_name", String(64), nullable=False),  # masked
    Column("due_date", Date, nullable=False),
    Column("period", String(16), nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Index("ix_bill_fetched_user", "user_id", "fetched_at"),
)
