"""The operator's products and insurance (one context: ``products``), told as one story.

Li Lei registers and brings 300.00 CNY in from his bank card. He subscribes his China
Mobile number to the Fetion membership for 10.00: the product platform activates it and
the price is the operator's income (his app's retry buys nothing twice). He buys his
father Li Jianguo a one-year accident policy for 50.00, cover from tomorrow, and himself a
one-month policy for 9.90, cover from today: the insurer issues both and the premiums are
owed to it. The one-month policy has no cooling-off and its cover has started: it cannot
be cancelled. Ten days later, within the one-year policy's fifteen days, he cancels it:
the insurer confirms and the 50.00 comes back. Then his number is barred at the product
platform: a ring-back tone cannot be activated, and its price comes straight back. The
books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, OPERATOR_PRODUCT_INCOME, PAYABLE_INSURER
from tests.scenarios.story import LI_LEI, books, cash_in, person, platform, refused, sign_up, sim, sms

FATHER = person("李建国", "13800138001", "19600815", 105)  # only his name and identity card are used


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str, providers: dict[str, str]
            ) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank, products_url=providers["operator_products"],
                               insurer_url=providers["insurer"])
    yield container
    await container.close()


async def test_products_story(c: Container, bank: str, clock: ManualClock, providers: dict[str, str]) -> None:
    li = LI_LEI.wallet
    want = {li: 0, BANK_SETTLEMENT: 0, OPERATOR_PRODUCT_INCOME: 0, PAYABLE_INSURER: 0}

    # Li Lei registers and brings 300.00 in from his card.
    me = await sign_up(c, LI_LEI)
    await cash_in(c, bank, me, LI_LEI, 30_000)
    want |= {li: 30_000, BANK_SETTLEMENT: 30_000}
    assert await books(c, want) == want

    # The Fetion membership, 10.00: activated; the retry of his app is the same order.
    fetion = await c.products.buy_product(me, "FETION_VIP", idempotency_key="fetion")
    again = await c.products.buy_product(me, "fetion_vip", idempotency_key="fetion")
    assert (fetion.state.value, again.id, again.replayed) == ("succeeded", fetion.id, True)
    want |= {li: 29_000, OPERATOR_PRODUCT_INCOME: 1_000}
    assert await books(c, want) == want
    assert ("operator_product.succeeded", {"name": "飞信会员", "amount_fen": 1_000, "ref": fetion.partner_ref}) in (
        await sms(c, LI_LEI.msisdn))

    # A year's accident cover for his father from tomorrow (50.00), a month's for himself from today (9.90).
    today = clock.now().astimezone(SHANGHAI).date()
    year = await c.products.buy_policy(me, "ACC_1Y_100K", insured_name=FATHER.name, insured_id=FATHER.id_number,
                                       starts_on=today + timedelta(days=1), idempotency_key="dad-year")
    month = await c.products.buy_policy(me, "ACC_1M_50K", insured_name=LI_LEI.name, insured_id=LI_LEI.id_number,
                                        starts_on=today, idempotency_key="me-month")
    assert (year.state.value, month.state.value) == ("succeeded", "succeeded")
    assert year.partner_ref.startswith("P")
    want |= {li: 29_000 - 5_000 - 990, PAYABLE_INSURER: 5_990}
    assert await books(c, want) == want

    # The one-month policy: no cooling-off, cover started: not cancellable, nothing moves.
    assert await refused(c.products.cancel_policy(me, month.id)) == "COOLING_OFF_OVER"
    assert await books(c, want) == want

    # Day 10 of the one-year policy's 15-day cooling-off: cancelled, the premium back in full.
    clock.advance(10 * 24 * 3600)
    cancel = await c.products.cancel_policy(me, year.id)
    assert cancel.state.value == "succeeded"
    assert (await c.products.cancel_policy(me, year.id)).id == cancel.id  # asking again: the same cancellation
    want |= {li: 29_000 - 990, PAYABLE_INSURER: 990}
    assert await books(c, want) == want
    assert {p.id: cancelled.state.value if cancelled else None for p, cancelled in await c.products.policies(me)} == {
        year.id: "succeeded", month.id: None}

    # His number is barred at the product platform: the ring-back tone fails, its 5.00 comes back.
    sim("POST", f"{providers['operator_products']}/sim/barred", {"msisdn": LI_LEI.msisdn})
    tone = await c.products.buy_product(me, "MUSIC_CRBT", idempotency_key="tone")
    assert (tone.state.value, tone.reason) == ("failed", "subscriber_barred")
    assert await books(c, want) == want
    assert (await c.ledger.account(li)).available == 29_000 - 990

    assert (await c.ledger.verify()).ok
