"""Handset protection on SQLite and PostgreSQL, the maker's warranty service as its
SIMULATOR (in process, through the real adapter): enrolment in and out of the pilot's
cities and dates, bad IMEI check digit, duplicate and blocklisted IMEIs; each claim kind
through to hand-over; the HK/MO/TW refusal; the claim limit; each fraud rule with the
maker-checker second review; a handling fee the wallet cannot pay changes nothing; the
monthly fee collected once and a lapse; claim photos uploaded (checked by their magic bytes,
their size; kept once), and another subscriber's photo refused. Every balance asserted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from stdnum import luhn

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError, RoleRequired
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.protection.gateway_http import HttpWarrantyService
from mobipay.protection.model import (
    FEE_INCOME,
    HANDLING_INCOME,
    MAX_PHOTO_BYTES,
    PHONE_BILL_RECEIVABLE,
    ClaimState,
    EnrolmentState,
)
from mobipay.protection.service import Enrolment, ProtectionService
from mobipay.protection.tables import claims, photos, stock
from mobipay.simulators.maker_warranty import create_maker_app
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.support.images import jpeg, png

SECRET = "test-maker-secret"
IPHONE, HUAWEI = "35328111", "86753005"


def imei(serial: int, tac: str = IPHONE) -> str:
    body = f"{tac}{serial:06d}"
    return body + luhn.calc_check_digit(body)


@dataclass(frozen=True)
class Person:
    """A member of staff with roles (the console's operators have the same shape)."""

    name: str
    roles: frozenset[str]

    def require(self, role: str) -> None:
        if role not in self.roles and "admin" not in self.roles:
            raise RoleRequired(f"{self.name} needs {role}", role=role)


ALICE = Person("alice", frozenset({"support"}))
BOB = Person("bob", frozenset({"support"}))
CAROL = Person("carol", frozenset({"risk"}))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 5, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
def maker() -> Any:
    return create_maker_app(SECRET)


@pytest.fixture
async def sim(maker: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=maker), base_url="http://maker") as client:
        yield client


