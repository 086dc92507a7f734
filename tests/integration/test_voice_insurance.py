"""A voice call hearing its insurance policies and cancelling one through VoiceSession,
against the insurer SIMULATOR at a fixed noon (ManualClock), on SQLite and PostgreSQL:
the premium back exactly once (a front repeating its request included), a declined
cancellation moves nothing and says until when, the call's PIN checked again first."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text as sql

from mobipay.app.bootstrap import Container, build
from mobipay.channels.voice.prompts import text
from mobipay.channels.voice.session import VoiceSession
from mobipay.channels.voice.vxml import seal, state_cipher, unseal
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_INSURER
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from tests.conftest import PROVIDER_SECRET
from tests.integration.test_sms_insurance import ACC_1Y, NOON, bought
from tests.support import partners

ME = "+8613800138000"
PIN = "135790"


@pytest.fixture
async def c(db_url: str, providers: dict[str, str]) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        products_url=providers["operator_products"], insurer_url=providers["insurer"],
                        products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET, partner_timeout_s=2.0)
    container = build(settings, clock=ManualClock(NOON))
    await container.ensure_system_accounts()
    user = await container.wallet.create_user(ME, actor="test", reason="voice")
    await container.wallet.set_pin(ME, PIN)
    assert (await container.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 20_000),
                                                          Leg.credit(user.account_code, 20_000)), "cash_in"))).ok
    await bought(container)
    yield container
    await container.close()


async def money(c: Container) -> tuple[int, int]:
    """The wallet's available balance and what is held for the insurer."""
    return ((await c.ledger.account(f"wallet:{ME}")).available, (await c.ledger.account(PAYABLE_INSURER)).balance)


async def cancellations(c: Container) -> int:
    async with c.db.begin() as conn:
        return int((await conn.execute(sql("SELECT count(*) FROM partner_orders WHERE kind = 'insurance_cancel'"))
                    ).scalar_one())


async def at_menu(c: Container, call_id: str) -> VoiceSession:
    call = VoiceSession(c.channel_actions, call_id, "13800138000")
    await call.start()
    assert (await call.handle(PIN)).say[-1].prompt == "main_menu"
    return call


async def test_a_call_hears_its_policies_and_cancels_one_refunded_once(c: Container) -> None:
    before = await money(c)
    call = await at_menu(c, "call-1")
    first = await call.handle("8")
    assert [s.prompt for s in first.say] == ["policy_item", "policy_options_cancel"]
    assert text(first.say[0], "zh") == ("第1份保单，综合意外险（一年，保额10万元），保费50元，11月25日起保障，"
                                        "12月9日12点2分前可退保。")
    assert text(first.say[0], "en") == ("Policy 1: Ping An accident cover, 365 days, premium 50 yuan, cover from "
                                        "11/25, cancellable until 12/9 12:02.")
    second = await call.handle("2")
    assert text(second.say[0], "zh").startswith("第2份保单，国内旅行意外险（7天），保费15元，11月25日起保障，"
                                                "11月25日0点前可退保")
    third = await call.handle("2")
    assert text(third.say[0], "zh") == "第3份保单，短期意外险（一个月，保额5万元），保费9.90元，保障中。"
    assert third.say[1].prompt == "policy_options" and third.expect is not None and third.expect.keys == "2"
    assert [s.prompt for s in (await call.handle("2")).say] == ["policies_end", "main_menu"]

    await call.handle("8")
    confirm = await call.handle("1")
    assert confirm.say[0].prompt == "policy_confirm" and await money(c) == before
    asked = call.state
    done = await call.handle("1")
    assert [s.prompt for s in done.say] == ["policy_cancel_done", "main_menu"], done.say
    assert text(done.say[0], "zh") == "退保成功，保费50元已退回您的钱包。"
    assert await money(c) == (before[0] + ACC_1Y, before[1] - ACC_1Y)
    again = VoiceSession(c.channel_actions, "call-1", "13800138000", asked)  # a front repeating its request
    assert [s.prompt for s in (await again.handle("1")).say] == ["policy_cancel_done", "main_menu"]
    assert (await money(c), await cancellations(c)) == ((before[0] + ACC_1Y, before[1] - ACC_1Y), 1)

    listed = await call.handle("8")
    assert text(listed.say[0], "zh") == "第1份保单，综合意外险（一年，保额10万元），保费50元，已退保。"
    assert listed.say[1].prompt == "policy_options"  # nothing left to cancel


