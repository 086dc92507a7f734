"""The operator's products and lottery quick picks by SMS on SQLite and PostgreSQL, against
the provider and lottery-centre SIMULATORS at a fixed noon: the list, the confirmation code
before any money moves, one purchase per code however often the message is processed, and
a plain reply (never silence, nothing charged) to every bad command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import update

from mobipay.app.bootstrap import Container, build
from mobipay.channels.sms.errors import CommandNotUnderstood
from mobipay.channels.sms.grammar import Command, parse
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.wallet.tables import users
from tests.conftest import LOTTERY_SECRET, PROVIDER_SECRET
from tests.integration.test_sms_channel import balance, code, texted

ME, UNICOM = "+8613800138000", "+8618600186000"
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)  # a Tuesday: 双色球 sales close at 20:00 tonight


@pytest.fixture
async def c(db_url: str, providers: dict[str, str], lottery_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        products_url=providers["operator_products"], insurer_url=providers["insurer"],
                        products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url,
                        lottery_secret=LOTTERY_SECRET, partner_timeout_s=2.0, sms_payment_max=100_000)
    container = build(settings, clock=ManualClock(NOON))
    await container.ensure_system_accounts()
    for number in (ME, UNICOM):
        user = await container.wallet.create_user(number, actor="test", reason="test")
        assert (await container.ledger.post(Transfer(f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                                        Leg.credit(user.account_code, 10_000)),
                                                     "cash_in"))).ok
    async with container.db.begin() as conn:
        await conn.execute(update(users).values(tier=3))
    yield container
    await container.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("YW", Command("products")), ("业务", Command("products")), ("DG 3", Command("product", name="3")),
    ("订购彩铃", Command("product", name="彩铃")), ("dg music_crbt", Command("product", name="MUSIC_CRBT")),
    ("CP", Command("tickets")), ("cp ssq", Command("lottery", name="ssq", count=1)),
    ("彩票 双色球 3", Command("lottery", name="ssq", count=3)),
    ("ＣＰ　3D　5", Command("lottery", name="fc3d", count=5)),
    ("CP DLT 2", Command("lottery", name="dlt", count=2)),
])
def test_product_and_lottery_commands(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["DG", "DG 1 2", "YW 1", "CP XYZ", "CP SSQ 0", "CP SSQ 6", "CP SSQ ２", "CP SSQ 2 3",
                                  "CP SSQ 1e1", "CP SSQ -1"])
def test_malformed_product_and_lottery_commands_get_a_reply(text: str) -> None:
    with pytest.raises(CommandNotUnderstood) as info:
        parse(text)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.detail) and any(ch.isascii() and ch.isalpha()
                                                                                  for ch in info.value.detail)


async def test_list_and_buy_a_product_by_code(c: Container) -> None:
    [listed] = await texted(c, ME, "YW")
    assert listed.startswith("业务（回复DG 序号订购）：1 彩铃5.00元/月") and "8 飞信短信包5.00元/次" in listed
    [ask] = await texted(c, ME, "DG 3")
    assert ask.startswith("订购整曲下载，2.00元/次。") and "验证码" in ask
    assert await balance(c, ME) == 10_000  # nothing moves on the command
    [done] = await texted(c, ME, code(ask))
    assert done.startswith("整曲下载已开通"), done  # the product's own SMS is the answer
    assert await balance(c, ME) == 10_000 - 200
    assert (await texted(c, ME, code(ask)))[0].startswith("没有等待确认的请求")  # a replayed code buys nothing
    assert await balance(c, ME) == 10_000 - 200

    for bad, reply in (("DG 99", "没有这个业务"), ("DG NOPE", "没有这个业务"), ("DG", "订购请发"),
                       ("YW 2", "查看业务请发")):
        [answer] = await texted(c, ME, bad)
        assert answer.startswith(reply), (bad, answer)
    [other] = await texted(c, UNICOM, "DG 1")  # not the home operator's number: refused at once
    assert other.startswith("该业务仅限本运营商号码订购") and "验证码" not in other
    assert (await balance(c, ME), await balance(c, UNICOM)) == (10_000 - 200, 10_000)


async def test_quick_picks_by_code_and_my_tickets(c: Container) -> None:
    [none] = await texted(c, ME, "CP")
    assert none.startswith("暂无彩票")
    [ask] = await texted(c, ME, "CP SSQ 2")
    assert ask.startswith("购买双色球第2026") and "机选2注，共4.00元（11-24 20:00截止）" in ask, ask
    assert await balance(c, ME) == 10_000
    replies = await texted(c, ME, code(ask))
    numbers = next(r for r in replies if "机选号码" in r)
    assert numbers.startswith("双色球第2026") and numbers.split(" Double")[0].count("+") == 2, numbers  # 2 bets
    assert any(r.startswith("彩票") and "投注成功，票号" in r for r in replies), replies  # the centre's serial
    assert await balance(c, ME) == 10_000 - 400
    [mine] = await texted(c, ME, "cp")
    assert mine.startswith("我的彩票：双色球2026") and "2注4.00元 待开奖" in mine, mine

    for bad, reply in (("CP SSQ 9", "机选注数为1到5"), ("CP ABC", "彩票机选请发"), ("CP SSQ 1 1", "彩票机选请发")):
        [answer] = await texted(c, ME, bad)
        assert answer.startswith(reply), (bad, answer)
    assert await balance(c, ME) == 10_000 - 400


async def test_a_code_after_the_cut_off_buys_nothing_for_another_draw(c: Container) -> None:
    clock = c.clock
    assert isinstance(clock, ManualClock)
    clock.set(NOON.replace(hour=19, minute=58))
    [ask] = await texted(c, ME, "CP SSQ")
    clock.advance(180)  # the code comes back within its 5 minutes, but after 20:00
    [late] = await texted(c, ME, code(ask))
    assert late.startswith("本期已停止销售"), late
    assert await balance(c, ME) == 10_000
    [ask] = await texted(c, ME, "CP SSQ")  # the next draw, asked for now, sells
    assert "期机选1注，共2.00元" in ask and "11-26 20:00截止" in ask, ask
    await texted(c, ME, code(ask))
    assert await balance(c, ME) == 10_000 - 200


async def test_the_sms_cap_and_the_balance_are_checked_before_the_code(c: Container) -> None:
    poor = (await c.wallet.create_user("+8613700137000", actor="test", reason="test")).msisdn
    [answer] = await texted(c, poor, "CP SSQ 5")
    assert answer.startswith("余额不足") and "验证码" not in answer
    [answer] = await texted(c, poor, "DG 1")
    assert answer.startswith("余额不足")
    assert await balance(c, poor) == 0
