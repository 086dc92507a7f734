"""Lottery on SQLite and PostgreSQL against the lottery centre SIMULATOR: buy (chosen and
random numbers), sales cut-off, draw import paying winners once, a refused ticket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, PAYABLE_LOTTERY, RECEIVABLE_LOTTERY, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.lottery.gateway_http import HttpLotteryCentre
from mobipay.lottery.service import LotteryService
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.conftest import LOTTERY_SECRET


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI))  # Tuesday noon: 双色球 2026135 on sale


@pytest.fixture
async def lottery(db: Database, ledger: Ledger, clock: ManualClock, lottery_url: str, tmp_path: Path
                  ) -> AsyncIterator[LotteryService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    centre = HttpLotteryCentre(lottery_url, LOTTERY_SECRET.encode(), timeout_s=1.0)
    yield LotteryService(uow, WalletService(uow, number_segments(), b"t"), OrderBook(uow, tmp_path), centre)
    await centre.close()


async def player(lottery: LotteryService, msisdn: str = "+8613800138000") -> Principal:
    user = await lottery.wallet.create_user(msisdn, actor="t", reason="t")
    assert (await lottery.uow.ledger.post(Transfer(f"f{msisdn}", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                                  Leg.credit(user.account_code, 10_000)),
                                                   "cash_in"))).ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


def hold_draw(url: str, game: str, issue: str) -> None:
    httpx.post(f"{url}/sim/draws/{game}/{issue}/hold").raise_for_status()


def set_draw(url: str, game: str, issue: str, numbers: list[list[int]]) -> None:
    httpx.put(f"{url}/sim/draws/{game}/{issue}", json={"numbers": numbers}).raise_for_status()


async def test_buy_draw_and_win(lottery: LotteryService, lottery_url: str, clock: ManualClock) -> None:
    me = await player(lottery)
    other = await player(lottery, "+8613900139000")
    _, issue, _, _ = lottery.on_sale("ssq")
    ticket = await lottery.buy(me, "ssq", bets=[[[1, 5, 12, 19, 27, 33], [9]], [[2, 3, 4, 6, 7, 8], [9]]],
                               quick_picks=1, multiplier=2, idempotency_key="t1")
    assert (ticket.order.state, ticket.order.amount, len(ticket.bets), ticket.issue) == (
        OrderState.SUCCEEDED, 1_200, 3, issue)
    again = await lottery.buy(me, "ssq", bets=[[[1, 5, 12, 19, 27, 33], [9]], [[2, 3, 4, 6, 7, 8], [9]]],
                              quick_picks=1, multiplier=2, idempotency_key="t1")  # a retry: the same ticket
    assert again.order.id == ticket.order.id and again.bets == ticket.bets and again.order.replayed
    # the same key for another ticket is a conflict, not the first ticket passed off as new
    assert await refused(lottery.buy(me, "ssq", quick_picks=1, idempotency_key="t1")) == "IDEMPOTENCY_CONFLICT"
    loser = await lottery.buy(other, "ssq", bets=[[[10, 11, 13, 14, 15, 16], [1]]], idempotency_key="t2")
    assert await refused(lottery.buy(me, "ssq", bets=[[[1, 2, 3], [9]]], idempotency_key="t3")) == "INVALID_NUMBERS"
    assert await refused(lottery.buy(me, "keno", quick_picks=1, idempotency_key="t4")) == "UNKNOWN_GAME"
    assert await refused(lottery.buy(me, "ssq", idempotency_key="t5")) == "INVALID_NUMBERS"  # no bets at all

    set_draw(lottery_url, "ssq", issue, [[1, 5, 12, 19, 27, 32], [9]])  # 5 + blue: 3,000 CNY; blue alone: 5 CNY
    hold_draw(lottery_url, "dlt", "2026001")
    assert await refused(lottery.import_draw("dlt", "2026001")) == "DRAW_NOT_FOUND"
    result = await lottery.import_draw("ssq", issue)
    won = (300_000 + 500) * 2  # two winning bets, multiplier 2 (the quick pick may add a little)
    assert result.tickets == 2 and result.winners == 1 and result.paid >= won
    balance = (await lottery.uow.ledger.account(me.account_code)).balance
    assert balance == 10_000 - 1_200 + result.paid
    assert (await lottery.import_draw("ssq", issue)).tickets == 0  # settled: nothing paid twice
    assert (await lottery.uow.ledger.account(me.account_code)).balance == balance
    [mine] = await lottery.mine(me)
    assert mine.prize == result.paid and mine.tier == 3
    assert [t.prize for t in await lottery.mine(other)] == [0] and loser.order.amount == 200
    accounts = await lottery.uow.ledger.accounts([PAYABLE_LOTTERY, RECEIVABLE_LOTTERY])
    assert (accounts[PAYABLE_LOTTERY].balance, accounts[RECEIVABLE_LOTTERY].balance) == (1_400, result.paid)
    assert (await lottery.uow.ledger.verify()).ok


async def test_sales_stop_before_the_draw(lottery: LotteryService, lottery_url: str, clock: ManualClock) -> None:
    me = await player(lottery)
    _, issue, close, _ = lottery.on_sale("ssq")
    clock.set(close)  # 20:00: this draw's sales are over, the next one is on sale
    _, next_issue, _, _ = lottery.on_sale("ssq")
    ticket = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="late")
    assert ticket.issue == next_issue != issue
    # the centre refuses a ticket for a draw it already published: the money comes back
    set_draw(lottery_url, "ssq", next_issue, [[1, 2, 3, 4, 5, 6], [1]])
    await lottery.import_draw("ssq", next_issue)
    refused_ticket = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="too-late")
    assert (refused_ticket.order.state, refused_ticket.order.reason) == (OrderState.FAILED, "sales_closed")
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 200 + (
        (await lottery.mine(me))[-1].prize or 0)
