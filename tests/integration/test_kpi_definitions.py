"""The dashboard's KPIs by their definitions (docs/kpi.md), on both databases: one known
Shanghai day of activity made through the real services against the partner SIMULATORS
(bank, telcos, billers), and every figure asserted to the fen and the count — P2P
transfers counted, a top-up at the price paid (face value in GMV), a merchant payment less
its red envelope, cash-in and cash-out apart from payments, a settlement payout counted
nowhere, a failed order in the success rate — live, then folded, the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from mobipay.app.bootstrap import Container, build
from mobipay.bills.reference_data import shipped_billers
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.reporting import kpi, rollups
from mobipay.wallet.model import id_card_check_char, luhn_complete
from mobipay.wallet.service import Principal
from mobipay.wallet.tables import users
from tests.conftest import BANK_SECRET, BILLER_SECRET, TELCO_SECRET

DAY = date(2026, 11, 25)  # a Wednesday; 10:00 in Shanghai
MORNING = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
A, B, C = "+8613800138000", "+8613900139000", "+8618600186000"  # China Mobile, China Mobile, China Unicom
NEWCOMER = "+8615000150000"  # no wallet yet: a transfer to them waits for the claim
ID_NUMBER = "44030419900101001" + id_card_check_char("44030419900101001")
CARD = luhn_complete("621483" + "000055556666")  # a CMB debit card
PIN = "739154"


@pytest.fixture
async def c(db_url: str, tmp_path: Path, bank: str, telcos: dict[str, str], billers_url: str
            ) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank,  # type: ignore[call-arg]
                        bank_secret=BANK_SECRET, operator_billing_url=telcos["operator_billing"],
                        operator_billing_secret=TELCO_SECRET, aggregator_url=telcos["topup_aggregator"],
                        aggregator_secret=TELCO_SECRET, billers_url=billers_url, billers_secret=BILLER_SECRET,
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    container = build(settings, clock=ManualClock(MORNING - timedelta(days=1)))
    await container.ensure_system_accounts()
    await container.bills.import_billers(shipped_billers(), actor="test", reason="registry")
    yield container
    await container.close()


def _clock(c: Container) -> ManualClock:
    assert isinstance(c.clock, ManualClock)
    return c.clock


async def _subscriber(c: Container, msisdn: str, fund: int = 0, home: tuple[str, str] | None = None) -> Principal:
    user = await c.wallet.create_user(msisdn, actor="test", reason="kpi test")
    if home is not None:  # the number's home region, as the operator's subscriber records give it
        async with c.db.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user.id).values(home_province=home[0],
                                                                                 home_city=home[1]))
    if fund:  # an opening balance (not a cash-in: no order, so not in the fund figures)
        assert (await c.ledger.post(Transfer(f"seed:{msisdn}", (Leg.debit(BANK_SETTLEMENT, fund),
                                                                Leg.credit(user.account_code, fund)), "seed"))).ok
    await c.wallet.set_pin(msisdn, PIN)
    return Principal(user.id, "test", user.msisdn, user.account_code)


async def _sim(url: str, body: dict[str, object], method: str = "PUT") -> None:
    """Tell a SIMULATOR how to behave (or what it holds)."""
    async with httpx.AsyncClient() as client:
        (await client.request(method, url, json=body)).raise_for_status()


async def _known_day(c: Container, bank: str, telcos: dict[str, str]) -> dict[str, str]:
    """The day's activity; returns the merchant's and the shop's ids."""
    clock = _clock(c)
    a = await _subscriber(c, A, home=("湖南", "长沙"))
    b = await _subscriber(c, B, fund=50_000)
    cc = await _subscriber(c, C, fund=30_000, home=("广东", "深圳"))
    shop = await c.merchants.apply(name="当当网", credit_code="91350100M000100Y43", legal_person="李国", mcc="5942",
                                   contact="13800138000", website="", settlement_account="6222020000111122222")
    assert shop.state.value == "approved"
    assert (await c.ledger.post(Transfer("seed:shop", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                       Leg.credit(shop.account_code, 10_000)), "seed"))).ok
    # The day before: a sale (counted that day), settled and paid out on the known day.
    yesterday = await c.merchants.create_trade(shop, "Y-1", 3_000, "书")
    await c.merchants.pay(b, yesterday.id)

    clock.set(MORNING)
    await _sim(f"{bank}/sim/accounts", {"card_number": CARD, "name": "张明", "id_number": ID_NUMBER, "phone": A[3:],
                                        "balance": 1_000_000}, method="POST")
    card = await c.banking.bind_card(a, CARD, "张明", ID_NUMBER)
    assert (await c.banking.cash_in(a, card.id, 200_000, idempotency_key="in-1")).state.value == "succeeded"
    await _sim(f"{bank}/sim/behaviour", {"decline_rate": 1.0})
    declined = await c.banking.cash_in(a, card.id, 5_000, idempotency_key="in-2")
    assert declined.state.value == "failed"  # a failed cash-in: decided, not paid
    await _sim(f"{bank}/sim/behaviour", {"decline_rate": 0.0})

    await c.wallet.transfer(a, B, 5_000, idempotency_key="p2p-1")  # to a wallet
    await c.wallet.transfer(b, NEWCOMER, 1_000, idempotency_key="p2p-2")  # waits for the newcomer's claim
    await c.wallet.transfer(a, C, 20_001, idempotency_key="p2p-3", pin=PIN)
    topup = await c.topup.topup(a, A, 10_000, idempotency_key="tu-1")  # China Mobile 100 CNY: 1.5% off
    assert topup.state.value == "succeeded" and topup.details["price"] == 9_850
    await c.topup.topup(cc, C, 5_000, idempotency_key="tu-2")  # the aggregator, no discount
    await _sim(f"{telcos['topup_aggregator']}/sim/behaviour", {"decline_rate": 1.0})
    failed = await c.topup.topup(cc, C, 3_000, idempotency_key="tu-3")
    assert failed.state.value == "failed"  # a failed top-up: decided, not paid
    await _sim(f"{telcos['topup_aggregator']}/sim/behaviour", {"decline_rate": 0.0})
    bill = await c.bills.pay(b, "BUS_BJ", "12345678", 12_345, idempotency_key="bp-1")
    assert bill.state.value == "succeeded"

    campaign = await c.red_envelopes.create_campaign(shop, name="满50减10", rule="threshold", face=1_000,
                                                     min_spend=5_000, budget=3_000, actor="shop")
    coupon = await c.red_envelopes.claim(cc, campaign.id)
    trade = await c.merchants.create_trade(shop, "T-1", 6_000, "书")
    await c.merchants.pay(cc, trade.id, coupon_id=coupon.id)  # 10 CNY by the envelope, 50 CNY by the wallet
    unpaid = await c.merchants.create_trade(shop, "T-2", 2_000, "书", expire_minutes=5)
    clock.advance(3600)
    await c.merchants.close(shop, unpaid.out_trade_no)  # a trade closed unpaid: decided, not paid

    [settled] = await c.settlements.settle(DAY - timedelta(days=1))  # yesterday's 30 CNY to the shop's bank
    assert settled.state == "paid"
    await c.banking.cash_out(a, card.id, 10_000, idempotency_key="out-1", pin=PIN)
    clock.advance(3600)  # 12:00 in Shanghai
    return {"shop": shop.id}


