"""Pure cinema rules: seat maps, the mobipay price, seat locks, the change (改签) and refund
(退票) rules, ticket code strings (串码) and the kiosk's lock against guessed codes. No I/O.

Refunds follow the tiered standard the Shenzhen Consumer Council and the film exhibition
association published on 2019-05-15 (the first in China): more than 24 hours before the
show free; 2 to 24 hours at most 10% of the price; 1 to 2 hours at most 20%; 30 minutes to
1 hour at most 30%; within 30 minutes none. A show the cinema cancels is refunded in full.
Changes follow Maoyan's published rule: one change per order, the whole order, at least 30
minutes before the show.

Edges (stated here, tested in tests/unit/test_cinema_model.py): a tier is "at least so much
time left", so exactly 2 h left is the 10% tier, exactly 1 h the 20% tier, exactly 30 min
the 30% tier; "more than 24 h" is strict, so exactly 24 h left is the 10% tier. The fee is
the order's paid amount times the rate, **rounded down** to the fen, so it never exceeds the
published cap.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mobipay.cinema import errors
from mobipay.kernel.lockout import LockoutPolicy

#: A lock holds the chosen seats this long unpaid (setting MOBIPAY_CINEMA_SEAT_LOCK_MINUTES).
SEAT_LOCK = timedelta(minutes=10)
MAX_SEATS = 6  # seats one order may take (Maoyan sells at most 4 to 6 at once)
MIN_PRICE_PERCENT = 30  # the mobipay price is down to 30% of the list price, never lower
CHANGE_BEFORE = timedelta(minutes=30)
REFUND_CLOSES = timedelta(minutes=30)
CODE_LENGTH = 12
#: Wrong codes typed at one cinema's kiosks: 10 within 15 minutes lock its checks for 30 minutes.
GUESS_LOCKOUT = LockoutPolicy(tries=10, window=timedelta(minutes=15), lock=timedelta(minutes=30))

SEAT, AISLE, BROKEN = "S", ".", "X"

#: (time left at least, percent of the price kept as the fee), first match wins.
REFUND_TIERS: tuple[tuple[timedelta, int], ...] = (
    (timedelta(hours=2), 10),
    (timedelta(hours=1), 20),
    (timedelta(minutes=30), 30),
)


class OrderState(StrEnum):
    LOCKED = "locked"  # seats held, not paid yet
    PAID = "paid"  # tickets bought: a code string was sent
    RELEASED = "released"  # the buyer let the seats go unpaid
    EXPIRED = "expired"  # the lock ran out unpaid
    REFUNDED = "refunded"  # paid, then refunded (by the buyer or because the show was cancelled)


class ShowState(StrEnum):
    ON_SALE = "on_sale"
    CANCELLED = "cancelled"


# ---------------------------------------------------------------------- seat maps

@dataclass(frozen=True, slots=True)
class Seat:
    row: int  # 1 is nearest the screen
    number: int  # within the row, from the left as the audience sees it
    col: int  # the cell in the drawn map (aisles take cells)
    available: bool  # False: a seat that exists but is not sold (broken, kept for staff)

    @property
    def label(self) -> str:
        return seat_label(self.row, self.number)

    @property
    def chinese(self) -> str:
        return f"{self.row}排{self.number}座"


@dataclass(frozen=True, slots=True)
class SeatMap:
    """A hall's seats as drawn: ``rows[r]`` is the row's cells, each a :class:`Seat` or None (an aisle)."""

    rows: tuple[tuple[Seat | None, ...], ...]

    @property
    def seats(self) -> dict[str, Seat]:
        return {s.label: s for row in self.rows for s in row if s is not None}

    @property
    def capacity(self) -> int:
        return sum(s.available for s in self.seats.values())


def seat_label(row: int, number: int) -> str:
    """A seat's name in the API: ``"<row>-<number>"`` (``"5-12"`` is 5排12座)."""
    return f"{row}-{number}"


def parse_layout(text: str) -> SeatMap:
    """A hall's layout, one line per row from the screen back: ``S`` a seat, ``X`` a seat not
    sold (broken, kept), ``.`` an aisle or gap. Seats are numbered from 1 in each row, left to
    right, aisles not counted; a line that is only aisles is a cross aisle (no row number)."""
    lines = [ln.rstrip() for ln in text.strip("\n").splitlines()]
    if not lines or not any(lines):
        raise errors.HallInvalid("a layout has at least one row of seats", field="layout")
    if len(lines) > 60 or max(len(ln) for ln in lines) > 80:
        raise errors.HallInvalid("a layout is at most 60 rows of 80 cells", field="layout")
    rows: list[tuple[Seat | None, ...]] = []
    row_no = 0
    for line in lines:
        bad = set(line) - {SEAT, AISLE, BROKEN}
        if bad:
            raise errors.HallInvalid(f"a layout has only S (seat), X (seat not sold) and . (aisle), not "
                                     f"{''.join(sorted(bad))!r}", field="layout")
        if not line.strip(AISLE):
            rows.append(tuple(None for _ in line))
            continue
        row_no += 1
        cells: list[Seat | None] = []
        number = 0
        for col, ch in enumerate(line):
            if ch == AISLE:
                cells.append(None)
            else:
                number += 1
                cells.append(Seat(row_no, number, col, ch == SEAT))
        rows.append(tuple(cells))
    made = SeatMap(tuple(rows))
    if made.capacity == 0:
        raise errors.HallInvalid("a hall sells at least one seat", field="layout")
    return made


