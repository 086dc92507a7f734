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

#: Customer numbers a subscriber keeps to pay again, to be reminded of new bills, and to
#: have bills up to ``autopay_limit`` paid automatically.
saved_bills = Table(
    "bill_saved",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("biller", String(32), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("nickname", String(32), nullable=False, server_default=""),
    Column("autopay_limit", BigInteger, nullable=True),  # fen; None: remind only
    Column("last_bill_number", String(64), nullable=True),  # the newest bill already told about
    Column("checked_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("uq_bill_saved", "user_id", "biller", "customer_id", unique=True),
    Index("ix_bill_saved_checked", "checked_at"),
)

#: Complaints about a bill payment, assigned to the biller, with deadlines that escalate.
complaints = Table(
    "bill_complaints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("payment_id", String(40), nullable=False),
    Column("biller", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    Column("level", Integer, nullable=False, server_default="0"),  # 0 biller, 1 operator, 2 supervisor
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("resolution", String(500), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_bill_complaints_user", "user_id", "created_at"),
    Index("ix_bill_complaints_due", "state", "due_at"),
    Index("ix_bill_complaints_payment", "payment_id"),
)
