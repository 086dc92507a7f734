"""The bill zone on SQLite and PostgreSQL against the billers SIMULATOR (a real HTTP server
in its own process): the registry, fetch then pay for each kind of biller, every failure
path (timeout then late success, failure after the hold, duplicate submission, a bill paid
twice), and reconciliation differences of each kind. Balances and holds after each step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.bills.gateway_http import HttpBillerGateway
from mobipay.bills.model import Category, parse_billers
from mobipay.bills.reference_data import shipped_billers
from mobipay.bills.service import BillsService, payable
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState, PartnerStatus
from mobipay.orders.service import OrderBook, StatementLine
from mobipay.platform.db import Database
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.conftest import BILLER_SECRET
from tests.support import partners

PIN = "135790"  # bills may be over the password-free amount
ID_SAMPLE = "11010519491231002X"  # medical insurance is paid by the insured's identity card number


@pytest.fixture
def clock() -> ManualClock:
    """Noon in Shanghai today: every biller is open, and the simulator's dates are ours."""
    return ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0))


@pytest.fixture
async def bills(db: Database, ledger: Ledger, clock: ManualClock, billers_url: str, tmp_path: Path
                ) -> AsyncIterator[BillsService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    gateway = HttpBillerGateway(billers_url, BILLER_SECRET.encode(), timeout_s=1.0)
    service = BillsService(uow, WalletService(uow, number_segments(), b"test-secret"), OrderBook(uow, tmp_path),
                           {"biller_http": gateway})
    await service.import_billers(shipped_billers(), actor="test", reason="test")
    yield service
    await gateway.close()


async def payer(bills: BillsService, balance: int = 100_000) -> Principal:
    """A subscriber at Tier III (so the tier limits do not get in the way), funded, with a PIN."""
    user = await bills.wallet.create_user("+8613800138000", actor="test", reason="test")
    await bills.wallet.set_pin(user.msisdn, PIN)
    await set_tier3(bills, user.id)
    assert (await bills.uow.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, balance),
                                                          Leg.credit(user.account_code, balance)), "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def money(bills: BillsService, me: Principal, code: str) -> tuple[int, int, int]:
    await bills.uow.ledger.open_account(bills_payable_spec(code))
    accounts = await bills.uow.ledger.accounts([me.account_code, payable(code)])
    return accounts[me.account_code].balance, accounts[me.account_code].available, accounts[payable(code)].balance


def bills_payable_spec(code: str) -> Any:
    from mobipay.ledger.model import AccountKind
    from mobipay.ledger.service import AccountSpec

    return AccountSpec(payable(code), AccountKind.LIABILITY, name=f"Payable to {code}")


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


def forget(url: str, code: str, order_id: str) -> None:
    httpx.post(f"{url}/sim/billers/{code}/orders/{order_id}/forget").raise_for_status()


def behave(url: str, code: str, **behaviour: Any) -> None:
    partners.behave(f"{url}/sim/billers/{code}", **behaviour)


def release(url: str, code: str) -> int:
    return partners.release(f"{url}/sim/billers/{code}")


async def test_the_registry(bills: BillsService) -> None:
    everything = await bills.find(limit=1000)
    assert len(everything) >= 230 and len({b.city for b in everything}) == 50
    assert {b.category for b in everything} == set(Category)
    assert len(await bills.cities()) == 50
    shanghai_gas = await bills.find(city="上海", category=Category.GAS)
    assert [b.code for b in shanghai_gas] == ["GAS_SH"] and shanghai_gas[0].name == "上海燃气"
    assert {b.code for b in await bills.find(q="羊城通")} == {"BUS_GZ"}
    assert await refused(bills.biller("NOPE")) == "BILLER_NOT_FOUND"
    assert await bills.import_billers(shipped_billers(), actor="t", reason="again") == (0, len(everything))
    with pytest.raises(ValueError, match="line 2"):
        parse_billers("code,name,category\nX,Y,nonsense\n")