def check_seats(seat_map: SeatMap, wanted: list[str]) -> list[Seat]:
    """The seats asked for, in map order: 1 to MAX_SEATS of them, each once, each a seat of
    the hall that is sold."""
    if not 1 <= len(wanted) <= MAX_SEATS:
        raise errors.SeatsInvalid(f"choose 1 to {MAX_SEATS} seats", field="seats")
    if len(set(wanted)) != len(wanted):
        raise errors.SeatsInvalid("a seat is named twice", field="seats")
    known = seat_map.seats
    out = []
    for label in wanted:
        seat = known.get(label)
        if seat is None:
            raise errors.SeatsInvalid(f"the hall has no seat {label!r} (seats are row-number, e.g. 5-12)",
                                      field="seats")
        if not seat.available:
            raise errors.SeatsInvalid(f"seat {seat.chinese} is not sold", field="seats")
        out.append(seat)
    return sorted(out, key=lambda s: (s.row, s.number))


# ---------------------------------------------------------------------- prices

def min_price(list_price: int) -> int:
    """The lowest price a ticket may be sold at: 30% of the list price, rounded up to the fen."""
    return -(-list_price * MIN_PRICE_PERCENT // 100)


def check_price(list_price: int, price: int) -> None:
    """A show's list price and its mobipay price (fen): 1 fen to 10,000 CNY, the price from
    30% of the list price up to it."""
    if not 1 <= list_price <= 1_000_000:
        raise errors.ShowInvalid("the list price is 1 fen to 10,000 CNY", field="list_price")
    if not min_price(list_price) <= price <= list_price:
        raise errors.ShowInvalid(f"the mobipay price is {min_price(list_price)} to {list_price} fen (down to "
                                 f"{MIN_PRICE_PERCENT}% of the list price)", field="price")


def discount_percent(list_price: int, price: int) -> int:
    """How much off the list price, in whole percent rounded down (as the app shows "7折" → 30)."""
    return (list_price - price) * 100 // list_price


# ---------------------------------------------------------------------- locks and sales

def check_on_sale(state: ShowState, starts_at: datetime, now: datetime) -> None:
    """Seats of a show may be locked and paid until it starts, unless it was cancelled."""
    if state is ShowState.CANCELLED:
        raise errors.ShowNotOnSale("the cinema cancelled this show", field="show_id")
    if now >= starts_at:
        raise errors.ShowNotOnSale("this show has started: tickets are no longer sold", field="show_id")


def lock_live(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


# ---------------------------------------------------------------------- changes and refunds

def check_change(changes: int, starts_at: datetime, now: datetime, collected: bool) -> None:
    """改签: one change per order, the whole order, at least 30 minutes before the show, and
    not once the tickets were printed at the cinema."""
    if collected:
        raise errors.ChangeNotAllowed("the tickets were printed at the cinema: they cannot be changed")
    if changes >= 1:
        raise errors.ChangeNotAllowed("an order may be changed once: this one was changed already")
    if starts_at - now < CHANGE_BEFORE:
        raise errors.ChangeNotAllowed(f"changes close {int(CHANGE_BEFORE.total_seconds() // 60)} minutes before "
                                      "the show")


def refund_percent(left: timedelta) -> int:
    """The fee in percent with ``left`` until the show (module docstring for the edges);
    ``REFUND_NOT_ALLOWED`` within 30 minutes and after the start."""
    if left > timedelta(hours=24):
        return 0
    for at_least, percent in REFUND_TIERS:
        if left >= at_least:
            return percent
    raise errors.RefundNotAllowed(f"refunds close {int(REFUND_CLOSES.total_seconds() // 60)} minutes before the "
                                  "show")


@dataclass(frozen=True, slots=True)
class RefundQuote:
    amount: int  # paid, fen
    percent: int
    fee: int  # kept by the cinema
    back: int  # to the wallet

    @property
    def full(self) -> bool:
        return self.fee == 0


def refund_quote(paid: int, starts_at: datetime, now: datetime, *, cancelled: bool = False,
                 collected: bool = False) -> RefundQuote:
    """What a refund of an order that paid ``paid`` fen gives back now: the fee is
    ``paid * percent // 100`` (rounded down); a cancelled show gives everything back."""
    if cancelled:
        return RefundQuote(paid, 0, 0, paid)
    if collected:
        raise errors.RefundNotAllowed("the tickets were printed at the cinema: they cannot be refunded")
    percent = refund_percent(starts_at - now)
    fee = paid * percent // 100
    return RefundQuote(paid, percent, fee, paid - fee)


# ---------------------------------------------------------------------- code strings

def ticket_code(key: bytes, order_id: str, nonce: int = 0) -> str:
    """The order's code string: HMAC-SHA256(key, id|nonce) read as a number, its last 12
    digits. Shown again to its buyer; the database keeps only :func:`code_hash` of it. A
    change moves the order to the next nonce (the old code stops working)."""
    digest = hmac.new(key, f"{order_id}|{nonce}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**CODE_LENGTH).zfill(CODE_LENGTH)


def code_hash(key: bytes, code: str) -> str:
    """What the database keeps of a code: a keyed hash (HMAC-SHA256, hex)."""
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(raw: object) -> str:
    """A code as typed at the kiosk (spaces and dashes between groups allowed) → its 12 digits."""
    text = "".join(str(raw or "").split()).replace("-", "")
    if not (text.isascii() and text.isdigit() and len(text) == CODE_LENGTH):
        raise errors.CodeInvalid(f"type the {CODE_LENGTH} digits of the ticket code", field="code")
    return text


def grouped(code: str) -> str:
    """A code as printed and sent: three groups of four digits."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))
