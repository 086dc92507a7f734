"""What the SMS channel keeps: messages in (deduplicated on the gateway's id), messages out
with their delivery state, and the numbers that asked to stop reminders."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text

from mobipay.platform.db import metadata

sms_inbound = Table(
    "sms_inbound",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("gateway_id", String(64), nullable=False, unique=True),  # Kannel's %I: a retried delivery repeats it
    Column("sender", String(24), nullable=False),  # as the network gave it (may not be a valid number)
    Column("receiver", String(24), nullable=False),
    Column("text", Text, nullable=False),
    Column("state", String(12), nullable=False),  # received | answered | throttled
    Column("action", String(16), nullable=True),  # the parsed command, for reports
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Index("ix_sms_inbound_sender", "sender", "received_at"),
)

sms_outbound = Table(
    "sms_outbound",
    metadata,
    Column("id", String(40), primary_key=True),  # the outbox message id: one SMS per event
    Column("to", String(16), nullable=False),
    Column("template", String(48), nullable=False),
    Column("parts", Integer, nullable=False),
    Column("coding", Integer, nullable=False),  # 0 GSM 7-bit, 2 UCS-2
    Column("state", String(12), nullable=False),  # submitting | submitted | acked | delivered | failed | rejected
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status", Integer, nullable=True),  # Kannel DLR type of the newest report
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_sms_outbound_to", "to", "created_at"),
)

sms_optouts = Table(
    "sms_optouts",
    metadata,
    Column("msisdn", String(16), primary_key=True),
    Column("stopped_at", DateTime(timezone=True), nullable=False),
)
