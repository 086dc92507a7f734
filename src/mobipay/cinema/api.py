"""Cinema e-tickets over HTTP.

For the subscriber's app (bearer access token): cinemas, a cinema's shows, a show's seat
map; lock seats (``Idempotency-Key`` required), pay the lock from the wallet
(``Idempotency-Key`` required; the order is paid once whatever the key), let a lock go, my
orders with their code strings, change (改签) once, a refund's quote and the refund (退票).

For the cinema's verification kiosk: ``POST /v1/cinema/kiosk/checks``, a signed in-store
terminal request (headers ``Terminal-Id``, ``Timestamp``, ``Nonce``, ``Signature``;
docs/instore.md) of a terminal at the cinema's store: the code once, answered with the
tickets to print. Not limited per address (as the other terminal routes: a cinema's kiosks
may share one); every wrong code counts towards the cinema's lock instead.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.cinema.model import MAX_SEATS, RefundQuote, discount_percent, grouped
from mobipay.cinema.service import Cinema, Cinemas, Kiosk, Order, Printed, Show
from mobipay.kernel.errors import ValidationFailed
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/cinema", tags=["cinema"])

CinemaDep = Annotated[Cinemas, from_container("cinema")]


def _money(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


class CinemaOut(BaseModel):
    id: str
    name: str
    city: str
    address: str


def _cinema_out(c: Cinema) -> CinemaOut:
    return CinemaOut(id=c.id, name=c.name, city=c.city, address=c.address)


class ShowOut(BaseModel):
    id: str
    cinema_id: str
    cinema: str
    hall_id: str
    hall: str
    film_id: str
    film: str
    starts_at: datetime
    ends_at: datetime
    list_price: MoneyOut = Field(description="The cinema's box-office price")
    price: MoneyOut = Field(description="The mobipay price: down to 30% of the list price")
    discount_percent: int = Field(description="Off the list price, whole percent rounded down (70 is 3折)")
    state: str = Field(description="on_sale | cancelled")
    seats_left: int


def _show_out(s: Show) -> ShowOut:
    return ShowOut(id=s.id, cinema_id=s.cinema_id, cinema=s.cinema_name, hall_id=s.hall_id, hall=s.hall_name,
                   film_id=s.film_id, film=s.film_title, starts_at=s.starts_at, ends_at=s.ends_at,
                   list_price=_money(s.list_price), price=_money(s.price),
                   discount_percent=discount_percent(s.list_price, s.price), state=s.state, seats_left=s.seats_left)


class CellOut(BaseModel):
    seat: str = Field(description="row-number, e.g. 5-12 (5排12座); empty for an aisle")
    row: int
    number: int
    state: str = Field(description="aisle | free | taken | unavailable")


class SeatMapOut(BaseModel):
    show: ShowOut
    rows: list[list[CellOut]] = Field(description="From the screen back; each row's cells left to right")


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: list[str] = Field(min_length=1, max_length=MAX_SEATS, description="Seats as row-number, e.g. [\"5-12\"]")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str | None = Field(default=None, max_length=12, description="Needed above the password-free amount")


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    show_id: str = Field(max_length=40, description="Another show of the same film at the same cinema")
    seats: list[str] = Field(min_length=1, max_length=MAX_SEATS)
    pin: str | None = Field(default=None, max_length=12, description="When a dearer show costs more than the "
                            "password-free amount")


class TicketOut(BaseModel):
    seat: str
    row: int
    number: int
    label: str = Field(description="As printed, e.g. 5排12座")
    price: MoneyOut


class OrderOut(BaseModel):
    id: str
    show: ShowOut
    tickets: list[TicketOut]
    amount: MoneyOut
    state: str = Field(description="locked | paid | released | expired | refunded")
    locked_until: datetime | None = Field(description="While locked: pay before this")
    code: str | None = Field(description="The code string (串码) to type at the cinema's kiosk; paid orders only")
    changes: int
    printed_at: datetime | None
    refunded: MoneyOut
    refund_fee: MoneyOut | None
    created_at: datetime


def _tickets(items: Printed | Order) -> list[TicketOut]:
    return [TicketOut(seat=t.seat, row=t.row, number=t.number, label=t.chinese, price=_money(t.price))
            for t in items.tickets]


def _order_out(o: Order) -> OrderOut:
    return OrderOut(id=o.id, show=_show_out(o.show), tickets=_tickets(o), amount=_money(o.amount), state=o.state,
                    locked_until=o.locked_until, code=grouped(o.code) if o.code else None, changes=o.changes,
                    printed_at=o.collected_at, refunded=_money(o.refunded),
                    refund_fee=_money(o.refund_fee) if o.refund_fee is not None else None, created_at=o.created_at)


class QuoteOut(BaseModel):
    amount: MoneyOut = Field(description="Paid")
    percent: int = Field(description="The fee's rate by time left (0, 10, 20 or 30)")
    fee: MoneyOut = Field(description="Kept by the cinema: amount × percent / 100, rounded down to the fen")
    back: MoneyOut = Field(description="Back to the wallet")


def _quote_out(q: RefundQuote) -> QuoteOut:
    return QuoteOut(amount=_money(q.amount), percent=q.percent, fee=_money(q.fee), back=_money(q.back))


class RefundOut(BaseModel):
    order: OrderOut
    quote: QuoteOut


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"


@router.get("/cinemas", response_model=list[CinemaOut], summary="Cinemas selling e-tickets (of a city)")
async def list_cinemas(cs: CinemaDep, city: Annotated[str, Query(max_length=16)] = "") -> list[CinemaOut]:
    return [_cinema_out(c) for c in await cs.find_cinemas(city)]


@router.get("/cinemas/{cinema_id}/shows", response_model=list[ShowOut],
            summary="A cinema's shows on sale, earliest first (of a Beijing day)")
async def list_shows(cinema_id: str, cs: CinemaDep,
                     day: Annotated[str, Query(description="YYYY-MM-DD, Beijing")] = "") -> list[ShowOut]:
    when = None
    if day:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise ValidationFailed("day is YYYY-MM-DD", field="day") from None
    await cs.cinema(cinema_id)
    return [_show_out(s) for s in await cs.shows(cinema_id, when)]


@router.get("/shows/{show_id}", response_model=ShowOut, summary="One show")
async def one_show(show_id: str, cs: CinemaDep) -> ShowOut:
    return _show_out(await cs.show(show_id))


@router.get("/shows/{show_id}/seats", response_model=SeatMapOut, summary="A show's seat map, each seat's state")
async def seat_map(show_id: str, cs: CinemaDep) -> SeatMapOut:
    view = await cs.seat_map(show_id)
    return SeatMapOut(show=_show_out(view.show), rows=[[CellOut(seat=c.label, row=c.row, number=c.number,
                                                                state=c.state) for c in row] for row in view.rows])


@router.post("/shows/{show_id}/locks", response_model=OrderOut, status_code=201,
             responses={200: {"description": "A retry: the first lock (header Idempotent-Replayed: true)"}},
             summary="Lock seats for a few minutes (Idempotency-Key required); pay before locked_until")
async def lock(show_id: str, body: LockIn, response: Response, me: Me, cs: CinemaDep,
               idempotency_key: IdemKey = None) -> OrderOut:
    """``SEAT_TAKEN`` (409) when a seat is someone else's: nothing is held."""
    order = await cs.lock(me, show_id, body.seats, idempotency_key=require_key(idempotency_key))
    _replayed(response, order.replayed)
    return _order_out(order)


