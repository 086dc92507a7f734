"""The SMS channel's logic on SQLite and PostgreSQL, without the gateway: messages go in
through ``receive`` and the outbox worker answers, against the telco and biller SIMULATORS.
Top-up and bill payment by SMS code, late and guessed codes, a message processed twice
after a crash, per-number limits, replies that never tell who else is registered, and
reminders stopped by TD (delivered through a recording gateway double)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from mobipay.app.bootstrap import Container, build
from mobipay.bills.reference_data import shipped_billers
from mobipay.channels.sms.grammar import parse
from mobipay.channels.sms.texts import TEMPLATES, render
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.platform.outbox import Message
from mobipay.wallet.tables import users
from tests.conftest import BILLER_SECRET, TELCO_SECRET

ME, OTHER, STRANGER = "+8613800138000", "+8613900139000", "+8613600136000"


@pytest.fixture
async def c(db_url: str, telcos: dict[str, str], billers_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        operator_billing_url=telcos["operator_billing"], aggregator_url=telcos["topup_aggregator"],
                        operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET, billers_url=billers_url,
                        billers_secret=BILLER_SECRET, partner_timeout_s=1.0, sms_payment_max=100_000,
                        rate_limit_sms="12/minute")
    clock = ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0).astimezone(UTC))
    container = build(settings, clock=clock)
    await container.ensure_system_accounts()
    await container.bills.import_billers(shipped_billers(), actor="test", reason="test")
    for number, money in ((ME, 50_000), (OTHER, 0)):
        user = await container.wallet.create_user(number, actor="test", reason="test")
        if money:
            assert (await container.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, money),
                                                                  Leg.credit(user.account_code, money)),
                                                         "cash_in"))).ok
    async with container.db.begin() as conn:  # Tier III: the tier limits are not what is tested here
        await conn.execute(update(users).values(tier=3))
    yield container
    await container.close()


async def texted(c: Container, sender: str, body: str, gateway_id: str | None = None) -> list[str]:
    """Send ``body`` from ``sender`` and return the texts sent back to ``sender`` for it."""
    before = await _sent(c)
    await c.sms.receive(gateway_id or new_id("k"), sender.removeprefix("+86"), "10658888", body)
    while await c.outbox_worker().run_once():
        pass
    return [render(t, p) for to, t, p in (await _sent(c))[len(before):] if to == sender]


async def _sent(c: Container) -> list[tuple[str, str, dict[str, Any]]]:
    async with c.db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at, id"))
        return [(p["to"], p["template"], p["params"]) for p in (json.loads(r[0]) for r in rows)]


async def balance(c: Container, number: str) -> int:
    return (await c.ledger.account((await c.wallet.user_by_msisdn(number)).account_code)).balance


def code(reply: str) -> str:
    return reply.split("验证码")[1][:6]


async def test_topup_and_bill_by_sms_code(c: Container, telcos: dict[str, str]) -> None:
    [ask] = await texted(c, ME, "充值 50")
    assert ask.startswith("为138****8000充值50.00元，实付") and "验证码" in ask
    assert await balance(c, ME) == 50_000
    [done] = await texted(c, ME, code(ask))
    assert done.startswith("为+8613800138000充值50.00元成功"), done  # the top-up's own SMS is the answer
    paid_topup = 50_000 - await balance(c, ME)
    assert 0 < paid_topup <= 5_000

    await c.saved_bills.save(await c.channel_actions.subscriber(ME), "POWER_SH", "1234567890", nickname="电费")
    [ask] = await texted(c, ME, "JF 电费")
    assert ask.startswith("缴纳电费（") and "验证码" in ask, ask
    due = int(ask.split("）")[1].split("元")[0].replace(".", ""))
    [done] = await texted(c, ME, code(ask))
    assert done.startswith("国网上海电力公司缴费") and "成功，凭证号" in done, done
    assert await balance(c, ME) == 50_000 - paid_topup - due
    assert (await texted(c, ME, "JF 水费"))[0].startswith("没有找到这个已保存的账单")

    [history] = await texted(c, ME, "mx")
    assert history.startswith("最近交易：") and "缴费" in history and "话费充值" in history


async def test_codes_late_guessed_and_over_the_cap(c: Container) -> None:
    clock = c.clock
    assert isinstance(clock, ManualClock)
    [ask] = await texted(c, ME, "ZZ 13900139000 10")
    clock.advance(301)
    [late] = await texted(c, ME, code(ask))
    assert late.startswith("验证码已过期")
    [ask] = await texted(c, ME, "ZZ 13900139000 10")
    wrong = "000000" if code(ask) != "000000" else "111111"
    for _ in range(5):
        assert (await texted(c, ME, wrong))[0].startswith("验证码不正确")
    [void] = await texted(c, ME, code(ask))  # the right code after 5 wrong ones: void
    assert void.startswith("错误次数过多")
    [capped] = await texted(c, ME, "ZZ 13900139000 1500")  # over sms_payment_max (1,000 CNY here)
    # the cap of SMS-confirmed payments, not the account's limit, and not a "left" figure
    assert capped.startswith("短信确认的付款每笔最多1000.00元，更大金额请用客户端。") and "剩余" not in capped
    [poor] = await texted(c, ME, "ZZ 13900139000 199")
    assert poor.startswith("向139****9000转账199.00元")  # within the cap and the balance: asks
    assert (await balance(c, ME), await balance(c, OTHER)) == (50_000, 0)


async def test_processed_twice_after_a_crash_moves_money_once(c: Container) -> None:
    [ask] = await texted(c, ME, "ZZ 13900139000 20")
    # The worker confirmed and paid, then died before the reply's transaction: the outbox
    # hands the same message over again.
    inbound_id = new_id("smi")
    async with c.db.begin() as conn:
        await conn.execute(text("INSERT INTO sms_inbound (id, gateway_id, sender, receiver, text, state, received_at) "
                                "VALUES (:i, 'g-crash', '13800138000', '10658888', :t, 'received', :n)"),
                           {"i": inbound_id, "t": code(ask), "n": c.clock.now()})
    message = Message("m", "sms.received", inbound_id, {"inbound_id": inbound_id, "sender": "13800138000",
                                                        "text": code(ask)}, {}, 0)
    await c.sms._answer(inbound_id, ME, parse(code(ask)))  # the first, interrupted run
    assert (await balance(c, ME), await balance(c, OTHER)) == (48_000, 2_000)
    before = len(await _sent(c))
    await c.sms.process(message)  # the redelivery
    await c.sms.process(message)  # and once more, for good measure
    replies = [render(t, p) for to, t, p in (await _sent(c))[before:] if to == ME]
    assert replies == ["已向139****9000转账20.00元，余额480.00元。 Sent 20.00 CNY to 139****9000; balance 480.00."]
    assert (await balance(c, ME), await balance(c, OTHER)) == (48_000, 2_000)
    # Kannel delivering the same message twice (same id): one answer.
    first = await texted(c, ME, "YE", gateway_id="dup-1")
    assert first and await texted(c, ME, "YE", gateway_id="dup-1") == []


async def test_replies_never_tell_who_is_registered(c: Container) -> None:
    registered = (await texted(c, ME, "ZZ 13900139000 5"))[0]
    unknown = (await texted(c, ME, "ZZ 13600136000 5"))[0]
    assert registered.replace("139****9000", "X").split("验证码")[0] == \
        unknown.replace("136****6000", "X").split("验证码")[0]
    [not_mine] = await texted(c, STRANGER, "YE")  # a number without a wallet hears about itself only
    assert not_mine.startswith("本号码尚未开通钱包")
    [helps] = await texted(c, STRANGER, "BZ")
    assert "余额 YE" in helps


async def test_per_number_limit_and_one_notice(c: Container) -> None:
    replies = [await texted(c, OTHER, "YE") for _ in range(14)]  # the limit is 12 a minute here
    assert all(r and r[0].startswith("您的钱包可用余额") for r in replies[:12])
    assert replies[12] == ["短信发送过于频繁，请稍后再试。Too many messages; try again later."]
    assert replies[13] == []  # told once per window, not at every message
    assert (await texted(c, ME, "YE"))[0].startswith("您的钱包可用余额")  # other numbers unaffected


class RecordingGateway:
    """Test double for Kannel's sendsms (the real one is exercised in tests/e2e/test_sms_kannel.py)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def submit(self, sms_id: str, to: str, body: str) -> None:
        self.sent.append((sms_id, to, body))

    async def close(self) -> None:
        return None


