"""Utility bills, told as one story.

Li Lei registers, brings 1,000.00 CNY in from his bank card and sets his payment PIN. He
fetches this month's bill of his Beijing water account: the water company shows what is
due and a masked name. He pays it in full; the platform now owes the water company that
much, and the bill is gone: fetching it again finds nothing, paying it again is refused.
He loads 50.00 on his Shanghai transport card (a biller without bills: any amount). Then
he tries to pay the bill of an old water account the company has since closed: the
company refuses the payment, the hold is released and his money comes back. The books
balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.bills.reference_data import shipped_billers
from mobipay.bills.service import payable
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from tests.scenarios.story import LI_LEI, PIN, books, cash_in, platform, refused, sign_up, sms

HOME, CLOSED, TRANSPORT_CARD = "12345678", "99990001", "3101000012345678"  # 9999…: an account the biller closed


@pytest.fixture
def clock() -> ManualClock:
    """Noon in Shanghai today: every biller is open, and the SIMULATOR's billing month is ours."""
    return ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0))


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str, billers_url: str
            ) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank, billers_url=billers_url)
    await container.bills.import_billers(shipped_billers(), actor="ops", reason="the shipped registry")
    yield container
    await container.close()


async def test_bills_story(c: Container, bank: str) -> None:
    li, water, bus = LI_LEI.wallet, payable("WATER_BJ"), payable("BUS_SH")
    want = {li: 0, BANK_SETTLEMENT: 0, water: 0, bus: 0}

    # Li Lei registers, brings 1,000.00 in from his card and sets his PIN (a bill may exceed 200.00).
    me = await sign_up(c, LI_LEI)
    await cash_in(c, bank, me, LI_LEI, 100_000)
    await c.wallet.set_pin(LI_LEI.number, PIN)
    want |= {li: 100_000, BANK_SETTLEMENT: 100_000}
    assert await books(c, want) == want

    # He fetches his water bill: what is due, the holder's name masked; fetching moves nothing.
    fetched = await c.bills.fetch(me, "WATER_BJ", HOME)
    due = fetched.bill.amount_due
    assert 1_000 <= due <= 50_000 and fetched.bill.customer_name.startswith("**")
    assert await books(c, want) == want

    # He pays it in full: the wallet pays, the platform owes the water company.
    paid = await c.bills.pay(me, "WATER_BJ", HOME, due, idempotency_key="water", bill_id=fetched.id, pin=PIN)
    assert paid.state.value == "succeeded" and paid.partner_ref.startswith("WATE")
    want |= {li: 100_000 - due, water: due}
    assert await books(c, want) == want
    assert ("bill.succeeded", {"biller": "北京市自来水集团", "amount_fen": due, "ref": paid.partner_ref}) in (
        await sms(c, LI_LEI.msisdn))

    # The bill is consumed: no open bill at the company, and the same bill is never paid twice.
    assert await refused(c.bills.fetch(me, "WATER_BJ", HOME)) == "BILL_NOT_FOUND"
    assert await refused(c.bills.pay(me, "WATER_BJ", HOME, due, idempotency_key="water-again", bill_id=fetched.id,
                                     pin=PIN)) == "BILL_ALREADY_PAID"
    assert await books(c, want) == want

    # 50.00 on his transport card: no bill to fetch, any amount within the card's limits.
    card = await c.bills.pay(me, "BUS_SH", TRANSPORT_CARD, 5_000, idempotency_key="bus-card")
    assert card.state.value == "succeeded"
    want |= {li: 95_000 - due, bus: 5_000}
    assert await books(c, want) == want

    # The old account's bill: the company refuses the payment; the hold is released, nothing moves.
    old = await c.bills.fetch(me, "WATER_BJ", CLOSED)
    refused_payment = await c.bills.pay(me, "WATER_BJ", CLOSED, old.bill.amount_due, idempotency_key="old-water",
                                        bill_id=old.id, pin=PIN)
    assert (refused_payment.state.value, refused_payment.reason) == ("failed", "account_closed")
    assert await books(c, want) == want
    assert (await c.ledger.account(li)).available == 95_000 - due
    assert [t for t, _ in await sms(c, LI_LEI.msisdn) if t.startswith("bill.")] == ["bill.succeeded", "bill.succeeded",
                                                                                 "bill.failed"]

    assert (await c.ledger.verify()).ok