async def test_fetch_then_pay_a_bill(bills: BillsService) -> None:
    me = await payer(bills)
    before = await money(bills, me, "WATER_BJ")
    fetched = await bills.fetch(me, "WATER_BJ", "12345678")
    bill = fetched.bill
    assert bill.amount_due > 0 and bill.customer_name.startswith("**")  # masked: only the last character shows
    assert await refused(bills.pay(me, "WATER_BJ", "12345678", bill.amount_due, idempotency_key="w0")) == (
        "BILL_FETCH_REQUIRED")
    assert await refused(bills.pay(me, "WATER_BJ", "12345678", bill.amount_due - 10, idempotency_key="w0",
                                   bill_id=fetched.id)) == "AMOUNT_NOT_ALLOWED"  # exact bills are paid in full
    assert await refused(bills.pay(me, "WATER_BJ", "87654321", bill.amount_due, idempotency_key="w0",
                                   bill_id=fetched.id)) == "BILL_NOT_FOUND"  # another customer's bill
    paid = await bills.pay(me, "WATER_BJ", "12345678", bill.amount_due, idempotency_key="w1", bill_id=fetched.id,
                           pin=PIN)
    assert paid.state is OrderState.SUCCEEDED and paid.partner_ref.startswith("WATE")
    again = await bills.pay(me, "WATER_BJ", "12345678", bill.amount_due, idempotency_key="w1", bill_id=fetched.id,
                            pin=PIN)
    assert (again.id, again.replayed) == (paid.id, True)  # a duplicate submission pays once
    assert await money(bills, me, "WATER_BJ") == (before[0] - bill.amount_due, before[1] - bill.amount_due,
                                                  bill.amount_due)
    assert await refused(bills.fetch(me, "WATER_BJ", "12345678")) == "BILL_NOT_FOUND"  # paid in full
    assert (await bills.get(me, paid.id)).details["bill_number"] == bill.bill_number


async def test_each_kind_of_biller(bills: BillsService, clock: ManualClock) -> None:
    me = await payer(bills)
    # bus card: no bills, any amount within min..max
    assert await refused(bills.fetch(me, "BUS_SH", "12345678")) == "BILL_NOT_FOUND"
    assert (await bills.pay(me, "BUS_SH", "12345678", 5_000, idempotency_key="b1")).state is OrderState.SUCCEEDED
    assert await refused(bills.pay(me, "BUS_SH", "12345678", 500, idempotency_key="b2")) == "AMOUNT_NOT_ALLOWED"
    # electricity: optional bill, over-payment allowed; the same period again needs confirmation
    f = await bills.fetch(me, "POWER_BJ", "1234567890")
    assert (await bills.pay(me, "POWER_BJ", "1234567890", f.bill.amount_due + 5_000, idempotency_key="e1",
                            bill_id=f.id, pin=PIN)).state is OrderState.SUCCEEDED
    assert await refused(bills.pay(me, "POWER_BJ", "1234567890", 3_000, idempotency_key="e2")) == (
        "DUPLICATE_BILL_PAYMENT")
    assert (await bills.pay(me, "POWER_BJ", "1234567890", 3_000, idempotency_key="e2",
                            confirm_duplicate=True)).state is OrderState.SUCCEEDED
    # gas: partial payments up to the amount due
    g = await bills.fetch(me, "GAS_SH", "12345678")
    assert await refused(bills.pay(me, "GAS_SH", "12345678", g.bill.amount_due + 10, idempotency_key="g1",
                                   bill_id=g.id)) == "AMOUNT_NOT_ALLOWED"
    assert (await bills.pay(me, "GAS_SH", "12345678", 100, idempotency_key="g2", bill_id=g.id)).state is (
        OrderState.SUCCEEDED)
    # bad customer numbers, no open bill, outside opening hours
    assert await refused(bills.fetch(me, "WATER_BJ", "12ab")) == "INVALID_CUSTOMER_ID"
    assert await refused(bills.fetch(me, "WATER_BJ", "00001234")) == "BILL_NOT_FOUND"
    clock.set(clock.now().replace(hour=23, minute=30))
    assert await refused(bills.pay(me, "GAS_SH", "12345678", 100, idempotency_key="g3", bill_id=g.id)) == (
        "BILLER_CLOSED")
    assert len(await bills.mine(me)) == 4


