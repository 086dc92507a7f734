"""Monthly operator products as subscriptions, and insurance cancellations retried after a
decline, on SQLite and PostgreSQL with the providers in process (each answer chosen by the
test): one live subscription per product, renewal from the wallet by the worker's job
(never twice), lapsing when it cannot be paid, cancelling keeps the paid period. Every
refusal is checked to change no balance."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, OPERATOR_PRODUCT_INCOME, PAYABLE_INSURER, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState, PartnerAnswer, PartnerStatus
from mobipay.orders.service import OrderBook, StatementLine
from mobipay.platform.db import Database
from mobipay.products.model import SubscriptionState, add_months, renewal_order_id
from mobipay.products.reference_data import insurance_products, operator_products
from mobipay.products.service import INSURER, OPERATOR_PRODUCTS, ProductsService, cancel_order_id
from mobipay.wallet.model import id_card_check_char
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService

ID = "31010419850615003"
ID_NUMBER = ID + id_card_check_char(ID)
START = datetime(2026, 1, 31, 4, 0, tzinfo=UTC)  # 12:00 in Beijing on 31 January: next is 28 February


class Provider:
    """A provider in process: every order succeeds unless the test says ``next`` (one answer
    for the next new order: failed, processing). ``orders`` counts what it was sent."""

    def __init__(self) -> None:
        self.orders: dict[str, PartnerAnswer] = {}
        self.next: list[PartnerStatus] = []

    async def order(self, order_id: str, action: str, amount: int, details: dict[str, Any]) -> PartnerAnswer:
        if order_id not in self.orders:
            status = self.next.pop(0) if self.next else PartnerStatus.SUCCEEDED
            self.orders[order_id] = PartnerAnswer(order_id, status, f"REF{len(self.orders) + 1}",
                                                  "declined" if status is PartnerStatus.FAILED else "")
        return self.orders[order_id]

    async def query(self, order_id: str) -> PartnerAnswer:
        return self.orders.get(order_id, PartnerAnswer(order_id, PartnerStatus.NOT_FOUND))

    async def statement(self, day: date) -> list[StatementLine]:
        return []

    def finish(self, order_id: str, status: PartnerStatus) -> PartnerAnswer:
        self.orders[order_id] = PartnerAnswer(order_id, status, "REF-LATE", "")
        return self.orders[order_id]


@pytest.fixture
def start(clock: ManualClock) -> ManualClock:
    clock.set(START)
    return clock


@pytest.fixture
async def providers() -> dict[str, Provider]:
    return {OPERATOR_PRODUCTS: Provider(), INSURER: Provider()}


@pytest.fixture
async def products(db: Database, ledger: Ledger, start: ManualClock, providers: dict[str, Provider],
                   tmp_path: Path) -> ProductsService:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, start, ledger)
    return ProductsService(uow, WalletService(uow, number_segments(), b"t"), OrderBook(uow, tmp_path),
                          dict(providers), operator_products(), insurance_products(), renewal_notice_days=3)


async def payer(products: ProductsService, msisdn: str = "+8613800138000", fund: int = 100_000) -> Principal:
    user = await products.wallet.create_user(msisdn, actor="t", reason="t")
    if fund:
        assert (await products.uow.ledger.post(Transfer(f"fund{msisdn}", (Leg.debit(BANK_SETTLEMENT, fund),
                                                                          Leg.credit(user.account_code, fund)),
                                                        "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def books(products: ProductsService, me: Principal) -> tuple[int, int, int]:
    """(wallet balance, wallet available, the operator's product income)."""
    a = await products.uow.ledger.accounts([me.account_code, OPERATOR_PRODUCT_INCOME])
    return a[me.account_code].balance, a[me.account_code].available, a[OPERATOR_PRODUCT_INCOME].balance


async def refused(coro: Any) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value


async def sms(products: ProductsService) -> list[tuple[str, dict[str, Any]]]:
    async with products.uow.db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at, id"))
        return [(p["template"], p["params"]) for p in (json.loads(r[0]) for r in rows)]


async def templates(products: ProductsService) -> list[str]:
    return [t for t, _ in await sms(products)]


async def test_a_monthly_product_is_one_subscription(products: ProductsService) -> None:
    me = await payer(products)
    order = await products.buy_product(me, "music_crbt", idempotency_key="k1")
    assert order.state is OrderState.SUCCEEDED and await books(products, me) == (99_500, 99_500, 500)
    [sub] = await products.subscriptions(me)
    assert sub.state is SubscriptionState.ACTIVE and sub.order_id == order.id and sub.cycle == 1
    assert sub.paid_until == datetime(2026, 2, 28, 4, 0, tzinfo=UTC)  # 31 January + 1 month, clamped
    assert (await templates(products)).count("operator_product.succeeded") == 1

    again = await refused(products.buy_product(me, "MUSIC_CRBT", idempotency_key="k2"))
    assert again.code == "ALREADY_SUBSCRIBED" and again.extra["subscription_id"] == sub.id
    assert await books(products, me) == (99_500, 99_500, 500)  # nothing charged, nothing held
    replay = await products.buy_product(me, "MUSIC_CRBT", idempotency_key="k1")  # the first order again
    assert replay.replayed and replay.id == order.id and await books(products, me) == (99_500, 99_500, 500)
    assert [o.id for o in await products.product_orders(me)] == [order.id]
    assert (await products.subscription(me, sub.id)) == sub

    other = await products.buy_product(me, "INFO_12580_WEATHER", idempotency_key="k3")  # another product: fine
    assert other.state is OrderState.SUCCEEDED and len(await products.subscriptions(me)) == 2
    for key in ("k4", "k5"):  # "once" products stay one-off purchases: bought as often as wanted
        assert (await products.buy_product(me, "MUSIC_TRACK", idempotency_key=key)).state is OrderState.SUCCEEDED
    assert len(await products.subscriptions(me)) == 2
    assert await books(products, me) == (100_000 - 500 - 200 - 400, 100_000 - 500 - 200 - 400, 1_100)


async def test_renewal_notice_then_renewal_once(products: ProductsService, start: ManualClock,
                                                providers: dict[str, Provider]) -> None:
    me = await payer(products)
    await products.buy_product(me, "FETION_VIP", idempotency_key="k1")
    [sub] = await products.subscriptions(me)
    start.set(sub.paid_until - timedelta(days=3, seconds=1))
    assert await products.renew_due() == 0  # not yet in the notice window
    start.set(sub.paid_until - timedelta(days=3))
    assert await products.renew_due() == 1 and await products.renew_due() == 0  # one notice
    notices = [p for t, p in await sms(products) if t == "product.renewal_notice"]
    assert notices == [{"name": "飞信会员", "amount_fen": 1000, "date": "2026-02-28"}]
    assert await books(products, me) == (99_000, 99_000, 1_000)  # a notice charges nothing

    start.set(sub.paid_until)
    assert await products.renew_due() == 1
    renewal = renewal_order_id(sub.id, 2)
    [renewed] = await products.subscriptions(me)
    assert renewed.cycle == 2 and renewed.order_id == renewal and renewed.state is SubscriptionState.ACTIVE
    assert renewed.paid_until == add_months(sub.anchor, 2) == datetime(2026, 3, 31, 4, 0, tzinfo=UTC)
    assert await books(products, me) == (98_000, 98_000, 2_000)
    assert "product.renewed" in await templates(products)

    assert await products.renew_due() == 0  # a rerun finds nothing due
    await products._renew(sub)  # a stale rerun with the old row (a crash before it saw the result)
    assert await books(products, me) == (98_000, 98_000, 2_000) and len(providers[OPERATOR_PRODUCTS].orders) == 2
    orders = await products.product_orders(me)
    assert (orders[0].id, orders[0].details.get("cycle"), orders[0].state) == (renewal, 2, OrderState.SUCCEEDED)
    assert (await products.product_order(me, renewal)).amount == 1000


async def test_a_renewal_not_paid_lapses(products: ProductsService, start: ManualClock) -> None:
    me = await payer(products, fund=1_500)
    await products.buy_product(me, "FETION_VIP", idempotency_key="k1")  # 10 CNY; 5 left
    [sub] = await products.subscriptions(me)
    start.set(sub.paid_until)
    assert await products.renew_due() == 1
    [lapsed] = await products.subscriptions(me)
    assert lapsed.state is SubscriptionState.LAPSED and lapsed.cycle == 1
    assert await books(products, me) == (500, 500, 1_000)  # nothing taken, nothing held
    [(template, params)] = [(t, p) for t, p in await sms(products) if t.startswith("product.renewal")]
    assert template == "product.renewal_refused" and params["code"] == "INSUFFICIENT_FUNDS"
    assert await products.renew_due() == 0 and len(await sms(products)) == 2  # told once
    assert [o.id for o in await products.product_orders(me)] == [sub.order_id]  # no renewal order was made

    # A lapsed subscription no longer holds the product: buying it again is a new subscription.
    assert (await products.uow.ledger.post(Transfer("more", (Leg.debit(BANK_SETTLEMENT, 1_000),
                                                             Leg.credit(me.account_code, 1_000)), "cash_in"))).ok
    await products.buy_product(me, "FETION_VIP", idempotency_key="k2")
    assert [s.state for s in await products.subscriptions(me)] == [SubscriptionState.ACTIVE, SubscriptionState.LAPSED]


async def test_a_renewal_the_provider_refuses_is_refunded(products: ProductsService, start: ManualClock,
                                                          providers: dict[str, Provider]) -> None:
    me = await payer(products)
    await products.buy_product(me, "INFO_12580_LIFE", idempotency_key="k1")
    [sub] = await products.subscriptions(me)
    providers[OPERATOR_PRODUCTS].next = [PartnerStatus.FAILED]
    start.set(sub.paid_until)
    await products.renew_due()
    [lapsed] = await products.subscriptions(me)
    assert lapsed.state is SubscriptionState.LAPSED and lapsed.renewal_order is None
    assert (await products.product_order(me, renewal_order_id(sub.id, 2))).state is OrderState.FAILED
    assert await books(products, me) == (99_700, 99_700, 300)  # the renewal's hold was voided
    assert "product.renewal_failed" in await templates(products)


async def test_a_pending_renewal_is_settled_by_its_order(products: ProductsService, start: ManualClock,
                                                         providers: dict[str, Provider]) -> None:
    me = await payer(products)
    await products.buy_product(me, "INFO_12580_LIFE", idempotency_key="k1")
    [sub] = await products.subscriptions(me)
    providers[OPERATOR_PRODUCTS].next = [PartnerStatus.PROCESSING]
    start.set(sub.paid_until)
    await products.renew_due()
    assert await products.renew_due() == 0  # at the provider: not placed again
    assert await books(products, me) == (99_700, 99_400, 300)  # held
    assert (await refused(products.buy_product(me, "INFO_12580_LIFE", idempotency_key="k2"))).code == (
        "ALREADY_SUBSCRIBED")
    renewal = renewal_order_id(sub.id, 2)
    await products.orders.settle(providers[OPERATOR_PRODUCTS].finish(renewal, PartnerStatus.SUCCEEDED))
    [renewed] = await products.subscriptions(me)
    assert renewed.cycle == 2 and renewed.renewal_order is None and await books(products, me) == (99_400, 99_400, 600)


async def test_cancel_keeps_the_paid_period(products: ProductsService, start: ManualClock) -> None:
    me = await payer(products)
    other = await payer(products, "+8613800138001")
    await products.buy_product(me, "MUSIC_CLUB_VIP", idempotency_key="k1")
    [sub] = await products.subscriptions(me)
    assert (await refused(products.cancel_subscription(other, sub.id))).code == "SUBSCRIPTION_NOT_FOUND"
    assert (await refused(products.subscription(other, sub.id))).code == "SUBSCRIPTION_NOT_FOUND"
    start.advance(86_400)
    cancelled = await products.cancel_subscription(me, sub.id)
    assert cancelled.state is SubscriptionState.CANCELLED and cancelled.paid_until == sub.paid_until
    assert cancelled.holds_product(start.now()) and await products.cancel_subscription(me, sub.id) == cancelled
    assert (await templates(products)).count("product.cancelled") == 1
    assert (await refused(products.buy_product(me, "MUSIC_CLUB_VIP", idempotency_key="k2"))).code == (
        "ALREADY_SUBSCRIBED")  # still paid for: a second purchase would pay the same days twice

    start.set(sub.paid_until - timedelta(days=3))
    assert await products.renew_due() == 0  # no notice: it will not renew
    start.set(sub.paid_until)
    assert await products.renew_due() == 1
    [ended] = await products.subscriptions(me)
    assert ended.state is SubscriptionState.ENDED and await books(products, me) == (99_400, 99_400, 600)
    assert (await refused(products.cancel_subscription(me, sub.id))).code == "SUBSCRIPTION_NOT_ACTIVE"
    assert [o.id for o in await products.product_orders(me)] == [sub.order_id]  # never renewed
    await products.buy_product(me, "MUSIC_CLUB_VIP", idempotency_key="k3")  # after the period: a new one
    assert await books(products, me) == (98_800, 98_800, 1_200)


async def test_a_first_order_pending_or_failed(products: ProductsService, start: ManualClock,
                                               providers: dict[str, Provider]) -> None:
    me = await payer(products)
    providers[OPERATOR_PRODUCTS].next = [PartnerStatus.FAILED]
    failed = await products.buy_product(me, "MUSIC_CRBT", idempotency_key="k1")
    assert failed.state is OrderState.FAILED and await books(products, me) == (100_000, 100_000, 0)
    assert [s.state for s in await products.subscriptions(me)] == [SubscriptionState.FAILED]
    assert (await refused(products.cancel_subscription(me, (await products.subscriptions(me))[0].id))).code == (
        "SUBSCRIPTION_NOT_ACTIVE")

    start.advance(60)
    providers[OPERATOR_PRODUCTS].next = [PartnerStatus.PROCESSING]
    pending = await products.buy_product(me, "MUSIC_CRBT", idempotency_key="k2")
    assert pending.state is OrderState.PENDING
    assert (await refused(products.buy_product(me, "MUSIC_CRBT", idempotency_key="k3"))).code == "ALREADY_SUBSCRIBED"
    assert await books(products, me) == (100_000, 99_500, 0)  # one hold only
    await products.orders.settle(providers[OPERATOR_PRODUCTS].finish(pending.id, PartnerStatus.SUCCEEDED))
    assert (await products.subscriptions(me))[0].state is SubscriptionState.ACTIVE
    assert (await refused(products.product_order(me, "po_nope"))).code == "PRODUCT_ORDER_NOT_FOUND"


async def test_racing_purchases_make_one_subscription(products: ProductsService) -> None:
    me = await payer(products)
    outcomes = await asyncio.gather(*(products.buy_product(me, "FETION_VIP", idempotency_key=f"r{n}")
                                      for n in range(4)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    assert all(o.code == "ALREADY_SUBSCRIBED" for o in outcomes if isinstance(o, MobipayError)), outcomes
    assert await books(products, me) == (99_000, 99_000, 1_000)


async def test_a_declined_cancellation_is_retried(products: ProductsService, start: ManualClock,
                                                  providers: dict[str, Provider]) -> None:
    me = await payer(products)
    policy = await products.buy_policy(me, "ACC_1Y_100K", insured_name="王小明", insured_id=ID_NUMBER,
                                       starts_on=(start.now() + timedelta(days=1)).date(), idempotency_key="p1")
    insurer = products.uow.ledger
    providers[INSURER].next = [PartnerStatus.FAILED]
    declined = await products.cancel_policy(me, policy.id)
    assert declined.state is OrderState.FAILED and declined.id == cancel_order_id(policy.id, 1)
    assert (await insurer.account(PAYABLE_INSURER)).balance == 5_000  # the premium did not come back
    assert (await insurer.account(me.account_code)).balance == 95_000
    [(template, params)] = [(t, p) for t, p in await sms(products) if t.startswith("insurance_cancel")]
    assert template == "insurance_cancel.declined" and params["until"] == "2026-02-15 12:00"
    assert [c.state if c else None for _, c in await products.policies(me)] == [OrderState.FAILED]

    start.advance(86_400)
    retried = await products.cancel_policy(me, policy.id)  # a new attempt, a new order for the insurer
    assert retried.state is OrderState.SUCCEEDED and retried.id == cancel_order_id(policy.id, 2) != declined.id
    assert (await insurer.account(me.account_code)).balance == 100_000
    assert (await insurer.account(PAYABLE_INSURER)).balance == 0
    again = await products.cancel_policy(me, policy.id)  # asking once more: the same cancellation
    assert again.id == retried.id and again.replayed and (await insurer.account(me.account_code)).balance == 100_000
    assert [c.id if c else None for _, c in await products.policies(me)] == [retried.id]


async def test_a_declined_cancellation_is_not_retried_after_cooling_off(
        products: ProductsService, start: ManualClock, providers: dict[str, Provider]) -> None:
    me = await payer(products)
    policy = await products.buy_policy(me, "ACC_1Y_100K", insured_name="王小明", insured_id=ID_NUMBER,
                                       starts_on=start.now().date(), idempotency_key="p1")
    providers[INSURER].next = [PartnerStatus.FAILED]
    await products.cancel_policy(me, policy.id)
    start.advance(15 * 86_400)
    assert (await refused(products.cancel_policy(me, policy.id))).code == "COOLING_OFF_OVER"
    assert (await products.uow.ledger.account(me.account_code)).balance == 95_000
    assert len(providers[INSURER].orders) == 2  # the policy and the one declined cancellation
