"""Partner orders (``orders``): one that stays pending until the partner answers, told as a story.

Li Lei registers, brings 500.00 CNY in from his bank card and sets his PIN; Wang Fang
registers. He cashes 200.00 out to his card (fee 0.20 on top). The bank accepts the order
but is still processing it: the order is pending, the 200.20 is held in his wallet (still
his balance, no longer spendable: a 300.00 payment to Wang Fang is refused) and nothing
has reached the operator's reserve or the fees. The worker asks the bank when the order is
due: still processing, nothing moves. The bank finishes (the SIMULATOR releases the order)
and the card is credited, but the books wait for the bank to say so: at the next check the
hold is posted, the reserve pays the 200.00 out and the fee is earned. Later checks find
nothing pending and move nothing. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME
from tests.scenarios.story import (
    LI_LEI,
    PIN,
    WANG_FANG,
    available,
    bank_balance,
    bind_card,
    books,
    platform,
    refused,
    sign_up,
    sms,
)
from tests.support import partners


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 20, 3, 0, tzinfo=UTC))  # 11:00 in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def test_orders_story(c: Container, bank: str, clock: ManualClock) -> None:
    li, wang = LI_LEI.wallet, WANG_FANG.wallet
    want = {li: 0, wang: 0, BANK_SETTLEMENT: 0, FEE_INCOME: 0}

    # Li Lei registers, binds his card, brings 500.00 in and sets his PIN; Wang Fang registers.
    me = await sign_up(c, LI_LEI)
    await sign_up(c, WANG_FANG)
    card = await bind_card(c, bank, me, LI_LEI, at_bank=100_000)
    assert (await c.banking.cash_in(me, card, 50_000, idempotency_key="cash-in")).state.value == "succeeded"
    await c.wallet.set_pin(LI_LEI.number, PIN)
    want |= {li: 50_000, BANK_SETTLEMENT: 50_000}
    assert await books(c, want) == want
    assert bank_balance(bank, LI_LEI) == 50_000

    # 200.00 out to his card; the bank answers "processing" and holds the order until released.
    partners.behave(f"{bank}/sim", processing_rate=1.0, settle_after_s=None)
    order = await c.banking.cash_out(me, card, 20_000, idempotency_key="cash-out", pin=PIN)
    assert (order.state.value, order.fee) == ("pending", 20)
    assert await books(c, want) == want  # nothing posted yet...
    assert await available(c, li) == 50_000 - 20_020  # ...but the amount and its fee are held
    assert await available(c, BANK_SETTLEMENT) == 50_000 - 20_000
    assert bank_balance(bank, LI_LEI) == 50_000

    # The held money cannot be spent again: 300.00 to Wang Fang is more than is left.
    assert await refused(c.wallet.transfer(me, WANG_FANG.number, 30_000, idempotency_key="rent",
                                           pin=PIN)) == "INSUFFICIENT_FUNDS"
    assert await books(c, want) == want

    # Not due yet: the worker asks nobody. When due, the bank says it is still processing.
    assert await c.orders.resolve_pending() == 0
    clock.advance(10)
    assert await c.orders.resolve_pending() == 1
    still = await c.orders.get(order.id)
    assert still is not None and still.state.value == "pending"
    assert await books(c, want) == want and await available(c, li) == 29_980

    # The bank finishes: the card is credited there, but the books wait for the bank's answer.
    partners.behave(f"{bank}/sim")
    assert partners.release(f"{bank}/sim") == 1
    assert bank_balance(bank, LI_LEI) == 70_000
    assert await books(c, want) == want

    # At the next check the hold is posted: the reserve pays out 200.00 and the fee is earned.
    clock.advance(20)
    assert await c.orders.resolve_pending() == 1
    assert (await c.banking.order(me, order.id)).state.value == "succeeded"
    want |= {li: 29_980, BANK_SETTLEMENT: 30_000, FEE_INCOME: 20}
    assert await books(c, want) == want
    assert await available(c, li) == 29_980
    assert ("cash_out.succeeded", {"amount_fen": 20_000, "fee_fen": 20}) in await sms(c, LI_LEI.msisdn)

    # Nothing is pending any more: later checks ask nobody and move nothing.
    clock.advance(3600)
    assert await c.orders.resolve_pending() == 0
    assert await books(c, want) == want
    assert bank_balance(bank, LI_LEI) == 70_000

    assert (await c.ledger.verify()).ok
