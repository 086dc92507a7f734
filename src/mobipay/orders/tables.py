"""Partner-order tables: every order to a partner (bank, operator billing, aggregator,
billers, product platforms) with its hold, and the partners' daily-file lines."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from mobipay.platform.db import metadata

partner_orders = Table(
    "partner_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner", String(32), nullable=False),  # bank | operator_billing | topup_aggregator | …
    Column("kind", String(24), nullable=False),  # cash_in | cash_out | close_payout | topup | …
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),  # what the partner moves
    Column("fee", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # pending | succeeded | failed
    Column("partner_ref", String(64), nullable=False, server_default=""),
    Column("reason", String(64), nullable=False, server_default=""),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON: what the context needs to send it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Column("next_check_at", DateTime(timezone=True), nullable=False),
    Column("checks", Integer, nullable=False, server_default="0"),
    Index("ix_partner_orders_due", "state", "next_check_at"),
    Index("ix_partner_orders_user", "user_id", "created_at"),
    Index("ix_partner_orders_settled", "partner", "settled_at"),
)


#: Differences found in a partner's daily file; ``resolution`` says what was done
#: (``settled`` from the file) or that a person must look (``investigate``).
partner_recon_items = Table(
    "partner_recon_items",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner", String(32), nullable=False),
    Column("day", Date, nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),  # settled_from_file | missing_here | missing_there | …
    Column("our_state", String(12), nullable=True),
    Column("our_amount", BigInteger, nullable=True),
    Column("partner_status", String(12), nullable=True),
    Column("partner_amount", BigInteger, nullable=True),
    Column("resolution", String(24), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("uq_partner_recon_items", "partner", "day", "order_id", unique=True),
)
