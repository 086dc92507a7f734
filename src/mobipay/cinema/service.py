"""Cinema e-tickets (电子电影票): cinemas onboarded as merchants, halls with seat maps, films,
shows; buyers lock seats, pay from the wallet, get a code string (串码) by SMS; the cinema's
kiosk checks the code once and prints the tickets; changes (改签) and refunds (退票) by the
published rules. One method per use case, one transaction each.

Seats: ``cinema_seats`` has one row per locked or sold seat under the key (show, seat), so
the database refuses a second buyer of a seat however the requests interleave (a unique
violation becomes ``SEAT_TAKEN`` and rolls the whole lock back). A lock that ran out is
deleted by the next buyer of one of its seats (lazily) and by the worker's
``cinema.expire_locks`` job; paying moves the rows from ``locked`` to ``sold`` with a
conditional UPDATE that must move every seat of the order, so a payment racing the lock's
end either wins every seat or charges nothing.

Money: paying moves the price from the buyer's wallet to the cinema's escrow account
(``liability:cinema:escrow:<cinema>``). A refund gives the buyer the price less the fee by
time left (model.refund_quote); the fee stays in escrow for the cinema. When a show starts
(nothing can be refunded any more) the worker's ``cinema.settle`` job moves each paid
order's money, and each refund fee, from escrow to the merchant's payable and records it as
the merchant's paid trade (``out_trade_no`` ``cn-<order>``), so the merchants' own T+1
settlement pays it with the day's other trades, fee and all. A cancelled show refunds every
order in full at once.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import structlog
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.cinema import errors
from mobipay.cinema.model import (
    GUESS_LOCKOUT,
    SEAT_LOCK,
    OrderState,
    RefundQuote,
    SeatMap,
    ShowState,
    check_change,
    check_on_sale,
    check_price,
    check_seats,
    code_hash,
    grouped,
    lock_live,
    normalise_code,
    parse_layout,
    refund_quote,
    ticket_code,
)
from mobipay.cinema.tables import cinemas, films, halls, kiosk_guard, orders, seats, shows
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.chart import wallet_account
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.service import CounterPayment, MerchantService
from mobipay.orders.service import order_id as derived_id
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

ESCROW_PREFIX = "liability:cinema:escrow:"
LOCKED, SOLD = "locked", "sold"


def escrow_account(cinema_id: str) -> str:
    return ESCROW_PREFIX + cinema_id


def keys_from_secret(code_key: str, secret_key: str) -> tuple[bytes, bytes]:
    """(the key code strings are derived with, the key their stored hashes are made with):
    ``MOBIPAY_CINEMA_CODE_KEY`` (base64 of 32 bytes) or, when empty, ``MOBIPAY_SECRET_KEY``;
    two separate HKDF-SHA256 outputs of it, so the stored hashes say nothing of the codes."""
    if code_key:
        root = base64.b64decode(code_key, validate=True)
        if len(root) != 32:
            raise ValueError("MOBIPAY_CINEMA_CODE_KEY is base64 of 32 bytes")
    else:
        root = secret_key.encode()

    def derive(info: bytes) -> bytes:
        return HKDF(SHA256(), 32, salt=None, info=info).derive(root)

    return derive(b"mobipay cinema ticket codes v1"), derive(b"mobipay cinema ticket code hashes v1")


class Kiosk(Protocol):
    """A cinema's verification kiosk: an in-store terminal of the cinema's store that signed
    the request (instore.terminals.Terminal)."""

    @property
    def id(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def store_id(self) -> str: ...
    @property
    def label(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Cinema:
    id: str
    merchant_id: str
    store_id: str
    name: str
    city: str
    address: str


@dataclass(frozen=True, slots=True)
class Hall:
    id: str
    cinema_id: str
    name: str
    capacity: int
    seat_map: SeatMap


@dataclass(frozen=True, slots=True)
class Film:
    id: str
    title: str
    minutes: int


@dataclass(frozen=True, slots=True)
class Show:
    id: str
    cinema_id: str
    cinema_name: str
    hall_id: str
    hall_name: str
    film_id: str
    film_title: str
    starts_at: datetime
    ends_at: datetime
    list_price: int
    price: int
    state: str
    capacity: int
    seats_left: int


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of a show's seat map: an aisle (``label`` empty) or a seat and its state."""

    label: str
    row: int
    number: int
    state: str  # aisle | free | taken | unavailable


@dataclass(frozen=True, slots=True)
class SeatView:
    show: Show
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    seat: str  # "5-12"
    row: int
    number: int
    price: int

    @property
    def chinese(self) -> str:
        return f"{self.row}排{self.number}座"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    show: Show
    tickets: tuple[Ticket, ...]
    amount: int
    state: str
    locked_until: datetime | None
    code: str | None  # the code string, for its buyer (paid orders only)
    changes: int
    collected_at: datetime | None
    refunded: int
    refund_fee: int | None
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Printed:
    """What the kiosk prints: one ticket per seat."""

    order_id: str
    cinema: str
    hall: str
    film: str
    starts_at: datetime
    tickets: tuple[Ticket, ...]
    printed_at: datetime
    replayed: bool = False


def _labels(text: str) -> list[str]:
    return [s for s in text.split(",") if s]


def _tickets(labels: Sequence[str], price: int) -> tuple[Ticket, ...]:
    out = []
    for label in labels:
        row, _, number = label.partition("-")
        out.append(Ticket(label, int(row), int(number), price))
    return tuple(out)