@pytest.fixture
async def svc(db: Database, ledger: Ledger, clock: ManualClock, maker: Any,
              tmp_path: Path) -> AsyncIterator[ProtectionService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    warranty = HttpWarrantyService("http://maker", SECRET.encode(), transport=httpx.ASGITransport(app=maker))
    service = ProtectionService(uow, WalletService(uow, number_segments(), b"t"), warranty,
                                photo_dir=tmp_path / "photos")
    await service.open_accounts()
    yield service
    await warranty.close()


async def customer(svc: ProtectionService, msisdn: str = "+8613800138000", balance: int = 100_000) -> Principal:
    user = await svc.wallet.create_user(msisdn, actor="t", reason="t")
    await svc.wallet.set_pin(msisdn, "135790")
    if balance:
        assert (await svc.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                                  Leg.credit(user.account_code, balance)),
                                                   "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def photo(svc: ProtectionService, me: Principal, seed: int = 0) -> str:
    """A photo of mine uploaded; its id for a claim."""
    return (await svc.upload_photo(me, png(seed))).id


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def balance(svc: ProtectionService, code: str) -> int:
    return (await svc.uow.ledger.account(code)).balance


async def enrol(svc: ProtectionService, me: Principal, number: str, key: str = "e1", *, price: int = 250_000,
                city: str = "长沙", **kw: Any) -> Enrolment:
    today = svc.today()
    return await svc.enrol(me, imei=number, price=price, purchased_on=kw.pop("purchased_on", today - timedelta(days=3)),
                           receipt="FP-2026-0001", city=city, idempotency_key=key, pin="135790", **kw)


async def sms(svc: ProtectionService, to: str) -> list[str]:
    async def work(uow: Any) -> list[Any]:
        return list(await uow.conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send")))

    return [json.loads(r.payload)["template"] for r in await svc.uow.run("t", work)
            if json.loads(r.payload)["to"] == to]


def later(clock: ManualClock, day: str) -> None:
    clock.set(datetime.fromisoformat(day).replace(hour=10, tzinfo=SHANGHAI))


async def test_enrolment_in_and_out_of_the_pilot(svc: ProtectionService, clock: ManualClock) -> None:
    me = await customer(svc)
    phone = imei(1)
    assert await refused(enrol(svc, me, phone, city="北京")) == "PROTECTION_CITY_NOT_IN_PILOT"
    assert await refused(enrol(svc, me, phone[:-1] + str((int(phone[-1]) + 1) % 10))) == "IMEI_INVALID"
    assert await refused(enrol(svc, me, imei(1, "99999999"))) == "HANDSET_UNKNOWN"
    assert await refused(enrol(svc, me, phone, purchased_on=svc.today() - timedelta(days=31))) == \
        "PROTECTION_ENROLMENT_WINDOW_PASSED"
    assert await refused(enrol(svc, me, phone, price=1_000_001)) == "PROTECTION_PRICE_OUT_OF_RANGE"
    assert await balance(svc, me.account_code) == 100_000  # nothing refused took anything

    first = await enrol(svc, me, phone)
    assert (first.state, first.model, first.monthly_fee, first.city, first.covered_from.isoformat()) == (
        EnrolmentState.ACTIVE, "iPhone 15", 1_200, "changsha", "2026-10-05")
    assert await balance(svc, me.account_code) == 100_000 - 1_200
    assert await balance(svc, FEE_INCOME) == 1_200
    again = await enrol(svc, me, phone)  # a retry: the same enrolment, paid once
    assert again.replayed and again.id == first.id
    assert await refused(enrol(svc, me, imei(2))) == "IDEMPOTENCY_CONFLICT"  # the key is taken
    assert await refused(enrol(svc, me, phone, "e2")) == "IMEI_ALREADY_ENROLLED"
    other = await customer(svc, "+8613900139000")
    assert await refused(enrol(svc, other, phone, "o1")) == "IMEI_ALREADY_ENROLLED"
    stolen = imei(3)
    await svc.block(CAROL, stolen, reason="reported stolen to the police")
    assert await svc.blocked(stolen)
    assert await refused(enrol(svc, other, stolen, "o2")) == "IMEI_BLOCKLISTED"
    assert await refused(svc.block(ALICE, imei(4), reason="x")) == "ROLE_REQUIRED"
    assert await balance(svc, me.account_code) == 100_000 - 1_200
    assert await balance(svc, other.account_code) == 100_000
    assert await sms(svc, me.msisdn) == ["protection.enrolled"]

    # the phone bill instead of the wallet: the fee is owed through the billing system
    bill = await enrol(svc, other, imei(5, HUAWEI), "o3", price=80_000, payment="phone_bill")
    assert bill.monthly_fee == 500 and await balance(svc, PHONE_BILL_RECEIVABLE) == 500
    assert await balance(svc, other.account_code) == 100_000
    # at a business hall, for the customer at the counter
    hall = await svc.enrol_at_hall(ALICE, "ZZ01", "+8613900139000", imei=imei(6), price=500_000,
                                   purchased_on=svc.today(), receipt="ZZ-778", idempotency_key="h1")
    assert (hall.channel, hall.hall, hall.city, hall.monthly_fee) == ("hall", "ZZ01", "zhuzhou", 1_800)
    assert await refused(svc.enrol_at_hall(ALICE, "ZZ01", "+8613900139000", imei=imei(8), price=500_000,
                                           purchased_on=svc.today(), receipt="ZZ-779", idempotency_key="h2",
                                           payment="wallet")) == "VALIDATION_FAILED"  # staff never debit a wallet
    assert await balance(svc, other.account_code) == 100_000

    later(clock, "2026-08-31")
    assert await refused(enrol(svc, me, imei(7), "e3")) == "PROTECTION_OUTSIDE_PERIOD"
    later(clock, "2027-01-01")
    assert await refused(enrol(svc, me, imei(7), "e4")) == "PROTECTION_OUTSIDE_PERIOD"
    later(clock, "2026-12-31")
    assert (await enrol(svc, me, imei(7), "e5")).state is EnrolmentState.ACTIVE  # the last day still enrols
    assert (await svc.uow.ledger.verify()).ok


async def stock_up(svc: ProtectionService, hall: str, *serials: int, tac: str = IPHONE) -> list[str]:
    return [(await svc.add_stock(ALICE, hall, imei(s, tac))).imei for s in serials]


async def test_damage_claim_to_hand_over(svc: ProtectionService, clock: ManualClock,
                                         sim: httpx.AsyncClient) -> None:
    me = await customer(svc)
    phone = imei(10)
    e = await enrol(svc, me, phone)
    p1, p2, p3 = [await photo(svc, me, n) for n in (1, 2, 3)]
    later(clock, "2026-10-02")
    assert await refused(svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-10-01", region="CN-HN",
                                          description="cracked screen", photos=[p1],
                                          idempotency_key="c0")) == "PROTECTION_IN_WAITING_PERIOD"
    later(clock, "2026-11-20")
    # the maker repairs a performance fault free under 三包: not this programme's claim
    (await sim.put(f"/sim/warranty/{phone}", json={"covered": True, "until": "2027-09-01"})).raise_for_status()
    assert await refused(svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-18", region="CN-HN",
                                          description="won't charge", photos=[p1],
                                          idempotency_key="c1")) == "PROTECTION_UNDER_WARRANTY"
    assert await refused(svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-18", region="CN-HN",
                                          description="cracked", idempotency_key="c2")) == \
        "PROTECTION_EVIDENCE_MISSING"
    (await sim.put(f"/sim/warranty/{phone}", json={"covered": False, "until": "2027-09-01",
                                                   "reason": "accidental_damage"})).raise_for_status()
    c = await svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-18", region="CN-HN",
                               description="dropped it, cracked screen", photos=[p1, p2],
                               idempotency_key="c3")
    assert (c.state, c.warranty, c.flags, c.fee) == (ClaimState.SUBMITTED, "not_covered", [], 18_900)
    assert c.photos == [p1, p2]
    assert [(p.id, p.size) for p in await svc.photos(c.photos)] == [(p1, len(png(1))), (p2, len(png(2)))]
    assert (await svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-18", region="CN-HN",
                                   description="x", photos=["p"], idempotency_key="c3")).replayed
    assert await refused(svc.submit_claim(me, e.id, kind="loss", occurred_on="2026-11-18", region="CN-HN",
                                          description="lost", idempotency_key="c4")) == "PROTECTION_CLAIM_OPEN"
    assert await refused(svc.approve(CAROL, c.id)) == "ROLE_REQUIRED"
    c = await svc.ask_info(ALICE, c.id, question="a photo of the IMEI on the lit screen, please")
    assert c.state is ClaimState.MORE_INFO
    c = await svc.answer_info(me, c.id, note="here it is", photos=[p3, p1])
    assert c.state is ClaimState.SUBMITTED and c.photos == [p1, p2, p3]
    c = await svc.approve(ALICE, c.id)
    assert c.state is ClaimState.APPROVED
    assert await refused(svc.allocate(ALICE, c.id)) == "PROTECTION_CLAIM_STATE"  # the fee first
    before = await balance(svc, me.account_code)
    c = await svc.pay_fee(me, c.id, idempotency_key="f1", pin="135790")
    assert c.state is ClaimState.FEE_PAID
    assert (await svc.pay_fee(me, c.id, idempotency_key="f2")).replayed  # a retry with any key pays nothing
    assert await balance(svc, me.account_code) == before - 18_900
    assert await balance(svc, HANDLING_INCOME) == 18_900
    assert await refused(svc.allocate(ALICE, c.id)) == "PROTECTION_NO_STOCK"
    await stock_up(svc, "CS02", 90, tac=HUAWEI)  # another model does not do
    [new] = await stock_up(svc, "CS02", 91)
    c = await svc.allocate(ALICE, c.id)
    assert (c.state, c.hall, c.replacement_imei) == (ClaimState.ALLOCATED, "CS02", new)
    c = await svc.ready(ALICE, c.id)
    assert c.state is ClaimState.READY_FOR_PICKUP
    assert await refused(svc.hand_over(ALICE, c.id)) == "PROTECTION_OLD_PHONE_REQUIRED"
    c = await svc.hand_over(ALICE, c.id, old_phone_returned=True)
    assert (c.state, c.old_phone_returned) == (ClaimState.HANDED_OVER, True)
    [mine] = await svc.enrolments(me)
    assert mine.imei == new  # the cover goes on with the replacement
    assert not await svc.blocked(phone)  # a damaged phone is returned, not barred
    assert await svc.stock_levels() == {("CS02", "Mate 60"): 1}
    _, events = await svc.claim_for_staff(c.id)
    assert [ev.to_state for ev in events] == ["submitted", "more_info", "submitted", "approved", "fee_paid",
                                             "allocated", "ready_for_pickup", "handed_over"]
    assert sorted(await sms(svc, me.msisdn)) == sorted([
        "protection.enrolled", "protection.submitted", "protection.more_info", "protection.submitted",
        "protection.approved", "protection.fee_paid", "protection.allocated", "protection.ready_for_pickup",
        "protection.handed_over"])  # every step told
    [row] = await svc.report()
    assert (row.city, row.enrolments, row.claims, row.approved, row.handed_over, row.approval_rate) == (
        "changsha", 1, 1, 1, 1, 1.0)
    assert (await svc.uow.ledger.verify()).ok


