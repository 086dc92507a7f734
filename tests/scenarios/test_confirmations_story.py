"""Secondary confirmation (``confirmations``), told as one story, through the SMS channel
that uses it for money commands.

Li Lei and Wang Fang register; Li Lei brings 200.00 CNY in from his bank card. At a
market with no mobile data he texts ``ZZ 13900139000 50`` to the service number to send
Wang Fang 50.00: the platform texts back a code to confirm with, and nothing moves yet.
He mistypes the code: refused, nothing moves. He replies with the right one: the money
moves, and both are told. Replying the same code again pays nothing twice. Later he
texts ``ZZ 13900139000 20`` but only answers six minutes later: the code has expired and
nothing moves. He asks for his balance with ``YE``: 150.00. The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import BANK_SETTLEMENT
from tests.scenarios.story import LI_LEI, WANG_FANG, Person, books, cash_in, last_code, platform, sign_up, texts

SERVICE_NUMBER = "10658888"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 4, 18, 1, 30, tzinfo=UTC))  # a Saturday morning in Shanghai


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def texted(c: Container, who: Person, body: str) -> list[str]:
    """``who`` texts ``body`` to the service number; the worker answers; the replies they get."""
    before = len(await texts(c, who.msisdn))
    assert await c.sms.receive(new_id("kannel"), who.number, SERVICE_NUMBER, body)
    worker = c.outbox_worker()
    while await worker.run_once():
        pass
    return (await texts(c, who.msisdn))[before:]


async def test_confirmations_story(c: Container, bank: str, clock: ManualClock) -> None:
    li, wang = LI_LEI.wallet, WANG_FANG.wallet
    want = {li: 0, wang: 0, BANK_SETTLEMENT: 0}

    # Li Lei and Wang Fang register; he brings 200.00 in from his card.
    me = await sign_up(c, LI_LEI)
    await sign_up(c, WANG_FANG)
    await cash_in(c, bank, me, LI_LEI, 20_000)
    want |= {li: 20_000, BANK_SETTLEMENT: 20_000}
    assert await books(c, want) == want

    # He texts a transfer of 50.00 to Wang Fang: a code comes back to confirm it; nothing moves yet.
    [ask] = await texted(c, LI_LEI, "ZZ 13900139000 50")
    code = await last_code(c, LI_LEI.msisdn, "confirm.request")
    assert ask.startswith("向139****9000转账50.00元") and code in ask, ask
    assert await books(c, want) == want

    # A mistyped code is refused and moves nothing.
    wrong = "000000" if code != "000000" else "111111"
    [no] = await texted(c, LI_LEI, wrong)
    assert no.startswith("验证码不正确"), no
    assert await books(c, want) == want

    # The right code: the transfer is made, and Wang Fang is told.
    [done] = await texted(c, LI_LEI, code)
    assert done.startswith("已向139****9000转账50.00元"), done
    want |= {li: 15_000, wang: 5_000}
    assert await books(c, want) == want
    assert "138****8000向您转账50.00元，已到账。 138****8000 sent you 50.00 CNY." in await texts(c, WANG_FANG.msisdn)

    # The same code again confirms nothing more.
    [used] = await texted(c, LI_LEI, code)
    assert used.startswith("没有等待确认的请求"), used
    assert await books(c, want) == want

    # A second transfer, confirmed six minutes later: the code has expired, nothing moves.
    await texted(c, LI_LEI, "ZZ 13900139000 20")
    late_code = await last_code(c, LI_LEI.msisdn, "confirm.request")
    clock.advance(6 * 60)
    [late] = await texted(c, LI_LEI, late_code)
    assert late.startswith("验证码已过期"), late
    assert await books(c, want) == want

    # His balance by SMS: 150.00.
    [balance] = await texted(c, LI_LEI, "YE")
    assert balance.startswith("您的钱包可用余额") and "150.00" in balance, balance

    assert (await c.ledger.verify()).ok