def _beijing(at: datetime) -> str:
    return as_utc(at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


class Cinemas:
    """Cinemas, halls, films and shows; seat locks, payment, code strings, kiosk checks,
    changes, refunds and settlement."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService, wallet: WalletService,
                 keys: tuple[bytes, bytes], *, lock_for: timedelta = SEAT_LOCK) -> None:
        self.uow = uow
        self.merchants = merchants
        self.wallet = wallet
        self.code_key, self.hash_key = keys
        self.lock_for = lock_for
        self._accounts: dict[str, str] = {}

    # ------------------------------------------------------------------ the cinema's side

    async def open_cinema(self, merchant_id: str, store_id: str, *, name: str, city: str, address: str = "",
                          actor: str = "") -> Cinema:
        """A cinema of an approved merchant (a cinema's MCC is 7832), at one of its stores, one
        cinema a store: that store's in-store terminals are its verification kiosks. Its
        escrow account opens with it."""
        name, city = name.strip(), city.strip()
        if not 1 <= len(name) <= 80:
            raise errors.CinemaInvalid("a cinema's name is 1 to 80 characters", field="name")
        if not 1 <= len(city) <= 16:
            raise errors.CinemaInvalid("a cinema's city is 1 to 16 characters", field="city")
        await self.merchants.set_up_merchant(merchant_id)  # MERCHANT_NOT_FOUND / MERCHANT_NOT_APPROVED
        await self.merchants.own_store(merchant_id, store_id)
        cinema_id = new_id("cin")

        async def work(uow: UnitOfWork) -> None:
            known = (await uow.conn.execute(select(cinemas.c.id).where(cinemas.c.store_id == store_id))).first()
            if known is not None:
                raise errors.CinemaInvalid(f"store {store_id} is cinema {known[0]} already", field="store_id")
            await uow.open_account(AccountSpec(escrow_account(cinema_id), AccountKind.LIABILITY,
                                               name=f"Cinema escrow {name[:60]}", debits_must_not_exceed_credits=True))
            try:
                await uow.conn.execute(insert(cinemas).values(
                    id=cinema_id, merchant_id=merchant_id, store_id=store_id, name=name, city=city,
                    address=address.strip()[:200], created_at=uow.now))
            except IntegrityError:  # the same store opened at the same moment
                raise errors.CinemaInvalid(f"store {store_id} is a cinema already", field="store_id") from None
            if actor:
                await uow.audit(actor=actor, action="cinema.open", target=cinema_id, reason=name,
                                after={"merchant_id": merchant_id, "store_id": store_id, "city": city})

        await self.uow.run("cinema_open", work)
        return await self.cinema(cinema_id)

    async def cinema(self, cinema_id: str) -> Cinema:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(cinemas).where(cinemas.c.id == cinema_id))).first()

        row = await self.uow.run("cinema", work)
        if row is None:
            raise errors.CinemaNotFound(field="cinema_id")
        return _cinema(row)

    async def find_cinemas(self, city: str = "") -> list[Cinema]:
        """Cinemas (of a city), in the order they joined."""

        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(cinemas)
            if city:
                q = q.where(cinemas.c.city == city)
            return list(await uow.conn.execute(q.order_by(cinemas.c.id).limit(500)))

        return [_cinema(r) for r in await self.uow.run("cinema_find", work)]

    async def add_hall(self, cinema_id: str, name: str, layout: str) -> Hall:
        """A hall of a cinema with its seat map (model.parse_layout)."""
        seat_map = parse_layout(layout)
        name = name.strip()
        if not 1 <= len(name) <= 40:
            raise errors.HallInvalid("a hall's name is 1 to 40 characters", field="name")
        await self.cinema(cinema_id)
        hall_id = new_id("hal")

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(halls).values(id=hall_id, cinema_id=cinema_id, name=name,
                                                        layout=layout.strip("\n"), capacity=seat_map.capacity,
                                                        created_at=uow.now))

        await self.uow.run("cinema_add_hall", work)
        return Hall(hall_id, cinema_id, name, seat_map.capacity, seat_map)

    async def halls(self, cinema_id: str) -> list[Hall]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(halls).where(halls.c.cinema_id == cinema_id)
                                               .order_by(halls.c.id)))

        return [_hall(r) for r in await self.uow.run("cinema_halls", work)]

    async def add_film(self, title: str, minutes: int) -> Film:
        title = title.strip()
        if not 1 <= len(title) <= 120:
            raise errors.ShowInvalid("a film's title is 1 to 120 characters", field="title")
        if not 1 <= minutes <= 600:
            raise errors.ShowInvalid("a film runs 1 to 600 minutes", field="minutes")
        film_id = new_id("flm")

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(films).values(id=film_id, title=title, minutes=minutes, created_at=uow.now))

        await self.uow.run("cinema_add_film", work)
        return Film(film_id, title, minutes)

    async def films(self) -> list[Film]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(films).order_by(films.c.id).limit(500)))

        return [Film(r.id, r.title, int(r.minutes)) for r in await self.uow.run("cinema_films", work)]

    async def add_show(self, hall_id: str, film_id: str, starts_at: datetime, *, list_price: int, price: int,
                       actor: str = "") -> Show:
        """A showtime of a film in a hall: on sale at once, at ``price`` (down to 30% of the
        list price); it may not overlap another show of the hall (the film's length)."""
        check_price(list_price, price)
        starts_at = as_utc(starts_at)
        show_id = new_id("shw")

        async def work(uow: UnitOfWork) -> None:
            hall = (await uow.conn.execute(select(halls).where(halls.c.id == hall_id))).first()
            if hall is None:
                raise errors.HallNotFound(field="hall_id")
            film = (await uow.conn.execute(select(films).where(films.c.id == film_id))).first()
            if film is None:
                raise errors.FilmNotFound(field="film_id")
            if starts_at <= uow.now:
                raise errors.ShowInvalid("a show starts in the future", field="starts_at")
            ends_at = starts_at + timedelta(minutes=int(film.minutes))
            clash = (await uow.conn.execute(select(shows.c.id, shows.c.starts_at).where(
                shows.c.hall_id == hall_id, shows.c.state == ShowState.ON_SALE.value,
                shows.c.starts_at < ends_at, shows.c.ends_at > starts_at))).first()
            if clash is not None:
                raise errors.ShowInvalid(f"the hall has show {clash[0]} at {_beijing(clash[1])} Beijing time then",
                                         field="starts_at")
            await uow.conn.execute(insert(shows).values(
                id=show_id, cinema_id=hall.cinema_id, hall_id=hall_id, film_id=film_id, starts_at=starts_at,
                ends_at=ends_at, list_price=list_price, price=price, state=ShowState.ON_SALE.value,
                created_at=uow.now))
            if actor:
                await uow.audit(actor=actor, action="cinema.show_add", target=show_id, reason=film.title,
                                after={"hall_id": hall_id, "starts_at": starts_at.isoformat(), "price": price})

        await self.uow.run("cinema_add_show", work)
        return await self.show(show_id)

    async def cancel_show(self, show_id: str, *, actor: str, reason: str) -> int:
        """The cinema cancels a show before it starts: it is off sale, unpaid locks are let go
        and every paid order is refunded in full (printed tickets too), told by SMS. Audited;
        a second call answers 0. Answers the orders refunded."""

        async def work(uow: UnitOfWork) -> int:
            show = (await uow.conn.execute(select(shows).where(shows.c.id == show_id).with_for_update())).first()
            if show is None:
                raise errors.ShowNotFound(field="show_id")
            if show.state == ShowState.CANCELLED.value:
                return 0
            if as_utc(show.starts_at) <= uow.now:
                raise errors.ShowInvalid("a show that started cannot be cancelled here", field="show_id")
            await uow.conn.execute(update(shows).where(shows.c.id == show_id).values(
                state=ShowState.CANCELLED.value, cancelled_at=uow.now))
            await uow.conn.execute(update(orders).where(orders.c.show_id == show_id,
                                                        orders.c.state == OrderState.LOCKED.value)
                                   .values(state=OrderState.RELEASED.value, locked_until=None))
            paid = list(await uow.conn.execute(select(orders).where(orders.c.show_id == show_id,
                                                                    orders.c.state == OrderState.PAID.value)
                                               .order_by(orders.c.id).with_for_update()))
            film = (await uow.conn.execute(select(films.c.title).where(films.c.id == show.film_id))).scalar_one()
            for order in paid:
                await self._refund_in(uow, order, RefundQuote(int(order.amount), 0, 0, int(order.amount)),
                                      "cancelled", film, show.starts_at)
            await uow.conn.execute(delete(seats).where(seats.c.show_id == show_id))
            await uow.audit(actor=actor, action="cinema.show_cancel", target=show_id, reason=reason or "cancelled",
                            before={"state": show.state}, after={"state": "cancelled", "refunded": len(paid)})
            return len(paid)

        return await self.uow.run("cinema_cancel_show", work)

    # ------------------------------------------------------------------ browsing

    async def show(self, show_id: str) -> Show:
        async def work(uow: UnitOfWork) -> Show | None:
            found = await self._shows(uow, shows.c.id == show_id)
            return found[0] if found else None

        found = await self.uow.run("cinema_show", work)
        if found is None:
            raise errors.ShowNotFound(field="show_id")
        return found

    async def shows(self, cinema_id: str, day: date | None = None) -> list[Show]:
        """A cinema's shows on sale that have not started (on a Beijing day), earliest first."""
        now = self.uow.clock.now()
        if day is not None and not 2000 <= day.year <= 2999:
            raise ValidationFailed("day is a date of this millennium, YYYY-MM-DD", field="day")

        async def work(uow: UnitOfWork) -> list[Show]:
            where = [shows.c.cinema_id == cinema_id, shows.c.state == ShowState.ON_SALE.value, shows.c.starts_at > now]
            if day is not None:
                start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
                where += [shows.c.starts_at >= start, shows.c.starts_at < start + timedelta(days=1)]
            return await self._shows(uow, *where)

        return await self.uow.run("cinema_shows", work)

    async def _shows(self, uow: UnitOfWork, *where: Any) -> list[Show]:
        rows = list(await uow.conn.execute(
            select(shows, cinemas.c.name.label("cinema_name"), halls.c.name.label("hall_name"), halls.c.capacity,
                   films.c.title.label("film_title"))
            .join(cinemas, cinemas.c.id == shows.c.cinema_id).join(halls, halls.c.id == shows.c.hall_id)
            .join(films, films.c.id == shows.c.film_id).where(*where).order_by(shows.c.starts_at, shows.c.id)
            .limit(200)))
        if not rows:
            return []
        taken: dict[str, int] = dict((await uow.conn.execute(
            select(seats.c.show_id, func.count()).where(
                seats.c.show_id.in_([r.id for r in rows]),
                or_(seats.c.state == SOLD, seats.c.locked_until > uow.now)).group_by(seats.c.show_id))).all())
        return [Show(r.id, r.cinema_id, r.cinema_name, r.hall_id, r.hall_name, r.film_id, r.film_title,
                     as_utc(r.starts_at), as_utc(r.ends_at), int(r.list_price), int(r.price), r.state,
                     int(r.capacity), int(r.capacity) - int(taken.get(r.id, 0))) for r in rows]

    async def seat_map(self, show_id: str) -> SeatView:
        """A show's seats as drawn, each free, taken (locked or sold) or unavailable; a lock
        that ran out reads as free at once, whether or not the worker has deleted it yet."""
        show = await self.show(show_id)

        async def work(uow: UnitOfWork) -> tuple[str, set[str]]:
            layout = (await uow.conn.execute(select(halls.c.layout).where(halls.c.id == show.hall_id))).scalar_one()
            taken = {r[0] for r in await uow.conn.execute(select(seats.c.seat).where(
                seats.c.show_id == show_id, or_(seats.c.state == SOLD, seats.c.locked_until > uow.now)))}
            return layout, taken

        layout, taken = await self.uow.run("cinema_seat_map", work)
        rows = []
        for row in parse_layout(layout).rows:
            cells = []
            for seat in row:
                if seat is None:
                    cells.append(Cell("", 0, 0, "aisle"))
                else:
                    state = "unavailable" if not seat.available else "taken" if seat.label in taken else "free"
                    cells.append(Cell(seat.label, seat.row, seat.number, state))
            rows.append(tuple(cells))
        return SeatView(show, tuple(rows))

    # ------------------------------------------------------------------ buying

    async def lock(self, me: Principal, show_id: str, wanted: list[str], *, idempotency_key: str) -> Order:
        """Hold seats of a show for ``lock_for`` (unpaid). The buyer's earlier unpaid lock on
        the same show is let go (choosing again). ``SEAT_TAKEN`` when a seat is someone
        else's: nothing is held then. The same Idempotency-Key answers the first lock."""
        check_idempotency_key(idempotency_key)
        oid = derived_id("cno_", me.user_id, idempotency_key)

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            known = (await uow.conn.execute(select(orders).where(orders.c.id == oid))).first()
            if known is not None:
                if known.show_id != show_id or set(_labels(known.seats)) != set(wanted):
                    raise IdempotencyConflict("this Idempotency-Key locked other seats: use a new key",
                                              field="Idempotency-Key")
                return known, True
            show = (await uow.conn.execute(select(shows).where(shows.c.id == show_id))).first()
            if show is None:
                raise errors.ShowNotFound(field="show_id")
            check_on_sale(ShowState(show.state), as_utc(show.starts_at), uow.now)
            layout = (await uow.conn.execute(select(halls.c.layout).where(halls.c.id == show.hall_id))).scalar_one()
            chosen = check_seats(parse_layout(layout), list(wanted))
            labels = [s.label for s in chosen]
            # choosing again: the buyer's own unpaid lock on this show goes first
            mine = [r[0] for r in await uow.conn.execute(select(orders.c.id).where(
                orders.c.user_id == me.user_id, orders.c.show_id == show_id,
                orders.c.state == OrderState.LOCKED.value))]
            if mine:
                await uow.conn.execute(delete(seats).where(seats.c.order_id.in_(mine), seats.c.state == LOCKED))
                await uow.conn.execute(update(orders).where(orders.c.id.in_(mine)).values(
                    state=OrderState.RELEASED.value, locked_until=None))
            await self._clear_expired(uow, show_id, labels)
            until = uow.now + self.lock_for
            amount = int(show.price) * len(labels)
            await uow.conn.execute(insert(orders).values(
                id=oid, user_id=me.user_id, msisdn=me.msisdn, cinema_id=show.cinema_id, show_id=show_id,
                seats=",".join(labels), count=len(labels), amount=amount, state=OrderState.LOCKED.value,
                locked_until=until, created_at=uow.now))
            await self._take(uow, show_id, labels, oid, LOCKED, until)
            return (await uow.conn.execute(select(orders).where(orders.c.id == oid))).one(), False

        row, replayed = await self.uow.run("cinema_lock", work)
        return await self._order_out(row, replayed=replayed)

    async def _clear_expired(self, uow: UnitOfWork, show_id: str, labels: list[str]) -> None:
        """Locks of these seats that ran out: deleted, their orders expired (lazily, before the
        worker gets to them)."""
        stale = list(await uow.conn.execute(select(seats.c.order_id).where(
            seats.c.show_id == show_id, seats.c.seat.in_(labels), seats.c.state == LOCKED,
            seats.c.locked_until <= uow.now)))
        if not stale:
            return
        ids = sorted({r[0] for r in stale})
        await uow.conn.execute(delete(seats).where(seats.c.order_id.in_(ids), seats.c.state == LOCKED,
                                                   seats.c.locked_until <= uow.now))
        await uow.conn.execute(update(orders).where(orders.c.id.in_(ids), orders.c.state == OrderState.LOCKED.value,
                                                    orders.c.locked_until <= uow.now)
                               .values(state=OrderState.EXPIRED.value, locked_until=None))

    @staticmethod
    async def _take(uow: UnitOfWork, show_id: str, labels: list[str], oid: str, state: str,
                    until: datetime | None) -> None:
        """The seats' rows; a seat someone else holds is refused, and the (show, seat) key
        refuses it even when two buyers get here at the same moment."""
        held = {r[0] for r in await uow.conn.execute(select(seats.c.seat).where(
            seats.c.show_id == show_id, seats.c.seat.in_(labels)))}
        if held:
            names = "、".join(f"{s.replace('-', '排')}座" for s in labels if s in held)
            raise errors.SeatTaken(f"{names} is taken: choose other seats", field="seats", seats=sorted(held))
        try:
            await uow.conn.execute(insert(seats), [{"show_id": show_id, "seat": s, "order_id": oid, "state": state,
                                                    "locked_until": until} for s in labels])
        except IntegrityError:  # another buyer's insert won the race (the transaction is rolled back)
            raise errors.SeatTaken("a seat was just taken by someone else: choose other seats",
                                   field="seats") from None

    async def release(self, me: Principal, order_id: str) -> Order:
        """The buyer lets an unpaid lock go; the seats are free at once. Again: the same answer."""

        async def work(uow: UnitOfWork) -> Any:
            row = await self._mine(uow, me, order_id, for_update=True)
            if row.state == OrderState.LOCKED.value:
                await uow.conn.execute(delete(seats).where(seats.c.order_id == order_id, seats.c.state == LOCKED))
                await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
                    state=OrderState.RELEASED.value, locked_until=None))
            elif row.state != OrderState.RELEASED.value:
                raise errors.OrderNotPayable(f"this order is {row.state}: there is no lock to let go",
                                             field="order_id")
            return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one()

        return await self._order_out(await self.uow.run("cinema_release", work))

    @staticmethod
    async def _mine(uow: UnitOfWork, me: Principal, order_id: str, *, for_update: bool = False) -> Any:
        q = select(orders).where(orders.c.id == order_id)
        row = (await uow.conn.execute(q.with_for_update() if for_update else q)).first()
        if row is None or row.user_id != me.user_id:  # another's order looks like none
            raise errors.OrderNotFound(field="order_id")
        return row

    async def pay(self, me: Principal, order_id: str, *, idempotency_key: str, pin: str | None = None) -> Order:
        """Pay a locked order from the wallet: the seats are sold, the code string is made and
        sent by SMS. The order is paid once: paying it again (any key) answers the paid order
        (``replayed``). ``SEAT_LOCK_EXPIRED`` when the lock ran out first: nothing is charged."""
        check_idempotency_key(idempotency_key)

        async def look(uow: UnitOfWork) -> Any:
            return await self._mine(uow, me, order_id)

        row = await self.uow.run("cinema_pay_look", look)
        if row.state == OrderState.PAID.value:
            return await self._order_out(row, replayed=True)
        self._payable(row, self.uow.clock.now())
        payer = await self.wallet.authorize_payment(me, int(row.amount), pin)

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            order = await self._mine(uow, me, order_id, for_update=True)
            if order.state == OrderState.PAID.value:
                return order, True  # paid a moment ago (a second press)
            self._payable(order, uow.now)
            show = (await uow.conn.execute(select(shows).where(shows.c.id == order.show_id))).one()
            check_on_sale(ShowState(show.state), as_utc(show.starts_at), uow.now)
            await self.wallet.count_payment(uow, payer, int(order.amount))
            sold = await uow.conn.execute(update(seats).where(
                seats.c.order_id == order_id, seats.c.state == LOCKED, seats.c.locked_until > uow.now)
                .values(state=SOLD, locked_until=None))
            if sold.rowcount != order.count:  # a seat was let go meanwhile: charge nothing
                raise errors.LockExpired("the seats' lock ran out: choose seats again", field="order_id")
            digest, nonce = await self._new_code(uow, order_id, 0)
            [result] = await uow.post([Transfer(f"cinema:{order_id}:pay", (
                Leg.debit(payer.account_code, int(order.amount)),
                Leg.credit(escrow_account(order.cinema_id), int(order.amount))), "cinema.purchase",
                reference=f"电影票 {order.count}张"[:100])])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
                state=OrderState.PAID.value, paid_at=uow.now, locked_until=None, code_hash=digest, code_nonce=nonce))
            await self._send_code(uow, order, show, _labels(order.seats), nonce, "cinema.tickets")
            return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one(), False

        paid, replayed = await self.uow.run("cinema_pay", work)
        return await self._order_out(paid, replayed=replayed)

    def _payable(self, order: Any, now: datetime) -> None:
        if order.state in (OrderState.EXPIRED.value,) or (
                order.state == OrderState.LOCKED.value and not lock_live(as_utc(order.locked_until), now)):
            raise errors.LockExpired("the seats' lock ran out before payment: choose seats again", field="order_id")
        if order.state != OrderState.LOCKED.value:
            raise errors.OrderNotPayable(f"this order is {order.state}", field="order_id")

    async def _new_code(self, uow: UnitOfWork, order_id: str, nonce: int) -> tuple[str, int]:
        """The keyed hash of the order's code at ``nonce`` or the next free one (a code taken
        by another order, one in 10^12, moves on)."""
        while True:
            digest = code_hash(self.hash_key, ticket_code(self.code_key, order_id, nonce))
            if (await uow.conn.execute(select(orders.c.id).where(orders.c.code_hash == digest))).first() is None:
                return digest, nonce
            nonce += 1

    async def _send_code(self, uow: UnitOfWork, order: Any, show: Any, labels: list[str], nonce: int,
                         template: str) -> None:
        film = (await uow.conn.execute(select(films.c.title).where(films.c.id == show.film_id))).scalar_one()
        place = (await uow.conn.execute(select(cinemas.c.name, halls.c.name).join(
            halls, halls.c.cinema_id == cinemas.c.id).where(halls.c.id == show.hall_id))).one()
        await uow.emit(SmsRequested(key=f"{order.id}:code:{nonce}", to=order.msisdn, template=template, params={
            "film": film[:30], "cinema": place[0][:30], "hall": place[1][:20], "time": _beijing(show.starts_at),
            "seats": " ".join(f"{s.replace('-', '排')}座" for s in labels),
            "code": grouped(ticket_code(self.code_key, order.id, nonce))}))

    async def order(self, me: Principal, order_id: str) -> Order:
        async def work(uow: UnitOfWork) -> Any:
            return await self._mine(uow, me, order_id)

        return await self._order_out(await self.uow.run("cinema_order", work))

    async def mine(self, me: Principal, limit: int = 50) -> list[Order]:
        """The subscriber's cinema orders, newest first (paid ones with their code strings)."""

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(orders).where(orders.c.user_id == me.user_id)
                                               .order_by(orders.c.created_at.desc(), orders.c.id).limit(limit)))

        return [await self._order_out(r) for r in await self.uow.run("cinema_mine", work)]

    async def _order_out(self, row: Any, *, replayed: bool = False) -> Order:
        show = await self.show(row.show_id)
        state = row.state
        until = as_utc(row.locked_until) if row.locked_until else None
        if state == OrderState.LOCKED.value and not lock_live(until, self.uow.clock.now()):
            state = OrderState.EXPIRED.value  # read as it is, before the worker stores it
        code = ticket_code(self.code_key, row.id, int(row.code_nonce)) if row.state == OrderState.PAID.value else None
        count = max(1, int(row.count))
        return Order(row.id, show, _tickets(_labels(row.seats), int(row.amount) // count), int(row.amount), state,
                     until if state == OrderState.LOCKED.value else None, code, int(row.changes),
                     as_utc(row.collected_at) if row.collected_at else None, int(row.refunded),
                     int(row.refund_fee) if row.refund_fee is not None else None, as_utc(row.created_at), replayed)

    # ------------------------------------------------------------------ changes and refunds

    async def change(self, me: Principal, order_id: str, show_id: str, wanted: list[str], *, idempotency_key: str,
                     pin: str | None = None) -> Order:
        """改签: move a paid order, whole, to another show of the same film at the same cinema,
        once, at least 30 minutes before its show. The new seats are sold at once (the
        database key refuses a taken one); the price difference is paid from the wallet or
        given back; the old code stops working and a new one is sent. The same request again
        answers the changed order (``replayed``)."""
        check_idempotency_key(idempotency_key)

        async def look(uow: UnitOfWork) -> tuple[Any, Any, Any]:
            order = await self._mine(uow, me, order_id)
            old = (await uow.conn.execute(select(shows).where(shows.c.id == order.show_id))).one()
            new = (await uow.conn.execute(select(shows).where(shows.c.id == show_id))).first()
            return order, old, new

        order, old, new = await self.uow.run("cinema_change_look", look)
        if order.changes and order.show_id == show_id and set(_labels(order.seats)) == set(wanted):
            return await self._order_out(order, replayed=True)
        self._check_change(order, old, new, show_id, wanted, self.uow.clock.now())
        extra = int(new.price) * len(wanted) - int(order.amount)
        payer = await self.wallet.authorize_payment(me, extra, pin) if extra > 0 else None

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            current = await self._mine(uow, me, order_id, for_update=True)
            if current.changes and current.show_id == show_id:
                return current, True
            fresh = (await uow.conn.execute(select(shows).where(shows.c.id == show_id))).one()
            self._check_change(current, old, fresh, show_id, wanted, uow.now)
            layout = (await uow.conn.execute(select(halls.c.layout).where(halls.c.id == fresh.hall_id))).scalar_one()
            labels = [s.label for s in check_seats(parse_layout(layout), list(wanted))]
            amount = int(fresh.price) * len(labels)
            diff = amount - int(current.amount)
            await uow.conn.execute(delete(seats).where(seats.c.order_id == order_id))
            await self._clear_expired(uow, show_id, labels)
            await self._take(uow, show_id, labels, order_id, SOLD, None)
            escrow, wallet = escrow_account(current.cinema_id), wallet_account(current.msisdn).code
            if diff > 0:
                if payer is None:  # the new show's price rose since the look: ask again
                    raise errors.ChangeNotAllowed("the price changed meanwhile: try again", field="show_id")
                await self.wallet.count_payment(uow, payer, diff)
                legs = (Leg.debit(payer.account_code, diff), Leg.credit(escrow, diff))
            else:
                legs = (Leg.debit(escrow, -diff), Leg.credit(wallet, -diff))
            if diff:
                [result] = await uow.post([Transfer(f"cinema:{order_id}:change", legs, "cinema.change",
                                                    reference="电影票改签差价")])
                if result.error is not None:
                    raise result.error
            digest, nonce = await self._new_code(uow, order_id, int(current.code_nonce) + 1)
            await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
                show_id=show_id, seats=",".join(labels), count=len(labels), amount=amount, changes=current.changes + 1,
                changed_from=current.show_id, code_hash=digest, code_nonce=nonce))
            await self._send_code(uow, current, fresh, labels, nonce, "cinema.changed")
            return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one(), False

        row, replayed = await self.uow.run("cinema_change", work)
        return await self._order_out(row, replayed=replayed)

    @staticmethod
    def _check_change(order: Any, old: Any, new: Any, show_id: str, wanted: list[str], now: datetime) -> None:
        if order.state != OrderState.PAID.value:
            raise errors.ChangeNotAllowed(f"this order is {order.state}: only paid tickets are changed",
                                          field="order_id")
        check_change(int(order.changes), as_utc(old.starts_at), now, order.collected_at is not None)
        if new is None:
            raise errors.ShowNotFound(field="show_id")
        if new.id == old.id:
            raise errors.ChangeNotAllowed("choose another show to change to", field="show_id")
        if new.cinema_id != old.cinema_id or new.film_id != old.film_id:
            raise errors.ChangeNotAllowed("a change is to another show of the same film at the same cinema",
                                          field="show_id")
        check_on_sale(ShowState(new.state), as_utc(new.starts_at), now)
        if len(wanted) != int(order.count):
            raise errors.ChangeNotAllowed(f"a change moves the whole order: choose {order.count} seats",
                                          field="seats")
        del show_id

    async def refund_quote(self, me: Principal, order_id: str) -> RefundQuote:
        """What refunding the order now would give back (the fee by time left)."""

        async def work(uow: UnitOfWork) -> tuple[Any, Any]:
            order = await self._mine(uow, me, order_id)
            show = (await uow.conn.execute(select(shows).where(shows.c.id == order.show_id))).one()
            return order, show

        order, show = await self.uow.run("cinema_refund_quote", work)
        return self._quote(order, show, self.uow.clock.now())

    @staticmethod
    def _quote(order: Any, show: Any, now: datetime) -> RefundQuote:
        if order.state != OrderState.PAID.value:
            raise errors.RefundNotAllowed(f"this order is {order.state}: only paid tickets are refunded",
                                          field="order_id")
        return refund_quote(int(order.amount), as_utc(show.starts_at), now,
                            cancelled=show.state == ShowState.CANCELLED.value,
                            collected=order.collected_at is not None)

    async def refund(self, me: Principal, order_id: str, *, idempotency_key: str) -> tuple[Order, RefundQuote]:
        """退票: the whole order back to the wallet less the fee by time left; the seats are
        free at once. The same Idempotency-Key answers the first refund (``replayed``)."""
        check_idempotency_key(idempotency_key)

        async def work(uow: UnitOfWork) -> tuple[Any, RefundQuote, bool]:
            order = await self._mine(uow, me, order_id, for_update=True)
            if order.state == OrderState.REFUNDED.value:
                if order.refund_key != idempotency_key:
                    raise errors.RefundNotAllowed("this order was refunded already", field="order_id")
                fee = int(order.refund_fee or 0)
                paid = int(order.refunded) + fee
                return order, RefundQuote(paid, fee * 100 // paid if paid else 0, fee, int(order.refunded)), True
            show = (await uow.conn.execute(select(shows).where(shows.c.id == order.show_id))).one()
            quote = self._quote(order, show, uow.now)
            film = (await uow.conn.execute(select(films.c.title).where(films.c.id == show.film_id))).scalar_one()
            await self._refund_in(uow, order, quote, "request", film, show.starts_at, key=idempotency_key)
            return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one(), quote, False

        row, quote, replayed = await self.uow.run("cinema_refund", work)
        return await self._order_out(row, replayed=replayed), quote

    async def _refund_in(self, uow: UnitOfWork, order: Any, quote: RefundQuote, reason: str, film: str,
                         starts_at: datetime, *, key: str = "") -> None:
        """In the caller's transaction: the order's money back (the fee stays in escrow for the
        cinema's settlement), its seats freed, the buyer told."""
        if quote.back:
            [result] = await uow.post([Transfer(f"cinema:{order.id}:refund", (
                Leg.debit(escrow_account(order.cinema_id), quote.back),
                Leg.credit(wallet_account(order.msisdn).code, quote.back)), "cinema.refund",
                reference=f"电影票退票 {reason}")])
            if result.error is not None:
                raise result.error
        await uow.conn.execute(delete(seats).where(seats.c.order_id == order.id))
        await uow.conn.execute(update(orders).where(orders.c.id == order.id).values(
            state=OrderState.REFUNDED.value, refunded=quote.back, refund_fee=quote.fee, refunded_at=uow.now,
            refund_key=key or reason))
        await uow.emit(SmsRequested(key=f"{order.id}:refund", to=order.msisdn, template=f"cinema.refund_{reason}",
                                    params={"film": film[:30], "time": _beijing(starts_at), "amount_fen": quote.back,
                                            "fee_fen": quote.fee}))

    # ------------------------------------------------------------------ the kiosk

    async def check(self, kiosk: Kiosk, raw_code: str, *, request_id: str) -> Printed:
        """The cinema's kiosk checks a code string once and gets the tickets to print. A
        second check is ``TICKETS_ALREADY_PRINTED``, saying when and where; the same kiosk
        sending the same ``request_id`` again (its answer was lost) gets the same tickets
        (``replayed``). A code matching no ticket of this cinema counts towards its lock."""
        check_idempotency_key(request_id)
        code = normalise_code(raw_code)
        cinema = await self._cinema_of(kiosk)
        await self._guard(cinema)
        digest = code_hash(self.hash_key, code)

        async def work(uow: UnitOfWork) -> tuple[Any, Any, bool] | None:
            order = (await uow.conn.execute(select(orders).where(orders.c.code_hash == digest,
                                                                 orders.c.cinema_id == cinema.id)
                                            .with_for_update())).first()
            if order is None:
                return None
            show = (await uow.conn.execute(select(shows).where(shows.c.id == order.show_id))).one()
            if order.collected_at is not None:
                if order.collected_by == kiosk.id and order.collect_request == request_id:
                    return order, show, True
                at = as_utc(order.collected_at)
                raise errors.AlreadyCollected(f"these tickets were printed at {_beijing(at)} Beijing time "
                                              f"(kiosk {order.collected_by})", field="code", used_at=at.isoformat())
            if order.state == OrderState.REFUNDED.value:
                raise errors.TicketsNotValid("these tickets were refunded", field="code")
            if show.state == ShowState.CANCELLED.value:
                raise errors.TicketsNotValid("the cinema cancelled this show", field="code")
            if uow.now >= as_utc(show.ends_at):
                raise errors.TicketsNotValid(f"the show ended at {_beijing(show.ends_at)} Beijing time", field="code")
            moved = await uow.conn.execute(update(orders).where(
                orders.c.id == order.id, orders.c.collected_at.is_(None), orders.c.state == OrderState.PAID.value)
                .values(collected_at=uow.now, collected_by=kiosk.id, collect_request=request_id))
            if moved.rowcount != 1:
                raise errors.AlreadyCollected("these tickets were printed a moment ago", field="code")
            await uow.emit(SmsRequested(key=f"{order.id}:printed", to=order.msisdn, template="cinema.printed",
                                        params={"time": _beijing(uow.now), "count": order.count}))
            return (await uow.conn.execute(select(orders).where(orders.c.id == order.id))).one(), show, False

        found = await self.uow.run("cinema_check", work)
        if found is None:
            raise await self._wrong_code(cinema, kiosk)
        order, show, replayed = found
        out = await self.show(show.id)
        return Printed(order.id, out.cinema_name, out.hall_name, out.film_title, out.starts_at,
                       _tickets(_labels(order.seats), int(order.amount) // max(1, int(order.count))),
                       as_utc(order.collected_at), replayed)

    async def _cinema_of(self, kiosk: Kiosk) -> Cinema:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(cinemas).where(cinemas.c.store_id == kiosk.store_id,
                                                                 cinemas.c.merchant_id == kiosk.merchant_id))).first()

        row = await self.uow.run("cinema_of_kiosk", work)
        if row is None:
            raise errors.KioskNotOfCinema(f"terminal {kiosk.id} is not at a cinema's store", field="Terminal-Id")
        return _cinema(row)

    async def _guard(self, cinema: Cinema) -> None:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(kiosk_guard).where(kiosk_guard.c.cinema_id == cinema.id))).first()

        row = await self.uow.run("cinema_guard", work)
        now = self.uow.clock.now()
        if row is not None and GUESS_LOCKOUT.is_locked(as_utc(row.locked_until) if row.locked_until else None, now):
            wait = int((as_utc(row.locked_until) - now).total_seconds()) + 1
            raise errors.GuessingLocked(f"too many wrong codes at this cinema: try again in {wait // 60 + 1} minutes",
                                        field="code", retry_after_s=wait)

    async def _wrong_code(self, cinema: Cinema, kiosk: Kiosk) -> MobipayError:
        """Count a wrong code at the cinema (committed on its own); the tenth within 15
        minutes locks its kiosks, is audited and logged as an alert."""

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(kiosk_guard).where(kiosk_guard.c.cinema_id == cinema.id)
                                          .with_for_update())).first()
            last = as_utc(row.last_failed_at) if row is not None and row.last_failed_at else None
            failures, locked = GUESS_LOCKOUT.after_failure(row.failures if row else 0, last, uow.now)
            values: dict[str, Any] = {"failures": failures, "last_failed_at": uow.now}
            if locked is not None:
                values |= {"locked_until": locked, "locks": (row.locks if row else 0) + 1}
            try:
                if row is None:
                    await uow.conn.execute(insert(kiosk_guard).values(cinema_id=cinema.id, **{"locks": 0, **values}))
                else:
                    await uow.conn.execute(update(kiosk_guard).where(kiosk_guard.c.cinema_id == cinema.id)
                                           .values(**values))
            except IntegrityError:  # two first wrong codes at once: count this one on the next
                return False
            if locked is not None:
                await uow.audit(actor=f"{cinema.merchant_id}/{kiosk.id}", action="cinema.code_guessing_locked",
                                target=cinema.id, reason=f"{GUESS_LOCKOUT.tries} wrong ticket codes",
                                after={"locked_until": locked.isoformat()})
            return locked is not None

        if await self.uow.run("cinema_wrong_code", work):
            log.warning("cinema.code_guessing", alert=True, cinema=cinema.id, kiosk=kiosk.id)
            return errors.GuessingLocked("too many wrong codes at this cinema: checks are locked for "
                                         f"{int(GUESS_LOCKOUT.lock.total_seconds() // 60)} minutes", field="code",
                                         retry_after_s=int(GUESS_LOCKOUT.lock.total_seconds()))
        return errors.CodeUnknown(field="code")

    # ------------------------------------------------------------------ worker jobs

    async def expire_locks(self, limit: int = 500) -> int:
        """Worker job: unpaid locks that ran out are expired and their seats freed (a conditional
        UPDATE: only a still-locked, due order moves, so two workers expire it once)."""

        async def work(uow: UnitOfWork) -> int:
            due = [r[0] for r in await uow.conn.execute(select(orders.c.id).where(
                orders.c.state == OrderState.LOCKED.value, orders.c.locked_until <= uow.now)
                .order_by(orders.c.locked_until).limit(limit))]
            if not due:
                return 0
            moved = await uow.conn.execute(update(orders).where(
                orders.c.id.in_(due), orders.c.state == OrderState.LOCKED.value, orders.c.locked_until <= uow.now)
                .values(state=OrderState.EXPIRED.value, locked_until=None))
            await uow.conn.execute(delete(seats).where(seats.c.order_id.in_(due), seats.c.state == LOCKED))
            return int(moved.rowcount)

        return await self.uow.run("cinema_expire_locks", work)

    async def settle_due(self, limit: int = 500) -> int:
        """Worker job: the cinema's money, once it is certain, to its payable as paid trades for
        the T+1 settlement: each paid order when its show has started, each refund's fee.
        One ledger batch; answers the orders settled."""
        now = self.uow.clock.now()

        async def due(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(
                select(orders, cinemas.c.merchant_id, cinemas.c.store_id, films.c.title).join(
                    shows, shows.c.id == orders.c.show_id).join(cinemas, cinemas.c.id == orders.c.cinema_id).join(
                    films, films.c.id == shows.c.film_id).where(
                    orders.c.settled_at.is_(None),
                    or_((orders.c.state == OrderState.PAID.value) & (shows.c.starts_at <= now),
                        (orders.c.state == OrderState.REFUNDED.value) & (orders.c.refund_fee > 0)))
                .order_by(orders.c.created_at).limit(limit)))

        rows = await self.uow.run("cinema_settle_due", due)
        if not rows:
            return 0
        for r in rows:
            if r.merchant_id not in self._accounts:
                self._accounts[r.merchant_id] = (await self.merchants.merchant(r.merchant_id)).account_code

        def share(r: Any) -> int:
            return int(r.amount) if r.state == OrderState.PAID.value else int(r.refund_fee)

        async def work(uow: UnitOfWork) -> int:
            ids = [r.id for r in rows]
            moved = await uow.conn.execute(update(orders).where(orders.c.id.in_(ids), orders.c.settled_at.is_(None))
                                           .values(settled_at=uow.now))
            if moved.rowcount != len(ids):
                raise _Raced()
            results = await uow.post([
                Transfer(f"cinema:{r.id}:settle", (Leg.debit(escrow_account(r.cinema_id), share(r)),
                                                   Leg.credit(self._accounts[r.merchant_id], share(r))),
                         "cinema.settled", reference=r.title[:80]) for r in rows])
            for result in results:
                if result.error is not None:
                    raise result.error
            subject = {OrderState.PAID.value: "电影票", OrderState.REFUNDED.value: "电影票退票手续费"}
            trade_ids = await self.merchants.record_payments_in(uow, [
                CounterPayment(r.merchant_id, r.store_id, f"cn-{r.id}", share(r), f"{subject[r.state]} {r.title}"[:256],
                               r.user_id, f"cinema:{r.id}:settle") for r in rows])
            for r, trade_id in zip(rows, trade_ids, strict=True):
                await uow.conn.execute(update(orders).where(orders.c.id == r.id).values(trade_id=trade_id))
            return len(rows)

        try:
            return await self.uow.run("cinema_settle", work)
        except _Raced:
            return 0


class _Raced(Exception):
    """Another worker settled some of the same orders first."""


def _cinema(row: Any) -> Cinema:
    return Cinema(row.id, row.merchant_id, row.store_id, row.name, row.city, row.address)


def _hall(row: Any) -> Hall:
    seat_map = parse_layout(row.layout)
    return Hall(row.id, row.cinema_id, row.name, int(row.capacity), seat_map)


__all__ = ["Cinema", "Cinemas", "Film", "Hall", "Kiosk", "Order", "Printed", "Show", "escrow_account",
           "keys_from_secret"]
