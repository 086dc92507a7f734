"""Merchants, told as one story.

Dangdang (当当网), a book shop, applies and is approved at once (a low-risk category: fee
0.60 %, settled T+1). It pays 100.00 CNY into the platform's bank account for marketing
and starts a red-envelope campaign: 10.00 off orders of 50.00 and more, budget 30.00,
taken from what the platform owes it. Li Lei and Wang Fang register and bring 200.00
each in from their bank cards. Wang Fang buys a book for 80.00. Li Lei claims his red
envelope and pays a 60.00 order with it: the envelope pays 10.00, his wallet 50.00 (a
second press pays nothing twice). The shop refunds him 20.00; it cannot refund more than
the 30.00 of cash left, the envelope is not cash. After midnight (and the five-minute
cut-off) the day is settled: 140.00 sold, 20.00 refunded, 0.84 fee, 119.16 paid out to
the shop's bank account; settling again pays nothing twice. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME, SETTLEMENT_IN_TRANSIT
from mobipay.ledger.model import Leg, Transfer
from tests.scenarios.story import LI_LEI, WANG_FANG, books, cash_in, platform, refused, sign_up, sim

DAY, NEXT_DAY = date(2026, 11, 24), date(2026, 11, 25)
SHOP_ACCOUNT = "6222020000111122222"  # the shop's own bank account, where settlements go


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def test_merchants_story(c: Container, bank: str, clock: ManualClock) -> None:
    # Dangdang applies: a book shop (MCC 5942) is approved by rule.
    shop = await c.merchants.apply(name="当当网", credit_code="91350100M000100Y43", legal_person="李国庆",
                                   contact="13800138123", mcc="5942", website="https://dangdang.example",
                                   settlement_account=SHOP_ACCOUNT)
    assert (shop.state.value, shop.fee_bps) == ("approved", 60)
    li, wang, payable = LI_LEI.wallet, WANG_FANG.wallet, shop.account_code
    want = {li: 0, wang: 0, payable: 0, BANK_SETTLEMENT: 0, FEE_INCOME: 0, SETTLEMENT_IN_TRANSIT: 0}
    assert await books(c, want) == want

    # It pays 100.00 into the platform's bank account for its marketing: owed to it until spent.
    # (No service takes a merchant's deposit: posted as the demo loader posts it.)
    assert (await c.ledger.post(Transfer(f"deposit:{shop.id}", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                                Leg.credit(payable, 10_000)), "merchant.deposit"))).ok
    want |= {payable: 10_000, BANK_SETTLEMENT: 10_000}
    assert await books(c, want) == want

    # Its campaign: 10.00 off 50.00 and more, a budget of 30.00 out of what it is owed.
    campaign = await c.red_envelopes.create_campaign(shop, name="满50减10", rule="threshold", face=1_000,
                                                     min_spend=5_000, budget=3_000, actor="dangdang")
    budget, issued = f"liability:campaign:{campaign.id}", f"liability:campaign_issued:{campaign.id}"
    want |= {payable: 7_000, budget: 3_000, issued: 0}
    assert await books(c, want) == want

    # Li Lei and Wang Fang register and bring 200.00 each in from their cards.
    me, her = await sign_up(c, LI_LEI), await sign_up(c, WANG_FANG)
    await cash_in(c, bank, me, LI_LEI, 20_000)
    await cash_in(c, bank, her, WANG_FANG, 20_000)
    want |= {li: 20_000, wang: 20_000, BANK_SETTLEMENT: 50_000}
    assert await books(c, want) == want

    # Wang Fang buys a book for 80.00.
    book = await c.merchants.create_trade(shop, "DD-1", 8_000, "《平凡的世界》")
    assert (await c.merchants.pay(her, book.id)).state.value == "TRADE_SUCCESS"
    want |= {wang: 12_000, payable: 15_000}
    assert await books(c, want) == want

    # Li Lei claims his red envelope: 10.00 of the budget is set aside for him.
    coupon = await c.red_envelopes.claim(me, campaign.id)
    want |= {budget: 2_000, issued: 1_000}
    assert await books(c, want) == want

    # He pays a 60.00 order with it: 10.00 from the envelope, 50.00 from his wallet; a second press pays nothing.
    order = await c.merchants.create_trade(shop, "DD-2", 6_000, "《三体》全集")
    paid = await c.merchants.pay(me, order.id, coupon_id=coupon.id)
    assert (paid.state.value, paid.amount, paid.red_envelope) == ("TRADE_SUCCESS", 6_000, 1_000)
    assert (await c.merchants.pay(me, order.id, coupon_id=coupon.id)).paid_at == paid.paid_at
    want |= {li: 15_000, issued: 0, payable: 21_000}
    assert await books(c, want) == want

    # The shop refunds him 20.00; 30.01 more would exceed the cash he paid (the envelope is not cash).
    _, refunded, replayed = await c.merchants.refund(shop, "DD-2", "RF-1", 2_000)
    assert (refunded, replayed) == (2_000, False)
    assert await refused(c.merchants.refund(shop, "DD-2", "RF-2", 3_001)) == "REFUND_EXCEEDS_PAID"
    want |= {li: 17_000, payable: 19_000}
    assert await books(c, want) == want

    # Before the day has ended it cannot be settled.
    assert await refused(c.settlements.settle(DAY)) == "SETTLEMENT_DAY_OPEN"
    assert await books(c, want) == want

    # 00:05 the next morning: 140.00 gross, 20.00 refunded, 0.84 fee, 119.16 paid out to the shop's bank.
    clock.set(datetime(2026, 11, 24, 16, 5, tzinfo=UTC))
    [settled] = await c.settlements.settle_due(NEXT_DAY)
    assert (settled.day, settled.gross, settled.refunds, settled.fee, settled.net, settled.state) == (
        DAY, 14_000, 2_000, 84, 11_916, "paid")
    want |= {payable: 7_000, FEE_INCOME: 84, SETTLEMENT_IN_TRANSIT: 0, BANK_SETTLEMENT: 50_000 - 11_916}
    assert await books(c, want) == want
    payouts = [o for o in sim("GET", f"{bank}/sim/orders") if o["kind"] == "payout"]
    assert [(o["target"], o["amount"], o["status"]) for o in payouts] == [(f"acct:{SHOP_ACCOUNT}", 11_916,
                                                                           "succeeded")]

    # Settling again reports what was paid and pays nothing twice.
    [again] = await c.settlements.settle(DAY)
    assert (again.net, again.state) == (11_916, "paid")
    assert await books(c, want) == want
    assert len([o for o in sim("GET", f"{bank}/sim/orders") if o["kind"] == "payout"]) == 1

    assert (await c.ledger.verify()).ok
