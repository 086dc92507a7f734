"""Wallet tables: subscribers, codes, PINs, sessions, limits usage, claims, money requests,
real-name identities and bank cards (orders to the bank are partner orders, in platform)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, SmallInteger, String, Table, text

from mobipay.platform.db import metadata

users = Table(
    "wallet_users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("msisdn", String(16), nullable=False, unique=True),
    Column("operator", String(16), nullable=False),
    Column("virtual_operator", Boolean, nullable=False),
    Column("status", String(12), nullable=False),
    Column("tier", SmallInteger, nullable=False),
    Column("account_code", String(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The number's home region (归属地) from the operator's subscriber records, for regional
    # reporting (the KPI map); empty until those records are loaded (the demo fills it).
    Column("home_province", String(16), nullable=True),
    Column("home_city", String(32), nullable=True),
)

otps = Table(
    "wallet_otps",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("msisdn", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("code_hash", String(64), nullable=False),  # HMAC-SHA256: the code itself is never stored
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("consumed_at", DateTime(timezone=True), nullable=True),
    Index("ix_wallet_otps_latest", "msisdn", "purpose", "sent_at"),
)

pins = Table(
    "wallet_pins",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("pin_hash", String(200), nullable=False),  # argon2id, with its parameters and salt
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("lockouts", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "wallet_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False, index=True),
    Column("device_id", String(128), nullable=False),
    Column("device_name", String(128), nullable=False, server_default=""),
    # Tokens are random; only their SHA-256 is kept, so a database leak grants nothing.
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("access_expires_at", DateTime(timezone=True), nullable=False),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    Column("previous_refresh_hash", String(64), nullable=True, index=True),
    Column("refresh_expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # how the session was opened: "sms" (a code sent to the number: the device is bound to it), "pin", "" (before 0027)
    Column("proven_by", String(8), nullable=False, server_default=""),
)

usage = Table(
    "wallet_usage",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("lifetime", BigInteger, nullable=False, server_default="0"),
    Column("year", Integer, nullable=False, server_default="0"),
    Column("year_total", BigInteger, nullable=False, server_default="0"),
    Column("day", Date, nullable=True),
    Column("day_total", BigInteger, nullable=False, server_default="0"),
)

#: Money sent to a number that has no wallet yet: it waits in the suspense account until
#: the number registers (then it is paid in) or the claim window ends (then it goes back).
claims = Table(
    "wallet_claims",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("transfer_id", String(160), nullable=False, unique=True),
    Column("sender_id", String(40), nullable=False),
    Column("sender_msisdn", String(16), nullable=False),
    Column("recipient_msisdn", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # waiting | claimed | returned
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Index("ix_wallet_claims_recipient", "recipient_msisdn", "state"),
    Index("ix_wallet_claims_due", "state", "expires_at"),
)

money_requests = Table(
    "wallet_money_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("requester_id", String(40), nullable=False),
    Column("requester_msisdn", String(16), nullable=False),
    Column("payer_msisdn", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("note", String(64), nullable=False, server_default=""),
    Column("state", String(12), nullable=False),  # open | paid | declined | expired (the worker's job)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Column("transfer_id", String(160), nullable=True),
    Index("ix_wallet_money_requests_payer", "payer_msisdn", "created_at"),
    Index("ix_wallet_money_requests_requester", "requester_id", "created_at"),
    Index("ix_wallet_money_requests_due", "state", "expires_at"),  # the expiry job's scan
)

#: A subscriber's verified real name (Tier II and up). The identity card number itself is
#: not kept: only a mask to show and an HMAC to compare with the next card bound.
identities = Table(
    "wallet_identities",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("id_masked", String(18), nullable=False),
    Column("id_hmac", String(64), nullable=False, index=True),
    Column("verified_at", DateTime(timezone=True), nullable=False),
    Column("verified_by", String(16), nullable=False),  # bank (four-element check with a card)
    Column("tier3_at", DateTime(timezone=True), nullable=True),
)

#: Bank cards bound to wallets. The number is kept only masked and as an HMAC (to find a
#: card bound twice); the bank's token names the card in orders.
cards = Table(
    "wallet_cards",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False, index=True),
    Column("bank_code", String(16), nullable=False),
    Column("bank_name", String(64), nullable=False),
    Column("masked", String(24), nullable=False),
    Column("card_hmac", String(64), nullable=False),
    Column("token", String(64), nullable=False),
    Column("state", String(12), nullable=False),  # active | removed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("uq_wallet_cards_active", "card_hmac", unique=True, sqlite_where=text("state = 'active'"),
          postgresql_where=text("state = 'active'")),
)