async def _through(svc: ProtectionService, me: Principal, e: Enrolment, kind: str, day: str, key: str, *,
                   delivery: bool = False, **kw: Any) -> Any:
    c = await svc.submit_claim(me, e.id, kind=kind, occurred_on=day, region=kw.pop("region", "CN-GD"),
                               description=f"{kind} on the train", idempotency_key=key, **kw)
    c = await svc.approve(ALICE, c.id)
    if c.state is ClaimState.SECOND_REVIEW:
        c = await svc.approve(CAROL, c.id)
    c = await svc.pay_fee(me, c.id, idempotency_key=f"{key}-fee", pin="135790")
    c = await svc.allocate(ALICE, c.id, hall="CS01")
    c = await svc.ready(ALICE, c.id, delivery=delivery)
    return await svc.hand_over(ALICE, c.id)


async def test_loss_and_theft_to_hand_over_and_the_claim_limit(svc: ProtectionService, clock: ManualClock) -> None:
    me = await customer(svc)
    phone = imei(20)
    e = await enrol(svc, me, phone, price=150_000)  # tier 2: loss and theft 249 CNY
    await stock_up(svc, "CS01", 21, 22, 23)
    later(clock, "2026-11-20")
    start = await balance(svc, me.account_code)
    assert await refused(svc.submit_claim(me, e.id, kind="loss", occurred_on="2026-11-19", region="CN-HK",
                                          description="lost in Hong Kong", idempotency_key="hk")) == \
        "PROTECTION_OUTSIDE_MAINLAND"
    for place in ("CN-MO", "TW"):
        assert await refused(svc.submit_claim(me, e.id, kind="theft", occurred_on="2026-11-19", region=place,
                                              description="stolen", police_report="MO-2026-1",
                                              idempotency_key=place)) == "PROTECTION_OUTSIDE_MAINLAND"
    assert await svc.claims_of(me) == []  # refusals store nothing

    lost = await _through(svc, me, e, "loss", "2026-11-19", "l1", delivery=True)
    assert (lost.state, lost.fee) == (ClaimState.HANDED_OVER, 24_900)
    assert await svc.blocked(phone)  # a lost phone's IMEI is barred
    _, events = await svc.claim_for_staff(lost.id)
    assert "out_for_delivery" in [ev.to_state for ev in events]
    assert await refused(svc.submit_claim(me, e.id, kind="theft", occurred_on="2026-11-20", region="CN-HN",
                                          description="stolen", idempotency_key="t0")) == \
        "PROTECTION_EVIDENCE_MISSING"
    # the second claim in 12 months: the number claimed before, so a second reviewer decides
    second = await svc.submit_claim(me, e.id, kind="theft", occurred_on="2026-11-20", region="CN-HN",
                                    description="pickpocketed", police_report="CS20261120-88", idempotency_key="t1")
    assert second.flags == ["repeated_on_number"]
    second = await svc.approve(ALICE, second.id)
    assert second.state is ClaimState.SECOND_REVIEW
    second = await svc.approve(CAROL, second.id)
    second = await svc.pay_fee(me, second.id, idempotency_key="t1-fee", pin="135790")
    second = await svc.allocate(ALICE, second.id, hall="CS01")
    second = await svc.hand_over(ALICE, (await svc.ready(ALICE, second.id)).id)
    assert second.state is ClaimState.HANDED_OVER and await svc.blocked(lost.replacement_imei or "")
    assert await balance(svc, me.account_code) == start - 2 * 24_900
    assert await refused(svc.submit_claim(me, e.id, kind="loss", occurred_on="2026-11-20", region="CN-HN",
                                          description="again", idempotency_key="l3")) == \
        "PROTECTION_CLAIM_LIMIT_REACHED"
    assert await balance(svc, me.account_code) == start - 2 * 24_900
    assert (await svc.uow.ledger.verify()).ok