async def test_td_stops_reminders_not_receipts_and_each_event_goes_once(c: Container) -> None:
    gateway = RecordingGateway()
    c.sms.sender = gateway  # type: ignore[assignment]
    c.handlers["sms.send"] = [c.sms.deliver]
    assert (await texted(c, ME, "TD"))[0].startswith("已退订提醒短信")

    def message(template: str, params: dict[str, Any]) -> Message:
        return Message(new_id("msg"), "sms.send", new_id("k"), {"to": ME, "template": template, "params": params},
                       {}, 0)

    reminder = message("bill.reminder", {"biller": "上海电力", "nickname": "电费", "amount_fen": 12_345,
                                         "due": "2026-12-10"})
    receipt = message("p2p.received", {"from": "139****9000", "amount_fen": 500})
    for m in (reminder, receipt, receipt):  # the receipt handed over twice (outbox redelivery)
        await c.sms.deliver(m)
    assert gateway.sent[-1][2] == "139****9000向您转账5.00元，已到账。 139****9000 sent you 5.00 CNY."
    assert [sms_id for sms_id, _, _ in gateway.sent].count(receipt.id) == 1
    assert reminder.id not in [sms_id for sms_id, _, _ in gateway.sent]
    assert (await texted(c, ME, "KT"))[0].startswith("已恢复提醒短信")
    again = message("bill.reminder", reminder.payload["params"])
    await c.sms.deliver(again)
    assert gateway.sent[-1][0] == again.id and "新账单123.45元" in gateway.sent[-1][2]
    assert await c.sms.delivery_report(again.id, 1) and await c.sms.delivery_report(again.id, 8)
    assert (await c.sms.states())["delivered"] == 1  # a late "acked" does not undo "delivered"