async def test_failures_after_the_hold(bills: BillsService, billers_url: str, clock: ManualClock) -> None:
    me = await payer(bills)
    before = await money(bills, me, "BUS_BJ")
    # the biller refuses after we held the money: the hold is released
    refused_payment = await bills.pay(me, "BUS_BJ", "99991234", 2_000, idempotency_key="f1")
    assert (refused_payment.state, refused_payment.reason) == (OrderState.FAILED, "account_closed")
    assert await money(bills, me, "BUS_BJ") == before
    # timeout, then the biller did it after all (late success): pending, then settled once
    behave(billers_url, "BUS_BJ", timeout_rate=1.0, hang_s=None)
    late = await bills.pay(me, "BUS_BJ", "12345678", 3_000, idempotency_key="f2")
    behave(billers_url, "BUS_BJ", processing_rate=1.0, settle_after_s=None)  # held until released
    later = await bills.pay(me, "BUS_BJ", "22345678", 4_000, idempotency_key="f3")
    assert (late.state, later.state) == (OrderState.PENDING, OrderState.PENDING)
    balance, available, owed = await money(bills, me, "BUS_BJ")
    assert (balance, available, owed) == (before[0], before[1] - 7_000, before[2])  # held, not taken
    behave(billers_url, "BUS_BJ")
    assert release(billers_url, "BUS_BJ") == 1
    clock.advance(10)
    assert await bills.orders.resolve_pending() == 2
    assert await money(bills, me, "BUS_BJ") == (before[0] - 7_000, before[1] - 7_000, 7_000)
    clock.advance(3600)
    assert await bills.orders.resolve_pending() == 0
    assert (await bills.uow.ledger.verify()).ok


async def test_reconciliation_differences(bills: BillsService, billers_url: str) -> None:
    me = await payer(bills)
    ok = await bills.pay(me, "BUS_SZ", "12345678", 1_000, idempotency_key="r1")
    behave(billers_url, "BUS_SZ", timeout_rate=1.0, hang_s=None)
    pending = await bills.pay(me, "BUS_SZ", "22345678", 2_000, idempotency_key="r2")
    behave(billers_url, "BUS_SZ")
    gone = await bills.pay(me, "BUS_SZ", "32345678", 3_000, idempotency_key="r3")
    forget(billers_url, "BUS_SZ", gone.id)
    stranger = HttpBillerGateway(billers_url, BILLER_SECRET.encode())  # paid there, unknown here
    assert (await stranger.pay("bp_unknown_here", "BUS_SZ", "42345678", 500, "")).status is PartnerStatus.SUCCEEDED
    await stranger.close()
    today = datetime.now(SHANGHAI).date()

    [report] = await bills.reconcile(today, "BUS_SZ")
    assert (report.lines, report.matched, report.settled_from_file) == (3, 1, 1)
    assert sorted((e["kind"], e["order_id"]) for e in report.exceptions) == [
        ("missing_here", "bp_unknown_here"), ("missing_there", gone.id)]
    assert (await bills.get(me, pending.id)).state is OrderState.SUCCEEDED
    assert ok.state is OrderState.SUCCEEDED
    # an amount that differs from the biller's file is listed too
    mismatch = await bills.orders.reconcile("biller:BUS_SZ", today, [
        StatementLine(ok.id, ok.partner_ref, ok.amount + 1, PartnerStatus.SUCCEEDED)])
    assert [e["kind"] for e in mismatch.exceptions] == ["amount_mismatch", "missing_there", "missing_there"]
    contradicts = await bills.orders.reconcile("biller:BUS_SZ", today, [
        StatementLine(ok.id, ok.partner_ref, ok.amount, PartnerStatus.FAILED)])
    assert contradicts.exceptions[0]["kind"] == "status_mismatch"
    every = await bills.reconcile(today)
    assert len(every) >= 230


