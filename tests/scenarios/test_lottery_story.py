"""The lottery, told as one story.

Li Lei and Wang Fang register and bring 100.00 and 50.00 CNY in from their bank cards. At
noon on a Tuesday Li Lei buys a Double Colour Ball (双色球) ticket for tonight's draw: two
bets he chose, multiplier 2, 8.00; Wang Fang buys one bet, 2.00. The lottery centre sells
both and the platform owes it the 10.00. At 20:00 sales for tonight stop: a ticket Wang
Fang buys then is for Thursday's draw. After tonight's draw is published the platform
imports it: Li Lei's first bet has five red balls and the blue one (3,000.00), his second
only the blue (5.00), twice each: 6,010.00 paid into his wallet from what the centre owes
the platform. Importing the draw again pays nothing twice; Thursday's ticket waits for
its own draw. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_LOTTERY, RECEIVABLE_LOTTERY
from tests.scenarios.story import LI_LEI, WANG_FANG, books, cash_in, platform, sign_up, sim, sms

LI_BETS = [[[1, 5, 12, 19, 27, 33], [9]], [[2, 3, 4, 6, 7, 8], [9]]]
WANG_BET = [[[10, 11, 13, 14, 15, 16], [1]]]
DRAWN = [[1, 5, 12, 19, 27, 32], [9]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI))  # Tuesday noon: a draw tonight


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str, lottery_url: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank, lottery_url=lottery_url)
    yield container
    await container.close()


async def test_lottery_story(c: Container, bank: str, clock: ManualClock, lottery_url: str) -> None:
    li, wang = LI_LEI.wallet, WANG_FANG.wallet
    want = {li: 0, wang: 0, BANK_SETTLEMENT: 0, PAYABLE_LOTTERY: 0, RECEIVABLE_LOTTERY: 0}

    # Li Lei and Wang Fang register and bring 100.00 and 50.00 in from their cards.
    me = await sign_up(c, LI_LEI)
    her = await sign_up(c, WANG_FANG)
    await cash_in(c, bank, me, LI_LEI, 10_000)
    await cash_in(c, bank, her, WANG_FANG, 5_000)
    want |= {li: 10_000, wang: 5_000, BANK_SETTLEMENT: 15_000}
    assert await books(c, want) == want

    # Noon: tickets for tonight's draw. Two bets × 2 for him (8.00), one bet for her (2.00).
    _, tonight, close, draw_at = c.lottery.on_sale("ssq")
    mine = await c.lottery.buy(me, "ssq", bets=LI_BETS, multiplier=2, idempotency_key="tuesday")
    hers = await c.lottery.buy(her, "ssq", bets=WANG_BET, idempotency_key="tuesday")
    assert (mine.order.state.value, mine.order.amount, mine.issue) == ("succeeded", 800, tonight)
    assert (hers.order.state.value, hers.order.amount, hers.issue) == ("succeeded", 200, tonight)
    want |= {li: 9_200, wang: 4_800, PAYABLE_LOTTERY: 1_000}
    assert await books(c, want) == want

    # 20:00, sales for tonight are over: her next ticket is for Thursday's draw.
    clock.set(close)
    thursday = await c.lottery.buy(her, "ssq", bets=WANG_BET, idempotency_key="thursday")
    assert thursday.order.state.value == "succeeded" and thursday.issue != tonight
    want |= {wang: 4_600, PAYABLE_LOTTERY: 1_200}
    assert await books(c, want) == want

    # The draw is published; the platform imports it and pays the winner from what the centre owes.
    clock.set(draw_at)
    sim("PUT", f"{lottery_url}/sim/draws/ssq/{tonight}", {"numbers": DRAWN})
    result = await c.lottery.import_draw("ssq", tonight)
    prize = (300_000 + 500) * 2  # five red and the blue, and the blue alone; multiplier 2
    assert (result.tickets, result.winners, result.paid) == (2, 1, prize)
    want |= {li: 9_200 + prize, RECEIVABLE_LOTTERY: prize}
    assert await books(c, want) == want
    assert ("lottery.won", {"game": "双色球", "issue": tonight, "amount_fen": prize, "tax_fen": 0, "tier": 3}) in (
        await sms(c, LI_LEI.msisdn))

    # Importing it again settles nothing twice; Thursday's ticket is still waiting for its draw.
    assert (await c.lottery.import_draw("ssq", tonight)).tickets == 0
    assert await books(c, want) == want
    assert [(t.issue, t.prize, t.tier) for t in await c.lottery.mine(me)] == [(tonight, prize, 3)]
    assert sorted((t.issue, t.prize) for t in await c.lottery.mine(her)) == [(tonight, 0), (thursday.issue, None)]

    assert (await c.ledger.verify()).ok