def test_every_template_renders_in_both_languages() -> None:
    sample = {"code": "123456", "minutes": 5, "summary": "向139****9000转账5.00元", "from": "139****9000",
              "to": "139****9000", "by": "139****9000", "amount_fen": 500, "fee_fen": 10, "face_fen": 1_000,
              "price_fen": 990, "balance_fen": 100, "msisdn": "138****8000", "bank": "招商银行", "card": "1234",
              "biller": "上海电力", "nickname": "电费", "due": "2026-12-10", "ref": "R1", "id": "cmp_1", "note": "ok",
              "name": "12580", "insured": "*明", "game": "双色球", "issue": "2026137", "serial": "S1", "tier": 1,
              "merchant": "小店", "campaign": "双十二", "rows": "11-25 转账 -5.00", "what": "充值", "text": "你好",
              "envelope_fen": 100, "privilege_fen": 100, "paid_fen": 400, "out_request_no": "RF-1", "kind": "bill",
              "game_en": "Double Colour Ball", "numbers": "01 02 03 04 05 06+07", "payer": "139****9000",
              "days": 3, "until": "2027-01-23", "date": "2026-12-24", "tax_fen": 100, "reason": "资料齐全",
              "model": "Apple iPhone 15", "imei": "0011", "damage_fen": 18_900, "loss_fen": 34_900,
              "kind_zh": "丢失", "hall": "长沙五一广场营业厅", "address": "长沙市芙蓉区五一大道 1 号",
              "funder": "邵阳市教育基金会", "draw": "动感地带开学季", "number": 1, "prize": "iPad",
              "entry": "A1B2C3", "vehicle": "送奖车1号", "receiver": "李*", "amount": "5.00", "count": 2,
              "codes": "1234 5678 9012", "deal": "双人套餐", "left": 1, "paid": "5.00",
              "film": "流浪地球3", "cinema": "万达影城", "time": "2026-12-24 19:30", "seats": "5排12座",
              "employer": "示范科技", "allowance": "25.00", "wallet": "5.00",
              "bureau": "绥宁县文化旅游广电体育局", "order": "TWO-1", "agency": "绥宁青山旅行社"}
    for template in TEMPLATES:
        body = render(template, sample)
        assert "{" not in body and not body.startswith("您的账户有一条新通知"), template
    assert render("no.such.template", {}).startswith("您的账户有一条新通知")  # never silent
