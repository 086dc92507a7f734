"""Merchant tables: merchants and their review, API apps and keys, nonces, trades, refunds,
and the merchant portal's staff accounts and sessions."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mobipay.platform.db import metadata

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("credit_code", String(18), nullable=False, unique=True),
    Column("legal_person", String(64), nullable=False),
    Column("contact_msisdn", String(16), nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("website", String(256), nullable=False, server_default=""),
    Column("settlement_account", String(64), nullable=False),  # masked bank account for T+1 payouts
    Column("state", String(24), nullable=False),
    Column("reason", String(500), nullable=False, server_default=""),
    Column("fee_bps", Integer, nullable=False),
    Column("settlement_days", Integer, nullable=False, server_default="1"),
    Column("per_trade_limit", BigInteger, nullable=False),
    Column("daily_limit", BigInteger, nullable=False),
    Column("account_code", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("application_token_hash", String(64), nullable=True),  # SHA-256 of the applicant's token
    Column("applicant_note", String(500), nullable=False, server_default=""),  # said with a resubmission
)

stores = Table(
    "merchant_stores",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("address", String(256), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("city", String(32), nullable=False, server_default=""),  # printed on the store's QR code (tags 60, 64)
)

merchant_apps = Table(
    "merchant_apps",
    metadata,
    Column("app_id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False, index=True),
    Column("sign_type", String(8), nullable=False),  # RSA2 | HMAC
    Column("public_key", Text, nullable=True),  # RSA2: the merchant's current public key (PEM)
    Column("previous_key", Text, nullable=True),  # still accepted until previous_until (rotation overlap)
    Column("previous_until", DateTime(timezone=True), nullable=True),
    Column("hmac_key", String(64), nullable=True),
    Column("notify_url", String(512), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("protocol", String(8), nullable=False, server_default="mobipay"),  # mobipay | alipay | wechat
    Column("apiv3_key", String(32), nullable=True),  # wechat: encrypts its notifications (AES-256-GCM)
)

merchant_nonces = Table(
    "merchant_nonces",
    metadata,
    Column("app_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("app_id", "nonce", name="pk_merchant_nonces"),
    Index("ix_merchant_nonces_seen", "seen_at"),
)

trades = Table(
    "merchant_trades",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("out_trade_no", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("subject", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("coupon_id", String(40), nullable=True),
    Column("store_id", String(40), nullable=True),
    Column("coupon_amount", BigInteger, nullable=False, server_default="0"),  # paid by a red envelope
    # given off the price by the merchant (an alliance privilege it funds): neither paid nor settled
    Column("privilege_amount", BigInteger, nullable=False, server_default="0"),
    Column("app_id", String(40), nullable=False),
    Column("notify_url", String(512), nullable=False, server_default=""),
    Column("payer_id", String(40), nullable=True),
    Column("transfer_id", String(160), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Index("uq_merchant_trades_out", "merchant_id", "out_trade_no", unique=True),
)

refunds = Table(
    "merchant_refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("trade_id", String(40), nullable=False),
    Column("out_request_no", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("transfer_id", String(160), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("uq_merchant_refunds_request", "trade_id", "out_request_no", unique=True),
)

#: Signed notifications to a merchant's notify URL, retried on a published schedule until
#: the merchant answers ``success`` (then ``delivered``) or the schedule ends (``failed``).
notifications = Table(
    "merchant_notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("trade_id", String(40), nullable=False),
    Column("url", String(512), nullable=False),
    Column("payload", Text, nullable=False),  # JSON, signed when sent
    Column("encoding", String(8), nullable=False, server_default="json"),  # json | form (Alipay apps)
    Column("state", String(12), nullable=False),  # pending | delivered | failed | refused (address not allowed)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_error", String(256), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_merchant_notifications_due", "state", "next_at"),
)

#: One row per merchant and business day: what was settled (or why not) and its payout.
settlements = Table(
    "merchant_settlements",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("day", String(10), nullable=False),  # Shanghai business day, YYYY-MM-DD
    Column("gross", BigInteger, nullable=False),
    Column("refunds", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # suspended | nothing | paying | paid | failed
    Column("payout_order_id", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("uq_merchant_settlements_day", "merchant_id", "day", unique=True),
)

#: Red-envelope campaigns: a merchant's budget, moved into the campaign's own account, and
#: the rule that decides who gets an envelope (coupon) of ``face`` fen.
campaigns = Table(
    "rp_campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("rule", String(16), nullable=False),  # new_user | threshold | brand
    Column("face", BigInteger, nullable=False),
    Column("min_spend", BigInteger, nullable=False),
    Column("budget", BigInteger, nullable=False),
    Column("valid_days", Integer, nullable=False),
    Column("account_code", String(128), nullable=False),  # the unissued budget
    Column("reserved_code", String(128), nullable=False),  # issued, not yet used or expired
    Column("state", String(12), nullable=False),  # active | ended
    Column("created_at", DateTime(timezone=True), nullable=False),
)

coupons = Table(
    "rp_coupons",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("campaign_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("face", BigInteger, nullable=False),
    Column("min_spend", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # issued | used | expired
    Column("trade_id", String(40), nullable=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Index("uq_rp_coupons_one_each", "campaign_id", "user_id", unique=True),
    Index("ix_rp_coupons_user", "user_id", "state"),
    Index("ix_rp_coupons_due", "state", "expires_at"),
)


merchant_operators = Table(
    "merchant_operators",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("refund_pin_hash", String(200), nullable=False),  # argon2id of the 6-digit refund PIN
    Column("role", String(8), nullable=False),  # owner | staff
    Column("pin_failures", Integer, nullable=False, server_default="0"),
    Column("pin_locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sign_in_failures", Integer, nullable=False, server_default="0"),  # wrong passwords in the window
    Column("sign_in_failed_at", DateTime(timezone=True), nullable=True),
    Column("sign_in_locked_until", DateTime(timezone=True), nullable=True),
    Index("uq_merchant_operators_name", "merchant_id", "name", unique=True),
)


merchant_operator_sessions = Table(
    "merchant_operator_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token
    Column("operator_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_merchant_operator_sessions_operator", "operator_id"),
)


#: What each merchant was paid per Beijing day, the row its daily limit is checked against in
#: the paying transaction (a conditional UPDATE: concurrent payments wait for the row lock and
#: are re-checked, and the cost does not grow with the day's trades as a SUM over them did).
daily_paid = Table(
    "merchant_daily_paid",
    metadata,
    Column("merchant_id", String(40), nullable=False),
    Column("day", Date, nullable=False),  # Asia/Shanghai
    Column("paid_fen", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("merchant_id", "day", name="pk_merchant_daily_paid"),
)
