"""The operator's products and insurance on SQLite and PostgreSQL against the provider
SIMULATORS: delivery posts the hold, a failed delivery refunds it automatically, a
policy is cancelled in its cooling-off period for a full refund and never after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, OPERATOR_PRODUCT_INCOME, PAYABLE_INSURER, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.products.gateway_http import HttpProviderGateway
from mobipay.products.reference_data import insurance_products, operator_products
from mobipay.products.service import ProductsService
from mobipay.wallet.model import id_card_check_char
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.conftest import PROVIDER_SECRET
from tests.support import partners

ID = "31010419850615003"
ID_NUMBER = ID + id_card_check_char(ID)


@pytest.fixture
async def products(db: Database, ledger: Ledger, clock: ManualClock, providers: dict[str, str], tmp_path: Path
                   ) -> AsyncIterator[ProductsService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    gateways = {name: HttpProviderGateway(name, url, PROVIDER_SECRET.encode(), timeout_s=1.0)
                for name, url in providers.items()}
    yield ProductsService(uow, WalletService(uow, number_segments(), b"t"), OrderBook(uow, tmp_path),
                          dict(gateways), operator_products(), insurance_products())
    for g in gateways.values():
        await g.close()


async def payer(products: ProductsService, msisdn: str = "+8613800138000") -> Principal:
    user = await products.wallet.create_user(msisdn, actor="t", reason="t")
    assert (await products.uow.ledger.post(Transfer(f"fund{msisdn}", (Leg.debit(BANK_SETTLEMENT, 100_000),
                                                                      Leg.credit(user.account_code, 100_000)),
                                                    "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def balances(products: ProductsService, me: Principal) -> tuple[int, int, int, int]:
    a = await products.uow.ledger.accounts([me.account_code, OPERATOR_PRODUCT_INCOME, PAYABLE_INSURER])
    return (a[me.account_code].balance, a[me.account_code].available, a[OPERATOR_PRODUCT_INCOME].balance,
            a[PAYABLE_INSURER].balance)


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


def behave(url: str, **behaviour: Any) -> None:
    partners.behave(f"{url}/sim", **behaviour)


def bar(url: str, msisdn: str) -> None:
    httpx.post(f"{url}/sim/barred", json={"msisdn": msisdn}).raise_for_status()


async def test_operator_products(products: ProductsService, providers: dict[str, str]) -> None:
    me = await payer(products)
    order = await products.buy_product(me, "fetion_vip", idempotency_key="k1")
    assert order.state is OrderState.SUCCEEDED and order.partner_ref
    assert (await products.buy_product(me, "FETION_VIP", idempotency_key="k1")).replayed
    # the key first: another product under it is a conflict, before its price asks for the PIN
    assert await refused(products.buy_product(me, "MUSIC_CRBT", idempotency_key="k1")) == "IDEMPOTENCY_CONFLICT"
    assert await balances(products, me) == (99_000, 99_000, 1_000, 0)
    assert await refused(products.buy_product(me, "NOPE", idempotency_key="k2")) == "PRODUCT_NOT_FOUND"
    unicom = await payer(products, "+8618600186000")
    assert await refused(products.buy_product(unicom, "MUSIC_CRBT", idempotency_key="k3")) == (
        "PRODUCT_NOT_AVAILABLE")
    bar(providers["operator_products"], me.msisdn)  # delivery fails: the refund is automatic
    failed = await products.buy_product(me, "MUSIC_CRBT", idempotency_key="k4")
    assert (failed.state, failed.reason) == (OrderState.FAILED, "subscriber_barred")
    assert await balances(products, me) == (99_000, 99_000, 1_000, 0)


async def test_insurance_and_its_cooling_off(products: ProductsService, providers: dict[str, str],
                                             clock: ManualClock) -> None:
    me = await payer(products)
    today = clock.now().astimezone(SHANGHAI).date()
    policy = await products.buy_policy(me, "ACC_1Y_100K", insured_name="张伟", insured_id=ID_NUMBER,
                                       starts_on=today + timedelta(days=1), idempotency_key="p1")
    assert policy.state is OrderState.SUCCEEDED and policy.partner_ref.startswith("P")
    assert await balances(products, me) == (95_000, 95_000, 0, 5_000)
    assert await refused(products.buy_policy(me, "ACC_1Y_100K", insured_name="张伟", insured_id="123",
                                             starts_on=today, idempotency_key="p2")) == "INVALID_ID_CARD"
    assert await refused(products.buy_policy(me, "ACC_1Y_100K", insured_name="张伟", insured_id=ID_NUMBER,
                                             starts_on=today - timedelta(days=1), idempotency_key="p3")) == (
        "VALIDATION_FAILED")
    # a one-month policy without cooling-off: cancellable only before cover starts
    short = await products.buy_policy(me, "ACC_1M_50K", insured_name="张伟", insured_id=ID_NUMBER,
                                      starts_on=today, idempotency_key="p4")
    assert await refused(products.cancel_policy(me, short.id)) == "COOLING_OFF_OVER"
    clock.advance(10 * 24 * 3600)  # day 10 of a 15-day cooling-off
    cancel = await products.cancel_policy(me, policy.id)
    assert cancel.state is OrderState.SUCCEEDED
    assert (await products.cancel_policy(me, policy.id)).id == cancel.id  # asking again: the same cancellation
    assert await balances(products, me) == (100_000 - 990, 100_000 - 990, 0, 990)
    listed = {p.id: (c.state if c else None) for p, c in await products.policies(me)}
    assert listed == {policy.id: OrderState.SUCCEEDED, short.id: None}
    assert await refused(products.cancel_policy(me, "ip_nope")) == "POLICY_NOT_FOUND"


async def test_a_slow_insurer_settles_once(products: ProductsService, providers: dict[str, str],
                                           clock: ManualClock) -> None:
    me = await payer(products)
    behave(providers["insurer"], timeout_rate=1.0, hang_s=None)
    today = clock.now().astimezone(SHANGHAI).date()
    policy = await products.buy_policy(me, "TRAVEL_7D_CN", insured_name="李娜", insured_id=ID_NUMBER,
                                       starts_on=today + timedelta(days=3), idempotency_key="s1")
    assert policy.state is OrderState.PENDING
    assert (await balances(products, me))[:2] == (100_000, 100_000 - 1_500)
    behave(providers["insurer"])
    partners.release(f"{providers['insurer']}/sim")
    clock.advance(10)
    assert await products.orders.resolve_pending() == 1
    assert await balances(products, me) == (98_500, 98_500, 0, 1_500)
    assert (await products.uow.ledger.verify()).ok