def _expected(k: kpi.Kpis) -> None:
    """Every figure of the known day (window: the day so far)."""
    payments = {v.key: (v.count, v.amount, v.gmv) for v in k.by_product}
    assert payments == {
        "p2p": (3, 5_000 + 1_000 + 20_001, 0),  # transfers sell nothing
        "merchant": (1, 5_000, 6_000),  # the payer paid 50 CNY, the shop sold 60 CNY
        "topup": (2, 9_850 + 5_000, 10_000 + 5_000),  # at the price paid; GMV at face value
        "bill": (1, 12_345, 12_345),
    }
    assert (k.total.count, k.total.amount, k.total.gmv) == (7, 58_196, 33_345)
    funds = {v.key: (v.count, v.amount) for v in k.funds}
    assert funds == {"cash_in": (1, 200_000), "cash_out": (1, 10_000)}  # the payout is counted nowhere
    assert (k.daily_active_users, k.monthly_active_users) == (3, 3)  # A, B, C: not the newcomer, not the shop
    assert (k.registered_users, k.new_users) == (3, 0)  # the wallets opened the day before
    assert (k.merchants_approved, k.merchants_total) == (1, 1)
    assert {(v.key, v.count, v.amount) for v in k.by_province} == {
        ("湖南", 3, 5_000 + 20_001 + 9_850),  # A's transfers and top-up, at A's home
        ("广东", 2, 5_000 + 5_000),  # C's top-up and trade
        ("北京", 1, 12_345),  # the bill, where the biller is
        ("-", 1, 1_000),  # B's transfer: B's home is not known
    }
    assert [(v.parent, v.key) for v in k.by_city][:1] == [("湖南", "长沙")]
    assert {(v.parent, v.key) for v in k.by_city} == {("湖南", "长沙"), ("广东", "深圳"), ("北京", "北京"), ("-", "-")}
    assert k.outcomes == {"bill": (1, 1), "cash_in": (1, 2), "cash_out": (1, 1), "merchant": (1, 2),
                          "settlement": (1, 1), "topup": (2, 3)}
    assert k.success_rates["topup"] == pytest.approx(2 / 3) and k.success_rates["merchant"] == 0.5
    assert k.success_rate == pytest.approx(4 / 6)  # payments only: bill 1/1, merchant 1/2, top-up 2/3
    [day] = k.by_day
    assert (day.day, day.count, day.amount, day.gmv, day.active_users) == ("2026-11-25", 7, 58_196, 33_345, 3)
    assert k.trend == {"p2p": [26_001], "topup": [14_850], "bill": [12_345], "merchant": [5_000]}


