"""Campaign tables: bulk disbursement batches and rows; segments, draws, prizes and deliveries."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from mobipay.platform.db import metadata

# ---- bulk disbursements ----
# An organisation paying many people (a school's grant, a charity's aid): its members (each
# with an HMAC key: maker and checker are people), campaigns with a ledger account each,
# batches uploaded as files, their rows and the sub-batches they run in (the run's progress,
# so a crash resumes where it stopped).

bulk_funders = Table(
    "campaign_bulk_funders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("contact", String(16), nullable=False),  # E.164
    Column("account_code", String(128), nullable=False),  # the funder's deposit in the ledger
    Column("status", String(12), nullable=False),  # active | suspended
    Column("created_at", DateTime(timezone=True), nullable=False),
)

bulk_members = Table(
    "campaign_bulk_members",
    metadata,
    Column("id", String(40), primary_key=True),  # the key id a request names (X-Funder-Key)
    Column("funder_id", String(40), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("roles", String(32), nullable=False),  # "maker", "checker" or "maker,checker"
    Column("secret", String(64), nullable=False),  # HMAC key (hex): both sides must hold it
    Column("created_at", DateTime(timezone=True), nullable=False),
)

bulk_nonces = Table(
    "campaign_bulk_nonces",
    metadata,
    Column("member_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("member_id", "nonce", name="pk_campaign_bulk_nonces"),
    Index("ix_campaign_bulk_nonces_seen", "seen_at"),
)

bulk_campaigns = Table(
    "campaign_bulk_campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("funder_id", String(40), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("account_code", String(128), nullable=False),  # the campaign's money in the ledger
    Column("created_at", DateTime(timezone=True), nullable=False),
)

bulk_batches = Table(
    "campaign_bulk_batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("campaign_id", String(40), nullable=False, index=True),
    Column("funder_id", String(40), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("file_name", String(128), nullable=False, server_default=""),
    Column("file_sha256", String(64), nullable=False),
    Column("state", String(20), nullable=False),  # rejected | awaiting_approval | approved | running | completed
    Column("reason", String(256), nullable=False, server_default=""),  # why a file was rejected
    Column("rows_total", Integer, nullable=False),
    Column("rows_valid", Integer, nullable=False),
    Column("amount_valid", BigInteger, nullable=False),
    Column("max_invalid_pct", Integer, nullable=False),
    Column("claim_days", Integer, nullable=False),
    Column("sub_batches", Integer, nullable=False),
    Column("paid_rows", Integer, nullable=False, server_default="0"),
    Column("paid_amount", BigInteger, nullable=False, server_default="0"),
    Column("waiting_rows", Integer, nullable=False, server_default="0"),
    Column("waiting_amount", BigInteger, nullable=False, server_default="0"),
    Column("failed_rows", Integer, nullable=False, server_default="0"),
    Column("failed_amount", BigInteger, nullable=False, server_default="0"),
    Column("created_by", String(40), nullable=False),
    Column("approved_by", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("funder_id", "idempotency_key", name="uq_campaign_bulk_batches_key"),
)

bulk_sub_batches = Table(
    "campaign_bulk_sub_batches",
    metadata,
    Column("batch_id", String(40), nullable=False),
    Column("n", Integer, nullable=False),
    Column("state", String(12), nullable=False),  # pending | done
    Column("done_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("batch_id", "n", name="pk_campaign_bulk_sub_batches"),
)

bulk_rows = Table(
    "campaign_bulk_rows",
    metadata,
    Column("batch_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),  # the row's place in the file, from 1
    Column("row_id", String(64), nullable=False),  # the funder's, as sent (unique among valid rows)
    Column("msisdn", String(32), nullable=False),  # E.164 when valid, else as sent
    Column("name", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen; 0 when the amount was invalid
    Column("note", String(64), nullable=False),
    # invalid | pending | paid | waiting_for_registration | failed
    Column("state", String(28), nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("transfer_id", String(160), nullable=True),
    PrimaryKeyConstraint("batch_id", "seq", name="pk_campaign_bulk_rows"),
)


# ---- segments, prize draws, prizes and delivery ----

#: A segment is a saved query over subscribers (criteria as JSON, segment_model.Criteria);
#: its count is recomputed on demand and kept with the time it was counted.
segments = sa.Table(
    "campaign_segments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("criteria", sa.Text, nullable=False),
    sa.Column("last_count", sa.Integer, nullable=True),
    sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: A batch of a segment's bulk SMS written to the outbox (its key derives from the request's
#: Idempotency-Key and the batch number): a retry skips the batches already written.
sms_batches = sa.Table(
    "campaign_sms_batches",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("segment_id", sa.String(40), nullable=False),
    sa.Column("template", sa.String(40), nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
)

#: Prize inventory: what is on hand and how much of it draws have promised (reserved).
prize_items = sa.Table(
    "campaign_prize_items",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("on_hand", sa.Integer, nullable=False),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock"),
)

#: A prize draw: committed (list, seed hash and named lottery draw published) → drawn.
draws = sa.Table(
    "campaign_draws",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("segment_id", sa.String(40), nullable=False),
    sa.Column("criteria", sa.Text, nullable=False),  # the segment's criteria as frozen
    sa.Column("state", sa.String(12), nullable=False),  # committed | drawn
    sa.Column("game", sa.String(8), nullable=False),
    sa.Column("issue", sa.String(8), nullable=False),
    sa.Column("draw_at", sa.DateTime(timezone=True), nullable=False),  # the lottery draw's time
    sa.Column("seed", sa.String(64), nullable=False),  # hex; published only at the reveal
    sa.Column("entry_salt", sa.String(32), nullable=False),  # hex; the entry codes' HMAC key, never published
    sa.Column("seed_hash", sa.String(64), nullable=False),
    sa.Column("list_hash", sa.String(64), nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("claim_days", sa.Integer, nullable=False),
    sa.Column("commitment", sa.Text, nullable=False),  # commitment.json as published
    sa.Column("reveal", sa.Text, nullable=True),  # reveal.json as published
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
)

#: The frozen, ordered entry list of a draw (position 0 is the first line of entries.txt).
draw_entries = sa.Table(
    "campaign_draw_entries",
    metadata,
    sa.Column("draw_id", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("entry", sa.String(32), nullable=False),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.UniqueConstraint("draw_id", "msisdn", name="uq_campaign_draw_entries_msisdn"),
)

#: The prizes of a draw in their published order (prize number 1..n), reserved from stock.
draw_prizes = sa.Table(
    "campaign_draw_prizes",
    metadata,
    sa.Column("draw_id", sa.String(40), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("item", sa.String(32), nullable=False),
)

#: A prize won: told by SMS, delivered to the door (or unclaimed by its deadline).
awards = sa.Table(
    "campaign_awards",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("draw_id", sa.String(40), nullable=False),
    sa.Column("prize_number", sa.Integer, nullable=False),
    sa.Column("item", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("entry", sa.String(32), nullable=False),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # prize_model.AwardState
    sa.Column("address", sa.String(200), nullable=False, server_default=""),
    sa.Column("receiver", sa.String(64), nullable=False, server_default=""),
    sa.Column("claim_by", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("draw_id", "prize_number", name="uq_campaign_awards_prize"),
    sa.Index("ix_campaign_awards_due", "state", "claim_by"),
)

#: A delivery run: one vehicle's round of stops on a day.
delivery_runs = sa.Table(
    "campaign_delivery_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("vehicle", sa.String(32), nullable=False),
    sa.Column("driver", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # planned | out | closed
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: A stop of a run: one award's delivery attempt with its outcome and the receiver's proof.
delivery_stops = sa.Table(
    "campaign_delivery_stops",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("award_id", sa.String(40), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # pending | delivered | failed
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("proof_kind", sa.String(12), nullable=True),  # signature | photo
    sa.Column("proof_sha256", sa.String(64), nullable=True),
    sa.Column("proof_file", sa.String(300), nullable=True),
    sa.Column("receiver", sa.String(64), nullable=False, server_default=""),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("run_id", "seq", name="uq_campaign_delivery_stops_seq"),
    sa.Index("ix_campaign_delivery_stops_award", "award_id"),
)