@router.post("/orders/{order_id}/payment", response_model=OrderOut, status_code=201,
             responses={200: {"description": "Paid already: the paid order (header Idempotent-Replayed: true)"}},
             summary="Pay a locked order from the wallet (Idempotency-Key required); the code comes by SMS")
async def pay(order_id: str, body: PayIn, response: Response, me: Me, cs: CinemaDep,
              idempotency_key: IdemKey = None) -> OrderOut:
    """``SEAT_LOCK_EXPIRED`` (409) when the lock ran out first: nothing is charged."""
    order = await cs.pay(me, order_id, idempotency_key=require_key(idempotency_key), pin=body.pin)
    _replayed(response, order.replayed)
    return _order_out(order)


@router.post("/orders/{order_id}/release", response_model=OrderOut, summary="Let an unpaid lock go")
async def release(order_id: str, me: Me, cs: CinemaDep) -> OrderOut:
    return _order_out(await cs.release(me, order_id))


@router.get("/orders", response_model=list[OrderOut], summary="My cinema orders, newest first")
async def my_orders(me: Me, cs: CinemaDep) -> list[OrderOut]:
    return [_order_out(o) for o in await cs.mine(me)]


@router.get("/orders/{order_id}", response_model=OrderOut, summary="One of my cinema orders")
async def my_order(order_id: str, me: Me, cs: CinemaDep) -> OrderOut:
    return _order_out(await cs.order(me, order_id))


