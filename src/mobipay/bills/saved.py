"""Saved bills: a subscriber keeps a customer number to pay it again, is told by SMS when
the biller has a new bill, and may have bills up to a limit paid automatically.

``check_due`` (the worker, every ``interval``) asks the biller about each saved number
not checked recently. A bill number not seen before is news: one SMS (its outbox key is
the bill number, so never twice), and with autopay a payment keyed by the bill number
(so a crash or a second worker cannot pay it twice). Autopay is the subscriber's standing
consent up to their limit: no PIN, but the wallet's limits and balance still apply, and a
refused autopay is told by SMS instead of being retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, or_, select, update

from mobipay.bills import errors
from mobipay.bills.model import FetchMode
from mobipay.bills.service import BillsService
from mobipay.bills.tables import saved_bills
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.money import check_amount
from mobipay.ledger.uow import UnitOfWork
from mobipay.wallet.service import Principal

log = structlog.get_logger(__name__)
RECHECK = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SavedBill:
    id: str
    biller: str
    customer_id: str
    nickname: str
    autopay_limit: int | None
    last_bill_number: str | None
    checked_at: datetime | None


def _saved(row: Any) -> SavedBill:
    return SavedBill(row.id, row.biller, row.customer_id, row.nickname, row.autopay_limit, row.last_bill_number,
                     as_utc(row.checked_at) if row.checked_at else None)


def _autopay_key(saved_id: str, bill_number: str) -> str:
    """One payment per saved bill and biller's bill, however often or wherever it is tried."""
    return "autopay-" + hashlib.sha256(f"{saved_id}|{bill_number}".encode()).hexdigest()[:48]


class SavedBills:
    def __init__(self, bills: BillsService) -> None:
        self.bills = bills
        self.uow = bills.uow

    async def save(self, me: Principal, code: str, raw_customer_id: object, *, nickname: str = "",
                   autopay_limit: object = None) -> SavedBill:
        """Keep a customer number (saving it again updates the nickname and autopay)."""
        biller = await self.bills.biller(code)
        customer_id = biller.check_customer_id(raw_customer_id)
        limit = check_amount(autopay_limit) if autopay_limit is not None else None
        if limit is not None and biller.fetch is FetchMode.NONE:
            raise errors.AmountNotAllowed(f"{biller.name} sends no bills, so there is nothing to autopay",
                                          field="autopay_limit")

        async def work(uow: UnitOfWork) -> SavedBill:
            row = (await uow.conn.execute(select(saved_bills).where(
                saved_bills.c.user_id == me.user_id, saved_bills.c.biller == biller.code,
                saved_bills.c.customer_id == customer_id))).first()
            if row is None:
                saved_id = new_id("sb")
                await uow.conn.execute(insert(saved_bills).values(
                    id=saved_id, user_id=me.user_id, biller=biller.code, customer_id=customer_id,
                    nickname=nickname[:32], autopay_limit=limit, created_at=uow.now))
            else:
                saved_id = row.id
                await uow.conn.execute(update(saved_bills).where(saved_bills.c.id == saved_id).values(
                    nickname=nickname[:32], autopay_limit=limit))
            return _saved((await uow.conn.execute(select(saved_bills).where(saved_bills.c.id == saved_id))).one())

        return await self.uow.run("save_bill", work)

    async def mine(self, me: Principal) -> list[SavedBill]:
        async def work(uow: UnitOfWork) -> list[SavedBill]:
            rows = await uow.conn.execute(select(saved_bills).where(saved_bills.c.user_id == me.user_id)
                                          .order_by(saved_bills.c.created_at))
            return [_saved(r) for r in rows]

        return await self.uow.run("saved_bills", work)

    async def forget(self, me: Principal, saved_id: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            gone = await uow.conn.execute(delete(saved_bills).where(saved_bills.c.id == saved_id,
                                                                    saved_bills.c.user_id == me.user_id))
            if gone.rowcount == 0:
                raise errors.SavedBillNotFound("no such saved bill of yours", field="saved_bill_id")

        await self.uow.run("forget_saved_bill", work)

    async def check_due(self, limit: int = 200) -> int:
        """Ask billers about saved numbers not checked for a while; returns how many."""

        async def due(uow: UnitOfWork) -> list[tuple[SavedBill, str]]:
            rows = await uow.conn.execute(
                select(saved_bills).where(
                    or_(saved_bills.c.checked_at.is_(None), saved_bills.c.checked_at <= uow.now - RECHECK))
                .order_by(saved_bills.c.checked_at.is_(None).desc(), saved_bills.c.checked_at).limit(limit))
            return [(_saved(r), r.user_id) for r in rows]

        rows = await self.uow.run("saved_bills_due", due)
        for saved, user_id in rows:
            try:
                await self._check(saved, await self.bills.wallet.principal(user_id))
            except MobipayError as exc:  # a biller down or a number gone: try again next round
                log.info("bills.saved_check_failed", saved=saved.id, code=exc.code)
        return len(rows)

    async def _check(self, saved: SavedBill, owner: Principal) -> None:
        biller = await self.bills.biller(saved.biller)
        if biller.fetch is FetchMode.NONE:
            await self._mark(saved.id)
            return
        try:
            fetched = await self.bills.fetch(owner, biller.code, saved.customer_id)
        except errors.BillNotFound:
            await self._mark(saved.id)
            return
        bill = fetched.bill
        if bill.bill_number == saved.last_bill_number:
            await self._mark(saved.id)
            return
        autopay = saved.autopay_limit is not None and bill.amount_due <= saved.autopay_limit

        async def tell(uow: UnitOfWork) -> None:
            await uow.emit(SmsRequested(key=f"bill-reminder:{saved.id}:{bill.bill_number}", to=owner.msisdn,
                                        template="bill.autopay" if autopay else "bill.reminder",
                                        params={"biller": biller.name, "nickname": saved.nickname,
                                                "amount_fen": bill.amount_due, "due": bill.due_date.isoformat()}))
            await uow.conn.execute(update(saved_bills).where(saved_bills.c.id == saved.id).values(
                last_bill_number=bill.bill_number, checked_at=uow.now))

        await self.uow.run("bill_reminder", tell)
        if autopay:
            try:
                await self.bills.pay(owner, biller.code, saved.customer_id, bill.amount_due,
                                     idempotency_key=_autopay_key(saved.id, bill.bill_number), bill_id=fetched.id,
                                     preauthorized=True)
            except MobipayError as exc:  # e.g. not enough money: tell them, do not retry
                refusal = SmsRequested(key=f"autopay-refused:{saved.id}:{bill.bill_number}", to=owner.msisdn,
                                       template="bill.autopay_refused",
                                       params={"biller": biller.name, "code": exc.code})
                await self.uow.run("autopay_refused", lambda uow: uow.emit(refusal))

    async def _mark(self, saved_id: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(saved_bills).where(saved_bills.c.id == saved_id).values(checked_at=uow.now))

        await self.uow.run("saved_bill_checked", work)
