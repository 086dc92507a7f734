"""Monthly SP settlement: per SP and month (Shanghai), the information fees billed, the
refunds paid (double where owed), the operator's share, the deductions of the penalties
decided that month (a percentage of the month's fees), and the net payable; a statement
per SP as CSV; the net paid to the SP's bank account through the bank's payout call as a
partner order (the same engine and bank file as merchants' settlements).

Money: the SP's fees accumulate on ``liability:payable:sp:<code>`` (double refunds came off
it already). Settling moves the operator's share to ``income:sp_share`` and the deductions to
``income:sp_penalties``; what remains for the month is the net, paid out from the payable
towards the bank. A settlement of an SP whose settlement is suspended is **held**: its
figures are recorded and nothing is paid; once the suspension is lifted, ``release`` pays
it (and ``settle`` again pays a held one). The settlement's id is ``<sp>:<month>``, so a
month is settled once however often the run repeats.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.sp import errors
from mobipay.sp.model import Measure, fee_deduction, next_month_start, split_fees
from mobipay.sp.service import sp_payable
from mobipay.sp.tables import sp_charges, sp_penalties, sp_providers, sp_settlements

log = structlog.get_logger(__name__)

SHARE_INCOME = "income:sp_share"  # the operator's share of SP information fees
PENALTY_INCOME = "income:sp_penalties"  # fee deductions of SP penalties
SP_PAYOUTS_IN_TRANSIT = "liability:settlement:sp_in_transit"  # net on its way to SPs' banks
ACCOUNTS = (
    AccountSpec(SHARE_INCOME, AccountKind.INCOME, name="Operator's share of SP information fees"),
    AccountSpec(PENALTY_INCOME, AccountKind.INCOME, name="SP penalty deductions"),
    AccountSpec(SP_PAYOUTS_IN_TRANSIT, AccountKind.LIABILITY, name="SP settlements in transit",
                debits_must_not_exceed_credits=True),
)
PAYOUT = "sp_bank_payout"
BANK_FILE = "bank"  # the bank's daily file lists these payouts with the others


class SpBankPayouts(BankPayouts):
    """The bank's payout call (to the SP's company account) under the SP settlement's own
    partner name, so its orders are its own in the order book and the bank file."""

    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        super().__init__(base_url, secret, partner=PAYOUT, timeout_s=timeout_s)


@dataclass(frozen=True, slots=True)
class SpSettlement:
    id: str
    sp_code: str
    period: str
    fees: int
    refunds: int
    operator_share: int
    deductions: int
    net: int
    state: str  # held | paying | paid | failed | nothing


def _month(period: str) -> tuple[datetime, datetime]:
    if not re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", period):
        raise errors.SpInvalid(f"a month is written YYYY-MM, not {period!r}", field="period")
    year, month = (int(p) for p in period.split("-"))
    start = datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    return start, next_month_start(start)


def _out(r: Any) -> SpSettlement:
    return SpSettlement(r.id, r.sp_code, r.period, r.fees, r.refunds, r.operator_share, r.deductions, r.net, r.state)


class SpSettlements:
    def __init__(self, uow: UnitOfWorkRunner, orders: OrderBook, payouts: SpBankPayouts) -> None:
        self.uow = uow
        self.orders = orders
        orders.register(PAYOUT, payouts, file_of=BANK_FILE)
        orders.on_settled("sp.settlement", self._payout_settled)

    async def settle(self, period: str) -> list[SpSettlement]:
        """Settle every SP for a month that has ended (YYYY-MM, Shanghai)."""
        _, end = _month(period)
        if self.uow.clock.now() < end:
            raise errors.SpInvalid(f"{period} has not ended: a month is settled after it", field="period")
        codes = await self.uow.run("sp_codes", lambda uow: _codes(uow))
        return [await self.settle_one(code, period) for code in codes]

    async def settle_one(self, sp_code: str, period: str) -> SpSettlement:
        start, end = _month(period)
        sid = f"{sp_code}:{period}"

        async def work(uow: UnitOfWork) -> tuple[SpSettlement, bool]:
            for spec in ACCOUNTS:
                await uow.open_account(spec)
            sp = (await uow.conn.execute(select(sp_providers).where(sp_providers.c.code == sp_code))).first()
            if sp is None:
                raise errors.SpNotFound(f"no SP {sp_code}", field="sp_code")
            row = (await uow.conn.execute(select(sp_settlements).where(sp_settlements.c.id == sid))).first()
            if row is not None:
                pay = row.state == "held" and not sp.settlement_suspended  # released: pay it now
                if pay:
                    await uow.conn.execute(update(sp_settlements).where(sp_settlements.c.id == sid).values(
                        state="paying", released_at=uow.now))
                    return _out((await uow.conn.execute(select(sp_settlements).where(
                        sp_settlements.c.id == sid))).one()), True
                return _out(row), False
            in_month = (sp_charges.c.sp_code == sp_code, sp_charges.c.created_at >= start,
                        sp_charges.c.created_at < end, sp_charges.c.state.in_(("billed", "refunded")))
            fees = int(await uow.conn.scalar(select(func.coalesce(func.sum(sp_charges.c.amount), 0)).where(
                *in_month)) or 0)
            refunds = int(await uow.conn.scalar(select(func.coalesce(func.sum(sp_charges.c.refunded), 0)).where(
                sp_charges.c.sp_code == sp_code, sp_charges.c.refunded_at >= start,
                sp_charges.c.refunded_at < end)) or 0)
            percents = (await uow.conn.execute(select(sp_penalties.c.value).where(
                sp_penalties.c.sp_code == sp_code, sp_penalties.c.measure == Measure.DEDUCT_FEES.value,
                sp_penalties.c.decided_at >= start, sp_penalties.c.decided_at < end,
                sp_penalties.c.lifted_at.is_(None)))).scalars().all()
            sp_share, operator_share = split_fees(fees, sp.share_bp)
            deductions = min(sum(fee_deduction(fees, int(p)) for p in percents), max(sp_share - refunds, 0))
            net = sp_share - refunds - deductions
            legs = [Leg.debit(sp_payable(sp_code), operator_share + deductions + max(net, 0))]
            legs += [Leg.credit(SHARE_INCOME, operator_share)] if operator_share else []
            legs += [Leg.credit(PENALTY_INCOME, deductions)] if deductions else []
            legs += [Leg.credit(SP_PAYOUTS_IN_TRANSIT, net)] if net > 0 else []
            if len(legs) > 1:
                [result] = await uow.post([Transfer(f"sp-settle:{sid}", tuple(legs), "sp.settlement",
                                                    reference=f"SP {sp_code} settlement {period}")])
                if result.error is not None:
                    raise result.error
            state = "nothing" if net <= 0 else "held" if sp.settlement_suspended else "paying"
            await uow.conn.execute(insert(sp_settlements).values(
                id=sid, sp_code=sp_code, period=period, fees=fees, refunds=refunds, operator_share=operator_share,
                deductions=deductions, net=net, state=state, created_at=uow.now))
            out = _out((await uow.conn.execute(select(sp_settlements).where(sp_settlements.c.id == sid))).one())
            return out, state == "paying"

        settlement, pay = await self.uow.run("sp_settle", work)
        if pay:
            await self._pay(settlement)
            settlement = await self.get(sid)
        return settlement

    async def release(self, sp_code: str) -> list[SpSettlement]:
        """After the suspension is lifted: pay every held settlement of the SP."""

        async def work(uow: UnitOfWork) -> list[str]:
            return list((await uow.conn.execute(select(sp_settlements.c.period).where(
                sp_settlements.c.sp_code == sp_code, sp_settlements.c.state == "held"))).scalars().all())

        return [await self.settle_one(sp_code, p) for p in await self.uow.run("sp_held", work)]

    async def _pay(self, s: SpSettlement) -> None:
        async def account(uow: UnitOfWork) -> str:
            return str(await uow.conn.scalar(select(sp_providers.c.settlement_account).where(
                sp_providers.c.code == s.sp_code)))

        order = await self.orders.place(
            f"sppo_{s.id.replace(':', '_')}", partner=PAYOUT, kind="sp.settlement", user_id=s.sp_code,
            msisdn="", amount=s.net, fee=0,
            legs=[Leg.debit(SP_PAYOUTS_IN_TRANSIT, s.net), Leg.credit(BANK_SETTLEMENT, s.net)],
            details={"settlement": s.id, "account": await self.uow.run("sp_account", account)},
            reference=f"SP {s.sp_code} {s.period}")

        async def link(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(sp_settlements).where(sp_settlements.c.id == s.id).values(
                payout_id=order.id))

        await self.uow.run("sp_payout_link", link)

    async def _payout_settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        await uow.conn.execute(update(sp_settlements).where(sp_settlements.c.id == order.details["settlement"]).values(
            state="paid" if state is OrderState.SUCCEEDED else "failed"))

    async def get(self, settlement_id: str) -> SpSettlement:
        async def work(uow: UnitOfWork) -> SpSettlement:
            row = (await uow.conn.execute(select(sp_settlements).where(sp_settlements.c.id == settlement_id))).first()
            if row is None:
                raise errors.SpInvalid(f"no settlement {settlement_id}", field="settlement_id")
            return _out(row)

        return await self.uow.run("sp_settlement", work)

    async def statement(self, sp_code: str, period: str) -> str:
        """The SP's statement for a month as CSV: every charge (billed, refunded) and the totals."""
        start, end = _month(period)
        settlement = await self.get(f"{sp_code}:{period}")

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(sp_charges).where(
                sp_charges.c.sp_code == sp_code, sp_charges.c.created_at >= start, sp_charges.c.created_at < end,
                sp_charges.c.state.in_(("billed", "refunded"))).order_by(sp_charges.c.created_at, sp_charges.c.id)))

        rows = await self.uow.run("sp_statement", work)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["charge_id", "msisdn", "service", "method", "amount_fen", "refunded_fen", "state", "created_at"])
        for r in rows:
            w.writerow([r.id, mask_msisdn(r.msisdn), r.service_id, r.method, r.amount, r.refunded, r.state,
                        as_utc(r.created_at).isoformat()])
        w.writerow([])
        for label, value in (("fees_fen", settlement.fees), ("refunds_fen", settlement.refunds),
                             ("operator_share_fen", settlement.operator_share),
                             ("deductions_fen", settlement.deductions), ("net_fen", settlement.net),
                             ("state", settlement.state)):
            w.writerow([label, value])
        return out.getvalue()


async def _codes(uow: UnitOfWork) -> list[str]:
    return list((await uow.conn.execute(select(sp_providers.c.code).order_by(sp_providers.c.code))).scalars().all())