@router.post("/orders/{order_id}/change", response_model=OrderOut, status_code=201,
             responses={200: {"description": "The same change again (header Idempotent-Replayed: true)"}},
             summary="改签: move the whole order to another show of the film, once, 30 min before at the latest")
async def change(order_id: str, body: ChangeIn, response: Response, me: Me, cs: CinemaDep,
                 idempotency_key: IdemKey = None) -> OrderOut:
    order = await cs.change(me, order_id, body.show_id, body.seats, idempotency_key=require_key(idempotency_key),
                            pin=body.pin)
    _replayed(response, order.replayed)
    return _order_out(order)


@router.get("/orders/{order_id}/refund-quote", response_model=QuoteOut,
            summary="What a refund now gives back: the fee by time left to the show")
async def refund_quote(order_id: str, me: Me, cs: CinemaDep) -> QuoteOut:
    return _quote_out(await cs.refund_quote(me, order_id))


@router.post("/orders/{order_id}/refund", response_model=RefundOut, status_code=201,
             responses={200: {"description": "The same refund again (header Idempotent-Replayed: true)"}},
             summary="退票: the whole order back to the wallet less the fee (Idempotency-Key required)")
async def refund(order_id: str, response: Response, me: Me, cs: CinemaDep,
                 idempotency_key: IdemKey = None) -> RefundOut:
    order, quote = await cs.refund(me, order_id, idempotency_key=require_key(idempotency_key))
    _replayed(response, order.replayed)
    return RefundOut(order=_order_out(order), quote=_quote_out(quote))


# ---------------------------------------------------------------------- the cinema's kiosk

def _target(request: Request) -> str:
    """The path as the kiosk sent it (not percent-decoded), with its query string: what it signed."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def kiosk(
    request: Request,
    terminal_id: Annotated[str, Header(alias="Terminal-Id", description="The kiosk's terminal id (trm_…)")] = "",
    timestamp: Annotated[str, Header(alias="Timestamp", description="Unix seconds, within ±300 s")] = "",
    nonce: Annotated[str, Header(alias="Nonce", description="8-64 of A-Z a-z 0-9 _ -, once")] = "",
    signature: Annotated[str, Header(alias="Signature", description="base64 Ed25519 signature (docs/instore.md)")
                         ] = "",
) -> Kiosk:
    """The in-store terminal that signed this request, verified by the in-store terminals'
    own use case (the container's ``terminals``: the same rule as every terminal route)."""
    found: Kiosk = await request.app.state.container.terminals.verify(
        terminal_id=terminal_id, timestamp=timestamp, nonce=nonce, signature=signature, method=request.method,
        path=_target(request), body=await request.body())
    return found


SignedKiosk = Annotated[Kiosk, Depends(kiosk)]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(max_length=32, description="The 12 digits the buyer types (spaces allowed)")
    request_id: str = Field(min_length=1, max_length=64, description="The kiosk's id of this check: the same id "
                            "again from the same kiosk answers the same tickets (a lost answer)")


class PrintOut(BaseModel):
    order_id: str
    cinema: str
    hall: str
    film: str
    starts_at: datetime
    tickets: list[TicketOut]
    printed_at: datetime


@router.post("/kiosk/checks", response_model=PrintOut, status_code=201,
             responses={200: {"description": "The same request_id again: the same tickets"},
                        401: {"description": "The terminal's signature, timestamp or nonce is not right"},
                        403: {"description": "The terminal is disabled, or not at a cinema's store"},
                        409: {"description": "TICKETS_ALREADY_PRINTED: when and at which kiosk"}},
             summary="The cinema's kiosk checks a code string once and gets the tickets to print (signed terminal)")
async def check(body: CheckIn, response: Response, me: SignedKiosk, cs: CinemaDep) -> PrintOut:
    p = await cs.check(me, body.code, request_id=body.request_id)
    _replayed(response, p.replayed)
    return PrintOut(order_id=p.order_id, cinema=p.cinema, hall=p.hall, film=p.film, starts_at=p.starts_at,
                    tickets=_tickets(p), printed_at=p.printed_at)
