"""T+1 settlement and daily statements for merchants.

For each business day (Shanghai) and merchant: gross = payments of the day as the merchant
received them (the amount less any alliance privilege it gave off, ``privilege_amount``: that
part was never paid, so it is neither settled nor charged a fee), refunds =
refunds of the day, fee = gross × the merchant's rate rounded half-up to the fen and then
*allocated* to the day's payments (largest remainder: the per-payment fees in the report
add up to the fee exactly; nothing is rounded away), net = gross − refunds − fee.

In the ledger: the merchant's payable gives the fee to ``income:fees`` and the net to
``liability:settlement:in_transit`` (posted at once); the payout to the merchant's bank
account is a partner order (partner ``bank_payout``) whose hold moves the net out of
in-transit to the bank. A merchant with settlement suspended is skipped (and settled when
resumed: run the day again); a failed payout stays in transit for ``retry``.

Only a day that has ended can be settled (``model.check_day_closed``: midnight Shanghai and
a five-minute cut-off), so the day's figures can no longer change. The settlement row is
written in the transaction that posts the money, and a run again reports that row — what
was posted and paid — never figures computed afresh.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.money import allocate
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME, SETTLEMENT_IN_TRANSIT
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.model import MerchantState, check_day_closed, day_window
from mobipay.merchants.tables import merchants, refunds, settlements, trades
from mobipay.orders.model import OrderState
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.orders.service import order_id as make_order_id

PAYOUT = "bank_payout"  # the partner name BankPayouts has by default
#: The bank's daily file lists its payouts with its own orders: reconcile them together.
BANK_FILE = "bank"



log = structlog.get_logger(__name__)

@dataclass(frozen=True, slots=True)
class Settlement:
    merchant_id: str
    day: date
    gross: int
    refunds: int
    fee: int
    net: int
    state: str
    report: Path | None = None
    #: Payments of the day that are not in this settlement (fen): only a day settled before
    #: it ended (which is now refused) can have them; they need a person.
    unsettled: int = 0
    #: Why nothing was settled (state ``refused``): the refusal's code and detail. Nothing was
    #: posted or recorded, so the next run tries again.
    problem: str = ""


class Settlements:
    def __init__(self, uow: UnitOfWorkRunner, orders: OrderBook, payouts: BankPayouts, report_dir: Path) -> None:
        self.uow = uow
        self.orders = orders
        self.report_dir = report_dir
        orders.register(PAYOUT, payouts, file_of=BANK_FILE)
        orders.on_settled("settlement", self._payout_settled)

    async def day_lines(self, merchant_id: str, day: date) -> tuple[list[Any], list[Any]]:
        """(payments, refunds) of one merchant on one business day."""
        start, end = day_window(day)

        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
            paid = list(await uow.conn.execute(select(trades).where(
                trades.c.merchant_id == merchant_id, trades.c.paid_at >= start, trades.c.paid_at < end)
                .order_by(trades.c.paid_at)))
            back = list(await uow.conn.execute(select(refunds, trades.c.out_trade_no).join(
                trades, trades.c.id == refunds.c.trade_id).where(
                trades.c.merchant_id == merchant_id, refunds.c.created_at >= start, refunds.c.created_at < end)
                .order_by(refunds.c.created_at)))
            return paid, back

        return await self.uow.run("merchant_day", work)

    async def statement(self, merchant_id: str, day: date) -> str:
        """The day's trade and refund file (CSV) for a merchant."""
        paid, back = await self.day_lines(merchant_id, day)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["type", "trade_no", "out_trade_no", "out_request_no", "amount_fen", "time"])
        for t in paid:
            writer.writerow(["payment", t.id, t.out_trade_no, "", t.amount, t.paid_at.isoformat()])
            if t.privilege_amount:  # given off by the merchant (an alliance privilege): not received
                writer.writerow(["privilege", t.id, t.out_trade_no, "", -t.privilege_amount, t.paid_at.isoformat()])
        for r in back:
            writer.writerow(["refund", r.trade_id, r.out_trade_no, r.out_request_no, r.amount,
                             r.created_at.isoformat()])
        return out.getvalue()

    async def settle_due(self, today: date) -> list[Settlement]:
        """What is due today: for a merchant on a T+n cycle, business day ``today - n``."""

        async def cycles(uow: UnitOfWork) -> list[int]:
            return sorted({int(r[0]) for r in await uow.conn.execute(select(merchants.c.settlement_days).distinct())})

        check_day_closed(today - timedelta(days=1), self.uow.clock.now())  # a due date still to come
        done: list[Settlement] = []
        for n in await self.uow.run("settlement_cycles", cycles):
            done += await self.settle(today - timedelta(days=n), cycle=n)
        return done

    async def settle(self, day: date, *, cycle: int | None = None) -> list[Settlement]:
        """Settle every merchant with activity on ``day`` (only those on a T+``cycle`` cycle,
        if given). Refused while the day has not ended. Safe to run again: a settled day
        reports what was settled and paid."""
        check_day_closed(day, self.uow.clock.now())

        async def active(uow: UnitOfWork) -> list[Any]:
            start, end = day_window(day)
            ids = {r[0] for r in await uow.conn.execute(select(trades.c.merchant_id).where(
                trades.c.paid_at >= start, trades.c.paid_at < end))}
            ids |= {r[0] for r in await uow.conn.execute(select(trades.c.merchant_id).join(
                refunds, refunds.c.trade_id == trades.c.id).where(
                refunds.c.created_at >= start, refunds.c.created_at < end))}
            query = select(merchants).where(merchants.c.id.in_(sorted(ids)))
            if cycle is not None:
                query = query.where(merchants.c.settlement_days == cycle)
            return list(await uow.conn.execute(query))

        done: list[Settlement] = []
        for merchant in await self.uow.run("merchants_to_settle", active):
            try:  # one merchant's refusal stops neither the others nor tomorrow's run
                done.append(await self._settle_one(merchant, day))
            except MobipayError as exc:
                log.error("settlement.refused", merchant=merchant.id, day=str(day), code=exc.code, detail=exc.detail)
                done.append(Settlement(merchant.id, day, 0, 0, 0, 0, "refused", problem=f"{exc.code}: {exc.detail}"))
        return done

    async def _settle_one(self, merchant: Any, day: date) -> Settlement:
        paid, back = await self.day_lines(merchant.id, day)
        gross, refunded = sum(t.amount - t.privilege_amount for t in paid), sum(r.amount for r in back)
        fee = (gross * merchant.fee_bps + 5_000) // 10_000
        net = gross - refunded - fee
        settlement_id = make_order_id("stl_", merchant.id, str(day))

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            row = (await uow.conn.execute(select(settlements).where(settlements.c.id == settlement_id)
                                          .with_for_update())).first()
            if row is not None and row.state not in ("suspended",):
                return row, False  # settled before: nothing posted twice, its figures stand
            if merchant.state == MerchantState.SETTLEMENT_SUSPENDED.value:
                state = "suspended"
            elif net <= 0:
                state = "nothing"  # refunds ate the day: the payable keeps the rest for later days
            else:
                legs: tuple[Leg, ...] = (Leg.debit(merchant.account_code, net + fee),
                                         Leg.credit(SETTLEMENT_IN_TRANSIT, net))
                legs += (Leg.credit(FEE_INCOME, fee),) if fee else ()
                [result] = await uow.post([Transfer(f"settle:{settlement_id}", legs, "merchant.settlement",
                                                    reference=f"{merchant.name} {day}")])
                if result.error is not None:
                    raise result.error
                state = "paying"
            values = {"merchant_id": merchant.id, "day": day.isoformat(), "gross": gross, "refunds": refunded,
                      "fee": fee, "net": net, "state": state, "updated_at": uow.now}
            if row is None:
                await uow.conn.execute(insert(settlements).values(id=settlement_id, created_at=uow.now, **values))
            else:
                await uow.conn.execute(update(settlements).where(settlements.c.id == settlement_id).values(**values))
            return await _one(uow, select(settlements).where(settlements.c.id == settlement_id)), True

        row, new = await self.uow.run("settle_merchant", work)
        if new and row.state == "paying":
            await self._pay(settlement_id, merchant, int(row.net), "po" + settlement_id[3:])
        row = await self._row(settlement_id)
        return self._settlement(merchant, day, row, paid, back)

    def _settlement(self, merchant: Any, day: date, row: Any, paid: list[Any], back: list[Any]) -> Settlement:
        """The settlement as recorded (what was posted and paid) with its report. The day's
        lines are the ones settled: those recorded before the settlement was (all of them,
        for a day that had ended); any later one is listed apart, never added to the figures."""
        included, late, back_in = paid, [], back
        if row.state != "suspended":  # (suspended: nothing posted yet, the day as it stands)
            settled_at = as_utc(row.created_at)
            included = [t for t in paid if as_utc(t.paid_at) <= settled_at]
            late = [t for t in paid if as_utc(t.paid_at) > settled_at]
            back_in = [r for r in back if as_utc(r.created_at) <= settled_at]
        received = [t.amount - t.privilege_amount for t in included]
        fees = allocate(int(row.fee), received) if included and row.fee else [0] * len(included)
        report = self._report(merchant, day, row, included, fees, back_in, late)
        return Settlement(merchant.id, day, int(row.gross), int(row.refunds), int(row.fee), int(row.net),
                          str(row.state), report, sum(t.amount - t.privilege_amount for t in late))

    async def _pay(self, settlement_id: str, merchant: Any, net: int, payout_id: str) -> None:
        """Send the net in transit to the merchant's bank account as a partner order."""
        order = await self.orders.place(
            payout_id, partner=PAYOUT, kind="settlement", user_id=merchant.id,
            msisdn=merchant.contact_msisdn, amount=net, fee=0,
            legs=[Leg.debit(SETTLEMENT_IN_TRANSIT, net), Leg.credit(BANK_SETTLEMENT, net)],
            details={"settlement": settlement_id, "account": merchant.settlement_account}, reference=merchant.name)

        async def link(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(settlements).where(settlements.c.id == settlement_id).values(
                payout_order_id=order.id))

        await self.uow.run("settlement_payout", link)

    async def _payout_settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        await uow.conn.execute(update(settlements).where(settlements.c.id == order.details["settlement"]).values(
            state="paid" if state is OrderState.SUCCEEDED else "failed", updated_at=uow.now))

    async def retry(self, merchant_id: str, day: date) -> str:
        """Pay out again a settlement whose payout failed (the money waited in transit)."""
        settlement_id = make_order_id("stl_", merchant_id, str(day))
        row = await self._row(settlement_id)
        if row.state == "failed":
            merchant = await self.uow.run("merchant_row", lambda uow: _one(uow, select(merchants).where(
                merchants.c.id == merchant_id)))
            attempt = make_order_id("pr_", settlement_id, self.uow.clock.now().isoformat())  # a new order each try
            await self._pay(settlement_id, merchant, int(row.net), attempt)
        return str((await self._row(settlement_id)).state)

    async def _row(self, settlement_id: str) -> Any:
        return await self.uow.run("settlement_row", lambda uow: _one(uow, select(settlements).where(
            settlements.c.id == settlement_id)))

    def _report(self, merchant: Any, day: date, row: Any, paid: list[Any], fees: list[int], back: list[Any],
                late: list[Any]) -> Path:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / f"settlement-{merchant.id}-{day.isoformat()}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["merchant", "day", "gross_fen", "refunds_fen", "fee_fen", "net_fen", "state"])
            w.writerow([merchant.name, day, row.gross, row.refunds, row.fee, row.net, row.state])
            w.writerow([])
            w.writerow(["type", "out_trade_no", "amount_fen", "fee_fen"])
            for t, f_ in zip(paid, fees, strict=True):
                w.writerow(["payment", t.out_trade_no, t.amount, f_])
                if t.privilege_amount:  # given off by the merchant: the fee is on what it received
                    w.writerow(["privilege", t.out_trade_no, -t.privilege_amount, 0])
            for r in back:
                w.writerow(["refund", r.out_trade_no, -r.amount, 0])
            for t in late:  # paid after the day was settled: not in the figures above
                w.writerow(["not_settled", t.out_trade_no, t.amount - t.privilege_amount, 0])
        return path


async def _one(uow: UnitOfWork, query: Any) -> Any:
    return (await uow.conn.execute(query)).one()
