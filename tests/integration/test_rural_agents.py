"""Village agents on SQLite and PostgreSQL: cash-in and cash-out (service and SMS) with the
customer's wallet, the agent's float and the fee asserted; a cash-out is never paid without
the customer (no code, a wrong code, a wrong PIN); limits at their edges; commissions for a
month split with the super-agent and paid in one batch; each fraud rule flagged to risk;
super-agents rebalancing; float bought from and sold to the bank SIMULATOR."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from mobipay.app.bootstrap import Container, build
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.roles import Roster
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.rural.bank_http import RuralBank
from mobipay.rural.market import Marketplace
from mobipay.rural.model import AgentKind, AgentLimits, Location, TxKind
from mobipay.rural.service import COMMISSION_PAYABLE, RURAL_FEES, AgentStaff, RuralService, float_account
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from mobipay.wallet.tables import users
from tests.conftest import BANK_SECRET
from tests.integration.test_sms_channel import texted

START = datetime(2026, 11, 10, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
PLACE = Location("湖南省", "长沙市", "宁乡县", "灰汤镇", "东鹜村")
VILLAGER, NEIGHBOUR = "+8613700137001", "+8613700137002"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only: fast


@dataclass
class Rig:
    """The rural services alone (quicker than the whole container), named as the container names them."""

    db: Database
    clock: ManualClock
    ledger: Ledger
    wallet: WalletService
    rural: RuralService
    rural_market: Marketplace


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def c(db: Database, ledger: Ledger, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Rig]:
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"t", pin_hasher=FAST)
    roster = Roster("rita:risk;olga:operations")
    bank = RuralBank("http://127.0.0.1:9", b"unused")  # no bank here (test_float_bought_… has the SIMULATOR)
    rural = RuralService(uow, wallet, OrderBook(uow, tmp_path), bank, roster, b"secret", pin_hasher=FAST)
    market = Marketplace(uow, wallet, rural, roster, None, b"secret")
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    await rural.open_accounts()
    await market.open_accounts()
    yield Rig(db, clock, ledger, wallet, rural, market)
    await bank.close()


@pytest.fixture
async def full(db_url: str) -> AsyncIterator[Container]:
    """The whole container: SMS in through the channel, as a phone sends it."""
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        rate_limit_sms="100/minute", operators="rita:risk;olga:operations;demo:admin")
    container = build(settings, clock=ManualClock(START))
    container.rural.hasher = FAST
    container.wallet.pin_hasher = FAST
    await container.ensure_system_accounts()
    yield container
    await container.close()


async def funded(c: Rig | Container, number: str, fen: int) -> Principal:
    user = await c.wallet.create_user(number, actor="t", reason="t")
    if fen:
        assert (await c.ledger.post(Transfer(f"fund{number}", (Leg.debit(BANK_SETTLEMENT, fen),
                                                               Leg.credit(user.account_code, fen)), "cash_in"))).ok
    async with c.db.begin() as conn:  # Tier III: the wallet's own tier limits are not what is tested here
        await conn.execute(update(users).where(users.c.id == user.id).values(tier=3))
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def agent_with_float(c: Rig | Container, number: str = "+8613600136001", fen: int = 100_000, *,
                           super_id: str | None = None, licence: str = "") -> AgentStaff:
    a = await c.rural.onboard(name="东鹜村便民店", licence=licence or f"LIC{number[-6:]}", msisdn=number,
                              location=PLACE, owner_pin="135790", super_id=super_id)
    if fen:
        assert (await c.ledger.post(Transfer(f"float{a.id}", (Leg.debit(BANK_SETTLEMENT, fen),
                                                              Leg.credit(float_account(a.id), fen)), "t"))).ok
    _, me = await c.rural.sign_in(number, "135790")
    return me


async def money(c: Rig | Container, *codes: str) -> list[int]:
    found = await c.ledger.accounts(list(codes))
    return [found[code].balance if code in found else 0 for code in codes]


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def texts_to(c: Rig | Container, number: str) -> list[str]:
    async with c.db.begin() as conn:
        rows = (await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send")
                                   .order_by(outbox.c.created_at, outbox.c.id))).scalars().all()
    out = [json.loads(r) if isinstance(r, str) else r for r in rows]
    return [p["params"].get("text", "") for p in out if p["to"] == number]


def code_in(text: str) -> str:
    return text.split("验证码")[1][:6]


async def test_cash_in_and_both_cash_outs_move_float_and_wallet(c: Rig) -> None:
    me = await agent_with_float(c)
    villager = await funded(c, VILLAGER, 0)
    wallet, flt = villager.account_code, float_account(me.agent_id)
    t = await c.rural.cash_in(me, "13700137001", 20_000, idempotency_key="ci-1")
    assert (t.kind, t.amount, t.fee, t.float_after) == ("cash_in", 20_000, 0, 80_000)
    assert await money(c, wallet, flt) == [20_000, 80_000]
    assert "存入200.00元" in (await texts_to(c, VILLAGER))[-1]
    again = await c.rural.cash_in(me, VILLAGER, 20_000, idempotency_key="ci-1")
    assert again.replayed and again.id == t.id and await money(c, wallet, flt) == [20_000, 80_000]
    assert await refused(c.rural.cash_in(me, VILLAGER, 30_000, idempotency_key="ci-1")) == "IDEMPOTENCY_CONFLICT"
    assert await refused(c.rural.cash_in(me, VILLAGER, 99, idempotency_key="ci-x")) == "RURAL_INVALID"
    assert await refused(c.rural.cash_in(me, "+8613700137999", 1_000, idempotency_key="ci-y")) == \
        "RURAL_CUSTOMER_NOT_REGISTERED"
    assert await refused(c.rural.cash_in(me, VILLAGER, 90_000, idempotency_key="ci-z")) == "AGENT_FLOAT_INSUFFICIENT"
    assert await money(c, wallet, flt) == [20_000, 80_000]  # refusals moved nothing

    # started by the agent: nothing moves until the customer's code is typed
    quote = c.rural.quote(TxKind.CASH_OUT, 10_000)
    assert (quote.fee, quote.total) == (100, 10_100)  # shown before confirming
    ask = await c.rural.start_cash_out(me, VILLAGER, 10_000, idempotency_key="co-1")
    assert (ask.state, ask.fee) == ("pending", 100)
    sent = (await texts_to(c, VILLAGER))[-1]
    assert "手续费1.00元" in sent and "共扣101.00元" in sent
    assert await money(c, wallet, flt) == [20_000, 80_000]  # no confirmation: nothing paid
    wrong = "000000" if code_in(sent) != "000000" else "111111"
    assert await refused(c.rural.confirm_cash_out(me, wrong)) == "RURAL_CODE_WRONG"
    assert await money(c, wallet, flt) == [20_000, 80_000]
    done = await c.rural.confirm_cash_out(me, code_in(sent))
    assert (done.kind, done.amount, done.fee, done.float_after) == ("cash_out", 10_000, 100, 90_000)
    assert await money(c, wallet, flt, RURAL_FEES) == [9_900, 90_000, 100]
    assert (await c.rural.confirm_cash_out(me, code_in(sent))).replayed  # typed twice: paid once
    assert await money(c, wallet, flt) == [9_900, 90_000]

    # started by the customer in the app, with their PIN
    await c.wallet.set_pin(VILLAGER, "258013")
    assert await refused(c.rural.customer_cash_out(villager, me.msisdn, 5_000, "999999",
                                                   idempotency_key="app-1")) == "PIN_INCORRECT"
    assert await money(c, wallet, flt) == [9_900, 90_000]
    paid = await c.rural.customer_cash_out(villager, me.msisdn, 5_000, "258013", idempotency_key="app-1")
    assert (paid.fee, paid.float_after) == (100, 95_000)
    assert await money(c, wallet, flt, RURAL_FEES) == [4_800, 95_000, 200]
    assert (await c.rural.agent(me.agent_id)).cash == 20_000 - 10_000 - 5_000  # the till, as they left it
    assert (await c.ledger.verify()).ok


async def test_a_cash_out_code_is_the_customers_and_expires(c: Rig) -> None:
    me = await agent_with_float(c)
    villager = await funded(c, VILLAGER, 30_000)
    ask = await c.rural.start_cash_out(me, VILLAGER, 10_000, idempotency_key="co-1")
    code = code_in((await texts_to(c, VILLAGER))[-1])
    other = await agent_with_float(c, "+8613600136002")
    assert await refused(c.rural.confirm_cash_out(other, code)) == "CASH_OUT_NOT_FOUND"  # another agent's counter
    c.clock.advance(11 * 60)  # type: ignore[attr-defined]
    assert await refused(c.rural.confirm_cash_out(me, code)) == "RURAL_CODE_WRONG"  # expired
    assert await money(c, villager.account_code, float_account(me.agent_id)) == [30_000, 100_000]
    # three wrong codes void the request: guessing ends
    await c.rural.start_cash_out(me, VILLAGER, 10_000, idempotency_key="co-2")
    good = code_in((await texts_to(c, VILLAGER))[-1])
    bad = "000000" if good != "000000" else "111111"
    for _ in range(3):
        assert await refused(c.rural.confirm_cash_out(me, bad)) == "RURAL_CODE_WRONG"
    assert await refused(c.rural.confirm_cash_out(me, good)) == "CASH_OUT_NOT_FOUND"
    assert await money(c, villager.account_code) == [30_000]
    assert ask.id


async def test_limits_at_their_edges(c: Rig) -> None:
    c.rural.limits = AgentLimits(max_float=150_000, daily_cash_out=40_000, customer_daily_cash_out=30_000,
                                 customer_daily_cash_in=50_000)
    me = await agent_with_float(c, fen=100_000)
    await funded(c, VILLAGER, 100_000)
    await funded(c, NEIGHBOUR, 100_000)

    async def cash_out(number: str, fen: int, key: str) -> None:
        await c.rural.start_cash_out(me, number, fen, idempotency_key=key)
        await c.rural.confirm_cash_out(me, code_in((await texts_to(c, number))[-1]))

    await cash_out(VILLAGER, 30_000, "a")  # exactly the customer's day
    assert await refused(c.rural.start_cash_out(me, VILLAGER, 100, idempotency_key="b")) == \
        "RURAL_CUSTOMER_LIMIT_EXCEEDED"
    await cash_out(NEIGHBOUR, 10_000, "c")  # the agent's day: 40,000 exactly
    assert await refused(c.rural.start_cash_out(me, NEIGHBOUR, 100, idempotency_key="d")) == "AGENT_LIMIT_EXCEEDED"
    assert await money(c, float_account(me.agent_id)) == [140_000]
    c.clock.advance(86_400)  # type: ignore[attr-defined]  # a new Beijing day
    await cash_out(NEIGHBOUR, 10_000, "e")  # the float: 150,000 exactly
    with pytest.raises(MobipayError) as info:
        await c.rural.start_cash_out(me, VILLAGER, 100, idempotency_key="f")
    assert (info.value.code, info.value.extra["limit"]) == ("AGENT_LIMIT_EXCEEDED", "float")
    # cash-in: the customer's day at agents
    await c.rural.cash_in(me, VILLAGER, 50_000, idempotency_key="g")
    assert await refused(c.rural.cash_in(me, VILLAGER, 100, idempotency_key="h")) == "RURAL_CUSTOMER_LIMIT_EXCEEDED"
    assert await money(c, float_account(me.agent_id)) == [100_000]


async def test_commissions_for_a_month_split_and_paid_in_one_batch(c: Rig) -> None:
    sup = await c.rural.onboard(name="宁乡县服务中心", licence="SUPER001", msisdn="+8613600136000", location=PLACE,
                                owner_pin="135790", kind=AgentKind.SUPER)
    me = await agent_with_float(c, super_id=sup.id)
    loner = await agent_with_float(c, "+8613600136009")
    await funded(c, VILLAGER, 0)
    await funded(c, NEIGHBOUR, 50_000)
    await c.rural.cash_in(me, VILLAGER, 10_000, idempotency_key="1")  # tier 1: 0.30
    await c.rural.cash_in(me, NEIGHBOUR, 60_000, idempotency_key="2")  # tier 3: 3.00
    await c.rural.start_cash_out(me, NEIGHBOUR, 40_000, idempotency_key="3")  # fee 3.00, commission 1.80
    await c.rural.confirm_cash_out(me, code_in((await texts_to(c, NEIGHBOUR))[-1]))
    await c.rural.cash_in(loner, VILLAGER, 10_000, idempotency_key="4")  # no super-agent: all 0.30 to the agent
    mine = await c.rural.commission_summary(me.agent_id, "2026-11")
    theirs = await c.rural.commission_summary(sup.id, "2026-11")
    # 20% to the super-agent: 0.30 → 0.24/0.06, 3.00 → 2.40/0.60, 1.80 → 1.44/0.36
    assert (mine.accrued, theirs.accrued) == (24 + 240 + 144, 6 + 60 + 36)
    assert await money(c, COMMISSION_PAYABLE) == [30 + 300 + 180 + 30]
    c.clock.advance(25 * 86_400)  # type: ignore[attr-defined]  # December: last month is paid
    floats = await money(c, float_account(me.agent_id), float_account(sup.id), float_account(loner.agent_id))
    assert await c.rural.pay_last_month() == 3
    after = await money(c, float_account(me.agent_id), float_account(sup.id), float_account(loner.agent_id))
    assert [b - a for a, b in zip(floats, after, strict=True)] == [408, 102, 30]
    assert await money(c, COMMISSION_PAYABLE) == [0]
    assert (await c.rural.pay_commissions("2026-11")).agents == 0  # twice: nothing more
    assert (await c.rural.commission_summary(me.agent_id, "2026-11")).paid == 408
    assert (await c.ledger.verify()).ok


async def test_each_fraud_rule_flags_to_risk_and_holds_the_commission(c: Rig) -> None:
    me = await agent_with_float(c, fen=400_000)
    await funded(c, VILLAGER, 0)
    # the agent depositing to its own number
    await funded(c, me.msisdn, 0)
    own = await c.rural.cash_in(me, me.msisdn, 10_000, idempotency_key="self")
    assert own.flags == ("self_deposit",)
    # split deposits: three of 1,000 CNY earn 3 x 3.00, one of 3,000 CNY 6.00
    a = await c.rural.cash_in(me, VILLAGER, 100_000, idempotency_key="s1")
    b = await c.rural.cash_in(me, VILLAGER, 100_000, idempotency_key="s2")
    third = await c.rural.cash_in(me, VILLAGER, 100_000, idempotency_key="s3")
    assert (a.flags, b.flags, third.flags) == ((), (), ("split_deposit",))
    c.clock.advance(3_601)  # type: ignore[attr-defined]  # outside the window: no longer together
    assert (await c.rural.cash_in(me, VILLAGER, 50_000, idempotency_key="s4")).flags == ()
    # a cash-out to a number this agent registered just now
    fresh = await c.rural.register_customer(me, "+8613700137055")
    await c.rural.cash_in(me, fresh.msisdn, 20_000, idempotency_key="n1")
    await c.rural.start_cash_out(me, fresh.msisdn, 10_000, idempotency_key="n2")
    out = await c.rural.confirm_cash_out(me, code_in((await texts_to(c, fresh.msisdn))[-1]))
    assert out.flags == ("new_number_same_agent",)
    found = await c.rural.flagged()
    assert sorted(f.rule for f in found) == ["new_number_same_agent", "self_deposit", "split_deposit"]
    summary = await c.rural.commission_summary(me.agent_id, "2026-11")
    assert summary.held == 30 + 300 + 60  # the flagged lines wait for risk
    by_rule = {f.rule: f for f in found}
    assert await refused(c.rural.decide_flag(by_rule["self_deposit"].id, actor="olga", fraud=True)) == "ROLE_REQUIRED"
    assert (await c.rural.decide_flag(by_rule["self_deposit"].id, actor="rita", fraud=True)).state == "confirmed"
    assert (await c.rural.decide_flag(by_rule["split_deposit"].id, actor="rita", fraud=False)).state == "cleared"
    summary = await c.rural.commission_summary(me.agent_id, "2026-11")
    assert summary.held == 60 and summary.accrued == 300 + 300 + 300 + 100 + 100  # cleared joins the month
    run = await c.rural.pay_commissions("2026-11")
    assert run.by_agent == {me.agent_id: 1_100}  # the fraud line void, the open one still held
    assert (await c.ledger.verify()).ok


async def test_agent_and_villager_sms_menus(full: Container) -> None:
    c = full
    me = await agent_with_float(c)
    await funded(c, VILLAGER, 0)
    [reply] = await texted(c, me.msisdn, "CK 13700137001 150")
    assert reply.startswith("存款成功：137****7001 150.00元，备付金余额850.00元"), reply
    assert await money(c, (await c.wallet.user_by_msisdn(VILLAGER)).account_code) == [15_000]
    [reply] = await texted(c, me.msisdn, "DQ 13700137001 50")
    assert "已向137****7001发送验证码" in reply and "手续费1.00元" in reply, reply
    code = code_in((await texts_to(c, VILLAGER))[-1])
    [reply] = await texted(c, me.msisdn, f"DQ {code}")
    assert "请付给客户50.00元现金" in reply and "备付金余额900.00元" in reply, reply
    assert await money(c, (await c.wallet.user_by_msisdn(VILLAGER)).account_code) == [15_000 - 5_100]
    # the villager starts one by SMS to the agent's number, and confirms with the code
    [ask] = await texted(c, VILLAGER, f"QK {me.msisdn[3:]} 20")
    assert "手续费1.00元" in ask and "回复 QK 验证码" in ask, ask
    done = await texted(c, VILLAGER, f"QK {code_in(ask)}")  # the reply, and the cash-out's own notice
    assert any("取现20.00元成功" in t for t in done) and any("手续费1.00元" in t for t in done), done
    assert await money(c, float_account(me.agent_id)) == [100_000 - 15_000 + 5_000 + 2_000]
    [balance] = await texted(c, me.msisdn, "DLYE")
    assert "备付金余额920.00元，现金80.00元" in balance, balance
    [month] = await texted(c, me.msisdn, "YJ")
    assert "本月佣金：待付2.20元" in month, month  # 1.00 + 0.60 + 0.60, no super-agent
    [statement] = await texted(c, me.msisdn, "DLMX")
    assert statement.count("；") == 2 and "存150.00" in statement and "取20.00" in statement, statement
    [refusal] = await texted(c, NEIGHBOUR, "CK 13700137001 10")
    assert "不是代理点员工" in refusal  # a villager cannot deposit from nobody's float
    [bad] = await texted(c, me.msisdn, "CK 13700137001 ５０")
    assert "半角数字" in bad
    [other] = await texted(c, VILLAGER, "YE")  # the channel's own commands go on
    assert "余额" in other


async def test_super_agent_rebalances_only_its_agents(c: Rig) -> None:
    sup = await c.rural.onboard(name="宁乡县服务中心", licence="SUPER001", msisdn="+8613600136000", location=PLACE,
                                owner_pin="135790", kind=AgentKind.SUPER)
    assert (await c.ledger.post(Transfer("fs", (Leg.debit(BANK_SETTLEMENT, 500_000),
                                                Leg.credit(float_account(sup.id), 500_000)), "t"))).ok
    _, boss = await c.rural.sign_in(sup.msisdn, "135790")
    mine = await agent_with_float(c, fen=0, super_id=sup.id)
    stranger = await agent_with_float(c, "+8613600136008", fen=0)
    t = await c.rural.rebalance(boss, mine.agent_id, 200_000, to_agent=True, idempotency_key="r1")
    assert t.kind == "rebalance"
    assert (await c.rural.rebalance(boss, mine.agent_id, 200_000, to_agent=True, idempotency_key="r1")).replayed
    assert await refused(c.rural.rebalance(boss, stranger.agent_id, 1_000, to_agent=True,
                                           idempotency_key="r2")) == "NOT_SUPER_AGENT"
    assert await refused(c.rural.rebalance(mine, sup.id, 1_000, to_agent=True, idempotency_key="r3")) == \
        "NOT_SUPER_AGENT"
    await c.rural.rebalance(boss, mine.agent_id, 50_000, to_agent=False, idempotency_key="r4")
    assert await money(c, float_account(sup.id), float_account(mine.agent_id)) == [350_000, 150_000]
    assert await refused(c.rural.sign_in(sup.msisdn, "000111")) == "AGENT_STAFF_PIN_WRONG"


async def test_float_bought_from_and_sold_to_the_bank(db_url: str, bank: str) -> None:
    settings = Settings(_env_file=None, database_url=db_url, env="test", bank_url=bank,  # type: ignore[call-arg]
                        bank_secret=BANK_SECRET, bank_timeout_s=2.0)
    c = build(settings, clock=ManualClock(datetime.now(UTC)))
    c.rural.hasher = FAST
    try:
        await c.ensure_system_accounts()
        a = await c.rural.onboard(name="东鹜村便民店", licence="LIC0001", msisdn="+8613600136001", location=PLACE,
                                  owner_pin="135790", bank_account="acct:62220200001")
        _, me = await c.rural.sign_in(a.msisdn, "135790")
        assert await refused(c.rural.buy_float(me, 10_000, idempotency_key="b0")) == "AGENT_BANK_CARD_MISSING"
        card = "6222020000000000017"
        sim = httpx.AsyncClient(base_url=bank)
        (await sim.post("/sim/accounts", json={"card_number": card, "name": "王芳", "id_number": "430124199001011234",
                                               "phone": a.msisdn, "balance": 500_000})).raise_for_status()
        assert await refused(c.rural.bind_bank_card(a.id, card_number=card, name="王小芳",
                                                    id_number="430124199001011234")) == "AGENT_BANK_CARD_REJECTED"
        await c.rural.bind_bank_card(a.id, card_number=card, name="王芳", id_number="430124199001011234")
        bought = await c.rural.buy_float(me, 300_000, idempotency_key="b1")
        assert bought.state is OrderState.SUCCEEDED
        assert (await c.rural.buy_float(me, 300_000, idempotency_key="b1")).replayed
        assert (await sim.get(f"/sim/accounts/{card}")).json()["balance"] == 200_000
        await sim.aclose()
        sold = await c.rural.sell_float(me, 100_000, idempotency_key="s1")
        assert sold.state is OrderState.SUCCEEDED
        assert await refused(c.rural.sell_float(me, 900_000, idempotency_key="s2")) == "AGENT_FLOAT_INSUFFICIENT"
        assert await money(c, float_account(a.id)) == [200_000]
        assert [t.kind for t in await c.rural.statement(a.id)] == ["float_sell", "float_buy"]
        assert (await c.ledger.verify()).ok
    finally:
        await c.close()


async def test_locator_and_activity_by_county(c: Rig) -> None:
    me = await agent_with_float(c)
    await c.rural.onboard(name="灰汤镇中心店", licence="LIC2", msisdn="+8613600136005", owner_pin="135790",
                          location=Location("湖南省", "长沙市", "宁乡县", "灰汤镇", "灰汤村"))
    await c.rural.onboard(name="花明楼店", licence="LIC3", msisdn="+8613600136006", owner_pin="135790",
                          location=Location("湖南省", "长沙市", "宁乡县", "花明楼镇", "炭子冲村"))
    assert [a.name for a in await c.rural.locate(township="灰汤镇")] == ["东鹜村便民店", "灰汤镇中心店"]
    assert [a.name for a in await c.rural.locate(village="炭子冲村")] == ["花明楼店"]
    assert await refused(c.rural.locate()) == "RURAL_INVALID"
    await funded(c, VILLAGER, 0)
    await c.rural.cash_in(me, VILLAGER, 10_000, idempotency_key="1")
    [county] = await c.rural.activity_by_county(START - timedelta(days=1), START + timedelta(days=1))
    assert (county.county, county.agents, county.cash_ins, county.cash_in_amount, county.cash_outs) == \
        ("宁乡县", 3, 1, 10_000, 0)


async def test_demo_data_loads_once(c: Rig) -> None:
    from mobipay.app.demo_rural import load_demo_rural

    first = await load_demo_rural(c)
    assert (first.agents, first.products) == (4, 3)
    assert (await load_demo_rural(c)).agents == 0  # loaded before: skipped
    found = await c.rural.locate(county="宁乡县")
    assert len(found) == 3 and all(a.super_id for a in found)
    assert await money(c, *(float_account(a.id) for a in found)) == [500_000] * 3
    assert len(await c.rural_market.browse(county="宁乡县")) == 3
