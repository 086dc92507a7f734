"""SP governance tables: SPs, services, subscriptions, charges, complaints, violations, settlement.

Charges are kept (never deleted) so the five months of charge records the rules ask for
are always there; the ledger holds the money, these rows say what it was for.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from mobipay.platform.db import metadata

sp_providers = Table(
    "sp_providers",
    metadata,
    Column("code", String(16), primary_key=True),  # the service code, e.g. 10661234
    Column("name", String(64), nullable=False),
    Column("licence", String(32), nullable=False),
    Column("hotline", String(20), nullable=False),
    Column("share_bp", Integer, nullable=False),  # the SP's share of information fees, basis points
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("exited_at", DateTime(timezone=True), nullable=True),
    Column("port_shielded", Boolean, nullable=False, server_default="0"),
    Column("settlement_suspended", Boolean, nullable=False, server_default="0"),
    Column("forced_confirmation", Boolean, nullable=False, server_default="0"),
    Column("api_secret", String(64), nullable=False, server_default=""),  # HMAC key of the SP's API calls
    Column("settlement_account", String(40), nullable=False, server_default=""),  # the SP's bank account
)

sp_services = Table(
    "sp_services",
    metadata,
    Column("id", String(40), primary_key=True),  # <sp code>:<keyword>
    Column("sp_code", String(16), ForeignKey("sp_providers.code"), nullable=False),
    Column("keyword", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("price", BigInteger, nullable=False),  # fen per message or per month
    Column("cycle", String(12), nullable=False),  # per_message | monthly
    Column("online", Boolean, nullable=False, server_default="1"),
    Index("ux_sp_services_keyword", "sp_code", "keyword", unique=True),
)

sp_subscriptions = Table(
    "sp_subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("msisdn", String(16), nullable=False),
    Column("sp_code", String(16), nullable=False),
    Column("service_id", String(40), ForeignKey("sp_services.id"), nullable=False),
    Column("state", String(24), nullable=False),  # awaiting_confirmation | active | lapsed | cancelled
    Column("method", String(12), nullable=False),  # phone_bill | wallet
    Column("channel", String(8), nullable=False),  # sms | web | api
    Column("asked", Boolean, nullable=False),  # whether the subscriber was asked to confirm
    Column("rule", String(16), nullable=False),  # the rule that decided (or "policy")
    Column("reason", String(120), nullable=False),
    Column("ordered_at", DateTime(timezone=True), nullable=False),
    Column("active_since", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),  # lapsed or cancelled
    Column("next_charge_at", DateTime(timezone=True), nullable=True),
    Index("ix_sp_subscriptions_msisdn", "msisdn", "ordered_at"),
    Index("ix_sp_subscriptions_due", "state", "next_charge_at"),
    Index("ix_sp_subscriptions_sp", "sp_code", "ordered_at"),
)

sp_charges = Table(
    "sp_charges",
    metadata,
    Column("id", String(80), primary_key=True),  # the ledger transfer id: <subscription>:<period or message>
    Column("subscription_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("sp_code", String(16), nullable=False),
    Column("service_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("method", String(12), nullable=False),
    Column("state", String(12), nullable=False),  # submitted | billed | failed | refunded
    Column("detail", String(120), nullable=False, server_default=""),  # why it failed, what was refunded
    Column("refunded", BigInteger, nullable=False, server_default="0"),  # double refund paid back
    Column("refunded_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_sp_charges_sp", "sp_code", "created_at"),
    Index("ix_sp_charges_sub", "subscription_id"),
    Index("ix_sp_charges_state", "state"),
)

sp_complaints = Table(
    "sp_complaints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sp_code", String(16), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("source", String(8), nullable=False),  # sms | web | hotline
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_sp_complaints_sp", "sp_code", "created_at"),
)

sp_decisions = Table(
    "sp_decisions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sp_code", String(16), nullable=False),
    Column("kind", String(12), nullable=False),  # violation | lift
    Column("cls", String(16), nullable=False, server_default=""),  # the violation's class and level
    Column("level", String(8), nullable=False, server_default=""),
    Column("rung", Integer, nullable=False, server_default="0"),
    Column("measures", Text, nullable=False),  # JSON: [[measure, value], …] after escalation
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("maker", String(64), nullable=False),
    Column("checker", String(64), nullable=True),
    Column("state", String(12), nullable=False),  # proposed | in_force | rejected
    Column("appeal", Text, nullable=True),  # the SP's one appeal
    Column("appeal_outcome", String(12), nullable=True),  # upheld | overturned
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_sp_decisions_sp", "sp_code", "created_at"),
)

sp_penalties = Table(
    "sp_penalties",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("decision_id", String(40), nullable=False),
    Column("sp_code", String(16), nullable=False),
    Column("measure", String(20), nullable=False),
    Column("value", Integer, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Index("ix_sp_penalties_sp", "sp_code", "decided_at"),
)

sp_settlements = Table(
    "sp_settlements",
    metadata,
    Column("id", String(40), primary_key=True),  # <sp code>:<YYYY-MM>
    Column("sp_code", String(16), nullable=False),
    Column("period", String(7), nullable=False),
    Column("fees", BigInteger, nullable=False),  # information fees billed
    Column("refunds", BigInteger, nullable=False),  # refunded (double where owed)
    Column("operator_share", BigInteger, nullable=False),
    Column("deductions", BigInteger, nullable=False),  # penalties' fee deductions
    Column("net", BigInteger, nullable=False),  # payable to the SP
    Column("state", String(8), nullable=False),  # held | payable | paid
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("payout_id", String(64), nullable=True),
)

sp_api_nonces = Table(
    "sp_api_nonces",
    metadata,
    Column("sp_code", String(16), primary_key=True),
    Column("nonce", String(64), primary_key=True),  # a signed call's nonce: used once
    Column("at", DateTime(timezone=True), nullable=False),
)
