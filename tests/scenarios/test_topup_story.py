"""Mobile top-up, told as one story.

Li Lei registers and brings 1,000.00 CNY in from his bank card. He tops up his own China
Mobile number with 100.00: the home operator's billing system credits it, and he pays
98.50 (the 1.5 % price rule; the discount is the operator's marketing expense). He tops
up his mother Han Mei's China Unicom number with 100.00 through the aggregator and pays
99.00 (1 % off); his app retries the request and nothing is charged twice. A top-up of a
suspended Unicom number is refused by the aggregator: the hold is released, nothing moves.
A 300.00 top-up costs more than the password-free amount: refused without the PIN, done
with it. Every phone shows what the ledger owes its operator; the books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_AGGREGATOR, PAYABLE_OPERATOR_BILLING, TOPUP_DISCOUNTS
from tests.scenarios.story import LI_LEI, PIN, books, cash_in, platform, refused, sign_up, sim, sms

MOTHER = "+8618600186000"  # Han Mei, China Unicom: topped up through the aggregator
SUSPENDED = "+8618600186001"  # a Unicom number its operator has suspended


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 5, 12, 4, 0, tzinfo=UTC))  # noon in Shanghai, no promotion running


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str, telcos: dict[str, str]
            ) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank, operator_billing_url=telcos["operator_billing"],
                               aggregator_url=telcos["topup_aggregator"])
    yield container
    await container.close()


def phone(telco: str, msisdn: str) -> int:
    """The airtime balance the operator's system (SIMULATOR) shows for a number."""
    return int(sim("GET", f"{telco}/sim/numbers/{msisdn}")["balance"])


async def test_topup_story(c: Container, bank: str, telcos: dict[str, str]) -> None:
    billing, aggregator = telcos["operator_billing"], telcos["topup_aggregator"]
    li = LI_LEI.wallet
    want = {li: 0, BANK_SETTLEMENT: 0, PAYABLE_OPERATOR_BILLING: 0, PAYABLE_AGGREGATOR: 0, TOPUP_DISCOUNTS: 0}

    # Li Lei registers and brings 1,000.00 in from his card.
    me = await sign_up(c, LI_LEI)
    await cash_in(c, bank, me, LI_LEI, 100_000)
    want |= {li: 100_000, BANK_SETTLEMENT: 100_000}
    assert await books(c, want) == want

    # His own China Mobile number, 100.00: the quote says 98.50 through the home operator's billing.
    quote = c.topup.quote(LI_LEI.number, 10_000)
    assert (quote.route.value, quote.price, quote.discount) == ("operator_billing", 9_850, 150)
    own = await c.topup.topup(me, LI_LEI.number, 10_000, idempotency_key="own-100")
    assert own.state.value == "succeeded" and own.partner == "operator_billing"
    want |= {li: 90_150, PAYABLE_OPERATOR_BILLING: 10_000, TOPUP_DISCOUNTS: 150}
    assert await books(c, want) == want
    assert phone(billing, LI_LEI.msisdn) == 10_000

    # His mother's Unicom number, 100.00 through the aggregator at 99.00; the app retries: charged once.
    mum = await c.topup.topup(me, "186 0018 6000", 10_000, idempotency_key="mum-100")
    again = await c.topup.topup(me, "186 0018 6000", 10_000, idempotency_key="mum-100")
    assert (mum.state.value, mum.partner, again.id, again.replayed) == ("succeeded", "topup_aggregator", mum.id, True)
    want |= {li: 80_250, PAYABLE_AGGREGATOR: 10_000, TOPUP_DISCOUNTS: 250}
    assert await books(c, want) == want
    assert phone(aggregator, MOTHER) == 10_000
    assert ("topup.received", {"face_fen": 10_000}) in await sms(c, MOTHER)

    # A suspended number: the aggregator refuses, the hold is released and nothing moves.
    sim("POST", f"{aggregator}/sim/numbers", {"msisdn": SUSPENDED, "state": "suspended"})
    failed = await c.topup.topup(me, SUSPENDED, 3_000, idempotency_key="suspended-30")
    assert (failed.state.value, failed.reason) == ("failed", "number_suspended")
    assert await books(c, want) == want
    assert (await c.ledger.account(li)).available == 80_250  # no hold left behind
    assert phone(aggregator, SUSPENDED) == 0

    # 300.00 on his own number costs 295.50, over the password-free 200.00: the PIN is asked.
    await c.wallet.set_pin(LI_LEI.number, PIN)
    assert await refused(c.topup.topup(me, LI_LEI.number, 30_000, idempotency_key="own-300")) == "PIN_REQUIRED"
    assert await books(c, want) == want
    big = await c.topup.topup(me, LI_LEI.number, 30_000, idempotency_key="own-300", pin=PIN)
    assert big.state.value == "succeeded"
    want |= {li: 50_700, PAYABLE_OPERATOR_BILLING: 40_000, TOPUP_DISCOUNTS: 700}
    assert await books(c, want) == want
    assert phone(billing, LI_LEI.msisdn) == 40_000

    assert sorted(o.state.value for o in await c.topup.mine(me)) == ["failed", "succeeded", "succeeded", "succeeded"]
    assert (await c.ledger.verify()).ok
