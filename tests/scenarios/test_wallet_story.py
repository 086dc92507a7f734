"""The wallet, told as one story.

Li Lei registers with the code texted to his phone, binds his ICBC debit card and brings
1,000.00 CNY in from it. Wang Fang registers too. Li Lei sets his payment PIN and pays
Wang Fang 30.00 (password-free; his app retries the request, nothing moves twice), then
300.00, which needs the PIN: without it, and with a wrong one, nothing moves. He sends
50.00 to his cousin Zhao Lei and 20.00 to Sun Li, neither of whom has a wallet: the money
waits in suspense. Sun Li registers the next day and finds her 20.00 there; Zhao Lei never
does, and three days later his 50.00 goes back to Li Lei. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, SUSPENSE
from tests.scenarios.story import (
    LI_LEI,
    PIN,
    WANG_FANG,
    bank_balance,
    bind_card,
    books,
    person,
    platform,
    refused,
    sign_up,
    sms,
)

ZHAO_LEI = person("赵磊", "13700137000", "19880101", 103)
SUN_LI = person("孙丽", "13600136000", "19950520", 104)
DAY = 24 * 3600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))  # Monday noon in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def test_wallet_story(c: Container, bank: str, clock: ManualClock) -> None:
    li, wang, zhao, sun = LI_LEI.wallet, WANG_FANG.wallet, ZHAO_LEI.wallet, SUN_LI.wallet
    want = {li: 0, wang: 0, zhao: 0, sun: 0, SUSPENSE: 0, BANK_SETTLEMENT: 0}

    # Li Lei registers with the code texted to him: an empty wallet opens in the ledger.
    me = await sign_up(c, LI_LEI)
    assert me.account_code == li
    assert (await c.wallet.user_by_msisdn(LI_LEI.number)).tier == 1
    assert await books(c, want) == want

    # He binds his debit card: the bank confirms it is his (Tier II), and nothing moves.
    card = await bind_card(c, bank, me, LI_LEI, at_bank=500_000)
    assert (await c.wallet.user_by_msisdn(LI_LEI.number)).tier == 2
    assert await books(c, want) == want

    # He brings 1,000.00 in from the card: the operator's reserve at the bank grows by as much.
    order = await c.banking.cash_in(me, card, 100_000, idempotency_key="cash-in-1")
    assert order.state.value == "succeeded"
    want |= {li: 100_000, BANK_SETTLEMENT: 100_000}
    assert await books(c, want) == want
    assert bank_balance(bank, LI_LEI) == 400_000

    # Wang Fang registers; Li Lei sets his payment PIN (a weak one is refused).
    await sign_up(c, WANG_FANG)
    assert await refused(c.wallet.set_pin(LI_LEI.number, "123456")) == "WEAK_PIN"
    await c.wallet.set_pin(LI_LEI.number, PIN)
    assert await books(c, want) == want

    # He pays her 30.00, password-free; his app sends the request again: one payment.
    paid = await c.wallet.transfer(me, WANG_FANG.number, 3_000, idempotency_key="lunch")
    again = await c.wallet.transfer(me, WANG_FANG.number, 3_000, idempotency_key="lunch")
    assert (paid.status, again.id, again.replayed) == ("succeeded", paid.id, True)
    want |= {li: 97_000, wang: 3_000}
    assert await books(c, want) == want
    assert ("p2p.received", {"from": "138****8000", "amount_fen": 3_000}) in await sms(c, WANG_FANG.msisdn)

    # 300.00 is over the password-free amount: not without the PIN, not with a wrong one.
    assert await refused(c.wallet.transfer(me, WANG_FANG.number, 30_000, idempotency_key="rent")) == "PIN_REQUIRED"
    assert await refused(c.wallet.transfer(me, WANG_FANG.number, 30_000, idempotency_key="rent",
                                           pin="864213")) == "PIN_INCORRECT"
    assert await books(c, want) == want
    await c.wallet.transfer(me, WANG_FANG.number, 30_000, idempotency_key="rent", pin=PIN)
    want |= {li: 67_000, wang: 33_000}
    assert await books(c, want) == want

    # Zhao Lei and Sun Li have no wallet: the money waits in suspense, and they are invited by SMS.
    to_zhao = await c.wallet.transfer(me, ZHAO_LEI.number, 5_000, idempotency_key="for-zhao")
    to_sun = await c.wallet.transfer(me, SUN_LI.number, 2_000, idempotency_key="for-sun")
    assert (to_zhao.status, to_sun.status) == ("waiting_for_recipient",) * 2
    want |= {li: 60_000, SUSPENSE: 7_000}
    assert await books(c, want) == want
    assert [t for t, _ in await sms(c, ZHAO_LEI.msisdn)] == ["p2p.invite"]

    # The next day Sun Li registers: her 20.00 leaves suspense for her new wallet.
    clock.advance(DAY)
    await sign_up(c, SUN_LI)
    want |= {sun: 2_000, SUSPENSE: 5_000}
    assert await books(c, want) == want

    # Two days on, Zhao Lei's window (three days) is still open: nothing goes back yet.
    clock.advance(DAY)
    assert await c.wallet.return_expired_claims() == 0
    assert await books(c, want) == want

    # Once it has passed, his 50.00 returns to Li Lei, who is told; a second sweep moves nothing.
    clock.advance(DAY + 1)
    assert await c.wallet.return_expired_claims() == 1
    assert await c.wallet.return_expired_claims() == 0
    want |= {li: 65_000, SUSPENSE: 0}
    assert await books(c, want) == want
    assert ("p2p.returned", {"to": "137****7000", "amount_fen": 5_000}) in await sms(c, LI_LEI.msisdn)

    # Zhao Lei registering now finds nothing waiting: the money went home once.
    await sign_up(c, ZHAO_LEI)
    assert await books(c, want) == want
    assert (await c.ledger.verify()).ok