async def test_a_declined_cancellation_moves_nothing_and_is_not_retried_by_a_repeated_request(
        c: Container, providers: dict[str, str]) -> None:
    before = await money(c)
    partners.behave(f"{providers['insurer']}/sim", decline_rate=1.0)
    call = await at_menu(c, "call-2")
    await call.handle("8")
    await call.handle("1")
    asked = call.state
    declined = await call.handle("1")
    assert [s.prompt for s in declined.say] == ["policy_cancel_declined", "main_menu"], declined.say
    assert text(declined.say[0], "zh") == ("保险公司未同意退保，保单继续有效，保费没有退回。"
                                           "您可以在12月9日12点2分前再次申请退保。")
    assert "the premium was not refunded. You may ask again until 12/9 12:02." in text(declined.say[0], "en")
    assert (await money(c), await cancellations(c)) == (before, 1)
    again = VoiceSession(c.channel_actions, "call-2", "13800138000", asked)  # the IVR re-sends the same fetch
    assert (await again.handle("1")).say[0].prompt == "policy_cancel_declined"
    assert (await money(c), await cancellations(c)) == (before, 1)  # no second attempt behind the caller's back

    partners.behave(f"{providers['insurer']}/sim", decline_rate=0.0)
    listed = await call.handle("8")
    assert "上次退保未获同意，12月9日12点2分前可退保" in text(listed.say[0], "zh")
    await call.handle("1")
    done = await call.handle("1")  # asked again in the period: a new attempt, refunded
    assert done.say[0].prompt == "policy_cancel_done", done.say
    assert (await money(c), await cancellations(c)) == ((before[0] + ACC_1Y, before[1] - ACC_1Y), 2)


async def test_the_calls_pin_is_checked_again_before_the_insurer_is_asked(c: Container) -> None:
    before = await money(c)
    call = await at_menu(c, "call-3")
    await call.handle("8")
    await call.handle("1")
    await c.wallet.change_pin(ME, PIN, "246801")  # changed in the app during the call
    refused = await call.handle("1")
    assert refused.say[0].error is not None and refused.say[0].error.code == "PIN_INCORRECT"
    assert refused.say[-1].prompt == "main_menu"
    assert (await money(c), await cancellations(c)) == (before, 0)


async def test_past_the_period_the_policy_is_read_without_the_cancel_option(c: Container) -> None:
    clock = c.clock
    assert isinstance(clock, ManualClock)
    clock.advance(16 * 86_400)
    call = await at_menu(c, "call-4")
    first = await call.handle("8")
    assert text(first.say[0], "zh") == "第1份保单，综合意外险（一年，保额10万元），保费50元，保障中。"
    assert first.say[1].prompt == "policy_options" and first.expect is not None and first.expect.keys == "2"
    assert (await call.handle("1")).say[0].prompt == "invalid_choice"


async def test_the_call_state_with_policies_survives_the_voicexml_seal(c: Container) -> None:
    call = await at_menu(c, "call-5")
    await call.handle("8")
    await call.handle("2")
    fernet = state_cipher("a test secret")
    opened = unseal(fernet, seal(fernet, "call-5", "13800138000", call.state), 900)
    assert opened is not None and opened[2] == call.state and dataclasses.asdict(opened[2])["policy"] == 2
    resumed = VoiceSession(c.channel_actions, "call-5", "13800138000", opened[2])
    confirm = await resumed.handle("1")  # policy 2, the one just read
    assert text(confirm.say[0], "zh").startswith("退保国内旅行意外险（7天），保费15元退回您的钱包")
