"""The back office: a reversal with maker-checker, told as one story.

Li Lei and Wang Fang register; Li Lei brings 500.00 CNY in from his bank card. He means
to pay his landlord 88.00 but sends it to Wang Fang by mistake; she agrees to give it
back and customer service opens a case. Xiao Ming (operations and finance) signs in to
the console and asks for the transfer to be reversed, saying why: nothing moves until a
second operator decides, asking twice is refused, and Xiao Ming may not approve his own
request. Lao Wang (finance) approves it: the ledger posts the reversal and both are told
by SMS; the transfer cannot be reversed twice. Later Li Lei pays Wang Fang 20.00 for
lunch, Xiao Ming asks by mistake to reverse that too, and Lao Wang rejects it: nothing
moves. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from tests.scenarios.story import LI_LEI, WANG_FANG, books, cash_in, platform, refused, sign_up, sms


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 7, 6, 0, tzinfo=UTC))  # 14:00 in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    for name, roles in (("xiaoming", ("operations", "finance")), ("laowang", ("finance",))):
        await container.operators.create(name, f"{name}-long-password", roles, actor="admin", reason="new staff")
    yield container
    await container.close()


async def test_backoffice_story(c: Container, bank: str, clock: ManualClock) -> None:
    li, wang = LI_LEI.wallet, WANG_FANG.wallet
    want = {li: 0, wang: 0, BANK_SETTLEMENT: 0}

    # Li Lei and Wang Fang register; he brings 500.00 in from his card.
    me = await sign_up(c, LI_LEI)
    await sign_up(c, WANG_FANG)
    await cash_in(c, bank, me, LI_LEI, 50_000)
    want |= {li: 50_000, BANK_SETTLEMENT: 50_000}
    assert await books(c, want) == want

    # 88.00 to Wang Fang by mistake.
    mistake = await c.wallet.transfer(me, WANG_FANG.number, 8_800, idempotency_key="rent-oops")
    want |= {li: 41_200, wang: 8_800}
    assert await books(c, want) == want

    # Xiao Ming signs in and asks for the reversal: pending, nothing moves; asking twice is refused.
    _, xiaoming = await c.operators.sign_in("xiaoming", "xiaoming-long-password")
    asked = await c.reversals.request(xiaoming, mistake.id, reason="case 4711: sent to the wrong number, "
                                                                   "the recipient agrees")
    assert (asked.state, asked.requested_by) == ("pending", "xiaoming")
    assert await refused(c.reversals.request(xiaoming, mistake.id, reason="again")) == "REVERSAL_ALREADY_REQUESTED"
    assert await books(c, want) == want

    # He holds the finance role too, but a second operator must decide his request.
    assert await refused(c.reversals.approve(xiaoming, asked.id, reason="looks right")) == "MAKER_CHECKER"
    assert (await c.reversals.get(asked.id)).state == "pending"
    assert await books(c, want) == want

    # Lao Wang approves: the reversal is posted, both wallets are told.
    _, laowang = await c.operators.sign_in("laowang", "laowang-long-password")
    approved = await c.reversals.approve(laowang, asked.id, reason="checked the case and the chat")
    assert (approved.state, approved.decided_by) == ("approved", "laowang") and approved.reversal_id
    assert await c.ledger.reversed_by(mistake.id) == approved.reversal_id
    want |= {li: 50_000, wang: 0}
    assert await books(c, want) == want
    ref = mistake.id[-12:]
    assert ("reversal.in", {"amount_fen": 8_800, "ref": ref}) in await sms(c, LI_LEI.msisdn)
    assert ("reversal.out", {"amount_fen": 8_800, "ref": ref}) in await sms(c, WANG_FANG.msisdn)

    # The same transfer cannot be reversed twice.
    assert await refused(c.reversals.request(xiaoming, mistake.id, reason="again")) == "ALREADY_REVERSED"
    assert await books(c, want) == want

    # A genuine lunch payment, asked to be reversed by mistake: Lao Wang rejects it, nothing moves.
    clock.advance(3600)
    lunch = await c.wallet.transfer(me, WANG_FANG.number, 2_000, idempotency_key="lunch")
    want |= {li: 48_000, wang: 2_000}
    assert await books(c, want) == want
    wrong = await c.reversals.request(xiaoming, lunch.id, reason="case 4712")
    rejected = await c.reversals.reject(laowang, wrong.id, reason="case 4712 is about another payment")
    assert (rejected.state, rejected.reversal_id) == ("rejected", None)
    assert await c.ledger.reversed_by(lunch.id) is None
    assert await books(c, want) == want
    assert [r.state for r in await c.reversals.list(state=None)] == ["approved", "rejected"]

    assert (await c.ledger.verify()).ok