async def test_each_fraud_rule_goes_to_a_second_reviewer(svc: ProtectionService, clock: ManualClock,
                                                         sim: httpx.AsyncClient) -> None:
    me = await customer(svc)
    e = await enrol(svc, me, imei(30))
    later(clock, "2026-10-16")  # day 41: enrolled just before the incident
    c = await svc.submit_claim(me, e.id, kind="loss", occurred_on="2026-10-15", region="CN", description="lost",
                               idempotency_key="k1")
    assert c.flags == ["enrolled_just_before"]
    c = await svc.approve(ALICE, c.id)
    assert c.state is ClaimState.SECOND_REVIEW and c.reviewer == "alice"
    assert await refused(svc.approve(ALICE, c.id)) == "ROLE_REQUIRED"
    assert await refused(svc.approve(Person("alice", frozenset({"risk"})), c.id)) == "PROTECTION_SECOND_REVIEWER"
    assert await refused(svc.pay_fee(me, c.id, idempotency_key="p")) == "PROTECTION_CLAIM_STATE"
    c = await svc.reject(CAROL, c.id, reason="the phone was seen in use after the reported loss")
    assert (c.state, c.checker, c.reason) == (ClaimState.REJECTED, "carol", "the phone was seen in use after the "
                                                                            "reported loss")

    other = await customer(svc, "+8613900139000")
    later(clock, "2026-09-06")
    e2 = await enrol(svc, other, imei(31), "o1")
    later(clock, "2026-10-09")  # day 33: three days after the cover began
    c2 = await svc.submit_claim(other, e2.id, kind="loss", occurred_on="2026-10-09", region="CN-HN",
                                description="lost", idempotency_key="k2")
    assert c2.flags == ["enrolled_just_before", "right_after_waiting"]

    # an IMEI already claimed for: a damaged phone returned, enrolled again by someone else
    third = await customer(svc, "+8613700137000")
    later(clock, "2026-09-07")
    phone = imei(32)
    e3 = await enrol(svc, third, phone, "t1")
    await stock_up(svc, "CS01", 33)
    later(clock, "2026-11-25")
    (await sim.put(f"/sim/warranty/{phone}", json={"covered": False})).raise_for_status()
    c3 = await svc.submit_claim(third, e3.id, kind="damage", occurred_on="2026-11-24", region="CN-HN",
                                description="water", photos=[await photo(svc, third)], idempotency_key="k3")
    assert c3.flags == []
    c3 = await svc.approve(ALICE, c3.id)
    c3 = await svc.pay_fee(third, c3.id, idempotency_key="k3f", pin="135790")
    c3 = await svc.ready(ALICE, (await svc.allocate(ALICE, c3.id)).id)
    await svc.hand_over(ALICE, c3.id, old_phone_returned=True)
    fourth = await customer(svc, "+8613600136000")
    later(clock, "2026-11-26")
    e4 = await enrol(svc, fourth, phone, "f1", purchased_on=svc.today())
    later(clock, "2026-12-30")
    c4 = await svc.submit_claim(fourth, e4.id, kind="loss", occurred_on="2026-12-29", region="CN-HN",
                                description="lost", idempotency_key="k4")
    assert "imei_claimed_before" in c4.flags


