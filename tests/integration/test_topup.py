"""Phone top-up on SQLite and PostgreSQL against the operator-billing and aggregator
SIMULATORS (real HTTP servers in their own processes): quotes and price rules, routes,
holds posted or released, every way a partner fails to answer, limits, the daily file.
Every step asserts the payer's wallet, the ledger's accounts and the phone's balance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import (
    BANK_SETTLEMENT,
    PAYABLE_AGGREGATOR,
    PAYABLE_OPERATOR_BILLING,
    SYSTEM_ACCOUNTS,
    TOPUP_DISCOUNTS,
)
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.topup.gateway_http import HttpTopupGateway
from mobipay.topup.model import Route, TopupPolicy
from mobipay.topup.reference_data import price_rules
from mobipay.topup.service import TopupService
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.conftest import TELCO_SECRET
from tests.support import partners

ME = "+8613800138000"  # China Mobile: the home operator's billing system
UNICOM = "+8618600186000"  # China Unicom: the aggregator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # the November promotion runs


@pytest.fixture
async def topups(db: Database, ledger: Ledger, clock: ManualClock, telcos: dict[str, str], tmp_path: Path
                 ) -> AsyncIterator[TopupService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"test-secret")
    gateways = {route: HttpTopupGateway(route.value, telcos[route.value], TELCO_SECRET.encode(), timeout_s=1.0)
                for route in Route}
    yield TopupService(uow, wallet, OrderBook(uow, tmp_path), dict(gateways), price_rules(), TopupPolicy())
    for g in gateways.values():
        await g.close()


async def payer(topups: TopupService, balance: int = 200_000, msisdn: str = ME) -> Principal:
    user = await topups.wallet.create_user(msisdn, actor="test", reason="test")
    result = await topups.uow.ledger.post(Transfer(f"fund:{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                                      Leg.credit(user.account_code, balance)),
                                                   "cash_in"))
    assert result.ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


def phone(telcos: dict[str, str], route: str, msisdn: str) -> int:
    return int(httpx.get(f"{telcos[route]}/sim/numbers/{msisdn}").json()["balance"])


def behave(telcos: dict[str, str], route: str, **behaviour: Any) -> None:
    partners.behave(f"{telcos[route]}/sim", **behaviour)


def suspend(telcos: dict[str, str], route: str, msisdn: str) -> None:
    httpx.post(f"{telcos[route]}/sim/numbers", json={"msisdn": msisdn, "state": "suspended"}).raise_for_status()


async def books(topups: TopupService, me: Principal) -> dict[str, tuple[int, int]]:
    codes = [me.account_code, PAYABLE_OPERATOR_BILLING, PAYABLE_AGGREGATOR, TOPUP_DISCOUNTS]
    accounts = await topups.uow.ledger.accounts(codes)
    return {c: (accounts[c].balance, accounts[c].available) for c in codes}


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


def refused_now(fn: Any, *args: Any) -> str:
    with pytest.raises(MobipayError) as info:
        fn(*args)
    return info.value.code


async def test_quotes_follow_the_price_rules(topups: TopupService) -> None:
    q = topups.quote("13800138000", 10_000)
    assert (q.route, q.operator, q.price, q.discount) == (Route.OPERATOR_BILLING, "china_mobile", 9_850, 150)
    q = topups.quote("138 0013 8000", 30_000)  # the November promotion beats the 1.5 %
    assert (q.price, q.discount, q.rule) == (29_400, 600, "November promotion: 2% off 300 CNY and up")
    q = topups.quote("18600186000", 5_000)
    assert (q.route, q.operator, q.price, q.discount, q.rule) == (Route.AGGREGATOR, "china_unicom", 5_000, 0, "")
    q = topups.quote("18600186000", 7_700)  # any whole-yuan amount within bounds
    assert q.price == 7_700
    for face in (1_050, 900, 50_100, 0, -1_000):
        assert refused_now(topups.quote, "13800138000", face) in ("INVALID_FACE_VALUE", "INVALID_AMOUNT"), face
    assert refused_now(topups.quote, "13800138000", 12.5) == "INVALID_AMOUNT"
    assert refused_now(topups.quote, "1380013800", 10_000) == "INVALID_MSISDN"
    assert refused_now(topups.quote, "14000140000", 10_000) == "UNKNOWN_NUMBER_SEGMENT"


async def test_own_and_other_operators_numbers(topups: TopupService, telcos: dict[str, str]) -> None:
    me = await payer(topups)
    order = await topups.topup(me, "13800138000", 10_000, idempotency_key="t1")
    assert order.state is OrderState.SUCCEEDED and order.partner == "operator_billing" and order.partner_ref
    again = await topups.topup(me, "13800138000", 10_000, idempotency_key="t1")
    assert (again.id, again.replayed) == (order.id, True)
    assert await refused(topups.topup(me, "13800138000", 5_000, idempotency_key="t1")) == "IDEMPOTENCY_CONFLICT"
    # the key first: a larger amount under it is a conflict before any PIN is asked
    assert await refused(topups.topup(me, "13800138000", 50_000, idempotency_key="t1")) == "IDEMPOTENCY_CONFLICT"
    other = await topups.topup(me, "18600186000", 5_000, idempotency_key="t2")
    assert other.state is OrderState.SUCCEEDED and other.partner == "topup_aggregator"
    assert phone(telcos, "operator_billing", ME) == 10_000 and phone(telcos, "topup_aggregator", UNICOM) == 5_000
    assert await books(topups, me) == {
        me.account_code: (200_000 - 9_850 - 5_000,) * 2,
        PAYABLE_OPERATOR_BILLING: (10_000, 10_000), PAYABLE_AGGREGATOR: (5_000, 5_000), TOPUP_DISCOUNTS: (150, 150)}
    assert [o.id for o in await topups.mine(me)] == [other.id, order.id]
    assert (await topups.uow.ledger.verify()).ok


async def test_a_refused_topup_gives_the_money_back(topups: TopupService, telcos: dict[str, str]) -> None:
    me = await payer(topups)
    before = await books(topups, me)
    suspend(telcos, "topup_aggregator", UNICOM)
    order = await topups.topup(me, "18600186000", 5_000, idempotency_key="s1")
    assert (order.state, order.reason) == (OrderState.FAILED, "number_suspended")
    behave(telcos, "operator_billing", decline_rate=1.0)
    declined = await topups.topup(me, "13800138000", 10_000, idempotency_key="s2")
    assert declined.state is OrderState.FAILED
    assert await books(topups, me) == before
    # failed top-ups give back what they took of the Tier I lifetime limit (1,000 CNY):
    # 2 × 490 CNY still fit after the 147.50 CNY that failed
    behave(telcos, "operator_billing")
    await topups.wallet.set_pin(me.msisdn, "135790")
    for key in ("s3", "s4"):
        done = await topups.topup(me, "13800138000", 50_000, idempotency_key=key, pin="135790")
        assert (done.state, done.details["price"]) == (OrderState.SUCCEEDED, 49_000)


async def test_limits_and_pin(topups: TopupService) -> None:
    me = await payer(topups, balance=500_000)
    await topups.wallet.set_pin(me.msisdn, "135790")
    assert await refused(topups.topup(me, "13800138000", 30_000, idempotency_key="p1")) == "PIN_REQUIRED"
    assert await refused(topups.topup(me, "13800138000", 30_000, idempotency_key="p1", pin="000111")) == (
        "PIN_INCORRECT")
    assert (await topups.topup(me, "13800138000", 50_000, idempotency_key="p2", pin="135790")).state is (
        OrderState.SUCCEEDED)  # price 490 CNY
    assert (await topups.topup(me, "13800138000", 50_000, idempotency_key="p3", pin="135790")).state is (
        OrderState.SUCCEEDED)  # 980 CNY of the Tier I 1,000 CNY used
    before = await books(topups, me)
    assert await refused(topups.topup(me, "13800138000", 5_000, idempotency_key="p4")) == "LIMIT_EXCEEDED"
    assert await books(topups, me) == before


async def test_unknown_outcomes_settle_once(topups: TopupService, telcos: dict[str, str],
                                            clock: ManualClock) -> None:
    me = await payer(topups)
    behave(telcos, "operator_billing", timeout_rate=1.0, hang_s=None)
    lost = await topups.topup(me, "13800138000", 2_000, idempotency_key="u1")
    behave(telcos, "operator_billing", error_rate=1.0)
    never = await topups.topup(me, "13800138000", 3_000, idempotency_key="u2")
    behave(telcos, "operator_billing", processing_rate=1.0, settle_after_s=None)  # held until released
    later = await topups.topup(me, "13800138000", 5_000, idempotency_key="u3")
    assert {o.state for o in (lost, never, later)} == {OrderState.PENDING}
    balance, available = (await books(topups, me))[me.account_code]
    assert (balance, available) == (200_000, 200_000 - 9_975)  # held, not yet taken (50 CNY: 0.5 % off)
    behave(telcos, "operator_billing")
    assert partners.release(f"{telcos['operator_billing']}/sim") == 1
    clock.advance(10)
    assert await topups.orders.resolve_pending() == 3
    assert {o.state for o in await topups.mine(me)} == {OrderState.SUCCEEDED}
    assert phone(telcos, "operator_billing", ME) == 10_000  # each credited exactly once
    clock.advance(3600)
    assert await topups.orders.resolve_pending() == 0
    assert phone(telcos, "operator_billing", ME) == 10_000
    assert (await books(topups, me))[me.account_code] == (200_000 - 9_975,) * 2


async def test_the_daily_file(topups: TopupService, telcos: dict[str, str]) -> None:
    me = await payer(topups)
    await topups.topup(me, "13800138000", 1_000, idempotency_key="r1")
    behave(telcos, "operator_billing", timeout_rate=1.0, hang_s=None)
    pending = await topups.topup(me, "13800138000", 2_000, idempotency_key="r2")
    behave(telcos, "operator_billing")
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    report = await topups.reconcile(Route.OPERATOR_BILLING, today)
    assert (report.lines, report.matched, report.settled_from_file, report.exceptions) == (2, 1, 1, [])
    assert (await topups.get(me, pending.id)).state is OrderState.SUCCEEDED
    aggregator = await topups.reconcile(Route.AGGREGATOR, today)
    assert aggregator.lines == 0 and aggregator.exceptions == []


async def test_volume_report(topups: TopupService, tmp_path: Path) -> None:
    from datetime import date

    from mobipay.reporting.reports import volumes, write

    me = await payer(topups)
    await topups.topup(me, "13800138000", 10_000, idempotency_key="v1")
    await topups.topup(me, "18600186000", 5_000, idempotency_key="v2")
    day = date(2026, 11, 25)
    assert [(r.key, r.count, r.amount) for r in await volumes(topups.uow, day, day, "product")] == [
        ("topup", 2, 15_000)]
    assert [(r.key, r.count) for r in await volumes(topups.uow, day, day, "day")] == [("2026-11-25", 2)]
    assert await volumes(topups.uow, date(2026, 11, 26), date(2026, 11, 30), "product") == []
    rows = await volumes(topups.uow, day, day, "city")
    csv_path, png_path = write(rows, "city", day, day, tmp_path)
    assert "topup" not in csv_path.read_text() and png_path.stat().st_size > 1000