async def test_a_known_day_counts_every_kpi_by_its_definition(c: Container, bank: str,
                                                               telcos: dict[str, str]) -> None:
    await _known_day(c, bank, telcos)
    since, until = kpi.window(c.clock.now(), 1)
    assert since == rollups.day_start(DAY)
    live = await kpi.dashboard(c, since, until)
    _expected(live)
    assert live == await kpi.dashboard_direct(c, since, until)
    yesterday = await kpi.dashboard(c, rollups.day_start(DAY - timedelta(days=1)), since)
    assert [(v.key, v.count, v.amount) for v in yesterday.by_product] == [("merchant", 1, 3_000)]
    assert yesterday.funds == []

    # The next morning the worker folds the day: the same figures from the rollups.
    _clock(c).set(MORNING + timedelta(days=1))
    assert await rollups.fold(c.db, c.clock, c.ledger) >= 2
    async with c.db.begin() as conn:
        assert await rollups.folded_until(conn) == DAY + timedelta(days=1)
    folded = await kpi.dashboard(c, since, rollups.day_start(DAY + timedelta(days=1)))
    _expected(folded)
    assert folded == await kpi.dashboard_direct(c, since, rollups.day_start(DAY + timedelta(days=1)))
    week = await kpi.dashboard(c, *kpi.window(c.clock.now(), 7))
    assert [d.day for d in week.by_day][-2:] == ["2026-11-25", "2026-11-26"] and len(week.by_day) == 7
    assert (week.total.count, week.total.amount) == (8, 58_196 + 3_000)
    assert (week.daily_active_users, week.monthly_active_users) == (0, 3)  # nobody paid yet today
    assert week == await kpi.dashboard_direct(c, *kpi.window(c.clock.now(), 7))
