"""A village agent's staff phone calling the voice menu (VoiceSession, keys as DTMF) on SQLite
and PostgreSQL: the staff PIN, cash-in from the float to the customer's wallet, a cash-out
paid only with the code texted to the customer (and never without it), the float, the mini
statement and this month's commissions; wrong PINs, bad amounts and wrong codes change nothing.
Every step asserts the customer's wallet, the agent's float and the fees."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.channels.voice import dialog as D
from mobipay.channels.voice.prompts import text
from mobipay.channels.voice.session import Reply, VoiceSession
from mobipay.channels.voice.vxml import seal, state_cipher, unseal
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings
from mobipay.rural.service import RURAL_FEES, AgentStaff, float_account
from tests.integration.test_rural_agents import (
    FAST,
    NEIGHBOUR,
    START,
    VILLAGER,
    agent_with_float,
    code_in,
    funded,
    money,
    texts_to,
)
from tests.integration.test_voice_vxml import TOKEN, Call

AGENT_PHONE = "+8613600136001"
STAFF_PIN = "135790"


@pytest.fixture
async def c(db_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test", operators="rita:risk;olga:operations")
    container = build(settings, clock=ManualClock(START))
    container.rural.hasher = FAST
    container.wallet.pin_hasher = FAST
    await container.ensure_system_accounts()
    yield container
    await container.close()


def call(
    c: Container, caller: str = AGENT_PHONE, call_id: str = "call-1", state: D.CallState | None = None
) -> VoiceSession:
    return VoiceSession(c.channel_actions, call_id, caller.removeprefix("+86"), state, rural=c.rural)


def words(reply: Reply, lang: D.Lang = "zh") -> list[str]:
    return [text(s, lang) for s in reply.say]


async def books(c: Container, me: AgentStaff) -> list[int]:
    """The villager's wallet, the agent's float and the cash-out fees."""
    wallet = (await c.wallet.user_by_msisdn(VILLAGER)).account_code
    return await money(c, wallet, float_account(me.agent_id), RURAL_FEES)


async def signed_in(c: Container, session: VoiceSession) -> None:
    start = await session.start()
    assert [s.prompt for s in start.say] == ["welcome", "agent_pin"]  # a staff phone without a wallet
    menu = await session.handle(STAFF_PIN)
    assert menu.say[-1].prompt == "agent_menu" and session.state.staff


async def test_an_agent_cashes_in_and_out_by_voice_with_the_customers_code(c: Container) -> None:
    me = await agent_with_float(c, AGENT_PHONE, 100_000)
    await funded(c, VILLAGER, 0)
    session = call(c)
    await signed_in(c, session)

    # 1 cash-in: number, amount, the fee said, confirm
    assert (await session.handle("1")).say[0].prompt == "cashin_number"
    assert (await session.handle("13700137001")).say[0].prompt == "cashin_amount"
    confirm = await session.handle("200")
    assert words(confirm) == ["从备付金向13700137001的钱包存入200元，客户手续费0元。确认请按1，取消请按2。"]
    assert await books(c, me) == [0, 100_000, 0]  # nothing moves before the agent confirms
    before_confirm = session.state
    done = await session.handle("1")
    assert words(done)[0] == "存款成功，200元已到客户钱包。备付金余额800元。"
    assert await books(c, me) == [20_000, 80_000, 0]
    assert "存入200.00元" in (await texts_to(c, VILLAGER))[-1]  # the customer is texted
    # a front repeating the confirming request (same sealed state): the same key, paid once
    again = await call(c, state=before_confirm).handle("1")
    assert again.say[0].prompt == "cashin_done" and await books(c, me) == [20_000, 80_000, 0]

    clock = c.uow.clock
    assert isinstance(clock, ManualClock)
    clock.advance(120)  # the statement is newest first
    # 2 cash-out: the fee and the total said, then the customer's code (read out) pays it
    await session.handle("2")
    await session.handle("13700137001")
    confirm = await session.handle("50")
    assert words(confirm) == [
        "13700137001取现50元，客户另付手续费1元，共从客户钱包扣除51元。向客户发送验证码请按1，取消请按2。"
    ]
    asked = await session.handle("1")
    assert asked.say[0].prompt == "cashout_code" and session.state.request
    assert await books(c, me) == [20_000, 80_000, 0]  # texting the code moves nothing
    code = code_in((await texts_to(c, VILLAGER))[-1])
    # the VoiceXML front carries the state sealed between turns: the agent's fields survive it
    fernet = state_cipher("k" * 32)
    opened = unseal(fernet, seal(fernet, "call-1", AGENT_PHONE, session.state), 900)
    assert opened is not None and opened[2] == session.state
    session = call(c, state=opened[2])
    wrong = "000000" if code != "000000" else "111111"
    refused = await session.handle(wrong)
    assert words(refused)[0] == "验证码错误或已过期。" and refused.say[-1].prompt == "cashout_code"
    assert await books(c, me) == [20_000, 80_000, 0]
    paid = await session.handle(code)
    assert words(paid)[0] == "取现成功，请付给客户50元现金。备付金余额850元。"
    assert await books(c, me) == [20_000 - 5_100, 85_000, 100]
    assert "取现50.00元，手续费1.00元" in (await texts_to(c, VILLAGER))[-1]  # the customer is told

    # 3 float, 4 mini statement, 5 commissions this month, in English too
    assert words(await session.handle("3"))[0] == "备付金余额850元，现金150元。"
    statement = words(await session.handle("4"))
    assert statement[:2] == ["11月10日10点2分，取现50元。", "11月10日10点，存款200元。"]
    assert words(await session.handle("5"))[0] == "本月佣金：待付1.60元，审核中0元，已付0元。"
    english = await session.handle("9")
    assert english.lang == "en" and english.say[-1].prompt == "agent_menu"
    assert words(await session.handle("3"), "en")[0] == "Your float is 850 yuan; cash in the till 150 yuan."
    bye = await session.handle("0")
    assert bye.end and bye.say[-1].prompt == "goodbye"


async def test_no_cash_out_without_the_customer_and_bad_input_changes_nothing(c: Container) -> None:
    me = await agent_with_float(c, AGENT_PHONE, 100_000)
    await funded(c, VILLAGER, 10_000)
    session = call(c)
    await signed_in(c, session)
    # a bad amount (zero, over the top tier) is refused before anything is asked or moved
    await session.handle("1")
    await session.handle("13700137001")
    zero = await session.handle("0")
    assert zero.say[0].error is not None and zero.say[-1].prompt == "cashin_amount"
    over = await session.handle("6000")
    assert words(over)[0] == "代理点单笔金额为1元到5000元。" and over.say[-1].prompt == "cashin_amount"
    cancelled = await session.handle("*")
    assert cancelled.say[-1].prompt == "cashin_number"
    await session.handle("13700137001")
    await session.handle("30")
    assert words(await session.handle("2"))[0] == "已取消。"
    assert await books(c, me) == [10_000, 100_000, 0]
    # a number without a wallet: told so, nothing moves
    await session.handle("1")
    await session.handle(NEIGHBOUR.removeprefix("+86"))
    await session.handle("30")
    unknown = await session.handle("1")
    assert words(unknown)[0] == "该号码还没有开通钱包，请先为客户注册。" and unknown.say[-1].prompt == "agent_menu"
    # a cash-out the wallet cannot pay with its fee
    await session.handle("2")
    await session.handle("13700137001")
    await session.handle("100")  # 100 + 1 yuan fee > 100 yuan held
    short = await session.handle("1")
    assert words(short)[0] == "客户钱包余额不足以支付取现金额和手续费。"
    assert await books(c, me) == [10_000, 100_000, 0]

    # started, but the customer gives no code: going back pays nothing
    await session.handle("2")
    await session.handle("13700137001")
    await session.handle("20")
    assert (await session.handle("1")).say[0].prompt == "cashout_code"
    assert (await session.handle("*")).say[-1].prompt == "agent_menu"
    assert await books(c, me) == [10_000, 100_000, 0]
    # started again; three wrong codes void it: back to the menu, and the real code is dead after
    await session.handle("2")
    await session.handle("13700137001")
    await session.handle("20")
    await session.handle("1")
    code = code_in((await texts_to(c, VILLAGER))[-1])
    wrong = "000000" if code != "000000" else "111111"
    assert (await session.handle("12345")).say[0].prompt == "cashout_code_invalid"  # malformed: not even tried
    assert (await session.handle(wrong)).say[-1].prompt == "cashout_code"
    assert (await session.handle(wrong)).say[-1].prompt == "cashout_code"
    gave_up = await session.handle(wrong)
    assert words(gave_up)[0] == "验证码错误或已过期。" and gave_up.say[-1].prompt == "agent_menu"
    with pytest.raises(MobipayError) as info:
        await c.rural.confirm_cash_out(me, code)
    assert info.value.code == "CASH_OUT_NOT_FOUND"
    assert await books(c, me) == [10_000, 100_000, 0]

    # a state that never passed the staff PIN (forged or stale) is refused by the session itself
    forged = await call(c, call_id="call-9", state=D.CallState(node="agent_menu")).handle("3")
    assert words(forged)[0] == "请先输入员工密码。" and forged.say[-1].prompt == "agent_menu"
    assert await books(c, me) == [10_000, 100_000, 0]


async def test_wrong_staff_pins_end_the_call_and_unknown_lines_are_refused(c: Container) -> None:
    me = await agent_with_float(c, AGENT_PHONE, 100_000)
    await funded(c, VILLAGER, 10_000)
    session = call(c)
    await session.start()
    short = await session.handle("1234")
    assert [s.prompt for s in short.say] == ["agent_pin_invalid", "agent_pin"]
    for _ in range(D.MAX_PIN_TRIES - 1):
        wrong = await session.handle("246801")
        assert words(wrong)[0] == "员工密码错误。" and wrong.say[-1].prompt == "agent_pin" and not wrong.end
    last = await session.handle("246801")
    assert last.end and words(last)[0] == "员工密码错误。" and not session.state.staff
    assert await books(c, me) == [10_000, 100_000, 0]
    # the next call with the right PIN works (3 wrong of the lock's 5)
    await signed_in(c, call(c, call_id="call-2"))
    # neither a staff phone nor a wallet: told so, call ended
    stranger = await call(c, NEIGHBOUR, "call-3").start()
    assert stranger.end and stranger.say[-1].prompt == "goodbye"


async def test_a_staff_phone_that_is_also_a_wallet_chooses_the_menu(c: Container) -> None:
    me = await agent_with_float(c, AGENT_PHONE, 100_000)
    await funded(c, AGENT_PHONE, 5_000)  # the owner's own wallet on the same phone
    await c.wallet.set_pin(AGENT_PHONE, "975310")
    start = await call(c).start()
    assert [s.prompt for s in start.say] == ["welcome", "who"]
    session = call(c, call_id="call-2")
    await session.start()
    assert (await session.handle("2")).say[-1].prompt == "enter_pin"
    wallet = await session.handle("975310")
    assert wallet.say[-1].prompt == "main_menu"
    assert words(await session.handle("1"))[0] == "您的可用余额为50元。"
    agent = call(c, call_id="call-3")
    await agent.start()
    assert (await agent.handle("1")).say[-1].prompt == "agent_pin"
    assert (await agent.handle(STAFF_PIN)).say[-1].prompt == "agent_menu"
    assert words(await agent.handle("3"))[0] == "备付金余额1000元，现金0元。"
    assert (await money(c, float_account(me.agent_id))) == [100_000]


def _portal(client: TestClient) -> BlockingPortal:
    assert client.portal is not None, "the client runs the app"
    return client.portal


@pytest.fixture
def ivr(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Container]]:
    """The VoiceXML front over HTTP, as the operator's IVR drives it."""
    monkeypatch.setenv("MOBIPAY_VOICE_IVR_TOKEN", TOKEN)
    monkeypatch.setenv("MOBIPAY_VOICE_PROMPT_DIR", str(tmp_path / "prompts"))
    settings = Settings(_env_file=None, database_url=db_url, env="test", merchant_key_file=tmp_path / "platform.pem")
    container = build(settings, clock=ManualClock(START))
    container.rural.hasher = FAST
    container.wallet.pin_hasher = FAST
    with TestClient(create_app(settings, container)) as client:
        yield client, container
        _portal(client).call(container.close)