async def test_a_handling_fee_refused_changes_nothing(svc: ProtectionService, clock: ManualClock) -> None:
    me = await customer(svc, balance=1_300)
    e = await enrol(svc, me, imei(40))
    later(clock, "2026-11-20")
    c = await svc.approve(ALICE, (await svc.submit_claim(me, e.id, kind="loss", occurred_on="2026-11-19",
                                                         region="CN-HN", description="lost",
                                                         idempotency_key="c1")).id)
    accounts = [me.account_code, HANDLING_INCOME, FEE_INCOME]
    before = [await balance(svc, a) for a in accounts]
    assert before == [100, 0, 1_200]
    assert await refused(svc.pay_fee(me, c.id, idempotency_key="p1", pin="135790")) == "INSUFFICIENT_FUNDS"
    assert [await balance(svc, a) for a in accounts] == before
    mine = await svc.claim(me, c.id)
    assert (mine.state, mine.fee_transfer_id) == (ClaimState.APPROVED, None)
    assert "protection.fee_paid" not in await sms(svc, me.msisdn)
    # the money arrives: the same claim pays now
    assert (await svc.uow.ledger.post(Transfer("top", (Leg.debit(BANK_SETTLEMENT, 50_000),
                                                       Leg.credit(me.account_code, 50_000)), "cash_in"))).ok
    assert (await svc.pay_fee(me, c.id, idempotency_key="p1", pin="135790")).state is ClaimState.FEE_PAID
    assert await balance(svc, me.account_code) == 100 + 50_000 - 34_900


