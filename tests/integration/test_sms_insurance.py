"""Insurance by SMS on SQLite and PostgreSQL, against the insurer SIMULATOR at a fixed noon
(ManualClock): ``BX`` lists my policies (never sells one), ``TB n`` cancels one in its
cooling-off period after a confirmation code, the premium back exactly once however often
the message is processed; a cancellation the insurer declines moves nothing and says until
when to ask again; every malformed command gets a plain reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from mobipay.app.bootstrap import Container, build
from mobipay.channels.sms.errors import CommandNotUnderstood
from mobipay.channels.sms.grammar import HELP, Command, parse
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_INSURER
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.platform.outbox import Message
from mobipay.wallet.model import id_card_check_char
from mobipay.wallet.tables import users
from tests.conftest import PROVIDER_SECRET
from tests.integration.test_sms_channel import _sent, balance, code, texted
from tests.support import partners

ME, OTHER = "+8613800138000", "+8613900139000"
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)  # clocks tell UTC
ID = "11010519491231002" + id_card_check_char("11010519491231002")
FUNDS = 20_000
ACC_1Y, TRAVEL, ACC_1M = 5_000, 1_500, 990  # premiums (fen) of the three policies bought below


@pytest.fixture
async def c(db_url: str, providers: dict[str, str]) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        products_url=providers["operator_products"], insurer_url=providers["insurer"],
                        products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET, partner_timeout_s=2.0,
                        sms_payment_max=100_000)
    container = build(settings, clock=ManualClock(NOON))
    await container.ensure_system_accounts()
    for number in (ME, OTHER):
        user = await container.wallet.create_user(number, actor="test", reason="test")
        assert (await container.ledger.post(Transfer(f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, FUNDS),
                                                                        Leg.credit(user.account_code, FUNDS)),
                                                     "cash_in"))).ok
    async with container.db.begin() as conn:
        await conn.execute(update(users).values(tier=3))
    yield container
    await container.close()


async def bought(c: Container) -> None:
    """Three policies bought in the app, a minute apart (BX lists the newest first):
    3 a month's accident cover that started today (no cooling-off: not cancellable),
    2 a week's travel cover from tomorrow (cancellable until it starts),
    1 a year's accident cover from tomorrow (15 days' cooling-off)."""
    clock = c.clock
    assert isinstance(clock, ManualClock)
    me = await c.channel_actions.subscriber(ME)
    today = NOON.astimezone(SHANGHAI).date()
    tomorrow = today + timedelta(days=1)
    for n, (product, starts) in enumerate((("ACC_1M_50K", today), ("TRAVEL_7D_CN", tomorrow),
                                           ("ACC_1Y_100K", tomorrow))):
        policy = await c.products.buy_policy(me, product, insured_name="王小明", insured_id=ID, starts_on=starts,
                                             idempotency_key=f"app-{n}")
        assert policy.state.value == "succeeded", policy
        clock.advance(60)


async def insurer(c: Container) -> int:
    return (await c.ledger.account(PAYABLE_INSURER)).balance


async def cancellations(c: Container) -> int:
    async with c.db.begin() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM partner_orders WHERE kind = 'insurance_cancel'"))
                    ).scalar_one())


@pytest.mark.parametrize(("typed", "expected"), [
    ("BX", Command("policies")), ("bx", Command("policies")), ("保险", Command("policies")),
    ("POLICIES", Command("policies")), ("ＢＸ", Command("policies")),
    ("TB 1", Command("policy_cancel", count=1)), ("tb 12", Command("policy_cancel", count=12)),
    ("退保2", Command("policy_cancel", count=2)), ("退保 3", Command("policy_cancel", count=3)),
    ("ＴＢ　1", Command("policy_cancel", count=1)),
])
def test_policy_commands(typed: str, expected: Command) -> None:
    assert parse(typed) == expected


@pytest.mark.parametrize("typed", ["TB", "TB 0", "TB X", "TB 1 2", "TB ２", "TB 1²", "TB 100", "TB -1", "TB 1.5",
                                   "退保", "BX 1", "BX ACC_1Y_100K", "保险 王小明 110105194912310021"])
def test_malformed_policy_commands_get_a_plain_reply(typed: str) -> None:
    with pytest.raises(CommandNotUnderstood) as info:
        parse(typed)
    detail = info.value.detail
    assert any("\u4e00" <= ch <= "\u9fff" for ch in detail) and any(ch.isascii() and ch.isalpha() for ch in detail)
    assert ("客户端" in detail) if typed.upper().startswith(("BX", "保险")) else detail.startswith("退保请发：TB")


def test_the_new_words_clash_with_no_command_and_help_names_them() -> None:
    from mobipay.channels.sms.grammar import KEYWORDS

    words = [w for ws in KEYWORDS.values() for w in ws]
    assert len(words) == len(set(words))
    assert "我的保单 BX" in HELP and "退保 TB 序号" in HELP and "my policies BX" in HELP


async def test_list_my_policies(c: Container) -> None:
    [none] = await texted(c, ME, "BX")
    assert none.startswith("暂无保单。保险请在客户端") and "No policies yet" in none
    await bought(c)
    [listed] = await texted(c, ME, "BX")
    assert listed.startswith("我的保单：1 综合意外险（一年，保额10万元） 被保险人**明 11-25起保障，"
                             "12-09 12:02前可退保；2 国内旅行意外险（7天） 被保险人**明 11-25起保障，"
                             "11-25 00:00前可退保；"
                             "3 短期意外险（一个月，保额5万元） 被保险人**明 保障中。"), listed
    assert "My policies (product, insured, state, cancellable until)" in listed
    assert "王小明" not in listed and ID not in listed  # the insured's name and number never travel
    assert await balance(c, ME) == FUNDS - ACC_1Y - TRAVEL - ACC_1M  # listing moves nothing
    [others] = await texted(c, OTHER, "BX")  # another wallet sees none of mine
    assert others.startswith("暂无保单")


async def test_cancel_a_policy_by_code_refunds_the_premium_once(c: Container) -> None:
    await bought(c)
    paid, held = await balance(c, ME), await insurer(c)
    [ask] = await texted(c, ME, "TB 1")
    assert ask.startswith("退保综合意外险（一年，保额10万元）（被保险人**明），保费50.00元退回您的钱包，保障随即终止。"
                          "请在5分钟内回复验证码"), ask
    assert (await balance(c, ME), await insurer(c), await cancellations(c)) == (paid, held, 0)  # not on the command
    replies = await texted(c, ME, code(ask))
    assert len(replies) == 1 and "已退保，50.00元已退回" in replies[0], replies  # the insurer's answer is the reply
    assert (await balance(c, ME), await insurer(c)) == (paid + ACC_1Y, held - ACC_1Y)
    [again] = await texted(c, ME, code(ask))  # a replayed code cancels nothing more
    assert again.startswith("没有等待确认的请求"), again
    [asked_again] = await texted(c, ME, "TB 1")  # already cancelled: said so, no new code
    assert asked_again.startswith("综合意外险（一年，保额10万元）已退保，保费50.00元已退回"), asked_again
    assert "验证码" not in asked_again
    [listed] = await texted(c, ME, "BX")
    assert listed.startswith("我的保单：1 综合意外险（一年，保额10万元） 被保险人**明 已退保；"), listed
    assert (await balance(c, ME), await insurer(c), await cancellations(c)) == (paid + ACC_1Y, held - ACC_1Y, 1)


async def test_a_confirming_message_processed_twice_after_a_crash_refunds_once(c: Container) -> None:
    await bought(c)
    paid = await balance(c, ME)
    [ask] = await texted(c, ME, "TB 2")
    assert ask.startswith("退保国内旅行意外险（7天）（被保险人**明），保费15.00元"), ask
    inbound_id = new_id("smi")
    async with c.db.begin() as conn:
        await conn.execute(text("INSERT INTO sms_inbound (id, gateway_id, sender, receiver, text, state, received_at) "
                                "VALUES (:i, 'g-crash', '13800138000', '10658888', :t, 'received', :n)"),
                           {"i": inbound_id, "t": code(ask), "n": c.clock.now()})
    message = Message("m", "sms.received", inbound_id, {"inbound_id": inbound_id, "sender": "13800138000",
                                                        "text": code(ask)}, {}, 0)
    await c.sms._answer(inbound_id, ME, parse(code(ask)))  # the first run, interrupted before its reply
    assert await balance(c, ME) == paid + TRAVEL
    await c.sms.process(message)  # the redelivery
    await c.sms.process(message)
    assert (await balance(c, ME), await cancellations(c)) == (paid + TRAVEL, 1)


async def test_a_declined_cancellation_moves_nothing_and_says_until_when(c: Container,
                                                                        providers: dict[str, str]) -> None:
    await bought(c)
    paid, held = await balance(c, ME), await insurer(c)
    partners.behave(f"{providers['insurer']}/sim", decline_rate=1.0)
    [ask] = await texted(c, ME, "退保1")
    replies = await texted(c, ME, code(ask))
    assert replies == ["综合意外险（一年，保额10万元）退保申请未获保险公司同意，保单继续有效，保费未退。"
                       "2026-12-09 12:02前可再次申请退保。 Cancelling 综合意外险（一年，保额10万元） was declined: "
                       "the policy stays, nothing refunded. You may ask again until 2026-12-09 12:02."], replies
    assert "已退回" not in replies[0]
    assert (await balance(c, ME), await insurer(c), await cancellations(c)) == (paid, held, 1)
    [listed] = await texted(c, ME, "BX")
    assert listed.startswith("我的保单：1 综合意外险（一年，保额10万元） 被保险人**明 11-25起保障，上次退保未获同意，"
                             "12-09 12:02前可退保；"), listed

    # The same confirming message processed again after a crash is no second attempt.
    before = await cancellations(c)
    async with c.db.begin() as conn:
        confirming = (await conn.execute(text("SELECT id FROM sms_inbound WHERE text = :t"), {"t": code(ask)})).scalar()
    await c.sms._answer(confirming, ME, Command("confirm", code=code(ask)))
    assert (await cancellations(c), await balance(c, ME)) == (before, paid)

    # Asked again within the period, and the insurer agrees: the premium back, once.
    partners.behave(f"{providers['insurer']}/sim", decline_rate=0.0)
    [ask] = await texted(c, ME, "TB 1")
    assert "验证码" in ask
    [done] = await texted(c, ME, code(ask))
    assert "已退保，50.00元已退回" in done, done
    assert (await balance(c, ME), await insurer(c), await cancellations(c)) == (paid + ACC_1Y, held - ACC_1Y, 2)


async def test_past_the_cooling_off_period_or_no_such_policy_nothing_is_asked(c: Container) -> None:
    await bought(c)
    paid = await balance(c, ME)
    [started] = await texted(c, ME, "TB 3")  # no cooling-off, and the cover started today
    assert started.startswith("已过犹豫期，不能退保。") and "验证码" not in started, started
    [nothing] = await texted(c, ME, "TB 4")
    assert nothing.startswith("没有找到这份已生效的保单") and "验证码" not in nothing, nothing
    [others] = await texted(c, OTHER, "TB 1")  # another wallet cannot reach my policy 1
    assert others.startswith("没有找到这份已生效的保单"), others

    clock = c.clock
    assert isinstance(clock, ManualClock)
    clock.set(NOON + timedelta(days=15, minutes=1))  # a minute before the period ends (12-09 12:02)
    [ask] = await texted(c, ME, "TB 1")  # asked in time, but the code comes after the period ended
    assert "验证码" in ask, ask
    clock.advance(120)
    [late] = await texted(c, ME, code(ask))
    assert late.startswith("已过犹豫期，不能退保"), late
    [travel] = await texted(c, ME, "TB 2")  # its cover has started
    assert travel.startswith("已过犹豫期"), travel
    [listed] = await texted(c, ME, "BX")
    assert "前可退保" not in listed and "1 综合意外险（一年，保额10万元） 被保险人**明 保障中；" in listed, listed
    assert (await balance(c, ME), await cancellations(c)) == (paid, 0)


async def test_every_malformed_policy_command_is_answered_and_moves_nothing(c: Container) -> None:
    await bought(c)
    paid = await balance(c, ME)
    for typed, reply in (("TB", "退保请发：TB"), ("TB 0", "退保请发：TB"), ("TB X", "退保请发：TB"),
                         ("BX ACC_1Y_100K", "保险请在客户端"), ("TB 1 1", "退保请发：TB")):
        [answer] = await texted(c, ME, typed)
        assert answer.startswith(reply) and "验证码" not in answer, (typed, answer)
    sent = len(await _sent(c))
    assert sent and (await balance(c, ME), await cancellations(c)) == (paid, 0)
