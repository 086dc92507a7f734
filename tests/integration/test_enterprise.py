"""The enterprise one-card on SQLite and PostgreSQL: an employer onboarded as a merchant,
employees enrolled from a CSV file with per-row errors, a funding run through the ledger's
batch path, a payment at the canteen split between the allowance and the wallet on one
receipt, an outside shop refused the allowance, the meal window's edges, and the month end
(expiry back to the employer, rollover with a cap). Every balance asserted; the books
verified."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from mobipay.enterprise.model import rules_from
from mobipay.enterprise.service import Employer, Enterprise, allowance_account, funds_account
from mobipay.instore.service import InStore
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.signing import new_rsa_key
from mobipay.platform.db import Database
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService

START = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # Monday 12:00 in Beijing: lunch
RULES = rules_from({"windows": [{"name": "lunch", "start": "11:00", "end": "13:30"},
                                {"name": "dinner", "start": "17:00", "end": "19:00"}],
                    "per_meal": 2_500, "per_day": 4_000, "month_end": "expire"})
CODES = iter(range(100, 999))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def ent(db: Database, ledger: Ledger, clock: ManualClock) -> Enterprise:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"t")
    merchants = MerchantService(uow, wallet, new_rsa_key()[0], categories())
    return Enterprise(uow, merchants, wallet, InStore(uow, merchants, wallet))


def code() -> str:
    body = f"91110000E000{next(CODES):03d}Y4"
    return body + credit_code_check_char(body)


async def merchant(ent: Enterprise, name: str, mcc: str = "5812") -> tuple[Merchant, str]:
    m = await ent.merchants.apply(name=name, credit_code=code(), legal_person="李经理", mcc=mcc,
                                  contact="13800138000", website="", settlement_account="6222020000111122222")
    return m, await ent.merchants.add_store(m, f"{name} 一楼", "科技园 1 号", "深圳")


async def employer(ent: Enterprise, name: str = "华为技术有限公司", **rules: Any) -> Employer:
    e = await ent.onboard(name=name, credit_code=code(), legal_person="王总", contact="13800138001",
                          settlement_account="6222020000333344444", rules=rules_from({**RULES.to_json(), **rules}),
                          actor="ops:zhang")
    await ent.deposit(e.id, 1_000_000, bank_reference=f"BANK-{e.id[-6:]}", actor="ops:zhang")
    return e


async def subscriber(ent: Enterprise, msisdn: str, balance: int = 10_000) -> Principal:
    user = await ent.wallet.create_user(msisdn, actor="t", reason="t")
    if balance:
        assert (await ent.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                                  Leg.credit(user.account_code, balance)),
                                                   "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def money(ent: Enterprise, *codes: str) -> list[int]:
    accounts = await ent.uow.ledger.accounts(list(codes))
    return [accounts[c].balance for c in codes]


async def refused(coro: Any) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value


async def test_csv_enrolment_with_per_row_errors(ent: Enterprise) -> None:
    boss = await employer(ent)
    other = await employer(ent, "腾讯科技")
    await subscriber(ent, "+8613900139001")
    await subscriber(ent, "+8613900139002")
    await subscriber(ent, "+8613900139003")
    await ent.enrol(other.id, "13900139003", name="赵六")
    await subscriber(ent, "+8613900139004")
    text = ("phone,name,employee_no\n"
            "13900139001,张三,E001\n"
            "12345,坏号码,E002\n"
            "+86 139 0013 9001,张三又一次,E003\n"
            "13700000000,没有钱包,E004\n"
            "13900139003,赵六,E005\n"
            "13900139002,李四,E006\n")
    result = await ent.import_csv(boss.id, text, idempotency_key="imp-1", actor="hr:wang")
    assert [(r.line, r.ok, r.code) for r in result.rows] == [
        (2, True, ""), (3, False, "PHONE_INVALID"), (4, False, "DUPLICATE_IN_FILE"), (5, False, "NOT_A_SUBSCRIBER"),
        (6, False, "ENROLLED_ELSEWHERE"), (7, True, "")]
    assert (result.enrolled, result.failed) == (2, 4)
    staff = await ent.employees(boss.id)
    assert sorted((e.msisdn, e.name, e.employee_no) for e in staff) == [
        ("+8613900139001", "张三", "E001"), ("+8613900139002", "李四", "E006")]
    again = await ent.import_csv(boss.id, text, idempotency_key="imp-1")
    assert again.replayed and again.rows == result.rows and len(await ent.employees(boss.id)) == 2
    assert (await refused(ent.import_csv(boss.id, text + "13900139004\n", idempotency_key="imp-1"))).code == \
        "IDEMPOTENCY_CONFLICT"
    second = await ent.import_csv(boss.id, "13900139001\n", idempotency_key="imp-2")
    assert [(r.ok, r.code) for r in second.rows] == [(False, "ALREADY_ENROLLED")]
    assert (await refused(ent.import_csv(boss.id, "phone,name\n", idempotency_key="imp-3"))).code == \
        "ENROLMENT_FILE_INVALID"
    both = await asyncio.gather(*(ent.import_csv(boss.id, "13900139004\n", idempotency_key="imp-race")
                                  for _ in range(2)))
    assert [r.ok for r in both[0].rows] == [True] and both[0].rows == both[1].rows
    assert sorted(r.replayed for r in both) == [False, True] and len(await ent.employees(boss.id)) == 3
    one = await refused(ent.enrol(boss.id, "13700000000"))
    assert one.code == "EMPLOYEE_INVALID" and one.extra["reason"] == "NOT_A_SUBSCRIBER"


async def setup_canteen(ent: Enterprise) -> tuple[Employer, Merchant, str, Principal, str]:
    boss = await employer(ent)
    canteen, store = await merchant(ent, "园区食堂")
    await ent.name_merchant(boss.id, canteen.id, label="canteen", actor="hr:wang")
    me = await subscriber(ent, "+8613900139001", balance=10_000)
    emp = await ent.enrol(boss.id, me.msisdn, name="张三")
    return boss, canteen, store, me, emp.id


async def test_funding_run_and_split_payment_on_one_receipt(ent: Enterprise, clock: ManualClock) -> None:
    boss, canteen, store, me, emp = await setup_canteen(ent)
    others = [await subscriber(ent, f"+861390013910{n}", balance=0) for n in range(3)]
    for o in others:
        await ent.enrol(boss.id, o.msisdn)
    run = await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec-meal", actor="hr:wang")
    assert (run.employees, run.total, run.replayed) == (4, 120_000, False)
    again = await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec-meal")
    assert again.replayed and again.id == run.id
    assert (await refused(ent.fund(boss.id, "2026-12", 20_000, idempotency_key="dec-meal"))).code == \
        "IDEMPOTENCY_CONFLICT"
    assert await money(ent, funds_account(boss.id), allowance_account(emp)) == [1_000_000 - 120_000, 30_000]
    too_much = await refused(ent.fund(boss.id, "2026-12", 300_000, idempotency_key="dec-big"))
    assert too_much.code == "EMPLOYER_FUNDS_INSUFFICIENT"
    assert await money(ent, funds_account(boss.id)) == [880_000]  # nothing of the refused run moved

    # lunch: 30.00 CNY, the lunch cap is 25.00: the allowance pays 25, the wallet 5, one trade
    receipt = await ent.pay(me, canteen.id, store, 3_000, idempotency_key="lunch-1")
    assert (receipt.amount, receipt.allowance, receipt.wallet, receipt.window) == (3_000, 2_500, 500, "lunch")
    assert receipt.reason == "the lunch cap is reached" and receipt.allowance_left == 27_500
    assert await money(ent, allowance_account(emp), me.account_code, canteen.account_code) == [27_500, 9_500, 3_000]
    trade = await ent.merchants.trade(receipt.trade_id)
    assert (trade.amount, trade.merchant_id, trade.store_id, trade.state.value) == (3_000, canteen.id, store,
                                                                                    "TRADE_SUCCESS")
    posted = await ent.uow.ledger.transfer(receipt.transfer_id)
    assert sorted((leg.account, leg.side.value, leg.amount) for leg in posted.legs) == sorted([
        (allowance_account(emp), "D", 2_500), (me.account_code, "D", 500),
        (canteen.account_code, "C", 3_000)])
    replay = await ent.pay(me, canteen.id, store, 3_000, idempotency_key="lunch-1")
    assert replay.replayed and replay.trade_id == receipt.trade_id
    assert await money(ent, allowance_account(emp), me.account_code) == [27_500, 9_500]
    assert (await refused(ent.pay(me, canteen.id, store, 100, idempotency_key="lunch-1"))).code == \
        "IDEMPOTENCY_CONFLICT"

    # the same lunch again: the meal's cap is used, the wallet pays all
    more = await ent.pay(me, canteen.id, store, 800, idempotency_key="lunch-2")
    assert (more.allowance, more.wallet) == (0, 800)
    # dinner: 15 left of the day's 40
    clock.set(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))  # 18:00 Beijing
    dinner = await ent.pay(me, canteen.id, store, 2_000, idempotency_key="dinner-1")
    assert (dinner.allowance, dinner.wallet, dinner.reason) == (1_500, 500, "the day's cap is reached")
    assert await money(ent, allowance_account(emp), me.account_code, canteen.account_code) == [
        26_000, 9_500 - 800 - 500, 3_000 + 800 + 2_000]
    # a refund through the merchant API would pay the allowance's part into the wallet: refused
    assert (await refused(ent.merchants.refund(canteen, trade.out_trade_no, "r1", 3_000))).code == \
        "ALLOWANCE_NOT_ACCEPTED"
    report = await ent.report(boss.id, "2026-12")
    assert [(d.day, d.payments, d.allowance, d.wallet) for d in report.by_day] == [("2026-12-07", 3, 4_000, 1_800)]
    mine = next(s for s in report.by_employee if s.employee_id == emp)
    assert (mine.funded, mine.allowance, mine.wallet, mine.payments, mine.balance) == (30_000, 4_000, 1_800, 3,
                                                                                        26_000)
    assert (await ent.uow.ledger.verify()).ok


async def test_outside_shop_is_refused_the_allowance(ent: Enterprise) -> None:
    boss, canteen, store, me, emp = await setup_canteen(ent)
    await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    outside, outside_store = await merchant(ent, "街边奶茶店")
    before = await money(ent, allowance_account(emp), me.account_code, outside.account_code)
    err = await refused(ent.pay(me, outside.id, outside_store, 1_000, idempotency_key="tea"))
    assert err.code == "ALLOWANCE_NOT_ACCEPTED" and err.status == 422
    assert await money(ent, allowance_account(emp), me.account_code, outside.account_code) == before
    assert (await refused(ent.preview(me, outside.id, 1_000))).code == "ALLOWANCE_NOT_ACCEPTED"
    # someone not enrolled is not an employee at the canteen either
    stranger = await subscriber(ent, "+8613900139999")
    assert (await refused(ent.pay(stranger, canteen.id, store, 1_000, idempotency_key="x"))).code == "NOT_AN_EMPLOYEE"
    # and a store of another merchant is not the canteen's
    assert (await refused(ent.pay(me, canteen.id, outside_store, 1_000, idempotency_key="y"))).code == \
        "MERCHANT_NOT_FOUND"
    assert await money(ent, allowance_account(emp), me.account_code) == before[:2]


async def test_meal_window_edges_at_the_counter(ent: Enterprise, clock: ManualClock) -> None:
    """Lunch is 11:00 included to 13:30 excluded, Beijing time."""
    boss, canteen, store, me, emp = await setup_canteen(ent)
    await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    left, wallet = 30_000, 10_000
    for local, allowance in (((10, 59, 59), 0), ((11, 0, 0), 1_000), ((13, 29, 59), 1_000), ((13, 30, 0), 0)):
        clock.set(datetime(2026, 12, 7, *local, tzinfo=SHANGHAI).astimezone(UTC))
        receipt = await ent.pay(me, canteen.id, store, 1_000, idempotency_key=f"edge-{local}")
        assert (receipt.allowance, receipt.wallet) == (allowance, 1_000 - allowance), local
        left, wallet = left - allowance, wallet - 1_000 + allowance
        assert await money(ent, allowance_account(emp), me.account_code) == [left, wallet]


async def test_month_end_expiry_and_rollover(ent: Enterprise, clock: ManualClock) -> None:
    boss, canteen, store, me, emp = await setup_canteen(ent)
    roll = await employer(ent, "比亚迪", month_end="rollover", rollover_cap=5_000)
    friend = await subscriber(ent, "+8613900139002", balance=0)
    roller = (await ent.enrol(roll.id, friend.msisdn)).id
    await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    await ent.fund(roll.id, "2026-12", 30_000, idempotency_key="dec")
    await ent.pay(me, canteen.id, store, 2_000, idempotency_key="lunch")
    assert (await refused(ent.close_month(boss.id, "2026-12"))).code == "MONTH_INVALID"  # not ended yet
    # January 1st, 08:00 Beijing: January's allowance is funded before the worker closes December
    clock.set(datetime(2027, 1, 1, 8, 0, tzinfo=SHANGHAI).astimezone(UTC))
    await ent.fund(boss.id, "2027-01", 30_000, idempotency_key="jan")
    assert await money(ent, allowance_account(emp)) == [28_000 + 30_000]
    assert await ent.close_due() == 2
    # expiry: December's 280.00 CNY left goes back, January's 300 stays
    assert await money(ent, allowance_account(emp), funds_account(boss.id)) == [
        30_000, 1_000_000 - 30_000 - 30_000 + 28_000]
    # rollover with a 50.00 cap: 50 kept, 250 back to the employer
    assert await money(ent, allowance_account(roller), funds_account(roll.id)) == [5_000, 1_000_000 - 30_000 + 25_000]
    again = await ent.close_month(boss.id, "2026-12")
    assert again.replayed and (again.kept, again.returned) == (0, 28_000)
    assert await ent.close_due() == 0
    assert await money(ent, allowance_account(emp)) == [30_000]
    assert (await ent.uow.ledger.verify()).ok


async def test_leaving_returns_the_allowance(ent: Enterprise) -> None:
    boss, canteen, store, me, emp = await setup_canteen(ent)
    await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    gone = await ent.leave(boss.id, emp, actor="hr:wang")
    assert gone.state == "left"
    assert await money(ent, allowance_account(emp), funds_account(boss.id)) == [0, 1_000_000]
    assert (await refused(ent.pay(me, canteen.id, store, 1_000, idempotency_key="after"))).code == "NOT_AN_EMPLOYEE"
    other = await employer(ent, "腾讯科技")
    assert (await ent.enrol(other.id, me.msisdn)).employer_id == other.id  # free to join another employer
    assert (await refused(ent.fund(boss.id, "2026-12", 1, idempotency_key="x"))).code == "ALLOWANCE_FUNDING_INVALID"


async def test_concurrent_lunches_never_pass_the_meal_cap(ent: Enterprise) -> None:
    boss, canteen, store, me, emp = await setup_canteen(ent)
    await ent.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    done = await asyncio.gather(*(ent.pay(me, canteen.id, store, 2_000, idempotency_key=f"rush-{n}")
                                  for n in range(3)), return_exceptions=True)
    paid = [d for d in done if not isinstance(d, BaseException)]
    refusals = [d for d in done if isinstance(d, BaseException)]
    assert paid and all(isinstance(e, MobipayError) and e.code == "ALLOWANCE_CHANGED" for e in refusals), refusals
    assert sum(p.allowance for p in paid) <= 2_500
    spent = sum(p.allowance for p in paid)
    assert await money(ent, allowance_account(emp), me.account_code) == [
        30_000 - spent, 10_000 - sum(p.wallet for p in paid)]
    assert (await ent.uow.ledger.verify()).ok