async def sms(bills: BillsService) -> list[tuple[str, str]]:
    from sqlalchemy import text

    async with bills.uow.db.begin() as conn:
        rows = await conn.execute(text("SELECT key, payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at, id"))
        import json

        return [(r[0], json.loads(r[1])["template"]) for r in rows]


async def test_saved_bills_remind_once_and_autopay(bills: BillsService, clock: ManualClock) -> None:
    from mobipay.bills.saved import SavedBills

    saved = SavedBills(bills)
    me = await payer(bills)
    water = await saved.save(me, "WATER_BJ", "12345678", nickname="家里的水费")
    power = await saved.save(me, "POWER_SH", "1234567890", autopay_limit=60_000)
    assert await refused(saved.save(me, "BUS_SH", "12345678", autopay_limit=1_000)) == "AMOUNT_NOT_ALLOWED"
    assert await refused(saved.save(me, "WATER_BJ", "1x")) == "INVALID_CUSTOMER_ID"
    assert {s.id for s in await saved.mine(me)} == {water.id, power.id}
    before = (await bills.uow.ledger.account(me.account_code)).balance

    assert await saved.check_due() == 2
    templates = [t for _, t in await sms(bills)]
    assert templates.count("bill.reminder") == 1 and templates.count("bill.autopay") == 1
    assert "bill.autopay_refused" not in templates, await sms_params(bills)
    [autopaid] = await bills.mine(me)
    assert autopaid.state is OrderState.SUCCEEDED and autopaid.details["biller"] == "POWER_SH"
    assert (await bills.uow.ledger.account(me.account_code)).balance == before - autopaid.amount
    assert await saved.check_due() == 0  # checked recently
    clock.advance(13 * 3600)
    assert await saved.check_due() == 2  # the water bill is the same one: no second reminder
    assert [t for _, t in await sms(bills)].count("bill.reminder") == 1
    assert len(await bills.mine(me)) == 1  # and the power bill, paid, has no new bill: nothing paid twice
    await saved.forget(me, water.id)
    assert await refused(saved.forget(me, water.id)) == "SAVED_BILL_NOT_FOUND"


async def test_complaints_deadlines_and_escalation(bills: BillsService, clock: ManualClock) -> None:
    from mobipay.bills.complaints import Complaints
    from mobipay.bills.model import ComplaintReason, ComplaintState

    complaints = Complaints(bills)
    me = await payer(bills)
    paid = await bills.pay(me, "BUS_SH", "12345678", 2_000, idempotency_key="c1")
    c = await complaints.raise_(me, paid.id, ComplaintReason.NOT_CREDITED, "the card shows nothing")
    assert (c.state, c.assignee, c.biller) == (ComplaintState.OPEN, "biller", "BUS_SH")
    assert await refused(complaints.raise_(me, paid.id, ComplaintReason.OTHER)) == "COMPLAINT_EXISTS"
    assert await refused(complaints.raise_(me, "bp_nope", ComplaintReason.OTHER)) == "BILL_NOT_FOUND"
    assert await complaints.escalate_overdue() == 0
    clock.advance(49 * 3600)  # the biller did not answer in 48 h
    assert [x.id for x in await complaints.queue(overdue_only=True)] == [c.id]
    assert await complaints.escalate_overdue() == 1
    assert (await complaints.get(me, c.id)).assignee == "operator"
    moved = await complaints.move(c.id, ComplaintState.IN_PROGRESS, actor="ops", note="asked the biller")
    assert moved.state is ComplaintState.IN_PROGRESS
    assert await refused(complaints.move(c.id, ComplaintState.OPEN, actor="ops", note="")) == (
        "COMPLAINT_STATE_INVALID")
    assert await refused(complaints.move(c.id, ComplaintState.RESOLVED, actor="ops", note=" ")) == (
        "VALIDATION_FAILED")
    done = await complaints.move(c.id, ComplaintState.RESOLVED, actor="ops", note="credited on the card")
    assert (done.state, done.resolution) == (ComplaintState.RESOLVED, "credited on the card")
    assert await refused(complaints.move(c.id, ComplaintState.REJECTED, actor="ops", note="x")) == (
        "COMPLAINT_STATE_INVALID")
    clock.advance(30 * 24 * 3600)
    assert await complaints.escalate_overdue() == 0  # closed complaints never escalate
    templates = [t for _, t in await sms(bills)]
    assert {"complaint.open", "complaint.in_progress", "complaint.resolved"} <= set(templates)
    again = await complaints.raise_(me, paid.id, ComplaintReason.DUPLICATE)  # a new one once closed
    assert [x.id for x in await complaints.mine(me)] == [again.id, c.id]