async def test_monthly_fee_collected_once_and_a_lapse(svc: ProtectionService, clock: ManualClock) -> None:
    rich = await customer(svc)
    poor = await customer(svc, "+8613900139000", balance=1_200)
    e1 = await enrol(svc, rich, imei(50))
    e2 = await enrol(svc, poor, imei(51), "p1")
    assert (await svc.collect_due()).collected == 0  # paid until 2026-10-05
    later(clock, "2026-10-05")
    done = await svc.collect_due()
    assert (done.collected, done.amount, done.lapsed) == (1, 1_200, 1)
    assert (await svc.collect_due()).collected == 0  # a rerun charges nothing
    assert await balance(svc, rich.account_code) == 100_000 - 2 * 1_200
    assert await balance(svc, poor.account_code) == 0
    assert await balance(svc, FEE_INCOME) == 3 * 1_200
    [a] = await svc.enrolments(rich)
    [b] = await svc.enrolments(poor)
    assert (a.periods_paid, a.paid_until.isoformat(), b.state) == (2, "2026-11-05", EnrolmentState.LAPSED)
    assert "protection.lapsed" in await sms(svc, poor.msisdn)
    later(clock, "2026-11-20")
    assert await refused(svc.submit_claim(poor, e2.id, kind="loss", occurred_on="2026-11-19", region="CN-HN",
                                          description="lost", idempotency_key="x")) == "ENROLMENT_NOT_ACTIVE"
    done = await svc.collect_due()  # November's, for the one still active
    assert (done.collected, e1.id) == (1, a.id)
    assert (await svc.uow.ledger.verify()).ok


async def test_warranty_service_down_then_asked_again_at_approval(svc: ProtectionService, clock: ManualClock,
                                                                  sim: httpx.AsyncClient) -> None:
    me = await customer(svc)
    phone = imei(60)
    e = await enrol(svc, me, phone)
    later(clock, "2026-11-20")
    (await sim.post("/sim/down")).raise_for_status()
    c = await svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-19", region="CN-HN",
                               description="screen cracked", photos=[await photo(svc, me)], idempotency_key="d1")
    assert c.warranty == "unknown"
    assert await refused(svc.approve(ALICE, c.id)) == "WARRANTY_SERVICE_UNAVAILABLE"
    assert (await svc.claim(me, c.id)).state is ClaimState.SUBMITTED
    (await sim.post("/sim/up")).raise_for_status()
    (await sim.put(f"/sim/warranty/{phone}", json={"covered": False, "until": "2026-12-01"})).raise_for_status()
    c = await svc.approve(ALICE, c.id)
    assert (c.state, c.warranty, str(c.warranty_until)) == (ClaimState.APPROVED, "not_covered", "2026-12-01")


