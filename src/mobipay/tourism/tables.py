"""Tourism tables: officers and their sessions, the directory (agencies, their staff, places),
news and policies, filed tour contracts, complaint work orders with their steps, route
replays, refunds, penalties, evidence and its chain of custody.

Every row carries its ``county`` (administrative code) where a county owns it: an officer
reads only their own county's work orders, and the queries say so in their WHERE clause.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from mobipay.platform.db import metadata

officers = Table(
    "tourism_officers",
    metadata,
    Column("id", String(40), primary_key=True),  # tof_...
    Column("county", String(6), nullable=False),
    Column("badge", String(16), nullable=False),  # 执法证号: what the officer signs in with
    Column("name", String(40), nullable=False),
    Column("phone", String(16), nullable=False),
    Column("device_id", String(64), nullable=False),  # the terminal issued to the officer
    Column("password_hash", String(200), nullable=False),
    Column("sign_in_failures", Integer, nullable=False, server_default="0"),
    Column("sign_in_failed_at", DateTime(timezone=True), nullable=True),
    Column("sign_in_locked_until", DateTime(timezone=True), nullable=True),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("badge", name="uq_tourism_officers_badge"),
)

officer_sessions = Table(
    "tourism_officer_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", String(40), nullable=False),  # the officer (StaffSessions' column name)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_tourism_officer_sessions_officer", "operator_id"),
)

agencies = Table(
    "tourism_agencies",
    metadata,
    Column("id", String(40), primary_key=True),  # tag_...
    Column("county", String(6), nullable=False),
    Column("name", String(80), nullable=False),
    Column("licence", String(32), nullable=False),  # 旅行社业务经营许可证号
    Column("manager", String(40), nullable=False),
    Column("manager_phone", String(16), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("address", String(120), nullable=False),
    Column("penalty_points", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("licence", name="uq_tourism_agencies_licence"),
    Index("ix_tourism_agencies_county", "county", "name"),
)

#: An agency's people: guides (导游证), coach drivers and sales staff.
staff = Table(
    "tourism_staff",
    metadata,
    Column("id", String(40), primary_key=True),  # tst_...
    Column("agency_id", String(40), nullable=False),
    Column("county", String(6), nullable=False),
    Column("role", String(8), nullable=False),  # guide | driver | sales
    Column("name", String(40), nullable=False),
    Column("phone", String(16), nullable=False),
    Column("licence", String(32), nullable=False, server_default=""),  # guide's licence, driver's plate
    Column("penalty_points", Integer, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_staff_agency", "agency_id", "role"),
    Index("ix_tourism_staff_county", "county", "name"),
)

#: Places and contacts of the directory: scenic spots (with coordinates and the radius that
#: counts as "there"), hotels, county bureaus, unit contacts, the enforcement brigade.
places = Table(
    "tourism_places",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("county", String(6), nullable=False),
    Column("kind", String(8), nullable=False),  # spot | hotel | bureau | contact | brigade
    Column("name", String(80), nullable=False),
    Column("phone", String(20), nullable=False, server_default=""),
    Column("address", String(120), nullable=False, server_default=""),
    Column("person", String(40), nullable=False, server_default=""),  # a contact's name
    Column("unit", String(80), nullable=False, server_default=""),  # a contact's unit
    Column("lat_e6", Integer, nullable=True),
    Column("lon_e6", Integer, nullable=True),
    Column("radius_m", Integer, nullable=True),
    Index("ix_tourism_places_county", "county", "kind", "name"),
)

news = Table(
    "tourism_news",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("county", String(6), nullable=False),
    Column("kind", String(8), nullable=False),  # news | policy
    Column("title", String(160), nullable=False),
    Column("body", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_news_county", "county", "kind", "published_at"),
)

#: A tour contract the agency filed with the bureau: the promised itinerary of a tour day.
contracts = Table(
    "tourism_contracts",
    metadata,
    Column("id", String(40), primary_key=True),  # tct_...
    Column("agency_id", String(40), nullable=False),
    Column("county", String(6), nullable=False),
    Column("tourist_name", String(40), nullable=False),
    Column("tourist_phone", String(16), nullable=False),
    Column("tour_date", String(10), nullable=False),  # ISO date
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("itinerary", Text, nullable=False),  # JSON list of spot ids, in order
    Column("guide_id", String(40), nullable=True),
    Column("driver_id", String(40), nullable=True),
    Column("price", BigInteger, nullable=False),  # fen, per person
    Column("people", Integer, nullable=False),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_contracts_agency", "agency_id", "tour_date"),
)

work_orders = Table(
    "tourism_work_orders",
    metadata,
    Column("id", String(40), primary_key=True),  # two_ + hash of (officer, Idempotency-Key)
    Column("county", String(6), nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("state", String(12), nullable=False),
    Column("complainant_name", String(40), nullable=False),
    Column("complainant_phone", String(16), nullable=False),
    Column("complainants", Integer, nullable=False),  # people who signed it
    Column("agency_id", String(40), nullable=False),
    Column("guide_id", String(40), nullable=True),
    Column("driver_id", String(40), nullable=True),
    Column("contract_id", String(40), nullable=True),
    Column("tour_date", String(10), nullable=False),
    Column("tour_starts_at", DateTime(timezone=True), nullable=False),
    Column("tour_ends_at", DateTime(timezone=True), nullable=False),
    Column("itinerary", Text, nullable=False),  # JSON spot ids: the contract's at the time of the complaint
    Column("cause", String(20), nullable=False),
    Column("facts", Text, nullable=False),
    Column("demands", Text, nullable=False),
    Column("location_consent", Boolean, nullable=False),
    Column("before_court", Boolean, nullable=False, server_default="0"),
    Column("group_id", String(40), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("accept_by", DateTime(timezone=True), nullable=False),
    Column("reply_by", DateTime(timezone=True), nullable=True),
    Column("mediate_by", DateTime(timezone=True), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("refusal", Text, nullable=True),  # JSON: grounds and the officer's words
    Column("reply", Text, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("record", Text, nullable=True),  # the mediation record or the termination's reasons
    Column("escalation", Integer, nullable=False, server_default="0"),
    Column("escalated_step", String(8), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_work_orders_county", "county", "state", "received_at"),
    Index("ix_tourism_work_orders_group", "agency_id", "cause", "tour_date"),
)

#: Each step of a work order, in order: its own history (the platform audit has it too).
order_steps = Table(
    "tourism_order_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(60), nullable=False),
    Column("step", String(20), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_tourism_order_steps_order", "order_id", "id"),
)

replays = Table(
    "tourism_route_replays",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("subject", String(8), nullable=False),  # guide | driver
    Column("phone", String(16), nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("from_at", DateTime(timezone=True), nullable=False),
    Column("to_at", DateTime(timezone=True), nullable=False),
    Column("track", Text, nullable=False),  # JSON [[iso, lat, lon, accuracy], ...]
    Column("stops", Text, nullable=False),
    Column("verdicts", Text, nullable=False),
    Column("stay_distance_m", Integer, nullable=False),
    Column("stay_minutes", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_route_replays_order", "order_id", "created_at"),
)

refunds = Table(
    "tourism_refunds",
    metadata,
    Column("id", String(40), primary_key=True),  # trf_ + hash of (order, Idempotency-Key)
    Column("order_id", String(40), nullable=False),
    Column("agency_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),  # wallet | bank
    Column("tourist_phone", String(16), nullable=False),
    Column("transfer_id", String(80), nullable=True),
    Column("bank_reference", String(64), nullable=True),
    Column("officer_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_refunds_order", "order_id"),
)

penalties = Table(
    "tourism_penalties",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("target_kind", String(8), nullable=False),  # agency | guide | driver
    Column("target_id", String(40), nullable=False),
    Column("kind", String(12), nullable=False),  # warning | fine | points
    Column("amount", BigInteger, nullable=False, server_default="0"),  # a fine, fen
    Column("points", Integer, nullable=False, server_default="0"),
    Column("reason", Text, nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_penalties_target", "target_kind", "target_id"),
)

evidence = Table(
    "tourism_evidence",
    metadata,
    Column("id", String(40), primary_key=True),  # tev_ + hash of (officer, client id)
    Column("order_id", String(40), nullable=False),
    Column("county", String(6), nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # photo | audio
    Column("content_type", String(24), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("captured_at", DateTime(timezone=True), nullable=False),
    Column("lat_e6", Integer, nullable=True),
    Column("lon_e6", Integer, nullable=True),
    Column("note", String(200), nullable=False, server_default=""),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_evidence_order", "order_id", "captured_at"),
)

custody = Table(
    "tourism_custody",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("evidence_id", String(40), nullable=False),
    Column("action", String(10), nullable=False),  # captured | uploaded | viewed | verified | exported
    Column("actor", String(60), nullable=False),
    Column("device", String(64), nullable=False, server_default=""),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_tourism_custody_evidence", "evidence_id", "id"),
)

#: An agency's sales network: its branches (分社) and outlets (门市部).
outlets = Table(
    "tourism_agency_outlets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("agency_id", String(40), nullable=False),
    Column("kind", String(8), nullable=False),  # branch | outlet
    Column("name", String(80), nullable=False),
    Column("address", String(120), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("manager", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tourism_agency_outlets_agency", "agency_id", "kind"),
)

#: What an agency's staff did (contracts filed, tours started, check-ins): the bureau supervises it.
ops_log = Table(
    "tourism_ops_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_id", String(40), nullable=False),
    Column("staff_id", String(40), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(20), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("actor", String(80), nullable=False, server_default=""),  # who: agency:<login>, guide:<login>, system
    Index("ix_tourism_ops_log_agency", "agency_id", "id"),
)

#: The guide assistant: a guide's check-in at a promised spot of today's tour.
checkins = Table(
    "tourism_checkins",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("contract_id", String(40), nullable=False),
    Column("guide_id", String(40), nullable=False),
    Column("spot_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("lat_e6", Integer, nullable=False),
    Column("lon_e6", Integer, nullable=False),
    Column("distance_m", Integer, nullable=False),
    Column("at_spot", Boolean, nullable=False),
    Index("ix_tourism_checkins_contract", "contract_id", "at"),
)

#: The agencies' own sign-in accounts: the manager and office staff (the agency's pages) and
#: each guide (the guide assistant, bound to the guide's entry in ``tourism_staff``). Columns
#: as the platform's staff sign-in expects them (``platform/staff_sessions.py``).
agency_accounts = Table(
    "tourism_agency_accounts",
    metadata,
    Column("id", String(40), primary_key=True),  # tac_...
    Column("agency_id", String(40), nullable=False),
    Column("login", String(64), nullable=False),  # what the person signs in with
    Column("name", String(40), nullable=False),
    Column("role", String(8), nullable=False),  # manager | staff | guide
    Column("staff_id", String(40), nullable=True),  # a guide's (or staff member's) entry in tourism_staff
    Column("password_hash", String(200), nullable=False),
    Column("sign_in_failures", Integer, nullable=False, server_default="0"),
    Column("sign_in_failed_at", DateTime(timezone=True), nullable=True),
    Column("sign_in_locked_until", DateTime(timezone=True), nullable=True),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("login", name="uq_tourism_agency_accounts_login"),
    Index("ix_tourism_agency_accounts_agency", "agency_id"),
)

agency_sessions = Table(
    "tourism_agency_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", String(40), nullable=False),  # the agency account (StaffSessions' column name)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_tourism_agency_sessions_account", "operator_id"),
)

#: An agency's write sent with an Idempotency-Key: what it asked (a fingerprint) and what it
#: made, so the same key again answers the first result and another request under it is refused.
agency_writes = Table(
    "tourism_agency_writes",
    metadata,
    Column("id", String(40), primary_key=True),  # taw_ + hash of (agency, Idempotency-Key)
    Column("agency_id", String(40), nullable=False),
    Column("kind", String(12), nullable=False),  # outlet | staff | contract
    Column("fingerprint", String(64), nullable=False),
    Column("result_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
