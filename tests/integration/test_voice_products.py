"""A voice call buying one of the operator's products and a lottery quick pick through
VoiceSession, against the provider and lottery-centre SIMULATORS at a fixed noon
(ManualClock), on SQLite and PostgreSQL, with the balance before and after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from mobipay.app.bootstrap import Container, build
from mobipay.channels.voice.prompts import text
from mobipay.channels.voice.session import VoiceSession
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from tests.conftest import LOTTERY_SECRET, PROVIDER_SECRET

ME = "+8613800138000"
PIN = "135790"
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def c(db_url: str, providers: dict[str, str], lottery_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        products_url=providers["operator_products"], insurer_url=providers["insurer"],
                        products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url,
                        lottery_secret=LOTTERY_SECRET, partner_timeout_s=2.0)
    container = build(settings, clock=ManualClock(NOON))
    await container.ensure_system_accounts()
    user = await container.wallet.create_user(ME, actor="test", reason="voice")
    await container.wallet.set_pin(ME, PIN)
    assert (await container.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                          Leg.credit(user.account_code, 10_000)), "cash_in"))).ok
    yield container
    await container.close()


async def available(c: Container) -> int:
    return (await c.ledger.account(f"wallet:{ME}")).available


async def test_a_call_buys_a_product_and_a_quick_pick(c: Container) -> None:
    call = VoiceSession(c.channel_actions, "call-1", "13800138000")
    await call.start()
    menu = await call.handle(PIN)
    assert menu.say[-1].prompt == "main_menu"
    listed = await call.handle("6")
    assert [s.prompt for s in listed.say][:2] == ["product_item", "product_item"] and listed.expect is not None
    assert text(listed.say[2], "zh") == "整曲下载，2元，请按3。"
    confirm = await call.handle("3")
    assert confirm.say[0].prompt == "product_confirm" and await available(c) == 10_000
    done = await call.handle("1")
    assert [s.prompt for s in done.say] == ["product_done", "main_menu"], done.say
    assert await available(c) == 10_000 - 200

    games = await call.handle("7")
    assert text(games.say[0], "zh").startswith("双色球第2026") and "20点截止销售" in text(games.say[0], "zh")
    await call.handle("1")
    await call.handle("2")
    bought = await call.handle("1")
    assert bought.say[0].prompt == "lottery_done", bought.say
    assert text(bought.say[0], "zh").count("后区") == 2  # two bets read back, each with its blue ball
    assert await available(c) == 10_000 - 200 - 400
    again = VoiceSession(c.channel_actions, "call-1", "13800138000", call.state)  # a front repeating its request
    assert again.key(call.state.step) == call.key(call.state.step)
    [mine] = await c.lottery.mine(await c.channel_actions.subscriber(ME))
    assert len(mine.bets) == 2 and mine.order.amount == 400
