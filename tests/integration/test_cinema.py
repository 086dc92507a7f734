"""Cinema e-tickets on SQLite and PostgreSQL: seats never sold twice under concurrent buyers
(the database's key on show+seat), locks running out (ManualClock; the worker and lazily),
paying into the cinema's escrow, the kiosk's check once and twice, guessed codes locking the
cinema, one change and a change too late, each refund tier at its edges, a cancelled show
refunded in full, and the cinema paid through the merchants' T+1 settlement. Every balance
and the escrow asserted."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from mobipay.cinema.service import Cinemas, Show, escrow_account, keys_from_secret
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.settlement import Settlements
from mobipay.merchants.signing import new_rsa_key
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LAYOUT = """
SS.SSSS.SS
SS.SSXS.SS
..........
SSSSSSSSSS
SSSSSSSSSS
"""


@dataclass(frozen=True)
class KioskStub:
    """The terminal a signed kiosk request names (the API gets it from instore's verification)."""

    id: str
    merchant_id: str
    store_id: str
    label: str = "KIOSK-1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def service(db: Database, ledger: Ledger, clock: ManualClock) -> Cinemas:
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"t")
    merchants = MerchantService(uow, wallet, new_rsa_key()[0], categories())
    return Cinemas(uow, merchants, wallet, keys_from_secret("", "test-secret"))


@pytest.fixture
async def cs(db: Database, ledger: Ledger, clock: ManualClock) -> Cinemas:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    return service(db, ledger, clock)


NUMBERS = iter(range(100, 999))


@dataclass
class Venue:
    merchant: Merchant
    cinema_id: str
    kiosk: KioskStub
    film_id: str
    hall_id: str
    show: Show  # 3 days ahead, 4,000 fen list, 2,500 fen mobipay price
    later: Show  # the same film the next evening


async def venue(cs: Cinemas) -> Venue:
    body = f"91110000C000{next(NUMBERS):03d}Y4"
    m = await cs.merchants.apply(name="万达影城", credit_code=body + credit_code_check_char(body),
                                 legal_person="王健", mcc="7832", contact="13800138000", website="",
                                 settlement_account="6222020000111122222")
    assert m.state.value == "approved"
    store = await cs.merchants.add_store(m, "万达影城 CBD店", "建国路 93 号", "北京")
    cinema = await cs.open_cinema(m.id, store, name="万达影城 CBD店", city="北京", address="建国路 93 号")
    hall = await cs.add_hall(cinema.id, "1号厅", LAYOUT)
    assert hall.capacity == 35  # 36 seats drawn, one not sold; the cross aisle is no row
    film = await cs.add_film("流浪地球3", 150)
    show = await cs.add_show(hall.id, film.id, START + timedelta(days=3), list_price=4_000, price=2_500)
    later = await cs.add_show(hall.id, film.id, START + timedelta(days=4), list_price=6_000, price=3_500)
    return Venue(m, cinema.id, KioskStub(f"trm_{next(NUMBERS)}", m.id, store), film.id, hall.id, show, later)


async def buyer(cs: Cinemas, msisdn: str, balance: int = 100_000) -> Principal:
    user = await cs.wallet.create_user(msisdn, actor="t", reason="t")
    assert (await cs.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                             Leg.credit(user.account_code, balance)), "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def refused(coro: Any) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value


async def money(cs: Cinemas, *codes: str) -> list[int]:
    accounts = await cs.uow.ledger.accounts(list(codes))
    return [accounts[c].balance for c in codes]