async def test_stock_refuses_a_known_imei(svc: ProtectionService) -> None:
    me = await customer(svc)
    e = await enrol(svc, me, imei(70))
    assert await refused(svc.add_stock(ALICE, "CS01", e.imei)) == "PROTECTION_STOCK_IMEI_TAKEN"
    await stock_up(svc, "CS01", 71)
    assert await refused(svc.add_stock(ALICE, "CS01", imei(71))) == "PROTECTION_STOCK_IMEI_TAKEN"
    assert await refused(svc.add_stock(ALICE, "XX99", imei(72))) == "PROTECTION_HALL_UNKNOWN"

    async def rows(uow: Any) -> list[Any]:
        return list(await uow.conn.execute(select(stock.c.imei)))

    assert len(await svc.uow.run("t", rows)) == 1


async def test_racing_requests_enrol_once_and_share_no_phone(svc: ProtectionService, clock: ManualClock) -> None:
    """Two enrolments of one IMEI at once (other keys, other subscribers): one wins, the other
    is refused and pays nothing. Two claims allocated at once with one phone in stock: one
    gets it, the other is PROTECTION_NO_STOCK and stays fee_paid."""
    import asyncio

    a, b = await customer(svc), await customer(svc, "+8613900139000")
    phone = imei(80)
    results = await asyncio.gather(enrol(svc, a, phone, "ra"), enrol(svc, b, phone, "rb"), return_exceptions=True)
    won = [r for r in results if isinstance(r, Enrolment)]
    lost = [r for r in results if isinstance(r, MobipayError)]
    assert len(won) == 1 and [e.code for e in lost] == ["IMEI_ALREADY_ENROLLED"], results
    assert sorted([await balance(svc, a.account_code), await balance(svc, b.account_code)]) == [98_800, 100_000]

    owner, other = (a, b) if await svc.enrolments(a) else (b, a)
    [first] = await svc.enrolments(owner)
    second = await enrol(svc, other, imei(81), "rc")
    await stock_up(svc, "CS01", 82)
    later(clock, "2026-11-20")
    claims = []
    for who, e, key in ((owner, first, "x1"), (other, second, "x2")):
        c = await svc.submit_claim(who, e.id, kind="loss", occurred_on="2026-11-19", region="CN-HN",
                                   description="lost", idempotency_key=key)
        c = await svc.approve(ALICE, c.id)
        claims.append(await svc.pay_fee(who, c.id, idempotency_key=f"{key}f", pin="135790"))
    done = await asyncio.gather(*(svc.allocate(ALICE, c.id, hall="CS01") for c in claims), return_exceptions=True)
    assert sorted(type(d).__name__ for d in done) == ["Claim", "NoStock"], done
    states = sorted([(await svc.claim_for_staff(c.id))[0].state.value for c in claims])
    assert states == ["allocated", "fee_paid"]
    assert await svc.stock_levels() == {}
    assert (await svc.uow.ledger.verify()).ok


async def test_monthly_fee_counts_against_the_wallet_limits(svc: ProtectionService, clock: ManualClock) -> None:
    """A Tier I wallet that has paid out nearly its 1,000 CNY lifetime: the next month's fee
    is over the limit, so it is not taken (the balance stays) and the cover lapses with
    LIMIT_EXCEEDED; a month within the limits is counted as a payment."""
    me = await customer(svc, balance=150_000)
    await customer(svc, "+8613900139000", balance=0)
    await enrol(svc, me, imei(90))  # 12.00 counted
    await svc.wallet.transfer(me, "+8613900139000", 98_500, idempotency_key="t1", pin="135790")  # 997.00 in all
    later(clock, "2026-10-05")
    done = await svc.collect_due()
    assert (done.collected, done.lapsed) == (0, 1)
    assert await balance(svc, me.account_code) == 150_000 - 1_200 - 98_500
    [e] = await svc.enrolments(me)
    assert e.state is EnrolmentState.LAPSED
    assert "protection.lapsed" in await sms(svc, me.msisdn)
    # a wallet within its limits pays, and the fee counts: its own 1,000 CNY ceiling comes nearer
    other = await customer(svc, "+8613700137000", balance=150_000)
    later(clock, "2026-10-06")
    await enrol(svc, other, imei(91), "o1")
    await svc.wallet.transfer(other, "+8613900139000", 97_600, idempotency_key="t2", pin="135790")  # 988.00
    later(clock, "2026-11-06")
    assert (await svc.collect_due()).collected == 1  # 1,000.00 exactly: allowed
    with pytest.raises(MobipayError) as over:
        await svc.wallet.transfer(other, "+8613900139000", 100, idempotency_key="t3", pin="135790")
    assert over.value.code == "LIMIT_EXCEEDED"  # the fee was counted


