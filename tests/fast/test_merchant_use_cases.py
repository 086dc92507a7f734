"""The merchants' trade use cases on the in-memory stores and ledger: onboarding by rule, a
trade created once per out_trade_no, paid once however often "pay" is pressed, refunded
once per request number and never past the cash paid, the daily limit, notifications;
every balance asserted, no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mobipay.kernel.errors import IdempotencyConflict
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.merchants import errors
from mobipay.merchants.model import MerchantState, TradeState
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.signing import new_rsa_key
from mobipay.wallet.model import Principal
from mobipay.wallet.service import WalletService
from tests.support.memory import MemoryRunner

BUYER = "+8613800138000"


@pytest.fixture
def merchants(runner: MemoryRunner, wallet: WalletService) -> MerchantService:
    return MerchantService(runner, wallet, new_rsa_key()[0], categories(), store=runner.merchant_stores)


async def book_shop(merchants: MerchantService) -> Merchant:
    return await merchants.apply(name="当当网", credit_code="91350100M000100Y43", legal_person="李国",
                                 contact="13900139000", mcc="5942", website="https://shop.example.com",
                                 settlement_account="6222020200112233")


async def buyer(merchants: MerchantService, runner: MemoryRunner, cash_in: int) -> Principal:
    user = await merchants.wallet.create_user(BUYER, actor="test", reason="a buyer")
    runner.ledger.post([Transfer("cashin", (Leg.debit(BANK_SETTLEMENT, cash_in), Leg.credit(user.account_code,
                                                                                            cash_in)), "cash_in")],
                       runner.clock.now())
    return Principal(user.id, "test", user.msisdn, user.account_code)


async def test_a_low_risk_shop_is_approved_by_rule_once(merchants: MerchantService, runner: MemoryRunner) -> None:
    shop = await book_shop(merchants)
    assert shop.state is MerchantState.APPROVED and runner.audits[-1]["action"] == "merchant.apply"
    assert runner.ledger.balance(shop.account_code) == 0
    with pytest.raises(errors.InvalidMerchantField, match="credit code exists"):
        await book_shop(merchants)
    assert [m.id for m in await merchants.find(q="当当")] == [shop.id]


async def test_a_trade_is_paid_once_and_refunded_once(merchants: MerchantService, runner: MemoryRunner) -> None:
    shop = await book_shop(merchants)
    me = await buyer(merchants, runner, 10_000)
    trade = await merchants.create_trade(shop, "order-1", 6_000, "两本书", notify_url="")
    assert (await merchants.create_trade(shop, "order-1", 6_000, "两本书")).id == trade.id  # the same again
    with pytest.raises(errors.TradeExists):
        await merchants.create_trade(shop, "order-1", 6_100, "两本书")

    paid = await merchants.pay(me, trade.id)
    again = await merchants.pay(me, trade.id)
    assert paid.state is again.state is TradeState.TRADE_SUCCESS
    assert (runner.ledger.balance(me.account_code), runner.ledger.balance(shop.account_code)) == (4_000, 6_000)

    _, refunded, replayed = await merchants.refund(shop, "order-1", "r1", 2_000)
    assert (refunded, replayed) == (2_000, False)
    assert (await merchants.refund(shop, "order-1", "r1", 2_000))[2]  # replayed, nothing moved twice
    with pytest.raises(IdempotencyConflict):
        await merchants.refund(shop, "order-1", "r1", 2_500)
    with pytest.raises(errors.RefundExceedsPaid):
        await merchants.refund(shop, "order-1", "r2", 4_001)
    assert (runner.ledger.balance(me.account_code), runner.ledger.balance(shop.account_code)) == (6_000, 4_000)
    closed, _, _ = await merchants.refund(shop, "order-1", "r2", 4_000)
    assert closed.state is TradeState.TRADE_CLOSED and closed.refunded == 6_000
    assert runner.ledger.balance(shop.account_code) == 0


async def test_past_the_daily_limit_nothing_moves(merchants: MerchantService, runner: MemoryRunner) -> None:
    shop = await book_shop(merchants)
    me = await buyer(merchants, runner, 10_000)
    file = runner.merchant_store.merchants[shop.id]
    runner.merchant_store.merchants[shop.id] = replace(file, daily_limit=5_000)
    first = await merchants.create_trade(shop, "a", 3_000, "书")
    second = await merchants.create_trade(shop, "b", 3_000, "书")
    await merchants.pay(me, first.id)
    with pytest.raises(errors.MerchantLimitExceeded, match=r"20\.00 CNY left today"):
        await merchants.pay(me, second.id)
    assert (runner.ledger.balance(me.account_code), runner.ledger.balance(shop.account_code)) == (7_000, 3_000)
    assert runner.merchant_store.trades[second.id].state is TradeState.WAIT_BUYER_PAY


async def test_the_merchant_is_notified_of_payment_and_refund(merchants: MerchantService,
                                                              runner: MemoryRunner) -> None:
    shop = await book_shop(merchants)
    me = await buyer(merchants, runner, 10_000)
    trade = await merchants.create_trade(shop, "n-1", 1_000, "书", notify_url="https://shop.example.com/notify")
    await merchants.pay(me, trade.id)
    await merchants.refund(shop, "n-1", "back-1", 400)
    paid, back = (payload for _, _, payload in runner.merchant_store.notifications)
    assert (paid["trade_status"], paid["total_amount"], paid["buyer_pay_amount"]) == ("TRADE_SUCCESS", 1000, 1000)
    assert (back["out_request_no"], back["refund_amount"], back["refunded_amount"]) == ("back-1", 400, 400)


async def test_an_unpaid_trade_closes_and_cannot_be_paid(merchants: MerchantService, runner: MemoryRunner) -> None:
    shop = await book_shop(merchants)
    me = await buyer(merchants, runner, 10_000)
    trade = await merchants.create_trade(shop, "c-1", 1_000, "书")
    assert (await merchants.close(shop, "c-1")).state is TradeState.TRADE_CLOSED
    with pytest.raises(errors.TradeStateInvalid):
        await merchants.pay(me, trade.id)
    assert runner.ledger.balance(me.account_code) == 10_000
