"""Lottery on SQLite and PostgreSQL against the lottery centre SIMULATOR: buy (chosen and
random numbers), sales cut-off, draw import (never before the draw time) paying winners
once with the prize tax withheld, large prizes claimed with the identity card, the draw
calendar, the worker's scheduled import, and sales the centre closed early."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import (
    BANK_SETTLEMENT,
    PAYABLE_LOTTERY,
    PAYABLE_PRIZE_TAX,
    RECEIVABLE_LOTTERY,
    SYSTEM_ACCOUNTS,
)
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
    return ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI))  # Tuesday noon: 双色球 2026141 on sale


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


def close_sales(url: str, game: str, issue: str) -> None:
    httpx.post(f"{url}/sim/draws/{game}/{issue}/close").raise_for_status()


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
    assert await refused(lottery.import_draw("ssq", issue)) == "DRAW_NOT_DUE"  # 12:00: drawn at 21:15
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 1_200
    clock.set(datetime(2026, 11, 24, 21, 30, tzinfo=SHANGHAI))
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
    shown = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="shown", issue=issue)
    clock.set(close)  # 20:00: this draw's sales are over, the next one is on sale
    _, next_issue, _, _ = lottery.on_sale("ssq")
    # a buyer shown this draw's form before 20:00 gets no ticket for the next one...
    assert await refused(lottery.buy(me, "ssq", quick_picks=1, idempotency_key="form", issue=issue)) == "SALES_CLOSED"
    # ...while the ticket bought in time, asked for again, is that ticket
    again = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="shown", issue=issue)
    assert again.order.id == shown.order.id
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 200
    ticket = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="late")
    assert ticket.issue == next_issue != issue
    # the centre closes the next draw's sales early: the first ticket it refuses comes back...
    close_sales(lottery_url, "ssq", next_issue)
    refused_ticket = await lottery.buy(me, "ssq", quick_picks=1, idempotency_key="too-late")
    assert (refused_ticket.order.state, refused_ticket.order.reason) == (OrderState.FAILED, "sales_closed")
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 400
    # ...and later ones are refused before any money is held: no order, nothing moved
    assert await refused(lottery.buy(me, "ssq", quick_picks=1, idempotency_key="after-close")) == "SALES_CLOSED"
    assert len(await lottery.mine(me)) == 3
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 400
    slots = {(s.issue, s.state) for s in await lottery.calendar("ssq")}
    assert (next_issue, "closed") in slots
    assert (await lottery.uow.ledger.verify()).ok


async def verified(lottery: LotteryService, me: Principal, name: str, id_number: str) -> None:
    """Give a wallet a verified real name as binding a bank card does (the bank is not the point here)."""
    from sqlalchemy import insert

    from mobipay.wallet.tables import identities

    async def work(uow: Any) -> None:
        await uow.conn.execute(insert(identities).values(
            user_id=me.user_id, name=name, id_masked=id_number[:3] + "***", id_hmac=lottery.wallet.id_hmac(id_number),
            verified_at=uow.now, verified_by="bank"))

    await lottery.uow.run("verify_identity", work)


ID_CARD = "11010519491231002X"  # GB 11643's own example


async def test_prize_tax_and_a_claimed_jackpot(lottery: LotteryService, lottery_url: str, clock: ManualClock
                                               ) -> None:
    """A tier 1 prize (5,000,000 CNY a bet in the simulator) is above the claim threshold:
    recorded with its 20% tax, paid only when the verified winner claims it, once."""
    me = await player(lottery)
    _, issue, _, draw_at = lottery.on_sale("ssq")
    ticket = await lottery.buy(me, "ssq", bets=[[[1, 2, 3, 4, 5, 6], [7]]], multiplier=2, idempotency_key="big")
    set_draw(lottery_url, "ssq", issue, [[1, 2, 3, 4, 5, 6], [7]])
    clock.set(draw_at)
    result = await lottery.import_draw("ssq", issue)
    gross = 500_000_000 * 2
    assert (result.winners, result.claims, result.paid, result.tax) == (1, 1, 0, 0)
    t = await lottery.ticket(me, ticket.order.id)
    assert (t.prize, t.tax, t.tier, t.claim_required, t.claimed_at, t.paid) == (gross, gross // 5, 1, True, None, 0)
    assert t.claim_by is not None and t.claim_by.date().isoformat() == "2027-01-23"  # 60 days after the draw
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 400  # nothing paid yet
    # a claim needs the wallet's verified identity, and that very identity
    kw = {"name": "张三", "id_number": ID_CARD}
    assert await refused(lottery.claim(me, t.order.id, **kw)) == "REAL_NAME_REQUIRED"
    await verified(lottery, me, "张三", ID_CARD)
    assert await refused(lottery.claim(me, t.order.id, name="李四", id_number=ID_CARD)) == "IDENTITY_MISMATCH"
    assert await refused(lottery.claim(me, t.order.id, name="张三", id_number="123")) == "INVALID_ID_CARD"
    other = await player(lottery, "+8613900139000")
    assert await refused(lottery.claim(other, t.order.id, **kw)) == "TICKET_NOT_FOUND"
    assert (await lottery.uow.ledger.account(me.account_code)).balance == 10_000 - 400
    paid = await lottery.claim(me, t.order.id, **kw)
    assert paid.claimed_at is not None and paid.paid == gross - gross // 5
    again = await lottery.claim(me, t.order.id, **kw)  # a retry pays nothing twice
    assert again.claimed_at == paid.claimed_at
    accounts = await lottery.uow.ledger.accounts([me.account_code, PAYABLE_PRIZE_TAX, RECEIVABLE_LOTTERY])
    assert accounts[me.account_code].balance == 10_000 - 400 + gross - gross // 5
    assert (accounts[PAYABLE_PRIZE_TAX].balance, accounts[RECEIVABLE_LOTTERY].balance) == (gross // 5, gross)
    receipt = await lottery.wallet.receipt(me, f"prize:{t.order.id}")
    assert (receipt.amount, receipt.prize_tax) == (gross - gross // 5, gross // 5)
    assert await refused(lottery.claim(me, "lt_nope", **kw)) == "TICKET_NOT_FOUND"
    assert (await lottery.uow.ledger.verify()).ok


async def test_tax_is_per_bet_and_small_prizes_are_tax_free(lottery: LotteryService, lottery_url: str,
                                                            clock: ManualClock) -> None:
    """超级大乐透 tier 3 is exactly 10,000 CNY: tax-free; a 150,000 CNY tier 2 of 双色球 pays
    20%. Below the claim threshold both are paid at the import."""
    lottery.claim_threshold = 10**12
    me = await player(lottery)
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI))  # Monday: 超级大乐透 draws today
    _, dlt_issue, _, _ = lottery.on_sale("dlt")
    _, ssq_issue, _, ssq_at = lottery.on_sale("ssq")  # Tuesday's
    await lottery.buy(me, "dlt", bets=[[[1, 2, 3, 4, 5], [1, 2]]], multiplier=3, idempotency_key="d")
    await lottery.buy(me, "ssq", bets=[[[1, 2, 3, 4, 5, 6], [7]]], idempotency_key="s")
    set_draw(lottery_url, "dlt", dlt_issue, [[1, 2, 3, 4, 5], [11, 12]])  # five, no star: tier 3
    set_draw(lottery_url, "ssq", ssq_issue, [[1, 2, 3, 4, 5, 6], [8]])  # six red, not the blue: tier 2
    clock.set(ssq_at)
    dlt = await lottery.import_draw("dlt", dlt_issue)
    assert (dlt.paid, dlt.tax) == (3 * 1_000_000, 0)
    ssq = await lottery.import_draw("ssq", ssq_issue)
    assert (ssq.paid, ssq.tax) == (15_000_000 - 3_000_000, 3_000_000)
    balance = (await lottery.uow.ledger.account(me.account_code)).balance
    assert balance == 10_000 - 600 - 200 + 3_000_000 + 12_000_000
    assert (await lottery.uow.ledger.account(PAYABLE_PRIZE_TAX)).balance == 3_000_000
    assert (await lottery.uow.ledger.verify()).ok


async def test_the_worker_imports_held_draws_on_schedule(lottery: LotteryService, lottery_url: str,
                                                         clock: ManualClock) -> None:
    me = await player(lottery)
    _, issue, _, draw_at = lottery.on_sale("ssq")
    await lottery.buy(me, "ssq", quick_picks=2, idempotency_key="w")
    calendar = await lottery.calendar("ssq", upcoming=3)
    assert [(s.issue, s.state) for s in calendar if s.state in ("on_sale", "upcoming")][:2] == [
        (issue, "on_sale"), (str(int(issue) + 1), "upcoming")]
    assert all(s.sales_close < s.draw_at for s in calendar)
    past = [r for r in await lottery.import_due() if r.game == "ssq"]  # the last week's draws, not today's
    assert [r.issue for r in past] == [str(int(issue) - n) for n in (3, 2, 1)] and not any(r.tickets for r in past)
    assert not await lottery.import_due()  # those are kept now: nothing to do until today's draw
    hold_draw(lottery_url, "ssq", issue)
    clock.set(draw_at)
    assert issue not in {r.issue for r in await lottery.import_due() if r.game == "ssq"}  # not published: later
    assert [s.state for s in await lottery.calendar("ssq") if s.issue == issue] == ["awaiting_results"]
    set_draw(lottery_url, "ssq", issue, [[1, 2, 3, 4, 5, 6], [7]])
    [imported] = [r for r in await lottery.import_due() if r.game == "ssq"]
    assert (imported.issue, imported.tickets) == (issue, 1)
    assert not [r for r in await lottery.import_due() if r.game == "ssq"]  # imported once
    [slot] = [s for s in await lottery.calendar("ssq") if s.issue == issue]
    assert (slot.state, slot.numbers) == ("drawn", [[1, 2, 3, 4, 5, 6], [7]])
    [t] = await lottery.mine(me)
    assert t.prize is not None
    assert (await lottery.uow.ledger.verify()).ok