async def sms_params(bills: BillsService) -> list[object]:
    import json

    from sqlalchemy import text

    async with bills.uow.db.begin() as conn:
        return [json.loads(r[0])["params"] for r in await conn.execute(text(
            "SELECT payload FROM outbox_messages WHERE topic = 'sms.send'"))]


CATEGORY_SAMPLES = {  # one biller of each category, a customer number it accepts
    "WATER_SH": "12345678", "POWER_GZ": "1234567890", "GAS_CD": "12345678", "TEL_WH": "010-12345678",
    "BUS_XA": "12345678", "CATV_HZ": "12345678", "HEAT_HRB": "AB123456", "MED_KM": ID_SAMPLE,
}


async def test_every_category_pays(bills: BillsService) -> None:
    me = await payer(bills, balance=5_000_000)
    for code, customer in CATEGORY_SAMPLES.items():
        biller = await bills.biller(code)
        if biller.fetch.value == "none":
            amount, bill_id = max(biller.minimum, 2_000), None
        else:
            fetched = await bills.fetch(me, code, customer)
            amount, bill_id = fetched.bill.amount_due, fetched.id
        paid = await bills.pay(me, code, customer, amount, idempotency_key=f"cat-{code}", bill_id=bill_id, pin=PIN)
        assert paid.state is OrderState.SUCCEEDED, (code, paid.reason)
        assert paid.details["category"] == biller.category.value
    assert {o.details["category"] for o in await bills.mine(me)} == {c.value for c in Category}


async def test_resolving_paid_here_unknown_there(bills: BillsService, billers_url: str) -> None:
    me = await payer(bills)
    lost = await bills.pay(me, "BUS_GZ", "12345678", 1_000, idempotency_key="l1")
    refund_me = await bills.pay(me, "BUS_GZ", "22345678", 2_000, idempotency_key="l2")
    for order in (lost, refund_me):
        forget(billers_url, "BUS_GZ", order.id)
    today = datetime.now(SHANGHAI).date()
    [report] = await bills.reconcile(today, "BUS_GZ")
    assert sorted(e["kind"] for e in report.exceptions) == ["missing_there", "missing_there"]
    balance = (await bills.uow.ledger.account(me.account_code)).balance
    await bills.orders.repush(lost.id, actor="ops", reason="biller lost it")
    await bills.orders.refund(refund_me.id, actor="ops", reason="customer asked")
    await bills.orders.refund(refund_me.id, actor="ops", reason="pressed twice")  # once only
    assert (await bills.uow.ledger.account(me.account_code)).balance == balance + 2_000
    [again] = await bills.reconcile(today, "BUS_GZ")
    assert [e["order_id"] for e in again.exceptions] == [refund_me.id]  # the repushed one is there now
    assert await refused(bills.orders.refund("bp_nope", actor="ops", reason="x")) == "NOT_FOUND"
    assert (await bills.uow.ledger.verify()).ok


async def set_tier3(bills: BillsService, user_id: str) -> None:
    from sqlalchemy import update

    from mobipay.wallet.tables import users

    async with bills.uow.db.begin() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(tier=3))


