"""One merchant whose settlement is refused stops no other: the book shop spent the day's
sales on a red-envelope campaign before they were settled, so its payable cannot pay the
day's net (INSUFFICIENT_FUNDS); the tea shop beside it is settled and paid all the same,
the refused one is reported with its reason, nothing of it moves, and a later run tries it
again. Every balance is asserted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import FEE_INCOME, SETTLEMENT_IN_TRANSIT
from tests.scenarios.story import LI_LEI, books, cash_in, platform, sign_up

DAY, NEXT_DAY = date(2026, 11, 24), date(2026, 11, 25)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def test_a_refused_settlement_stops_no_other_merchant(c: Container, bank: str, clock: ManualClock) -> None:
    books_shop = await c.merchants.apply(name="当当网", credit_code="91350100M000100Y43", legal_person="李国庆",
                                         contact="13800138123", mcc="5942", website="https://dangdang.example",
                                         settlement_account="6222020000111122222")
    tea_shop = await c.merchants.apply(name="茶叶店", credit_code="91110108MA01XAMP3X", legal_person="王茶",
                                       contact="13800138124", mcc="5942", website="https://tea.example",
                                       settlement_account="6222020000111133333")
    me = await sign_up(c, LI_LEI)
    await cash_in(c, bank, me, LI_LEI, 50_000)
    for shop, amount in ((books_shop, 10_000), (tea_shop, 5_000)):
        trade = await c.merchants.create_trade(shop, f"o-{shop.id}", amount, "货品")
        await c.merchants.pay(me, trade.id)
    # The book shop funds a campaign from the day's unsettled sales: 40.00 of its 100.00.
    await c.red_envelopes.create_campaign(books_shop, name="双十二", rule="threshold", face=1_000,
                                          min_spend=5_000, budget=4_000, actor="owner")
    want = {books_shop.account_code: 6_000, tea_shop.account_code: 5_000, FEE_INCOME: 0, SETTLEMENT_IN_TRANSIT: 0}
    assert await books(c, want) == want

    clock.set(datetime(2026, 11, 24, 16, 10, tzinfo=UTC))  # 00:10 on the 25th in Shanghai
    results = {s.merchant_id: s for s in await c.settlements.settle_due(NEXT_DAY)}
    refused, paid = results[books_shop.id], results[tea_shop.id]
    assert refused.state == "refused" and refused.problem.startswith("INSUFFICIENT_FUNDS")
    assert paid.state == "paid" and (paid.gross, paid.fee, paid.net) == (5_000, 30, 4_970)
    want |= {tea_shop.account_code: 0, FEE_INCOME: 30}  # the tea shop's net left for its bank
    assert await books(c, want) == want  # and nothing of the book shop's moved
    again = {s.merchant_id: s.state for s in await c.settlements.settle(DAY)}
    assert again == {books_shop.id: "refused", tea_shop.id: "paid"}  # tried again; the tea shop once
    assert await books(c, want) == want
    assert (await c.ledger.verify()).ok