async def test_photo_upload_checked_by_content_and_kept_once(svc: ProtectionService, tmp_path: Path) -> None:
    me = await customer(svc)
    other = await customer(svc, "+8613900139000")
    first = await svc.upload_photo(me, png(7))
    assert (first.content_type, first.size, first.replayed) == ("image/png", len(png(7)), False)
    assert (tmp_path / "photos" / f"{first.sha256}.png").read_bytes() == png(7)
    again = await svc.upload_photo(me, png(7))  # a retried upload: the same photo, nothing new
    assert (again.id, again.replayed) == (first.id, True)
    theirs = await svc.upload_photo(other, png(7))  # the same bytes from someone else: their own photo
    assert theirs.id != first.id and theirs.sha256 == first.sha256
    shot = await svc.upload_photo(me, jpeg(1))
    assert (shot.content_type, (tmp_path / "photos" / f"{shot.sha256}.jpg").exists()) == ("image/jpeg", True)

    # a text file renamed photo.jpg, an empty file, one over 5 MB: refused, nothing kept
    assert await refused(svc.upload_photo(me, b"this is not a photo, only named like one\n")) == \
        "PROTECTION_PHOTO_NOT_IMAGE"
    assert await refused(svc.upload_photo(me, b"")) == "PROTECTION_PHOTO_NOT_IMAGE"
    assert await refused(svc.upload_photo(me, png(8) + b"\x00" * MAX_PHOTO_BYTES)) == "PROTECTION_PHOTO_TOO_LARGE"
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == sorted(
        [f"{first.sha256}.png", f"{shot.sha256}.jpg"])

    async def rows() -> int:
        async def work(uow: Any) -> int:
            return int((await uow.conn.execute(select(func.count()).select_from(photos))).scalar_one())

        return await svc.uow.run("t", work)

    assert await rows() == 3
    found, data = await svc.photo_file(first.id)
    assert (found.id, data) == (first.id, png(7))


async def test_claim_refuses_another_subscribers_photo(svc: ProtectionService, clock: ManualClock,
                                                       sim: httpx.AsyncClient) -> None:
    me = await customer(svc)
    other = await customer(svc, "+8613900139000")
    phone = imei(70)
    e = await enrol(svc, me, phone)
    mine, theirs = await photo(svc, me, 1), await photo(svc, other, 2)
    later(clock, "2026-11-20")
    (await sim.put(f"/sim/warranty/{phone}", json={"covered": False})).raise_for_status()

    async def count() -> int:
        async def work(uow: Any) -> int:
            return int((await uow.conn.execute(select(func.count()).select_from(claims))).scalar_one())

        return await svc.uow.run("t", work)

    for wrong in ([theirs], [mine, theirs], ["pph_00000000000000000000000000000000"]):
        assert await refused(svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-19", region="CN-HN",
                                              description="cracked", photos=wrong, idempotency_key="w1")) == \
            "PROTECTION_PHOTO_UNKNOWN"
    assert await count() == 0
    c = await svc.submit_claim(me, e.id, kind="damage", occurred_on="2026-11-19", region="CN-HN",
                               description="cracked", photos=[mine], idempotency_key="w1")
    c = await svc.ask_info(ALICE, c.id, question="the back of the phone, please")
    assert await refused(svc.answer_info(me, c.id, note="here", photos=[theirs])) == "PROTECTION_PHOTO_UNKNOWN"
    c, _ = await svc.claim_for_staff(c.id)
    assert (c.state, c.photos) == (ClaimState.MORE_INFO, [mine])