def test_the_voicexml_front_serves_the_agents_menu(ivr: tuple[TestClient, Container]) -> None:
    client, c = ivr

    async def seed() -> tuple[AgentStaff, list[int]]:
        me = await agent_with_float(c, AGENT_PHONE, 100_000)
        await funded(c, VILLAGER, 0)
        return me, await books(c, me)

    me, before = _portal(client).call(seed)
    assert before == [0, 100_000, 0]
    call = Call(client, f"tel:{AGENT_PHONE}")
    assert "请输入代理点员工密码" in call.turn.words
    assert sorted(call.press(STAFF_PIN).accepted_keys) == sorted("*1234590")
    call.press("1")
    call.press("13700137001")
    assert "客户手续费0元" in call.press("150").words
    done = call.press("1")
    assert "存款成功，150元已到客户钱包。备付金余额850元。" in done.words
    assert _portal(client).call(books, c, me) == [15_000, 85_000, 0]


async def test_a_cash_out_past_the_float_cap_is_refused_in_words(c: Container) -> None:
    me = await agent_with_float(c, AGENT_PHONE, c.rural.limits.max_float - 1_000)
    await funded(c, VILLAGER, 10_000)
    session = call(c)
    await signed_in(c, session)
    for key in ("2", "13700137001", "20"):
        await session.handle(key)
    refused = await session.handle("1")  # 20 yuan more would pass the cap: no code is even sent
    assert words(refused)[0] == "备付金将超过上限，请先售出部分备付金。" and refused.say[-1].prompt == "agent_menu"
    assert await books(c, me) == [10_000, c.rural.limits.max_float - 1_000, 0]
    assert not any("验证码" in t for t in await texts_to(c, VILLAGER))
