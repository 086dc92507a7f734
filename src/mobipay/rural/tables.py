"""Rural tables: agents (village payment service points), their staff and sessions, every
transaction at an agent, cash-outs waiting for the customer's code, commissions, fraud flags,
numbers registered at agents; the marketplace's sellers, products, orders (escrow), shipment
events and price notices.

Money is in the ledger (each agent's float account, the escrow account); these rows say what
each posting was for, and carry the day totals the limits are checked against.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mobipay.platform.db import metadata

agents = Table(
    "rural_agents",
    metadata,
    Column("id", String(40), primary_key=True),  # agt_...
    Column("kind", String(8), nullable=False),  # agent | super
    Column("name", String(80), nullable=False),  # the store
    Column("licence", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),  # the agent's number customers send cash-outs to
    Column("super_id", String(40), nullable=True),
    Column("province", String(32), nullable=False),
    Column("city", String(32), nullable=False),
    Column("county", String(32), nullable=False),
    Column("township", String(32), nullable=False),
    Column("village", String(32), nullable=False),
    Column("state", String(10), nullable=False),  # active | suspended
    Column("cash", BigInteger, nullable=False, server_default="0"),  # cash in the till, as its transactions left it
    Column("bank_account", String(40), nullable=True),  # where float sold to the bank is paid (payout)
    Column("bank_token", String(64), nullable=True),  # the bank's token of the agent's verified card (float bought)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_rural_agents_msisdn", "msisdn", unique=True),
    Index("ux_rural_agents_licence", "licence", unique=True),
    Index("ix_rural_agents_place", "county", "township", "village"),
    Index("ix_rural_agents_super", "super_id"),
)

staff = Table(
    "rural_staff",
    metadata,
    Column("id", String(40), primary_key=True),  # ags_...
    Column("agent_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("name", String(40), nullable=False),
    Column("pin_hash", String(200), nullable=False),  # argon2id
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_rural_staff_msisdn", "msisdn", unique=True),  # one staff member, one agent
    Index("ix_rural_staff_agent", "agent_id"),
)

sessions = Table(
    "rural_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the bearer token
    Column("staff_id", String(40), nullable=False),
    Column("agent_id", String(40), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

txns = Table(
    "rural_txns",
    metadata,
    Column("id", String(40), primary_key=True),  # rtx_ + hash of (agent, Idempotency-Key)
    Column("agent_id", String(40), nullable=False),
    Column("kind", String(12), nullable=False),  # model.TxKind
    Column("customer", String(40), nullable=False),  # a number, the other agent's id (rebalance), "bank"
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False, server_default="0"),
    Column("staff_id", String(40), nullable=True),
    Column("flags", String(120), nullable=False, server_default=""),  # comma-separated model.Flag
    Column("day", String(10), nullable=False),  # the Beijing day, for the day limits
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_rural_txns_agent", "agent_id", "created_at"),
    Index("ix_rural_txns_agent_day", "agent_id", "kind", "day"),
    Index("ix_rural_txns_customer_day", "customer", "kind", "day"),
)

cashouts = Table(
    "rural_cashouts",
    metadata,
    Column("id", String(40), primary_key=True),  # rco_ + hash of (starter, Idempotency-Key)
    Column("agent_id", String(40), nullable=False),
    Column("customer", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("started_by", String(8), nullable=False),  # customer | agent
    Column("staff_id", String(40), nullable=True),
    Column("code_hash", String(64), nullable=False),
    Column("wrong", Integer, nullable=False, server_default="0"),
    Column("state", String(8), nullable=False),  # pending | done | void
    Column("txn_id", String(40), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_rural_cashouts_pending", "customer", "state"),
    Index("ix_rural_cashouts_agent", "agent_id", "state"),
)

commissions = Table(
    "rural_commissions",
    metadata,
    Column("txn_id", String(40), nullable=False),
    Column("agent_id", String(40), nullable=False),  # who earns it (the agent, or its super-agent)
    Column("role", String(6), nullable=False),  # agent | super
    Column("month", String(7), nullable=False),  # YYYY-MM (Beijing)
    Column("amount", BigInteger, nullable=False),
    Column("state", String(8), nullable=False),  # accrued | held (flagged) | paid | void
    Column("paid_in", String(100), nullable=True),  # the monthly payment's ledger transfer
    PrimaryKeyConstraint("txn_id", "agent_id", name="pk_rural_commissions"),
    Index("ix_rural_commissions_month", "month", "state", "agent_id"),
)

flags = Table(
    "rural_flags",
    metadata,
    Column("id", String(40), primary_key=True),  # rfl_...
    Column("txn_id", String(40), nullable=False),
    Column("agent_id", String(40), nullable=False),
    Column("rule", String(24), nullable=False),  # model.Flag
    Column("state", String(10), nullable=False),  # open | cleared | confirmed
    Column("decided_by", String(80), nullable=True),
    Column("note", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_rural_flags_state", "state", "created_at"),
    Index("ix_rural_flags_txn", "txn_id"),
)

registrations = Table(
    "rural_registrations",
    metadata,
    Column("msisdn", String(16), primary_key=True),
    Column("agent_id", String(40), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

sellers = Table(
    "rural_sellers",
    metadata,
    Column("id", String(40), primary_key=True),  # rsl_...
    Column("msisdn", String(16), nullable=False),  # paid into this wallet
    Column("name", String(80), nullable=False),
    Column("kind", String(8), nullable=False),  # farmer | coop | shop
    Column("county", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_rural_sellers_msisdn", "msisdn", unique=True),
)

products = Table(
    "rural_products",
    metadata,
    Column("id", String(40), primary_key=True),  # rpd_...
    Column("seller_id", String(40), nullable=False),
    Column("title", String(80), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("origin", String(80), nullable=False),
    Column("photos", Text, nullable=False),  # JSON list of URLs
    Column("delivery", Text, nullable=False),  # JSON list of counties, ["*"] for everywhere
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_rural_products_seller", "seller_id"),
)

orders = Table(
    "rural_orders",
    metadata,
    Column("id", String(40), primary_key=True),  # rmo_ + hash of (buyer, Idempotency-Key)
    Column("product_id", String(40), nullable=False),
    Column("seller_id", String(40), nullable=False),
    Column("buyer", String(16), nullable=False),
    Column("agent_id", String(40), nullable=True),  # ordered through an agent: delivered to its village point
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),  # the platform's, taken at release
    Column("paid_by", String(8), nullable=False),  # wallet | cash (at the agent, from its float)
    Column("state", String(10), nullable=False),  # model.OrderState
    Column("county", String(32), nullable=False),
    Column("address", String(200), nullable=False),
    Column("tracking_no", String(40), nullable=True),
    Column("shipment_seen", Integer, nullable=False, server_default="0"),  # carrier events already texted
    Column("pickup_hash", String(64), nullable=True),
    Column("pickup_wrong", Integer, nullable=False, server_default="0"),
    Column("release_at", DateTime(timezone=True), nullable=False),
    Column("dispute_reason", String(200), nullable=True),
    Column("decide_by", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(80), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_rural_orders_due", "state", "release_at"),
    Index("ix_rural_orders_buyer", "buyer", "created_at"),
    Index("ix_rural_orders_seller", "seller_id", "created_at"),
)

shipment_events = Table(
    "rural_shipment_events",
    metadata,
    Column("order_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("place", String(80), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("order_id", "seq", name="pk_rural_shipment_events"),
)

price_subs = Table(
    "rural_price_subs",
    metadata,
    Column("msisdn", String(16), nullable=False),
    Column("product", String(16), nullable=False),
    Column("county", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("msisdn", "product", "county", name="pk_rural_price_subs"),
    Index("ix_rural_price_subs_topic", "product", "county"),
)

prices = Table(
    "rural_prices",
    metadata,
    Column("id", String(40), primary_key=True),  # rpr_...
    Column("product", String(16), nullable=False),
    Column("county", String(32), nullable=False),
    Column("price", BigInteger, nullable=False),  # fen per unit
    Column("unit", String(16), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Index("ix_rural_prices_topic", "product", "county", "published_at"),
)
