"""In-store tables: the POS terminals of merchants' stores, the nonces of their signed
requests, and what each payer paid by merchant QR codes per Beijing day (the limits of PBoC
notice 2017/296 are checked against that row in the paying transaction)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table

from mobipay.platform.db import metadata

#: A till's POS terminal. Only the public half of its Ed25519 key is kept (what verification
#: needs): whoever reads this table cannot sign as a terminal (docs/instore.md).
terminals = Table(
    "instore_terminals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("label", String(25), nullable=False),  # EMV template 62's terminal label is at most 25
    Column("public_key", String(64), nullable=False),  # Ed25519, base64 of the raw 32 bytes
    Column("state", String(12), nullable=False),  # active | disabled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_rotated_at", DateTime(timezone=True), nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Index("ix_instore_terminals_store", "merchant_id", "store_id"),
)

#: Nonces of accepted terminal requests, kept twice the timestamp window so that no request
#: can be accepted twice; older ones are pruned by the terminal's next request.
terminal_nonces = Table(
    "instore_terminal_nonces",
    metadata,
    Column("terminal_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("terminal_id", "nonce", name="pk_instore_terminal_nonces"),
    Index("ix_instore_terminal_nonces_seen", "terminal_id", "seen_at"),
)

qr_daily_usage = Table(
    "instore_daily_usage",
    metadata,
    Column("payer_id", String(40), nullable=False),
    Column("day", Date, nullable=False),  # Asia/Shanghai
    Column("static_fen", BigInteger, nullable=False, server_default="0"),
    Column("dynamic_fen", BigInteger, nullable=False, server_default="0"),  # every dynamic-code payment
    Column("dynamic_weak_fen", BigInteger, nullable=False, server_default="0"),  # those with fewer than two factors
    PrimaryKeyConstraint("payer_id", "day"),
)


# ---------------------------------------------------------------------- payment codes (付款码) and micropay

#: A device's payment-code secret, provisioned to a wallet session opened by SMS code. The
#: secret is sealed with AES-256-GCM (instore/micropay.py: a key from settings, its id in
#: ``key_id``, the row's id, device number and wallet as associated data); ``device_no`` is the
#: 8 random digits every code of the device carries. ``failures`` counts wrong codes in a row;
#: at 5 the device is ``locked``. A re-issue or a revocation makes it ``revoked``.
paycode_devices = Table(
    "instore_paycode_devices",
    metadata,
    Column("id", String(40), primary_key=True),  # pcd_...
    Column("device_no", String(8), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("session_id", String(40), nullable=False),  # the session it was issued to: ends with it
    Column("sealed_secret", String(128), nullable=False),  # base64(nonce 12 | ciphertext+tag 36)
    Column("key_id", String(16), nullable=False),
    Column("state", String(12), nullable=False),  # active | locked | revoked
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("idempotency_key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("locked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ux_instore_paycode_devices_no", "device_no", unique=True),
    Index("ux_instore_paycode_devices_key", "user_id", "idempotency_key", unique=True),
    Index("ix_instore_paycode_devices_session", "session_id"),
)

#: "Device D used time step S": a code is paid once however often and wherever it is scanned.
paycode_uses = Table(
    "instore_paycode_uses",
    metadata,
    Column("device_id", String(40), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("device_id", "step", name="pk_instore_paycode_uses"),
)

#: A terminal's micropay order: one scanned payment code, one merchant trade (``trade_id``,
#: through MerchantService, so settlement and refunds are the trades'). Unique per merchant
#: and ``out_trade_no`` (a terminal's retry is the same order). ``state``: CREATED (the code
#: accepted, not yet charged), USERPAYING (waiting for the payer's PIN), SUCCESS, CLOSED
#: (declined, cancelled or expired unpaid: ``close_reason``), PAYERROR (refused: ``error_code``).
micropay_orders = Table(
    "instore_micropay_orders",
    metadata,
    Column("id", String(40), primary_key=True),  # mpo_...
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("terminal_id", String(40), nullable=False),
    Column("out_trade_no", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen
    Column("subject", String(256), nullable=False),
    Column("payer_id", String(40), nullable=False),
    Column("device_id", String(40), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("code_hash", String(64), nullable=False),  # SHA-256 of the scanned code: a retry must send the same
    Column("state", String(12), nullable=False),
    Column("trade_id", String(40), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("close_reason", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Index("ux_instore_micropay_orders_out_no", "merchant_id", "out_trade_no", unique=True),
    Index("ix_instore_micropay_orders_payer", "payer_id", "state"),
    Index("ix_instore_micropay_orders_due", "state", "expires_at"),
)

#: Refused payment codes per caller (a terminal's ``trm_…``; an API app's id if one ever reaches
#: micropay), across devices: ``refusals`` in the fixed window that started at ``window_start``
#: (its first refused code). At the limit the caller is throttled until the window ends
#: (instore/paycode_throttle.py). Moved by one INSERT … ON CONFLICT DO UPDATE … RETURNING.
paycode_throttle = Table(
    "instore_paycode_throttle",
    metadata,
    Column("caller", String(40), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("refusals", Integer, nullable=False),
    Column("lockouts", Integer, nullable=False, server_default="0"),  # windows that reached the limit
    Column("last_refused_at", DateTime(timezone=True), nullable=False),
)


# ---------------------------------------------------------------------- NFC wallet (instore/nfc.py, tokens.py, taps.py)

#: A device token: an HCE phone's applet or a SIM sticker card standing for a wallet at the
#: reader. No key is kept: the token's master key and its limited-use keys are derived from the
#: issuer key and the token id (instore/nfc.py). ``atc_high`` is the highest transaction counter
#: seen (online or uploaded); ``key_seq`` the current limited-use key.
nfc_tokens = Table(
    "instore_nfc_tokens",
    metadata,
    Column("id", String(40), primary_key=True),  # nft_...
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(24), nullable=False),
    Column("account_code", String(64), nullable=False),
    Column("kind", String(12), nullable=False),  # hce | sim_sticker
    Column("device_id", String(128), nullable=False),  # the bound device it was provisioned on
    Column("state", String(12), nullable=False),  # active | suspended
    Column("suspended_by", String(12), nullable=False, server_default=""),  # subscriber | support | sms
    Column("suspended_at", DateTime(timezone=True), nullable=True),
    Column("atc_high", Integer, nullable=False, server_default="0"),
    Column("key_seq", Integer, nullable=False, server_default="0"),
    Column("idempotency_key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_instore_nfc_tokens_key", "user_id", "idempotency_key", unique=True),
)

#: A limited-use key of a token (its number ``seq``; the key itself is derived, never kept):
#: its limits, its use so far, and when it was replaced (``retired_at``).
nfc_keys = Table(
    "instore_nfc_keys",
    metadata,
    Column("token_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("max_taps", Integer, nullable=False),
    Column("max_amount", BigInteger, nullable=False),
    Column("used_taps", Integer, nullable=False, server_default="0"),
    Column("used_amount", BigInteger, nullable=False, server_default="0"),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
    Column("idempotency_key", String(64), nullable=False),
    PrimaryKeyConstraint("token_id", "seq", name="pk_instore_nfc_keys"),
    Index("ux_instore_nfc_keys_key", "token_id", "idempotency_key", unique=True),
)

#: A tap: unique per token and ATC (an upload twice, or a replay, finds it). ``state``:
#: ``received`` (an upload being posted), ``paid`` (from the wallet), ``debt`` (the merchant
#: was paid, the wallet owes it: ``recovered_at`` once a top-up paid it), ``failed``.
nfc_taps = Table(
    "instore_nfc_taps",
    metadata,
    Column("id", String(40), primary_key=True),  # tap_...
    Column("token_id", String(40), nullable=False),
    Column("atc", Integer, nullable=False),
    Column("key_seq", Integer, nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("terminal_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen, the price at the till
    Column("charged", BigInteger, nullable=False),  # fen the wallet pays (the amount less any privilege)
    Column("tapped_at", DateTime(timezone=True), nullable=False),  # the terminal's clock
    Column("cryptogram", String(16), nullable=False),
    Column("mode", String(8), nullable=False),  # online | offline
    Column("state", String(12), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("transfer_id", String(160), nullable=True),
    Column("trade_id", String(40), nullable=True),
    Column("upload_id", String(40), nullable=True),
    Column("idempotency_key", String(64), nullable=True),  # an online tap's, per terminal
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("recovered_at", DateTime(timezone=True), nullable=True),
    Index("ux_instore_nfc_taps_atc", "token_id", "atc", unique=True),
    Index("ux_instore_nfc_taps_key", "terminal_id", "idempotency_key", unique=True),
    Index("ix_instore_nfc_taps_debts", "user_id", "state"),
    Index("ix_instore_nfc_taps_trade", "trade_id"),  # a refund of the trade checks its tap (instore/refunds.py)
)

#: The deny list terminals keep: one row per token ever listed, ``listed`` 1 while the token is
#: suspended or its wallet owes an offline tap; ``version`` is the change's number (from
#: ``nfc_deny_version``), so a terminal fetches what changed since the version it holds.
nfc_deny_list = Table(
    "instore_nfc_deny_list",
    metadata,
    Column("token_id", String(40), primary_key=True),
    Column("listed", Integer, nullable=False),
    Column("reason", String(12), nullable=False),  # suspended | debt | "" (off the list)
    Column("version", BigInteger, nullable=False),
    Column("listed_at", DateTime(timezone=True), nullable=True),  # since when, while listed
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_instore_nfc_deny_list_version", "version"),
)

#: One row: the deny list's last version (a row lock orders concurrent changes).
nfc_deny_version = Table(
    "instore_nfc_deny_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# ---------------------------------------------------------------------- alliances and brand privileges

#: An alliance programme (全球通 VIP, 动感地带 campus, 12580...): its member stores and privilege
#: rules are in the two tables below; valid from ``valid_from`` (included) to ``valid_until``.
alliance_programmes = Table(
    "instore_alliance_programmes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("state", String(12), nullable=False),  # active | ended
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: A programme's privileges per brand and least VIP level (instore/alliances.py says each kind).
alliance_rules = Table(
    "instore_alliance_rules",
    metadata,
    Column("programme_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("brand", String(12), nullable=False),  # gotone | mzone | easyown
    Column("min_level", Integer, nullable=False),
    Column("kind", String(12), nullable=False),  # percent | fixed | points
    Column("value", BigInteger, nullable=False),
    Column("min_spend", BigInteger, nullable=False),
    Column("cap", BigInteger, nullable=False),
    PrimaryKeyConstraint("programme_id", "seq", name="pk_instore_alliance_rules"),
    Index("ix_instore_alliance_rules_brand", "brand", "programme_id"),
)

#: Member stores of a programme, with what the directory filters and shows of them (the city,
#: the merchant's name and category as at enrolment), so it reads no other context's table.
alliance_members = Table(
    "instore_alliance_members",
    metadata,
    Column("programme_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("merchant_name", String(128), nullable=False),
    Column("store_name", String(128), nullable=False),
    Column("city", String(32), nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("programme_id", "store_id", name="pk_instore_alliance_members"),
    Index("ix_instore_alliance_members_store", "store_id"),
    Index("ix_instore_alliance_members_city", "city", "mcc"),
    Index("ix_instore_alliance_members_merchant", "merchant_id"),
)

#: A subscriber's brand and VIP level as the operator's CRM says (imported), by number.
subscriber_brands = Table(
    "instore_subscriber_brands",
    metadata,
    Column("msisdn", String(16), primary_key=True),
    Column("brand", String(12), nullable=False),
    Column("level", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # crm | operator | demo
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row per payment a privilege applied to (the trade is the key: applied once): what the
#: receipt shows, and the payer's points (not money: never in the ledger) as their sum.
alliance_privileges = Table(
    "instore_alliance_privileges",
    metadata,
    Column("trade_id", String(40), primary_key=True),
    Column("programme_id", String(40), nullable=False),
    Column("programme_name", String(64), nullable=False),
    Column("payer_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("channel", String(12), nullable=False),  # qr | paycode | nfc
    Column("brand", String(12), nullable=False),
    Column("level", Integer, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("rule_value", BigInteger, nullable=False),
    Column("rule_text", String(64), nullable=False),  # the rule in words as it was (rules may change later)
    Column("amount", BigInteger, nullable=False),  # the price
    Column("discount", BigInteger, nullable=False),  # funded by the merchant
    Column("points", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_instore_alliance_privileges_payer", "payer_id", "created_at"),
)
