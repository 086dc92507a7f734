"""SP subscriptions on SQLite and PostgreSQL against the operator-billing SIMULATOR (a real
HTTP server in its own process): confirmation asked or skipped with its reason, the "是"
reply in time, late, twice and from another number, 0000 / QX n / 00000 over SMS, the 72 h
waiver at its edge, the billing run to the phone bill and to the wallet (once however often
it runs), the billing system down, the double refund, complaints and their rate. Every step
asserts the ledger's accounts and the phone bill."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text, update

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS, wallet_account
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database
from mobipay.sp.billing_http import HttpPhoneBilling
from mobipay.sp.model import ChargeMethod, ConfirmationPolicy, Cycle, ReplyOutcome, SubState
from mobipay.sp.service import ACCOUNTS, RECEIVABLE_PHONE_BILLS, SpService, sp_payable
from mobipay.sp.tables import sp_providers
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from tests.conftest import _reset, _running

SECRET = "test-sp-billing-secret"
SP = "10661234"
ME = "+8613800138000"
OTHER = "+8613900139000"
START = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.fixture(scope="session")
def sp_billing_sim() -> Iterator[str]:
    with _running(sp_billing=("sp_billing", "--secret", SECRET)) as urls:
        yield urls["sp_billing"]


@pytest.fixture
def billing_url(sp_billing_sim: str) -> str:
    return _reset(sp_billing_sim)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def sp(db: Database, ledger: Ledger, clock: ManualClock, billing_url: str) -> AsyncIterator[SpService]:
    await ledger.open_accounts([*SYSTEM_ACCOUNTS, *ACCOUNTS])
    uow = UnitOfWorkRunner(db, clock, ledger)
    billing = HttpPhoneBilling(billing_url, SECRET.encode(), timeout_s=5.0)
    service = SpService(uow, WalletService(uow, number_segments(), b"test-secret"), billing)
    await service.register_sp(SP, "天气通", licence="B2-20060001", hotline="4008101234", share_bp=8500, actor="t")
    await service.add_service(SP, "TQ", "天气预报", price=500, cycle=Cycle.MONTHLY, actor="t")
    await service.add_service(SP, "XH", "每日笑话", price=300, cycle=Cycle.MONTHLY, actor="t")
    yield service
    await billing.close()


async def balance(sp: SpService, code: str) -> int:
    return (await sp.uow.ledger.account(code)).balance


def bill(url: str, msisdn: str = ME) -> int:
    return int(httpx.get(f"{url}/sim/numbers/{msisdn}").json()["billed"])


def number_state(url: str, msisdn: str, state: str) -> None:
    httpx.post(f"{url}/sim/numbers", json={"msisdn": msisdn, "state": state}).raise_for_status()


def billing_down(url: str, down: bool) -> None:
    httpx.put(f"{url}/sim/behaviour", json={"down": down}).raise_for_status()


async def sms_to(db: Database, msisdn: str) -> list[str]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                        "ORDER BY created_at, id"))).scalars().all()
    return [json.loads(p)["params"]["text"] for p in rows if json.loads(p)["to"] == msisdn]


async def age(sp: SpService, clock: ManualClock, days: int) -> None:
    """Make the SP older than the new-SP rule's window without moving the test's clock."""
    async with sp.uow.db.engine.begin() as conn:
        await conn.execute(update(sp_providers).values(registered_at=clock.now() - timedelta(days=days)))


async def test_new_sp_asks_and_in_time_reply_bills_after_the_waiver(sp: SpService, db: Database,
                                                                   clock: ManualClock, billing_url: str) -> None:
    assert await sp.sms(ME, SP, "tq") == ""  # the confirmation SMS is the answer
    assert await sp.subscriptions(ME) == []  # not active yet: nothing listed
    [ask] = await sms_to(db, ME)
    for part in ("天气通", "天气预报", "5.00元/月", "4008101234", "24小时"):
        assert part in ask
    clock.advance(3600)
    assert "成功订购" in (await sp.sms(ME, "10658888", "是") or "")
    [sub] = await sp.subscriptions(ME)
    assert (sub.state, sub.asked, sub.rule) == (SubState.ACTIVE, True, "new_sp")
    assert sub.next_charge_at == START + timedelta(hours=1, days=3)
    clock.set(START + timedelta(hours=73))  # exactly 72 h after the confirmation: not yet due
    assert (await sp.bill_due()).charged == 0
    clock.advance(1)
    run = await sp.bill_due()
    assert (run.charged, run.amount) == (1, 500)
    assert await balance(sp, RECEIVABLE_PHONE_BILLS) == 500 and await balance(sp, sp_payable(SP)) == 500
    assert bill(billing_url) == 500
    for _ in range(2):  # the run again: nothing more this month
        assert (await sp.bill_due()).charged == 0
    assert bill(billing_url) == 500 and await balance(sp, sp_payable(SP)) == 500
    clock.set(datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC))  # 1 January in Shanghai: the next month's fee
    assert (await sp.bill_due()).amount == 500
    assert bill(billing_url) == 1000 and await balance(sp, sp_payable(SP)) == 1000
    assert [c.state for c in await sp.charges(ME)] == ["billed", "billed"]


async def test_late_reply_lapses_unbilled_twice_changes_nothing_another_number_confirms_nothing(
        sp: SpService, clock: ManualClock, billing_url: str) -> None:
    await sp.subscribe(ME, SP, "TQ")
    assert (await sp.reply(OTHER)).outcome is ReplyOutcome.NOTHING  # another phone: nothing waits for it
    clock.advance(24 * 3600)  # the window is over
    r = await sp.reply(ME)
    assert r.outcome is ReplyOutcome.LATE and r.subscription is not None
    assert await sp.subscriptions(ME) == []
    clock.advance(10 * 86400)
    assert (await sp.bill_due()).charged == 0 and bill(billing_url) == 0
    # a new order, confirmed, then "是" again
    await sp.subscribe(ME, SP, "TQ")
    assert (await sp.reply(ME)).outcome is ReplyOutcome.CONFIRMED
    assert (await sp.reply(ME)).outcome is ReplyOutcome.ALREADY
    assert len(await sp.subscriptions(ME)) == 1
    with pytest.raises(MobipayError) as info:
        await sp.subscribe(ME, SP, "TQ")
    assert info.value.code == "SP_ALREADY_SUBSCRIBED"


async def test_sweep_lapses_orders_past_their_window(sp: SpService, clock: ManualClock) -> None:
    await sp.subscribe(ME, SP, "TQ")
    clock.advance(24 * 3600 - 1)
    assert await sp.lapse_due() == 0
    clock.advance(1)
    assert await sp.lapse_due() == 1
    assert (await sp.reply(ME)).outcome is ReplyOutcome.LATE


async def test_confirmation_skipped_by_policy_for_an_old_sp_and_a_known_number(
        sp: SpService, db: Database, clock: ManualClock) -> None:
    await age(sp, clock, 400)
    first = await sp.subscribe(ME, SP, "TQ")
    assert (first.asked, first.rule) == (True, "first_use")  # this number never used SP services
    await sp.reply(ME)
    second = await sp.subscribe(ME, SP, "XH")
    assert (second.asked, second.rule, second.state) == (False, "policy", SubState.ACTIVE)
    assert "72小时内退订不收费" in (await sms_to(db, ME))[-1]
    # several orders within minutes: asked again
    await sp.add_service(SP, "GP", "股票", price=200, cycle=Cycle.MONTHLY, actor="t")
    third = await sp.subscribe(ME, SP, "GP")
    assert (third.asked, third.rule) == (True, "burst")
    strict = SpService(sp.uow, sp.wallet, sp.billing, policy=ConfirmationPolicy(ask_by_default=True))
    await strict.add_service(SP, "YL", "娱乐", price=100, cycle=Cycle.MONTHLY, actor="t")
    clock.advance(3600)
    fourth = await strict.subscribe(ME, SP, "YL")
    assert (fourth.asked, fourth.rule) == (True, "policy")


async def test_0000_qx_and_00000_over_sms(sp: SpService, clock: ManualClock, billing_url: str) -> None:
    for kw in ("TQ", "XH"):
        await sp.subscribe(ME, SP, kw)
        await sp.sms(ME, SP, "Y")
    listing = await sp.sms(ME, SP, "0000") or ""
    assert "1.天气预报" in listing and "2.每日笑话" in listing
    assert "没有第9项" in (await sp.sms(ME, SP, "QX 9") or "")
    assert "不收费" in (await sp.sms(ME, SP, "QX1") or "")
    assert [s.service_name for s in await sp.subscriptions(ME)] == ["每日笑话"]
    assert "1项" in (await sp.sms(ME, "10658888", "00000") or "")
    assert await sp.subscriptions(ME) == []
    assert "没有订购" in (await sp.sms(ME, SP, "0000") or "")
    clock.advance(40 * 86400)
    assert (await sp.bill_due()).charged == 0 and bill(billing_url) == 0
    assert await sp.sms(ME, "10658888", "YE") is None  # not an SP command: the channel's own
    assert await sp.sms(ME, "10690000", "0000") is None  # no SP has this code


async def test_72_hour_waiver_at_its_edge(sp: SpService, clock: ManualClock, billing_url: str) -> None:
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    clock.advance(72 * 3600)
    c = await sp.cancel(ME, 1)
    assert c.waived and c.charged == 0
    await sp.subscribe(ME, SP, "XH")
    await sp.reply(ME)
    clock.advance(72 * 3600 + 1)  # one second too late: the fee that fell due is charged at cancellation
    c = await sp.cancel(ME, 1)
    assert not c.waived and c.charged == 300
    assert bill(billing_url) == 300 and await balance(sp, sp_payable(SP)) == 300
    clock.advance(40 * 86400)
    assert (await sp.bill_due()).charged == 0 and bill(billing_url) == 300


async def test_wallet_charges_refused_when_empty_and_double_refund(sp: SpService, clock: ManualClock) -> None:
    with pytest.raises(MobipayError) as info:
        await sp.subscribe(ME, SP, "TQ", method=ChargeMethod.WALLET)
    assert info.value.code == "USER_NOT_FOUND"
    for n in (ME, OTHER):
        await sp.wallet.create_user(n, actor="t", reason="t")
    assert (await sp.uow.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 1000),
                                                       Leg.credit(wallet_account(ME).code, 1000)), "cash_in"))).ok
    for n in (ME, OTHER):
        await sp.subscribe(n, SP, "TQ", method=ChargeMethod.WALLET)
        await sp.reply(n)
    clock.advance(73 * 3600)
    run = await sp.bill_due()
    assert (run.charged, run.failed, run.amount) == (1, 1, 500)
    assert await balance(sp, wallet_account(ME).code) == 500 and await balance(sp, wallet_account(OTHER).code) == 0
    assert await balance(sp, sp_payable(SP)) == 500
    [charge] = await sp.charges(ME)
    [failed] = await sp.charges(OTHER)
    assert failed.state == "failed"
    with pytest.raises(MobipayError) as info:
        await sp.refund_double(failed.id, actor="staff", reason="billing error")
    assert info.value.code == "SP_REFUND_REFUSED"
    refunded = await sp.refund_double(charge.id, actor="staff", reason="charged twice by the SP's platform")
    assert (refunded.state, refunded.refunded) == ("refunded", 1000)
    assert await balance(sp, wallet_account(ME).code) == 1500
    assert await balance(sp, sp_payable(SP)) == -500  # the SP pays the double back
    with pytest.raises(MobipayError) as info:
        await sp.refund_double(charge.id, actor="staff", reason="again")
    assert info.value.code == "SP_REFUND_REFUSED"
    assert await balance(sp, wallet_account(ME).code) == 1500


async def test_phone_bill_double_refund_and_suspended_number(sp: SpService, clock: ManualClock,
                                                             billing_url: str) -> None:
    number_state(billing_url, OTHER, "suspended")
    for n in (ME, OTHER):
        await sp.subscribe(n, SP, "TQ")
        await sp.reply(n)
    clock.advance(73 * 3600)
    run = await sp.bill_due()
    assert (run.charged, run.failed) == (1, 1)
    [charge] = await sp.charges(ME)
    [refused] = await sp.charges(OTHER)
    assert refused.state == "failed" and bill(billing_url, OTHER) == 0
    await sp.refund_double(charge.id, actor="staff", reason="billing error confirmed")
    assert bill(billing_url) == -500  # 5 CNY charged, 10 CNY back on the bill
    assert await balance(sp, RECEIVABLE_PHONE_BILLS) == -500 and await balance(sp, sp_payable(SP)) == -500


async def test_billing_system_down_then_up_charges_once(sp: SpService, clock: ManualClock, billing_url: str) -> None:
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    clock.advance(73 * 3600)
    billing_down(billing_url, True)
    run = await sp.bill_due()
    assert (run.charged, run.submitted) == (0, 1)
    assert await balance(sp, sp_payable(SP)) == 0 and [c.state for c in await sp.charges(ME)] == ["submitted"]
    billing_down(billing_url, False)
    run = await sp.bill_due()  # nothing new is due; the waiting line goes out
    assert (run.charged, run.amount) == (1, 500)
    assert bill(billing_url) == 500 and await balance(sp, sp_payable(SP)) == 500
    assert (await sp.bill_due()).charged == 0


async def test_shielded_port_refuses_orders_and_is_not_billed(sp: SpService, clock: ManualClock,
                                                             billing_url: str) -> None:
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    async with sp.uow.db.engine.begin() as conn:
        await conn.execute(update(sp_providers).values(port_shielded=True))
    assert "takes no orders" in (await sp.sms(OTHER, SP, "XH") or "")
    clock.advance(73 * 3600)
    run = await sp.bill_due()
    assert (run.charged, run.skipped) == (0, 1) and bill(billing_url) == 0


async def test_registry_refuses_bad_input(sp: SpService) -> None:
    cases = [
        (sp.register_sp("12345678", "x", licence="l", hotline="4008", share_bp=1, actor="t"), "SP_INVALID"),
        (sp.register_sp(SP, "x", licence="l", hotline="4008101234", share_bp=1, actor="t"), "SP_EXISTS"),
        (sp.register_sp("10669999", "x", licence="l", hotline="4008101234", share_bp=10_001, actor="t"), "SP_INVALID"),
        (sp.add_service(SP, "QX1", "x", price=100, cycle=Cycle.MONTHLY, actor="t"), "SP_INVALID"),
        (sp.add_service(SP, "TQ", "x", price=100, cycle=Cycle.MONTHLY, actor="t"), "SP_EXISTS"),
        (sp.add_service(SP, "ZZ", "x", price=0, cycle=Cycle.MONTHLY, actor="t"), "SP_INVALID"),
        (sp.add_service("10669999", "ZZ", "x", price=100, cycle=Cycle.MONTHLY, actor="t"), "SP_NOT_FOUND"),
        (sp.subscribe(ME, SP, "NOPE"), "SP_SERVICE_NOT_FOUND"),
    ]
    for call, code in cases:
        with pytest.raises(MobipayError) as info:
            await call
        assert info.value.code == code


async def test_complaints_and_their_rate(sp: SpService, clock: ManualClock) -> None:
    for n in (ME, OTHER):
        await sp.subscribe(n, SP, "TQ")
        await sp.reply(n)
    assert "受理" in (await sp.sms(ME, SP, "投诉 没订也扣费") or "")
    assert "受理" in (await sp.sms(OTHER, "10658888", f"TS {SP} 骚扰短信") or "")
    assert "SP代码" in (await sp.sms(OTHER, "10658888", "投诉") or "")
    await sp.complain(ME, SP, "hotline call", source="hotline")
    assert await sp.complaint_rate(SP, "2026-12") == (3, 2, 15000.0)
    assert await sp.complaint_rate(SP, "2026-11") == (0, 0, 0.0)


async def test_per_message_service_charged_once_per_message_after_the_window(
        sp: SpService, clock: ManualClock, billing_url: str) -> None:
    await sp.add_service(SP, "XW", "新闻快讯", price=10, cycle=Cycle.PER_MESSAGE, actor="t")
    await sp.subscribe(ME, SP, "XW")
    await sp.reply(ME)
    [sub] = await sp.subscriptions(ME)
    assert sub.next_charge_at is None  # no monthly fee: each message is charged when reported
    assert await sp.charge_message(SP, ME, "XW", "m-1") is None  # inside the 72 h window: free
    clock.advance(72 * 3600 + 1)
    first = await sp.charge_message(SP, ME, "xw", "m-2")
    assert first is not None and (first.state, first.amount) == ("billed", 10)
    again = await sp.charge_message(SP, ME, "XW", "m-2")  # reported twice: charged once
    assert again is not None and again.id == first.id
    assert bill(billing_url) == 10 and await balance(sp, sp_payable(SP)) == 10
    clock.advance(40 * 86400)
    assert (await sp.bill_all()).charged == 0  # the monthly run leaves per-message services alone
    for args, code in (((SP, ME, "TQ", "m-3"), "SP_SUBSCRIPTION_NOT_FOUND"),
                       ((SP, ME, "XW", "bad id!"), "SP_INVALID"),
                       ((SP, OTHER, "XW", "m-4"), "SP_SUBSCRIPTION_NOT_FOUND")):
        with pytest.raises(MobipayError) as info:
            await sp.charge_message(*args)
        assert info.value.code == code
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    with pytest.raises(MobipayError) as info:
        await sp.charge_message(SP, ME, "TQ", "m-5")
    assert info.value.code == "SP_INVALID"  # a monthly service is not charged per message
    assert bill(billing_url) == 10
