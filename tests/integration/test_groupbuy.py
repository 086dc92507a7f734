"""The group-buy community on SQLite and PostgreSQL: stock never oversold under concurrent
buyers, money in escrow until a shop consumes, the merchant paid after the reversal window,
group thresholds met and missed, 随时退 and 过期自动退, consuming twice, partially and
reversing, and guessed codes locking the shop. Every balance and the escrow asserted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mobipay.groupbuy.model import DealTerms
from mobipay.groupbuy.service import Deal, GroupBuy, escrow_account, keys_from_secret
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.settlement import Settlements
from mobipay.merchants.signing import new_rsa_key
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Clerk:
    merchant_id: str
    name: str


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def community(db: Database, ledger: Ledger, clock: ManualClock) -> GroupBuy:
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"t")
    merchants = MerchantService(uow, wallet, new_rsa_key()[0], categories())
    return GroupBuy(uow, merchants, wallet, keys_from_secret("", "test-secret"))


@pytest.fixture
async def gb(db: Database, ledger: Ledger, clock: ManualClock) -> GroupBuy:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    return community(db, ledger, clock)


SHOPS = iter(range(100, 999))


async def shop(gb: GroupBuy) -> tuple[Merchant, str, Clerk]:
    body = f"91110000M000{next(SHOPS):03d}Y4"
    m = await gb.merchants.apply(name="海底捞火锅", credit_code=body + credit_code_check_char(body),
                                 legal_person="张勇", mcc="5812", contact="13800138000", website="",
                                 settlement_account="6222020000111122222")
    store = await gb.merchants.add_store(m, "海底捞 王府井店", "王府井大街 88 号", "北京")
    return m, store, Clerk(m.id, "前台小王")


def terms(**over: Any) -> DealTerms:
    base: dict[str, Any] = dict(
        title="双人火锅套餐", city="北京", category="food", price=5_900, market_price=16_800, stock=10,
        sale_start=START - timedelta(hours=1), sale_end=START + timedelta(days=7), per_user_limit=5,
        valid_from=START - timedelta(hours=1), valid_until=START + timedelta(days=30), lat=39.91, lon=116.41)
    return DealTerms(**(base | over))


async def buyer(gb: GroupBuy, msisdn: str, balance: int = 100_000) -> Principal:
    user = await gb.wallet.create_user(msisdn, actor="t", reason="t")
    assert (await gb.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                             Leg.credit(user.account_code, balance)), "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def money(gb: GroupBuy, *codes: str) -> list[int]:
    accounts = await gb.uow.ledger.accounts(list(codes))
    return [accounts[c].balance for c in codes]


async def sms(db: Database, template: str) -> list[dict[str, Any]]:
    async with db.begin() as conn:
        from sqlalchemy import select
        rows = (await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send"))).scalars().all()
    import json
    out = [json.loads(r) if isinstance(r, str) else r for r in rows]
    return [p for p in out if p["template"] == template]


async def open_deal(gb: GroupBuy, **over: Any) -> tuple[Merchant, str, Clerk, Deal]:
    m, store, clerk = await shop(gb)
    return m, store, clerk, await gb.open_deal(m.id, terms(**over), [store])


async def test_buy_consume_partially_twice_reverse_and_settle(gb: GroupBuy, db: Database, clock: ManualClock,
                                                               tmp_path: Path) -> None:
    m, store, clerk, deal = await open_deal(gb)
    me = await buyer(gb, "+8613900139000")
    order = await gb.buy(me, deal.id, 3, idempotency_key="k1")
    escrow = escrow_account(deal.id)
    assert await money(gb, me.account_code, escrow, m.account_code) == [100_000 - 17_700, 17_700, 0]
    again = await gb.buy(me, deal.id, 3, idempotency_key="k1")
    assert again.replayed and again.id == order.id
    assert await refused(gb.buy(me, deal.id, 2, idempotency_key="k1")) == "IDEMPOTENCY_CONFLICT"
    assert await money(gb, me.account_code) == [100_000 - 17_700]  # the replay charged nothing
    codes = [v.code for v in order.vouchers]
    assert len(codes) == 3 and all(len(c) == 12 and c.isdigit() for c in codes) and len(set(codes)) == 3
    [text] = await sms(db, "groupbuy.vouchers")
    assert all(c in text["params"]["codes"] for c in codes)
    # the codes are nowhere in the database, only their keyed hashes
    async with db.begin() as conn:
        from sqlalchemy import text as sql
        dump = " ".join(str(r) for r in (await conn.execute(sql("SELECT * FROM groupbuy_vouchers"))).all())
    assert not any(c in dump for c in codes)

    seen = await gb.prepare(clerk, store, codes[1])
    assert (seen.count, seen.usable, seen.title, seen.price) == (3, True, "双人火锅套餐", 5_900)
    used = await gb.consume(clerk, store, codes[1], 2, request_id="req-1")  # two of the three: partial use
    assert (used.count, used.amount, used.left, used.state) == (2, 11_800, 1, "consumed")
    assert any(c.endswith(codes[1][-4:]) for c in used.codes)  # the typed code is one of them
    assert (await gb.consume(clerk, store, codes[1], 2, request_id="req-1")).replayed  # the same request id
    assert await refused(gb.consume(clerk, store, codes[0], 1, request_id="req-1")) == "CONSUME_REQUEST_CONFLICT"
    assert await refused(gb.consume(clerk, store, codes[1], 1, request_id="req-2")) == "VOUCHER_NOT_USABLE"  # twice
    last = next(c for c in codes if not any(u.endswith(c[-4:]) for u in used.codes))
    assert await refused(gb.consume(clerk, store, last, 2, request_id="req-3")) == "VOUCHER_COUNT_EXCEEDS_LEFT"
    twice = await gb.prepare(clerk, store, codes[1])
    assert (twice.state, twice.usable, twice.count, twice.left) == ("consumed", False, 0, 1)
    # money waits in escrow while the consumption may be reversed
    assert await money(gb, escrow, m.account_code) == [17_700, 0]
    assert await gb.settle_consumed() == 0
    back = await gb.reverse(clerk, used.id)
    assert back.state == "reversed" and (await gb.prepare(clerk, store, codes[1])).count == 3
    assert (await gb.reverse(clerk, used.id)).state == "reversed"  # a second press: the same reversal
    final = await gb.consume(clerk, store, codes[1], 2, request_id="req-4")
    clock.advance(61 * 60)
    assert await refused(gb.reverse(clerk, final.id)) == "CONSUMPTION_NOT_REVERSIBLE"
    assert await gb.settle_consumed() == 1
    assert await gb.settle_consumed() == 0
    assert await money(gb, escrow, m.account_code) == [5_900, 11_800]  # paid on consumption, not on sale
    trade = await gb.merchants.trade_by_out_no(m, f"gb-{final.id}")
    assert (trade.state.value, trade.amount) == ("TRADE_SUCCESS", 11_800)  # in the merchant's T+1 settlement
    day = clock.now().astimezone(SHANGHAI).date()
    payouts = BankPayouts("http://127.0.0.1:9", b"unused")  # the T+1 run's day lines only: no payout here
    try:
        settlements = Settlements(gb.uow, OrderBook(gb.uow, tmp_path), payouts, tmp_path)
        paid, _ = await settlements.day_lines(m.id, day)
        assert [(t.out_trade_no, t.amount) for t in paid] == [(f"gb-{final.id}", 11_800)]
    finally:
        await payouts.close()
    assert [h.state for h in await gb.history(clerk, day)] == ["reversed", "settled"]
    spend = await gb.daily_spend(day)
    assert (spend.orders, spend.vouchers, spend.amount, spend.consumed) == (1, 3, 17_700, 11_800)
    assert (await gb.uow.ledger.verify()).ok


async def test_refund_any_time_and_at_expiry(gb: GroupBuy, clock: ManualClock) -> None:
    m, store, clerk, deal = await open_deal(gb, valid_until=START + timedelta(days=8))
    a, b = await buyer(gb, "+8613900139001"), await buyer(gb, "+8613900139002")
    oa = await gb.buy(a, deal.id, 2, idempotency_key="a")
    ob = await gb.buy(b, deal.id, 2, idempotency_key="b")
    escrow = escrow_account(deal.id)
    done = await gb.refund(a, oa.id, 1, idempotency_key="r1")  # 随时退
    assert (done.count, done.amount) == (1, 5_900)
    assert (await gb.refund(a, oa.id, 1, idempotency_key="r1")).replayed
    assert await refused(gb.refund(b, oa.id, 1, idempotency_key="x")) == "GROUPBUY_ORDER_NOT_FOUND"  # not b's
    await gb.consume(clerk, store, ob.vouchers[0].code, 1, request_id="shop-1")
    assert await refused(gb.refund(b, ob.id, 2, idempotency_key="r2")) == "VOUCHER_REFUND_NOT_ALLOWED"  # one used
    assert await money(gb, a.account_code, b.account_code, escrow) == [100_000 - 5_900, 100_000 - 11_800, 17_700]
    assert await gb.refund_expired() == 0  # still valid
    clock.advance(8 * 86_400 + 1)
    assert await refused(gb.consume(clerk, store, ob.vouchers[1].code, 1, request_id="late")) == "VOUCHER_NOT_USABLE"
    assert await gb.refund_expired() == 2  # 过期自动退: a's last one and b's unused one
    assert await gb.refund_expired() == 0
    assert await money(gb, a.account_code, b.account_code) == [100_000, 100_000 - 5_900]
    await gb.settle_consumed()
    assert await money(gb, escrow, m.account_code) == [0, 5_900]
    assert (await gb.uow.ledger.verify()).ok


async def test_no_refund_promise(gb: GroupBuy) -> None:
    _, _, _, deal = await open_deal(gb, refund_anytime=False)
    me = await buyer(gb, "+8613900139003")
    order = await gb.buy(me, deal.id, 1, idempotency_key="n")
    assert await refused(gb.refund(me, order.id, None, idempotency_key="r")) == "VOUCHER_REFUND_NOT_ALLOWED"
    assert await money(gb, escrow_account(deal.id)) == [5_900]


async def test_group_threshold_met_and_missed(gb: GroupBuy, clock: ManualClock) -> None:
    m, store, clerk = await shop(gb)
    deadline = START + timedelta(days=1)
    met = await gb.open_deal(m.id, terms(title="三人成团 烤鸭", group_min=3, group_deadline=deadline), [store])
    missed = await gb.open_deal(m.id, terms(title="五人成团 涮肉", group_min=5, group_deadline=deadline), [store])
    people = [await buyer(gb, f"+861390013901{n}") for n in range(4)]
    bought_met = [await gb.buy(p, met.id, 1, idempotency_key="g") for p in people[:2]]
    assert await refused(gb.consume(clerk, store, bought_met[0].vouchers[0].code, 1,
                                    request_id="early")) == "VOUCHER_NOT_USABLE"  # not formed yet
    await gb.buy(people[2], met.id, 1, idempotency_key="g")
    assert (await gb.deal(met.id)).group_state.value == "formed"  # formed at the third buyer
    await gb.consume(clerk, store, bought_met[0].vouchers[0].code, 1, request_id="formed")
    for p in people:
        await gb.buy(p, missed.id, 2, idempotency_key="m")
    assert await money(gb, escrow_account(missed.id)) == [4 * 11_800]
    assert await gb.decide_groups() == 0  # before the deadline nothing moves
    clock.advance(86_400)
    assert await gb.decide_groups() == 8  # four buyers, two vouchers each, refunded in full
    assert (await gb.deal(missed.id)).group_state.value == "failed"
    assert await money(gb, escrow_account(missed.id), escrow_account(met.id)) == [0, 3 * 5_900]
    assert await money(gb, *(p.account_code for p in people)) == [100_000 - 5_900] * 3 + [100_000]
    assert await refused(gb.buy(people[3], missed.id, 1, idempotency_key="late")) == "DEAL_NOT_ON_SALE"
    assert await gb.decide_groups() == 0
    assert (await gb.uow.ledger.verify()).ok


async def test_guessed_codes_lock_the_store(gb: GroupBuy, clock: ManualClock) -> None:
    _, store, clerk, deal = await open_deal(gb)
    me = await buyer(gb, "+8613900139020")
    order = await gb.buy(me, deal.id, 1, idempotency_key="k")
    real = order.vouchers[0].code
    guess = str((int(real) + 1) % 10**12).zfill(12)
    assert await refused(gb.prepare(clerk, store, "12345")) == "VOUCHER_CODE_INVALID"
    for n in range(9):
        assert await refused(gb.consume(clerk, store, guess, 1, request_id=f"g{n}")) == "VOUCHER_CODE_UNKNOWN"
    assert await refused(gb.prepare(clerk, store, guess)) == "VOUCHER_GUESSING_LOCKED"  # the tenth wrong code
    assert await refused(gb.prepare(clerk, store, real)) == "VOUCHER_GUESSING_LOCKED"  # even a right one now
    # another merchant's clerk cannot see the voucher either: it looks like a wrong code
    _, other_store, other_clerk = await shop(gb)
    assert await refused(gb.prepare(other_clerk, other_store, real)) == "VOUCHER_CODE_UNKNOWN"
    assert await money(gb, escrow_account(deal.id), me.account_code) == [5_900, 100_000 - 5_900]
    clock.advance(31 * 60)
    assert (await gb.prepare(clerk, store, real)).usable
    async with gb.uow.db.begin() as conn:
        from sqlalchemy import text
        actions = (await conn.execute(text("SELECT action FROM audit_log"))).scalars().all()
    assert "groupbuy.code_guessing_locked" in actions


async def test_sold_out_and_limits(gb: GroupBuy) -> None:
    _, _, _, deal = await open_deal(gb, stock=3, per_user_limit=2)
    a, b = await buyer(gb, "+8613900139030"), await buyer(gb, "+8613900139031")
    await gb.buy(a, deal.id, 2, idempotency_key="1")
    assert await refused(gb.buy(a, deal.id, 1, idempotency_key="2")) == "DEAL_PER_USER_LIMIT"
    assert await refused(gb.buy(b, deal.id, 2, idempotency_key="1")) == "SOLD_OUT"
    await gb.buy(b, deal.id, 1, idempotency_key="3")
    assert await refused(gb.buy(b, deal.id, 1, idempotency_key="4")) == "SOLD_OUT"
    poor = await buyer(gb, "+8613900139032", balance=100)
    assert await refused(gb.buy(poor, deal.id, 1, idempotency_key="5")) == "SOLD_OUT"
    assert await money(gb, escrow_account(deal.id), a.account_code, b.account_code, poor.account_code) == [
        17_700, 100_000 - 11_800, 100_000 - 5_900, 100]
    assert (await gb.deal(deal.id)).stock_left == 0


async def test_stock_never_oversold_under_concurrency(db_url: str, clock: ManualClock) -> None:
    """1,000 vouchers (50 on SQLite) and half as many again asked for at once, by buyers each
    pressing several times: exactly the stock sold, every refusal SOLD_OUT, the books add up."""
    postgres = db_url.startswith("postgresql")
    stock, people, presses = (1_000, 300, 5) if postgres else (50, 15, 5)
    db = Database(db_url, pool_size=20)
    ledger = Ledger(db, clock)
    try:
        await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
        gb = community(db, ledger, clock)
        m, store, _ = await shop(gb)
        deal = await gb.open_deal(m.id, terms(stock=stock, price=1_000, market_price=2_000), [store])
        buyers = []
        for n in range(people):
            buyers.append(await buyer(gb, f"+86139{n:08d}", balance=10_000))
        gate = asyncio.Semaphore(60)  # 60 in flight on 40 connections: the pool's 30 s wait never ends a press

        async def press(p: Principal, k: int) -> Any:
            async with gate:
                return await gb.buy(p, deal.id, 1, idempotency_key=f"press-{k}")

        results = await asyncio.gather(*(press(p, k) for p in buyers for k in range(presses)), return_exceptions=True)
        sold = [r for r in results if not isinstance(r, BaseException)]
        codes = {r.code for r in results if isinstance(r, MobipayError)}
        others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, MobipayError)]
        assert not others, others[:3]
        assert len(sold) == stock and codes == {"SOLD_OUT"}, (len(sold), codes)
        assert (await gb.deal(deal.id)).stock_left == 0
        balances = await money(gb, escrow_account(deal.id), *(p.account_code for p in buyers))
        assert balances[0] == stock * 1_000
        assert sum(balances[1:]) == people * 10_000 - stock * 1_000
        # one buyer pressing many times at once on a deal with a limit of 2 per person gets 2
        limited = await gb.open_deal(m.id, terms(stock=100, price=1_000, market_price=2_000, per_user_limit=2), [store])
        presses_of_one = await asyncio.gather(*(gb.buy(buyers[0], limited.id, 1, idempotency_key=f"one-{k}")
                                                for k in range(8)), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in presses_of_one) == 2, presses_of_one
        assert {r.code for r in presses_of_one if isinstance(r, MobipayError)} == {"DEAL_PER_USER_LIMIT"}
        assert (await ledger.verify()).ok
    finally:
        await ledger.stop()
        await db.dispose()
