"""Handset protection tables: enrolments, claims and their history, the replacement stock
of the business halls, the IMEI blocklist, and the claims' photos (the files under
``MOBIPAY_PROTECTION_PHOTO_DIR``, named by SHA-256)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Text

from mobipay.platform.db import metadata

enrolments = Table(
    "protection_enrolments",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the subscriber and the idempotency key
    Column("programme", String(32), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("imei", String(15), nullable=False),
    # the IMEI while the enrolment is live: unique, so an IMEI is enrolled once however
    # many requests race (NULL once the enrolment ended)
    Column("live_imei", String(15), nullable=True, unique=True),
    Column("brand", String(32), nullable=False),
    Column("model", String(64), nullable=False),
    Column("price", BigInteger, nullable=False),  # fen, from the proof of purchase
    Column("purchased_on", Date, nullable=False),
    Column("receipt", String(64), nullable=False),  # the proof of purchase's number
    Column("city", String(32), nullable=False),
    Column("channel", String(8), nullable=False),  # app | web | sms | hall
    Column("hall", String(16), nullable=True),  # the business hall that enrolled it
    Column("staff", String(64), nullable=True),  # who at the hall
    Column("monthly_fee", BigInteger, nullable=False),
    Column("damage_fee", BigInteger, nullable=False),
    Column("loss_fee", BigInteger, nullable=False),
    Column("payment", String(16), nullable=False),  # wallet | phone_bill
    Column("state", String(16), nullable=False),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("enrolled_on", Date, nullable=False),  # Shanghai date: fee periods and the waiting period count from it
    Column("covered_from", Date, nullable=False),
    Column("periods_paid", Integer, nullable=False),
    Column("paid_until", Date, nullable=False),  # the first day not paid for
    Column("lapsed_at", DateTime(timezone=True), nullable=True),
    Index("ix_protection_enrolments_user", "user_id"),
    Index("ix_protection_enrolments_due", "state", "paid_until"),
    Index("ix_protection_enrolments_imei", "imei"),
)

claims = Table(
    "protection_claims",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the subscriber and the idempotency key
    Column("enrolment_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(20), nullable=False),
    Column("imei", String(15), nullable=False),  # the phone claimed for
    Column("model", String(64), nullable=False),
    Column("city", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # damage | loss | theft
    Column("state", String(20), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("region", String(8), nullable=False),  # ISO 3166-2 where it happened
    Column("description", Text, nullable=False),
    Column("photos", Text, nullable=False),  # JSON list of photo ids (protection_photos)
    Column("police_report", String(32), nullable=True),
    Column("warranty", String(16), nullable=False),  # the maker's 三包 answer: not_covered | covered | unknown
    Column("warranty_until", Date, nullable=True),
    Column("flags", Text, nullable=False),  # JSON list of fraud rule codes
    Column("fee", BigInteger, nullable=False),  # the handling fee due (fen)
    Column("reviewer", String(64), nullable=True),  # who approved it first
    Column("checker", String(64), nullable=True),  # the second reviewer of a flagged claim
    Column("reason", Text, nullable=True),  # a rejection's reason, or what more information is asked for
    Column("hall", String(16), nullable=True),
    Column("stock_id", String(40), nullable=True),
    Column("replacement_imei", String(15), nullable=True),
    Column("old_phone_returned", Boolean, nullable=False, server_default="0"),
    Column("fee_transfer_id", String(40), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("state_since", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("handed_over_at", DateTime(timezone=True), nullable=True),
    Index("ix_protection_claims_enrolment", "enrolment_id"),
    Index("ix_protection_claims_state", "state", "state_since"),
    Index("ix_protection_claims_msisdn", "msisdn"),
    Index("ix_protection_claims_imei", "imei"),
)

claim_events = Table(
    "protection_claim_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("claim_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, … per claim: the order of its moves
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_protection_claim_events_claim", "claim_id", "seq", unique=True),
)

stock = Table(
    "protection_stock",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("hall", String(16), nullable=False),
    Column("model", String(64), nullable=False),
    Column("imei", String(15), nullable=False, unique=True),
    Column("state", String(16), nullable=False),  # available | allocated | handed_over
    Column("claim_id", String(40), nullable=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Index("ix_protection_stock_pick", "hall", "model", "state"),
)

blocklist = Table(
    "protection_blocklist",
    metadata,
    Column("imei", String(15), primary_key=True),
    Column("reason", String(200), nullable=False),
    Column("claim_id", String(40), nullable=True),  # the loss or theft claim that put it here
    Column("added_by", String(64), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

photos = Table(
    "protection_photos",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the uploader and the SHA-256 (model.photo_id)
    Column("user_id", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),  # the file's name in the photo directory
    Column("content_type", String(16), nullable=False),  # image/jpeg | image/png, by the magic bytes
    Column("size", Integer, nullable=False),  # bytes
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Index("ix_protection_photos_user", "user_id"),
)