async def sms(db: Database, template: str) -> list[dict[str, Any]]:
    async with db.begin() as conn:
        rows = (await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send"))).scalars().all()
    out = [json.loads(r) if isinstance(r, str) else r for r in rows]
    return [p for p in out if p["template"] == template]


async def test_lock_pay_check_twice_and_settle(cs: Cinemas, db: Database, clock: ManualClock,
                                               tmp_path: Path) -> None:
    v = await venue(cs)
    me = await buyer(cs, "+8613900139000")
    other = await buyer(cs, "+8613900139001")
    assert (await refused(cs.lock(me, v.show.id, ["2-5"], idempotency_key="x"))).code == "SEATS_INVALID"  # not sold
    assert (await refused(cs.lock(me, v.show.id, ["9-1"], idempotency_key="x"))).code == "SEATS_INVALID"
    locked = await cs.lock(me, v.show.id, ["1-4", "1-3"], idempotency_key="k1")
    assert (locked.state, locked.amount, [t.seat for t in locked.tickets]) == ("locked", 5_000, ["1-3", "1-4"])
    assert locked.locked_until == START + timedelta(minutes=10) and locked.code is None
    assert (await cs.lock(me, v.show.id, ["1-3", "1-4"], idempotency_key="k1")).id == locked.id  # a retry
    assert (await refused(cs.lock(me, v.show.id, ["1-5"], idempotency_key="k1"))).code == "IDEMPOTENCY_CONFLICT"
    taken = await refused(cs.lock(other, v.show.id, ["1-4", "1-5"], idempotency_key="o1"))
    assert taken.code == "SEAT_TAKEN" and "1排4座" in taken.detail
    view = await cs.seat_map(v.show.id)
    states = {c.label: c.state for row in view.rows for c in row if c.label}
    assert (states["1-3"], states["1-5"], states["2-5"]) == ("taken", "free", "unavailable")
    assert (await cs.show(v.show.id)).seats_left == 33
    assert await money(cs, me.account_code) == [100_000]  # a lock moves no money

    paid = await cs.pay(me, locked.id, idempotency_key="p1")
    escrow = escrow_account(v.cinema_id)
    assert paid.state == "paid" and paid.code is not None and len(paid.code) == 12
    assert await money(cs, me.account_code, escrow, v.merchant.account_code) == [95_000, 5_000, 0]
    again = await cs.pay(me, locked.id, idempotency_key="p2")  # a second press, any key: paid once
    assert again.replayed and again.code == paid.code
    assert await money(cs, me.account_code) == [95_000]
    [text_] = await sms(db, "cinema.tickets")
    assert text_["params"]["code"].replace(" ", "") == paid.code and "1排3座" in text_["params"]["seats"]
    async with db.begin() as conn:  # the code is nowhere in the database, only its keyed hash
        dump = " ".join(str(r) for r in (await conn.execute(text("SELECT * FROM cinema_orders"))).all())
    assert paid.code not in dump

    clock.advance(3 * 86_400 - 3_600)  # an hour before the show: at the cinema
    printed = await cs.check(v.kiosk, paid.code[:4] + " " + paid.code[4:], request_id="kiosk-1")
    assert (printed.hall, printed.film, [(t.row, t.number, t.price) for t in printed.tickets]) == (
        "1号厅", "流浪地球3", [(1, 3, 2_500), (1, 4, 2_500)])
    assert (await cs.check(v.kiosk, paid.code, request_id="kiosk-1")).replayed  # its answer was lost: the same
    twice = await refused(cs.check(v.kiosk, paid.code, request_id="kiosk-2"))
    when = (START + timedelta(days=3) - timedelta(hours=1)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    assert twice.code == "TICKETS_ALREADY_PRINTED" and when in twice.detail and "used_at" in twice.extra
    assert (await refused(cs.refund(me, paid.id, idempotency_key="r"))).code == "TICKET_REFUND_NOT_ALLOWED"
    assert await cs.settle_due() == 0  # not until the show starts
    clock.advance(3_600)
    assert await cs.settle_due() == 1
    assert await cs.settle_due() == 0
    assert await money(cs, escrow, v.merchant.account_code) == [0, 5_000]
    trade = await cs.merchants.trade_by_out_no(v.merchant, f"cn-{paid.id}")
    assert (trade.state.value, trade.amount) == ("TRADE_SUCCESS", 5_000)
    day = clock.now().astimezone(SHANGHAI).date()
    payouts = BankPayouts("http://127.0.0.1:9", b"unused")  # the T+1 run's day lines only: no payout here
    try:
        settlements = Settlements(cs.uow, OrderBook(cs.uow, tmp_path), payouts, tmp_path)
        day_paid, _ = await settlements.day_lines(v.merchant.id, day)
        assert [(t.out_trade_no, t.amount) for t in day_paid] == [(f"cn-{paid.id}", 5_000)]
    finally:
        await payouts.close()
    assert (await cs.uow.ledger.verify()).ok


async def test_lock_expires_worker_and_lazily(cs: Cinemas, clock: ManualClock) -> None:
    v = await venue(cs)
    a, b = await buyer(cs, "+8613900139010"), await buyer(cs, "+8613900139011")
    first = await cs.lock(a, v.show.id, ["4-1", "4-2"], idempotency_key="a1")
    assert (await refused(cs.lock(b, v.show.id, ["4-2"], idempotency_key="b1"))).code == "SEAT_TAKEN"
    clock.advance(10 * 60 - 1)
    assert (await cs.order(a, first.id)).state == "locked"
    clock.advance(1)  # the lock's end: free at once for the next buyer, before any worker
    assert (await cs.order(a, first.id)).state == "expired"
    assert {c.state for row in (await cs.seat_map(v.show.id)).rows for c in row if c.label in ("4-1", "4-2")} == {
        "free"}
    mine = await cs.lock(b, v.show.id, ["4-2"], idempotency_key="b2")
    assert (await refused(cs.pay(a, first.id, idempotency_key="late"))).code == "SEAT_LOCK_EXPIRED"
    assert await money(cs, a.account_code) == [100_000]  # nothing charged
    # a lock nobody touches: the worker expires it
    other = await cs.lock(a, v.show.id, ["4-9"], idempotency_key="a2")
    assert await cs.expire_locks() == 0
    clock.advance(10 * 60)
    assert await cs.expire_locks() == 2  # b's and a's second
    assert await cs.expire_locks() == 0
    assert (await cs.order(a, other.id)).state == "expired" and (await cs.order(b, mine.id)).state == "expired"
    assert (await cs.show(v.show.id)).seats_left == 35
    # choosing again lets the buyer's own earlier lock go; releasing frees at once
    one = await cs.lock(a, v.show.id, ["1-1"], idempotency_key="a3")
    two = await cs.lock(a, v.show.id, ["1-2"], idempotency_key="a4")
    assert (await cs.order(a, one.id)).state == "released"
    assert (await cs.release(a, two.id)).state == "released"
    assert (await cs.show(v.show.id)).seats_left == 35
    assert (await refused(cs.pay(a, two.id, idempotency_key="p"))).code == "CINEMA_ORDER_NOT_PAYABLE"
    assert (await refused(cs.order(b, one.id))).code == "CINEMA_ORDER_NOT_FOUND"  # not b's


async def test_change_once_and_too_late(cs: Cinemas, clock: ManualClock) -> None:
    v = await venue(cs)
    me = await buyer(cs, "+8613900139020")
    order = await cs.pay(me, (await cs.lock(me, v.show.id, ["4-5", "4-6"], idempotency_key="l")).id,
                         idempotency_key="p")
    escrow = escrow_account(v.cinema_id)
    assert (await refused(cs.change(me, order.id, v.later.id, ["4-5"], idempotency_key="c"))).code == (
        "TICKET_CHANGE_NOT_ALLOWED")  # the whole order
    changed = await cs.change(me, order.id, v.later.id, ["3-1", "3-2"], idempotency_key="c")
    assert (changed.show.id, changed.amount, changed.changes) == (v.later.id, 7_000, 1)
    assert changed.code is not None and changed.code != order.code  # a new code; the old one no longer works
    assert await money(cs, me.account_code, escrow) == [93_000, 7_000]  # the 2,000 fen difference paid
    assert (await cs.change(me, order.id, v.later.id, ["3-1", "3-2"], idempotency_key="c")).replayed
    assert (await refused(cs.change(me, order.id, v.show.id, ["4-5", "4-6"], idempotency_key="c2"))).code == (
        "TICKET_CHANGE_NOT_ALLOWED")  # once per order
    assert (await cs.show(v.show.id)).seats_left == 35 and (await cs.show(v.later.id)).seats_left == 33
    assert (await refused(cs.check(v.kiosk, order.code or "", request_id="old"))).code == "TICKET_CODE_UNKNOWN"
    # a change 29 minutes before the show is too late; 30 minutes is in time
    late = await cs.pay(me, (await cs.lock(me, v.show.id, ["1-1"], idempotency_key="l2")).id, idempotency_key="p2")
    clock.advance(3 * 86_400 - 29 * 60)
    assert (await refused(cs.change(me, late.id, v.later.id, ["1-1"], idempotency_key="c3"))).code == (
        "TICKET_CHANGE_NOT_ALLOWED")
    assert await money(cs, me.account_code, escrow) == [93_000 - 2_500, 9_500]
    assert (await cs.uow.ledger.verify()).ok


async def test_change_to_a_cheaper_show_gives_the_difference_back(cs: Cinemas) -> None:
    v = await venue(cs)
    me = await buyer(cs, "+8613900139021")
    order = await cs.pay(me, (await cs.lock(me, v.later.id, ["1-1"], idempotency_key="l")).id, idempotency_key="p")
    changed = await cs.change(me, order.id, v.show.id, ["1-2"], idempotency_key="c")
    assert changed.amount == 2_500
    assert await money(cs, me.account_code, escrow_account(v.cinema_id)) == [97_500, 2_500]


TIERS = [
    (timedelta(hours=24, seconds=1), 0),  # more than 24 h: free
    (timedelta(hours=24), 500),  # exactly 24 h: the 10% tier
    (timedelta(hours=2), 500),
    (timedelta(hours=2) - timedelta(seconds=1), 1_000),  # under 2 h: 20%
    (timedelta(hours=1), 1_000),
    (timedelta(minutes=59, seconds=59), 1_500),  # under 1 h: 30%
    (timedelta(minutes=30), 1_500),
    (timedelta(minutes=29, seconds=59), None),  # within 30 minutes: refused
]


async def test_refund_tiers_at_their_edges(cs: Cinemas, clock: ManualClock) -> None:
    """Each tier at its edges: one show per case starting that long after now (each in a hall
    of its own), two tickets of 2,500 fen bought, then refunded now."""
    v = await venue(cs)
    me = await buyer(cs, "+8613900139030", balance=1_000_000)
    escrow = escrow_account(v.cinema_id)
    short = await cs.add_film("短片", 1)
    bought = []
    for n, (before, _) in enumerate(TIERS):
        hall = await cs.add_hall(v.cinema_id, f"{n + 2}号厅", LAYOUT)
        show = await cs.add_show(hall.id, short.id, START + before, list_price=4_000, price=2_500)
        lock = await cs.lock(me, show.id, ["4-1", "4-2"], idempotency_key=f"l{n}")
        bought.append(await cs.pay(me, lock.id, idempotency_key=f"p{n}"))
    assert await money(cs, me.account_code, escrow) == [1_000_000 - 40_000, 40_000]
    kept = 0
    for order, (_before, fee) in zip(bought, TIERS, strict=True):
        if fee is None:
            assert (await refused(cs.refund(me, order.id, idempotency_key="r"))).code == "TICKET_REFUND_NOT_ALLOWED"
            assert (await refused(cs.refund_quote(me, order.id))).code == "TICKET_REFUND_NOT_ALLOWED"
            kept += 5_000
            continue
        assert (await cs.refund_quote(me, order.id)).fee == fee, _before
        done, quote = await cs.refund(me, order.id, idempotency_key="r")
        assert (done.state, quote.fee, quote.back, done.refund_fee) == ("refunded", fee, 5_000 - fee, fee), _before
        again, _ = await cs.refund(me, order.id, idempotency_key="r")
        assert again.replayed
        assert (await refused(cs.refund(me, order.id, idempotency_key="other"))).code == "TICKET_REFUND_NOT_ALLOWED"
        assert (await cs.show(order.show.id)).seats_left == 35  # the seats are for sale again
        assert (await refused(cs.check(v.kiosk, order.code or "", request_id="k"))).code == "TICKETS_NOT_VALID"
        kept += fee
    fees = sum(f for _, f in TIERS if f)
    assert await money(cs, me.account_code, escrow) == [1_000_000 - kept, kept]
    # the fees are the cinema's: settled as its trades at once; the unrefunded order when its show starts
    assert await cs.settle_due() == sum(1 for _, f in TIERS if f)
    assert await money(cs, escrow, v.merchant.account_code) == [5_000, fees]
    clock.advance(30 * 60)
    assert await cs.settle_due() == 1
    assert await money(cs, escrow, v.merchant.account_code) == [0, fees + 5_000]
    assert (await cs.uow.ledger.verify()).ok


async def test_cancelled_show_refunds_in_full(cs: Cinemas, db: Database, clock: ManualClock) -> None:
    v = await venue(cs)
    a, b = await buyer(cs, "+8613900139040"), await buyer(cs, "+8613900139041")
    paid = await cs.pay(a, (await cs.lock(a, v.show.id, ["1-1", "1-2"], idempotency_key="l")).id, idempotency_key="p")
    printed_too = await cs.pay(b, (await cs.lock(b, v.show.id, ["1-8"], idempotency_key="l")).id,
                               idempotency_key="p")
    held = await cs.lock(b, v.show.id, ["4-4"], idempotency_key="l2")
    clock.advance(3 * 86_400 - 20 * 60)  # 20 minutes before: no refund by the buyer any more
    await cs.check(v.kiosk, printed_too.code or "", request_id="k1")
    assert await cs.cancel_show(v.show.id, actor="staff", reason="projector failure") == 2
    assert await cs.cancel_show(v.show.id, actor="staff", reason="again") == 0
    assert await money(cs, a.account_code, b.account_code, escrow_account(v.cinema_id)) == [100_000, 100_000, 0]
    assert (await cs.order(a, paid.id)).state == "refunded" and (await cs.order(b, held.id)).state == "released"
    assert len(await sms(db, "cinema.refund_cancelled")) == 2
    assert (await refused(cs.lock(a, v.show.id, ["2-1"], idempotency_key="again"))).code == "SHOW_NOT_ON_SALE"
    clock.advance(3_600)
    assert await cs.settle_due() == 0  # nothing of a cancelled show is the cinema's
    assert (await cs.uow.ledger.verify()).ok


async def test_guessed_codes_lock_the_cinema(cs: Cinemas, clock: ManualClock) -> None:
    v = await venue(cs)
    me = await buyer(cs, "+8613900139050")
    order = await cs.pay(me, (await cs.lock(me, v.show.id, ["1-1"], idempotency_key="l")).id, idempotency_key="p")
    real = order.code or ""
    guess = str((int(real) + 1) % 10**12).zfill(12)
    assert (await refused(cs.check(v.kiosk, "12345", request_id="a"))).code == "TICKET_CODE_INVALID"  # not counted
    for n in range(9):
        assert (await refused(cs.check(v.kiosk, guess, request_id=f"g{n}"))).code == "TICKET_CODE_UNKNOWN"
    assert (await refused(cs.check(v.kiosk, guess, request_id="g9"))).code == "TICKET_GUESSING_LOCKED"  # the 10th
    assert (await refused(cs.check(v.kiosk, real, request_id="r"))).code == "TICKET_GUESSING_LOCKED"  # even right
    # another cinema's kiosk cannot see the ticket either: it looks like a wrong code
    w = await venue(cs)
    assert (await refused(cs.check(w.kiosk, real, request_id="o"))).code == "TICKET_CODE_UNKNOWN"
    stranger = KioskStub("trm_x", v.merchant.id, "sto_not_a_cinema")
    assert (await refused(cs.check(stranger, real, request_id="s"))).code == "KIOSK_NOT_OF_A_CINEMA"
    clock.advance(31 * 60)
    assert [t.seat for t in (await cs.check(v.kiosk, real, request_id="r2")).tickets] == ["1-1"]
    async with cs.uow.db.begin() as conn:
        actions = (await conn.execute(text("SELECT action FROM audit_log"))).scalars().all()
    assert "cinema.code_guessing_locked" in actions
    assert await money(cs, escrow_account(v.cinema_id), me.account_code) == [2_500, 97_500]


async def test_price_and_show_rules(cs: Cinemas) -> None:
    v = await venue(cs)
    assert (await refused(cs.add_show(v.hall_id, v.film_id, START + timedelta(days=9), list_price=4_000,
                                      price=1_199))).code == "SHOW_INVALID"  # below 30% of the list price
    assert (await cs.add_show(v.hall_id, v.film_id, START + timedelta(days=9), list_price=4_000,
                              price=1_200)).price == 1_200
    overlap = await refused(cs.add_show(v.hall_id, v.film_id, v.show.starts_at + timedelta(minutes=60),
                                        list_price=4_000, price=2_000))
    assert overlap.code == "SHOW_INVALID"  # the hall is showing the film then
    assert (await refused(cs.add_hall(v.cinema_id, "坏厅", "SSQ"))).code == "HALL_INVALID"
    assert (await refused(cs.open_cinema(v.merchant.id, v.kiosk.store_id, name="又一家", city="北京"))).code == (
        "CINEMA_INVALID")  # one cinema a store
    assert (await refused(cs.open_cinema("mch_nope", v.kiosk.store_id, name="x", city="北京"))).code == (
        "MERCHANT_NOT_FOUND")


async def test_two_buyers_never_get_the_same_seat(db_url: str, clock: ManualClock) -> None:
    """Many buyers at once on overlapping seats (real connections in parallel on PostgreSQL):
    each seat is held by at most one order, every refusal SEAT_TAKEN, and paying them all
    puts exactly the sold seats' money in escrow."""
    postgres = db_url.startswith("postgresql")
    db = Database(db_url, pool_size=20)
    ledger = Ledger(db, clock)
    try:
        await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
        cs = service(db, ledger, clock)
        v = await venue(cs)
        people = [await buyer(cs, f"+86139{n:08d}", balance=20_000) for n in range(24 if postgres else 12)]
        wanted = [["4-1", "4-2"], ["4-2", "4-3"], ["4-3"], ["4-1"], ["1-1", "4-3"]]

        async def press(n: int, p: Principal) -> Any:
            return await cs.lock(p, v.show.id, wanted[n % len(wanted)], idempotency_key=f"k{n}")

        results = await asyncio.gather(*(press(n, p) for n, p in enumerate(people)), return_exceptions=True)
        won = [r for r in results if not isinstance(r, BaseException)]
        codes = {r.code for r in results if isinstance(r, MobipayError)}
        assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, MobipayError)]
        assert won and codes == {"SEAT_TAKEN"}
        held = [t.seat for o in won for t in o.tickets]
        assert len(held) == len(set(held)), held  # no seat twice
        async with db.begin() as conn:
            rows = (await conn.execute(text("SELECT seat FROM cinema_seats"))).scalars().all()
        assert sorted(rows) == sorted(held)
        with pytest.raises(IntegrityError):  # the database itself refuses a second holder of a seat
            async with db.begin() as conn:
                await conn.execute(text("INSERT INTO cinema_seats (show_id, seat, order_id, state) "
                                        "VALUES (:s, :seat, 'cno_intruder', 'sold')"),
                                   {"s": v.show.id, "seat": held[0]})
        paid = await asyncio.gather(*(cs.pay(p, r.id, idempotency_key="pay")
                                      for p, r in zip(people, results, strict=True)
                                      if not isinstance(r, BaseException)))
        assert all(o.state == "paid" for o in paid)
        assert await money(cs, escrow_account(v.cinema_id)) == [2_500 * len(held)]
        assert (await ledger.verify()).ok
    finally:
        await ledger.stop()
        await db.dispose()


async def test_two_kiosks_at_once_print_once(cs: Cinemas) -> None:
    v = await venue(cs)
    me = await buyer(cs, "+8613900139060")
    order = await cs.pay(me, (await cs.lock(me, v.show.id, ["1-1"], idempotency_key="l")).id, idempotency_key="p")
    second = KioskStub(v.kiosk.id + "b", v.merchant.id, v.kiosk.store_id, "KIOSK-2")
    results = await asyncio.gather(cs.check(v.kiosk, order.code or "", request_id="a"),
                                   cs.check(second, order.code or "", request_id="b"), return_exceptions=True)
    printed = [r for r in results if not isinstance(r, BaseException)]
    assert len(printed) == 1, results
    assert [r.code for r in results if isinstance(r, MobipayError)] == ["TICKETS_ALREADY_PRINTED"]
