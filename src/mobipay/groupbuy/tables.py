"""Group-buy tables: deals, their shops, orders, vouchers (keyed hashes only), consumptions,
refunds and each shop's count of wrong codes.

A deal's ``stock_left`` is decremented by a conditional UPDATE (``WHERE stock_left >= n``)
in the buying transaction, so concurrent buyers can never take more than the stock.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table

from mobipay.platform.db import metadata

deals = Table(
    "groupbuy_deals",
    metadata,
    Column("id", String(40), primary_key=True),  # deal_...
    Column("merchant_id", String(40), nullable=False),
    Column("title", String(120), nullable=False),
    Column("city", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("price", BigInteger, nullable=False),  # fen
    Column("market_price", BigInteger, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("stock_left", Integer, nullable=False),
    Column("sale_start", DateTime(timezone=True), nullable=False),
    Column("sale_end", DateTime(timezone=True), nullable=False),
    Column("per_user_limit", Integer, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("refund_anytime", Boolean, nullable=False),
    Column("refund_on_expiry", Boolean, nullable=False),
    Column("group_min", Integer, nullable=False, server_default="0"),
    Column("group_deadline", DateTime(timezone=True), nullable=True),
    Column("group_state", String(8), nullable=False),  # none | open | formed | failed
    Column("lat_e6", Integer, nullable=True),  # microdegrees
    Column("lon_e6", Integer, nullable=True),
    Column("expired_at", DateTime(timezone=True), nullable=True),  # the 过期自动退 run has refunded it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_groupbuy_deals_city", "city", "category", "id"),
    Index("ix_groupbuy_deals_group", "group_state", "group_deadline"),
    Index("ix_groupbuy_deals_valid", "valid_until"),
)

#: The merchant's stores where the deal's vouchers may be used.
deal_shops = Table(
    "groupbuy_deal_shops",
    metadata,
    Column("deal_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    PrimaryKeyConstraint("deal_id", "store_id", name="pk_groupbuy_deal_shops"),
)

orders = Table(
    "groupbuy_orders",
    metadata,
    Column("id", String(40), primary_key=True),  # gbo_ + hash of (buyer, Idempotency-Key)
    Column("deal_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen paid
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_groupbuy_orders_buyer", "deal_id", "user_id"),
    Index("ix_groupbuy_orders_user", "user_id", "created_at"),
    Index("ix_groupbuy_orders_day", "created_at"),
)

vouchers = Table(
    "groupbuy_vouchers",
    metadata,
    Column("id", String(40), primary_key=True),  # vch_...
    Column("order_id", String(40), nullable=False),
    Column("deal_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),  # 1..quantity within the order
    Column("code_hash", String(64), nullable=False),  # HMAC-SHA256 of the code; the code itself is never kept
    Column("code_nonce", Integer, nullable=False, server_default="0"),
    Column("state", String(10), nullable=False),  # unused | consumed | refunded
    Column("consumption_id", String(40), nullable=True),
    Column("refund_id", String(40), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_groupbuy_vouchers_code", "code_hash", unique=True),
    Index("ix_groupbuy_vouchers_order", "order_id", "seq"),
    Index("ix_groupbuy_vouchers_deal", "deal_id", "state"),
)

consumptions = Table(
    "groupbuy_consumptions",
    metadata,
    Column("id", String(40), primary_key=True),  # gbc_ + hash of (merchant, request id)
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("deal_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("operator", String(80), nullable=False),
    Column("state", String(10), nullable=False),  # consumed | reversed | settled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reversed_at", DateTime(timezone=True), nullable=True),
    Column("reversed_by", String(80), nullable=True),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Column("trade_id", String(40), nullable=True),  # the merchant's paid trade, at settlement
    Index("ux_groupbuy_consumptions_request", "merchant_id", "request_id", unique=True),
    Index("ix_groupbuy_consumptions_day", "merchant_id", "created_at"),
    Index("ix_groupbuy_consumptions_due", "state", "created_at"),
)

refunds = Table(
    "groupbuy_refunds",
    metadata,
    Column("id", String(40), primary_key=True),  # gbr_...
    Column("order_id", String(40), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),  # request | expiry | group_failed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_groupbuy_refunds_order", "order_id"),
)

#: Wrong codes typed at a store (model.GUESS_LOCKOUT): the count, when the last was, the lock.
shop_guard = Table(
    "groupbuy_shop_guard",
    metadata,
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_failed_at", DateTime(timezone=True), nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("locks", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("merchant_id", "store_id", name="pk_groupbuy_shop_guard"),
)
