"""The red-envelope zone on SQLite and PostgreSQL: a campaign's budget moves out of the
merchant's payable, concurrent claims never overdraw it, an envelope pays part of a
checkout (the wallet the rest), refunds return only cash, unused envelopes expire back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.merchants.redenvelopes import RedEnvelopes
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.signing import new_rsa_key
from mobipay.platform.db import Database
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))


@pytest.fixture
async def zone(db: Database, ledger: Ledger, clock: ManualClock, tmp_path: Path) -> RedEnvelopes:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    merchants = MerchantService(uow, WalletService(uow, number_segments(), b"t"), new_rsa_key()[0], categories())
    zone = RedEnvelopes(merchants, uow)
    merchants.coupons = zone
    return zone


async def shop(zone: RedEnvelopes, funds: int) -> Merchant:
    m = await zone.merchants.apply(name="当当网", credit_code="91350100M000100Y43", legal_person="李国", mcc="5942",
                                   contact="13800138000", website="", settlement_account="6222020000111122222")
    assert (await zone.uow.ledger.post(Transfer("seed", (Leg.debit(BANK_SETTLEMENT, funds),
                                                         Leg.credit(m.account_code, funds)), "seed"))).ok
    return m


async def buyer(zone: RedEnvelopes, msisdn: str, balance: int = 10_000) -> Principal:
    user = await zone.merchants.wallet.create_user(msisdn, actor="t", reason="t")
    assert (await zone.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                               Leg.credit(user.account_code, balance)), "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def money(zone: RedEnvelopes, *codes: str) -> list[int]:
    accounts = await zone.uow.ledger.accounts(list(codes))
    return [accounts[c].balance for c in codes]


async def test_budget_never_overdrawn_under_concurrent_claims(zone: RedEnvelopes) -> None:
    m = await shop(zone, 10_000)
    campaign = await zone.create_campaign(m, name="双十一", rule="new_user", face=1_000, min_spend=5_000,
                                          budget=2_000, actor="shop")
    assert await money(zone, m.account_code, f"liability:campaign:{campaign.id}") == [8_000, 2_000]
    people = [await buyer(zone, f"+861390013900{n}") for n in range(5)]
    results = await asyncio.gather(*(zone.claim(p, campaign.id) for p in people), return_exceptions=True)
    issued = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r.code for r in results if isinstance(r, MobipayError)]
    assert len(issued) == 2 and refusals == ["BUDGET_EXHAUSTED"] * 3, results
    assert await money(zone, f"liability:campaign:{campaign.id}", f"liability:campaign_issued:{campaign.id}") == [
        0, 2_000]
    assert (await zone.claim(people[[isinstance(r, BaseException) for r in results].index(False)],
                             campaign.id)).id in {c.id for c in issued}  # one each: the same one again
    assert await refused(zone.create_campaign(m, name="x", rule="bogus", face=1, min_spend=1, budget=1,
                                              actor="shop")) == "VALIDATION_FAILED"
    assert await refused(zone.create_campaign(m, name="x", rule="threshold", face=100, min_spend=100,
                                              budget=999_999, actor="shop")) == "INSUFFICIENT_FUNDS"
    assert (await zone.uow.ledger.verify()).ok


async def test_checkout_with_an_envelope_refunds_and_expiry(zone: RedEnvelopes, clock: ManualClock) -> None:
    m = await shop(zone, 10_000)
    campaign = await zone.create_campaign(m, name="满50减10", rule="threshold", face=1_000, min_spend=5_000,
                                          budget=3_000, valid_days=7, actor="shop")
    me = await buyer(zone, "+8613900139000")
    coupon = await zone.claim(me, campaign.id)
    small = await zone.merchants.create_trade(m, "T-small", 4_000, "书")
    assert await refused(zone.merchants.pay(me, small.id, coupon_id=coupon.id)) == "COUPON_NOT_USABLE"
    trade = await zone.merchants.create_trade(m, "T-1", 6_000, "书")
    paid = await zone.merchants.pay(me, trade.id, coupon_id=coupon.id)
    assert paid.state.value == "TRADE_SUCCESS"
    assert await money(zone, me.account_code, m.account_code) == [10_000 - 5_000, 7_000 + 6_000]
    other = await zone.merchants.create_trade(m, "T-2", 6_000, "书")
    assert await refused(zone.merchants.pay(me, other.id, coupon_id=coupon.id)) == "COUPON_NOT_USABLE"  # used
    # refunds give back cash only: 50 CNY paid by wallet, the envelope is not cash
    assert await refused(zone.merchants.refund(m, "T-1", "R1", 5_001)) == "REFUND_EXCEEDS_PAID"
    await zone.merchants.refund(m, "T-1", "R2", 5_000)
    assert (await money(zone, me.account_code))[0] == 10_000
    # an envelope nobody uses goes back to the merchant when it expires
    late = await buyer(zone, "+8613900139001")
    await zone.claim(late, campaign.id)
    clock.advance(8 * 24 * 3600)
    assert await zone.expire_due() == 1
    assert await money(zone, f"liability:campaign_issued:{campaign.id}") == [0]
    assert [c.state for c in await zone.mine(late)] == ["expired"]
    assert (await zone.uow.ledger.verify()).ok


async def test_zone_listing(zone: RedEnvelopes) -> None:
    m = await shop(zone, 10_000)
    c = await zone.create_campaign(m, name="满100减20", rule="brand", face=2_000, min_spend=10_000, budget=6_000,
                                   actor="shop")
    [(merchant_id, name, campaign, left)] = await zone.zone()
    assert (merchant_id, name, campaign.id, left) == (m.id, "当当网", c.id, 3)


async def test_concurrent_refunds_and_expired_orders(zone: RedEnvelopes, clock: ManualClock) -> None:
    merchants = zone.merchants
    m = await shop(zone, 1)
    me = await buyer(zone, "+8613900139000")
    trade = await merchants.create_trade(m, "C-1", 6_000, "书")
    await merchants.pay(me, trade.id)
    results = await asyncio.gather(merchants.refund(m, "C-1", "R-a", 4_000), merchants.refund(m, "C-1", "R-b", 4_000),
                                   return_exceptions=True)
    codes = sorted(r.code if isinstance(r, MobipayError) else "ok" for r in results)
    assert codes == ["REFUND_EXCEEDS_PAID", "ok"], results
    same = await asyncio.gather(merchants.refund(m, "C-1", "R-c", 1_000), merchants.refund(m, "C-1", "R-c", 1_000))
    assert sorted(r[2] for r in same) == [False, True]  # one refund, one replay
    assert (await money(zone, me.account_code))[0] == 10_000 - 6_000 + 5_000
    late = await merchants.create_trade(m, "C-2", 100, "书", expire_minutes=5)
    clock.advance(301)
    assert await refused(merchants.pay(me, late.id)) == "TRADE_STATE_INVALID"
    closed = await merchants.create_trade(m, "C-3", 100, "书")
    await merchants.close(m, "C-3")
    assert await refused(merchants.pay(me, closed.id)) == "TRADE_STATE_INVALID"
    assert (await zone.uow.ledger.verify()).ok


async def sms(zone: RedEnvelopes, to: str) -> list[tuple[str, dict[str, Any]]]:
    """The SMS the outbox holds for ``to``: (template, params), oldest first."""
    import json

    from sqlalchemy import text

    async with zone.uow.db.begin() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                        "ORDER BY created_at, id"))).scalars().all()
    return [(p["template"], p["params"]) for p in (json.loads(r) for r in rows) if p["to"] == to]


async def notifications(zone: RedEnvelopes) -> list[dict[str, Any]]:
    import json

    from sqlalchemy import select

    from mobipay.merchants.tables import notifications as table

    async with zone.uow.db.begin() as conn:
        rows = (await conn.execute(select(table.c.payload).order_by(table.c.created_at, table.c.id))).scalars()
        return [json.loads(r) for r in rows]


async def test_the_envelope_share_and_refunds_are_told(zone: RedEnvelopes) -> None:
    """The red envelope's share of a payment is in the buyer's SMS, the trade and the merchant's
    notification; a refund reaches the buyer by SMS and the merchant's notification with the
    refund request number and amount."""
    m = await shop(zone, 10_000)
    campaign = await zone.create_campaign(m, name="满50减10", rule="threshold", face=1_000, min_spend=5_000,
                                          budget=3_000, actor="shop")
    me = await buyer(zone, "+8613900139000")
    coupon = await zone.claim(me, campaign.id)
    trade = await zone.merchants.create_trade(m, "N-1", 6_000, "书", notify_url="https://shop.example/notify")
    paid = await zone.merchants.pay(me, trade.id, coupon_id=coupon.id)
    assert (paid.amount, paid.red_envelope) == (6_000, 1_000)
    assert ("merchant.paid_with_envelope", {"merchant": "当当网", "amount_fen": 6_000, "envelope_fen": 1_000,
                                            "paid_fen": 5_000}) in await sms(zone, me.msisdn)
    from mobipay.channels.sms.texts import render

    assert "红包抵扣10.00元，钱包付50.00元" in render("merchant.paid_with_envelope", {
        "merchant": "当当网", "amount_fen": 6_000, "envelope_fen": 1_000, "paid_fen": 5_000})
    _, refund_amount, _ = await zone.merchants.refund(m, "N-1", "RF-7", 2_000)
    assert refund_amount == 2_000
    assert await money(zone, me.account_code, m.account_code) == [10_000 - 5_000 + 2_000, 7_000 + 6_000 - 2_000]
    assert ("merchant.refunded", {"merchant": "当当网", "amount_fen": 2_000, "out_request_no": "RF-7"}) in (
        await sms(zone, me.msisdn))
    sent = await notifications(zone)
    assert [(n["trade_status"], n["total_amount"], n["buyer_pay_amount"], n["red_envelope_amount"],
             n["refunded_amount"], n.get("out_request_no"), n.get("refund_amount")) for n in sent] == [
        ("TRADE_SUCCESS", 6000, 5000, 1000, 0, None, None),
        ("TRADE_SUCCESS", 6000, 5000, 1000, 2000, "RF-7", 2000)]
    await zone.merchants.refund(m, "N-1", "RF-7", 2_000)  # the same request again: nothing twice
    assert len([t for t, _ in await sms(zone, me.msisdn) if t == "merchant.refunded"]) == 1
    assert (await zone.uow.ledger.verify()).ok


async def test_money_moved_by_an_operator_is_told(zone: RedEnvelopes) -> None:
    """A reversal approved by a second operator, a freeze and an unfreeze: each subscriber
    touched gets an SMS from the same transaction."""
    from mobipay.backoffice.operators import Operator
    from mobipay.backoffice.reversals import Reversals

    wallet = zone.merchants.wallet
    alice, bob = await buyer(zone, "+8613800138000"), await buyer(zone, "+8613900139000", balance=1)
    await wallet.transfer(alice, bob.msisdn, 2_500, idempotency_key="oops")
    reversals = Reversals(zone.uow)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    olga = Operator("op1", "olga", frozenset({"operations"}), False, now)
    fred = Operator("op2", "fred", frozenset({"finance"}), False, now)
    asked = await reversals.request(olga, f"p2p:{alice.user_id}:oops", reason="wrong number")
    assert await sms(zone, alice.msisdn) == []  # nothing moved yet, nothing said
    await reversals.approve(fred, asked.id, reason="checked")
    assert await money(zone, alice.account_code, bob.account_code) == [10_000, 1]
    assert [t for t, _ in await sms(zone, alice.msisdn)] == ["reversal.in"]
    assert [(t, p["amount_fen"]) for t, p in await sms(zone, bob.msisdn)] == [("p2p.received", 2_500),
                                                                              ("reversal.out", 2_500)]

    await wallet.set_frozen(alice.msisdn, True, actor="risk", reason="stolen phone")
    await wallet.set_frozen(alice.msisdn, True, actor="risk", reason="again")  # already frozen: nothing new
    await wallet.set_frozen(alice.msisdn, False, actor="risk", reason="found")
    assert [(t, p) for t, p in await sms(zone, alice.msisdn)][1:] == [
        ("wallet.frozen", {"balance_fen": 10_000}), ("wallet.unfrozen", {"balance_fen": 10_000})]
    assert await money(zone, alice.account_code) == [10_000]
    assert (await zone.uow.ledger.verify()).ok
