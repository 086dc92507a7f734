"""Cinema tables: cinemas (merchants' stores), halls with their seat maps, films, shows,
orders, the seats each show has taken, and each cinema's count of wrong codes.

``cinema_seats`` holds one row per seat of a show that is locked or sold, under the primary
key (show, seat): two buyers can never hold the same seat, whatever the application does;
the database refuses the second insert. A lock that ran out is deleted before its seat is
taken again (lazily, by the next buyer of that seat, and by the worker).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mobipay.platform.db import metadata

cinemas = Table(
    "cinema_cinemas",
    metadata,
    Column("id", String(40), primary_key=True),  # cin_...
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),  # the merchant's store: its kiosks are that store's terminals
    Column("name", String(80), nullable=False),
    Column("city", String(16), nullable=False),
    Column("address", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_cinema_cinemas_store", "store_id", unique=True),
    Index("ix_cinema_cinemas_city", "city", "id"),
)

halls = Table(
    "cinema_halls",
    metadata,
    Column("id", String(40), primary_key=True),  # hal_...
    Column("cinema_id", String(40), nullable=False),
    Column("name", String(40), nullable=False),
    Column("layout", Text, nullable=False),  # model.parse_layout: S seat, X seat not sold, . aisle
    Column("capacity", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_cinema_halls_cinema", "cinema_id"),
)

films = Table(
    "cinema_films",
    metadata,
    Column("id", String(40), primary_key=True),  # flm_...
    Column("title", String(120), nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

shows = Table(
    "cinema_shows",
    metadata,
    Column("id", String(40), primary_key=True),  # shw_...
    Column("cinema_id", String(40), nullable=False),
    Column("hall_id", String(40), nullable=False),
    Column("film_id", String(40), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("list_price", BigInteger, nullable=False),  # fen, the cinema's price at the box office
    Column("price", BigInteger, nullable=False),  # fen, the mobipay price (model.check_price)
    Column("state", String(10), nullable=False),  # on_sale | cancelled
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_cinema_shows_cinema", "cinema_id", "starts_at"),
    Index("ix_cinema_shows_hall", "hall_id", "starts_at"),
)

orders = Table(
    "cinema_orders",
    metadata,
    Column("id", String(40), primary_key=True),  # cno_ + hash of (buyer, Idempotency-Key of the lock)
    Column("user_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("cinema_id", String(40), nullable=False),
    Column("show_id", String(40), nullable=False),
    Column("seats", String(200), nullable=False),  # labels, comma-separated (kept after the seats are freed)
    Column("count", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen to pay / paid for the current show's seats
    Column("state", String(10), nullable=False),  # model.OrderState
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    Column("code_hash", String(64), nullable=True),  # HMAC of the code string; the code itself is never kept
    Column("code_nonce", Integer, nullable=False, server_default="0"),
    Column("changes", Integer, nullable=False, server_default="0"),
    Column("changed_from", String(40), nullable=True),  # the show before the change
    Column("collected_at", DateTime(timezone=True), nullable=True),  # printed at a kiosk
    Column("collected_by", String(40), nullable=True),  # the kiosk (terminal id)
    Column("collect_request", String(64), nullable=True),  # the kiosk's request id (a retried check replays)
    Column("refund_fee", BigInteger, nullable=True),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("refunded_at", DateTime(timezone=True), nullable=True),
    Column("refund_key", String(64), nullable=True),
    Column("settled_at", DateTime(timezone=True), nullable=True),  # the cinema's share moved to its payable
    Column("trade_id", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_cinema_orders_code", "code_hash", unique=True),
    Index("ix_cinema_orders_user", "user_id", "created_at"),
    Index("ix_cinema_orders_show", "show_id", "state"),
    Index("ix_cinema_orders_due", "state", "locked_until"),
)

#: Seats of a show that are locked or sold: the (show, seat) key is what keeps a seat one buyer's.
seats = Table(
    "cinema_seats",
    metadata,
    Column("show_id", String(40), nullable=False),
    Column("seat", String(8), nullable=False),  # model.seat_label: "5-12"
    Column("order_id", String(40), nullable=False),
    Column("state", String(8), nullable=False),  # locked | sold
    Column("locked_until", DateTime(timezone=True), nullable=True),  # a lock's end; None once sold
    PrimaryKeyConstraint("show_id", "seat", name="pk_cinema_seats"),
    Index("ix_cinema_seats_order", "order_id"),
    Index("ix_cinema_seats_due", "state", "locked_until"),
)

#: Wrong codes typed at a cinema's kiosks (model.GUESS_LOCKOUT): the count, when the last was, the lock.
kiosk_guard = Table(
    "cinema_kiosk_guard",
    metadata,
    Column("cinema_id", String(40), primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_failed_at", DateTime(timezone=True), nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("locks", Integer, nullable=False, server_default="0"),
)