async def test_a_paid_bill_is_never_paid_again(bills: BillsService) -> None:
    """An exact, fetch-mandatory bill paid once: paying it again with the same fetch, another
    fetch of the same bill, or two payments racing, is refused even with confirm_duplicate,
    and no money moves. Another bill of the same account is still paid with confirmation."""
    me = await payer(bills, balance=2_000_000)
    first = await bills.fetch(me, "WATER_BJ", "12345678")
    second = await bills.fetch(me, "WATER_BJ", "12345678")  # the same bill, fetched again before paying
    due = first.bill.amount_due
    paid = await bills.pay(me, "WATER_BJ", "12345678", due, idempotency_key="x1", bill_id=first.id, pin=PIN)
    assert paid.state is OrderState.SUCCEEDED
    assert await refused(bills.fetch(me, "WATER_BJ", "12345678")) == "BILL_NOT_FOUND"  # the biller: no open bill
    before = await money(bills, me, "WATER_BJ")
    for bill_id, key in ((first.id, "x2"), (second.id, "x3")):
        assert await refused(bills.pay(me, "WATER_BJ", "12345678", due, idempotency_key=key, bill_id=bill_id,
                                       pin=PIN, confirm_duplicate=True)) == "BILL_ALREADY_PAID"
    assert await money(bills, me, "WATER_BJ") == before
    assert (await bills.pay(me, "WATER_BJ", "12345678", due, idempotency_key="x1", bill_id=first.id,
                            pin=PIN)).replayed  # the payment itself still answers its retries
    assert await refused(bills.pay(me, "WATER_BJ", "12345678", due + 30_000, idempotency_key="x1",
                                   bill_id=first.id)) == "IDEMPOTENCY_CONFLICT"  # the key first, before the PIN

    # two payments of one bill at once (different keys, both confirmed): one pays, one is refused
    race = await bills.fetch(me, "HEAT_BJ", "A1234567")
    outcomes = await asyncio.gather(*(bills.pay(me, "HEAT_BJ", "A1234567", race.bill.amount_due,
                                                idempotency_key=f"r{n}", bill_id=race.id, pin=PIN,
                                                confirm_duplicate=True) for n in range(2)), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["BillAlreadyPaid", "PartnerOrder"], outcomes
    assert (await money(bills, me, "HEAT_BJ"))[2] == race.bill.amount_due

    # partial bills: paid in parts up to what is due, then consumed
    gas = await bills.fetch(me, "GAS_SH", "12345678")
    part = gas.bill.amount_due // 2
    assert (await bills.pay(me, "GAS_SH", "12345678", part, idempotency_key="g1", bill_id=gas.id)).state is (
        OrderState.SUCCEEDED)
    assert await refused(bills.pay(me, "GAS_SH", "12345678", gas.bill.amount_due, idempotency_key="g2",
                                   bill_id=gas.id, pin=PIN, confirm_duplicate=True)) == "AMOUNT_NOT_ALLOWED"
    assert (await bills.pay(me, "GAS_SH", "12345678", gas.bill.amount_due - part, idempotency_key="g3",
                            bill_id=gas.id, pin=PIN, confirm_duplicate=True)).state is OrderState.SUCCEEDED
    assert await refused(bills.pay(me, "GAS_SH", "12345678", 100, idempotency_key="g4", bill_id=gas.id,
                                   confirm_duplicate=True)) == "BILL_ALREADY_PAID"
    assert (await money(bills, me, "GAS_SH"))[2] == gas.bill.amount_due

    # the legitimate duplicate: the same account paid again for another bill, once confirmed
    power = await bills.fetch(me, "POWER_BJ", "1234567890")
    assert (await bills.pay(me, "POWER_BJ", "1234567890", power.bill.amount_due, idempotency_key="e1",
                            bill_id=power.id, pin=PIN)).state is OrderState.SUCCEEDED
    assert await refused(bills.pay(me, "POWER_BJ", "1234567890", 3_000, idempotency_key="e2")) == (
        "DUPLICATE_BILL_PAYMENT")
    assert (await bills.pay(me, "POWER_BJ", "1234567890", 3_000, idempotency_key="e2",
                            confirm_duplicate=True)).state is OrderState.SUCCEEDED
    assert (await bills.uow.ledger.verify()).ok
