"""Complaints about bill payments: raised by the subscriber on one of their payments,
assigned to the biller, moved through open → in progress → resolved / rejected by the
assignee (an operator acts for the biller here), and escalated a level (biller → operator
→ supervisor) whenever a deadline passes without a move. Every move is audited and the
subscriber is told by SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select, update

from mobipay.bills import errors
from mobipay.bills.model import (
    COMPLAINT_DEADLINE_H,
    MAX_LEVEL,
    ComplaintReason,
    ComplaintState,
    check_complaint_move,
)
from mobipay.bills.service import BillsService
from mobipay.bills.tables import complaints
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.ledger.uow import UnitOfWork
from mobipay.platform import audit
from mobipay.wallet.service import Principal

log = structlog.get_logger(__name__)
OPEN_STATES = (ComplaintState.OPEN.value, ComplaintState.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class Complaint:
    id: str
    payment_id: str
    biller: str
    reason: ComplaintReason
    description: str
    state: ComplaintState
    level: int
    due_at: datetime
    resolution: str
    created_at: datetime
    updated_at: datetime

    @property
    def assignee(self) -> str:
        return ("biller", "operator", "supervisor")[self.level]


def _complaint(row: Any) -> Complaint:
    return Complaint(row.id, row.payment_id, row.biller, ComplaintReason(row.reason), row.description,
                     ComplaintState(row.state), row.level, as_utc(row.due_at), row.resolution,
                     as_utc(row.created_at), as_utc(row.updated_at))


class Complaints:
    def __init__(self, bills: BillsService) -> None:
        self.bills = bills
        self.uow = bills.uow

    async def raise_(self, me: Principal, payment_id: str, reason: ComplaintReason, description: str = ""
                     ) -> Complaint:
        """A complaint on one of my bill payments (one open complaint per payment)."""
        payment = await self.bills.get(me, payment_id)

        async def work(uow: UnitOfWork) -> Complaint:
            open_one = (await uow.conn.execute(select(complaints.c.id).where(
                complaints.c.payment_id == payment.id, complaints.c.state.in_(OPEN_STATES)))).first()
            if open_one is not None:
                raise errors.ComplaintExists(f"complaint {open_one.id} on this payment is still open",
                                             field="payment_id")
            complaint_id = new_id("cmp")
            await uow.conn.execute(insert(complaints).values(
                id=complaint_id, user_id=me.user_id, msisdn=me.msisdn, payment_id=payment.id,
                biller=payment.details["biller"], reason=reason.value, description=description[:500],
                state=ComplaintState.OPEN.value, level=0, created_at=uow.now, updated_at=uow.now,
                due_at=uow.now + timedelta(hours=COMPLAINT_DEADLINE_H[ComplaintState.OPEN])))
            await uow.emit(SmsRequested(key=f"{complaint_id}:open", to=me.msisdn, template="complaint.open",
                                        params={"id": complaint_id, "biller": payment.details["biller_name"]}))
            return await _load(uow, complaint_id)

        return await self.uow.run("raise_complaint", work)

    async def mine(self, me: Principal) -> list[Complaint]:
        async def work(uow: UnitOfWork) -> list[Complaint]:
            rows = await uow.conn.execute(select(complaints).where(complaints.c.user_id == me.user_id)
                                          .order_by(complaints.c.created_at.desc()))
            return [_complaint(r) for r in rows]

        return await self.uow.run("my_complaints", work)

    async def get(self, me: Principal, complaint_id: str) -> Complaint:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(complaints).where(complaints.c.id == complaint_id))).first()

        row = await self.uow.run("complaint", work)
        if row is None or row.user_id != me.user_id:
            raise errors.BillNotFound("no such complaint of yours", field="complaint_id")
        return _complaint(row)

    async def queue(self, *, overdue_only: bool = False, biller: str | None = None) -> list[Complaint]:
        """Open complaints for the people handling them, oldest deadline first."""

        async def work(uow: UnitOfWork) -> list[Complaint]:
            query = select(complaints).where(complaints.c.state.in_(OPEN_STATES))
            if overdue_only:
                query = query.where(complaints.c.due_at <= uow.now)
            if biller:
                query = query.where(complaints.c.biller == biller)
            return [_complaint(r) for r in await uow.conn.execute(query.order_by(complaints.c.due_at))]

        return await self.uow.run("complaint_queue", work)

    async def move(self, complaint_id: str, to: ComplaintState, *, actor: str, note: str) -> Complaint:
        """Move a complaint (audited, the subscriber is told); a new open state gets a new deadline."""
        if to in (ComplaintState.RESOLVED, ComplaintState.REJECTED) and not note.strip():
            raise ValidationFailed("say how it was resolved or why it is rejected", field="note")

        async def work(uow: UnitOfWork) -> Complaint:
            row = (await uow.conn.execute(select(complaints).where(complaints.c.id == complaint_id)
                                          .with_for_update())).first()
            if row is None:
                raise errors.BillNotFound(f"no complaint {complaint_id}", field="complaint_id")
            current = ComplaintState(row.state)
            check_complaint_move(current, to)
            values: dict[str, Any] = {"state": to.value, "updated_at": uow.now}
            if to in COMPLAINT_DEADLINE_H:
                values["due_at"] = uow.now + timedelta(hours=COMPLAINT_DEADLINE_H[to])
            if note.strip():
                values["resolution"] = note.strip()[:500]
            await uow.conn.execute(update(complaints).where(complaints.c.id == complaint_id).values(**values))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="complaint.move", target=complaint_id,
                               reason=note, before={"state": current.value}, after={"state": to.value})
            await uow.emit(SmsRequested(key=f"{complaint_id}:{to.value}", to=row.msisdn,
                                        template=f"complaint.{to.value}", params={"id": complaint_id, "note": note}))
            return await _load(uow, complaint_id)

        return await self.uow.run("move_complaint", work)

    async def escalate(self, complaint_id: str, *, actor: str, reason: str) -> Complaint:
        """An operator raises one open complaint a level now (biller → operator →
        supervisor), with a new deadline; audited."""
        if not reason.strip():
            raise ValidationFailed("say why it is escalated", field="reason")

        async def work(uow: UnitOfWork) -> Complaint:
            row = (await uow.conn.execute(select(complaints).where(complaints.c.id == complaint_id)
                                          .with_for_update())).first()
            if row is None:
                raise errors.BillNotFound(f"no complaint {complaint_id}", field="complaint_id")
            if row.state not in OPEN_STATES:
                raise errors.ComplaintStateInvalid(f"a {row.state} complaint is closed", field="complaint_id")
            if row.level >= MAX_LEVEL:
                raise errors.ComplaintStateInvalid("the complaint is already with the supervisor", field="complaint_id")
            hours = COMPLAINT_DEADLINE_H[ComplaintState(row.state)]
            await uow.conn.execute(update(complaints).where(complaints.c.id == complaint_id).values(
                level=row.level + 1, due_at=uow.now + timedelta(hours=hours), updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="complaint.escalate", target=complaint_id,
                               reason=reason, before={"level": row.level}, after={"level": row.level + 1})
            return await _load(uow, complaint_id)

        return await self.uow.run("escalate_complaint", work)

    async def escalate_overdue(self) -> int:
        """Raise every complaint whose deadline passed a level, with a new deadline; returns how many."""

        async def work(uow: UnitOfWork) -> int:
            rows = list(await uow.conn.execute(select(complaints).where(
                complaints.c.state.in_(OPEN_STATES), complaints.c.due_at <= uow.now).with_for_update()))
            for row in rows:
                level = min(MAX_LEVEL, row.level + 1)
                hours = COMPLAINT_DEADLINE_H[ComplaintState(row.state)]
                await uow.conn.execute(update(complaints).where(complaints.c.id == row.id).values(
                    level=level, due_at=uow.now + timedelta(hours=hours), updated_at=uow.now))
                await audit.record(uow.conn, at=uow.now, actor="system", action="complaint.escalate", target=row.id,
                                   reason="deadline passed", before={"level": row.level}, after={"level": level})
            return len(rows)

        escalated = await self.uow.run("escalate_complaints", work)
        if escalated:
            log.warning("complaints.escalated", count=escalated)
        return escalated


async def _load(uow: UnitOfWork, complaint_id: str) -> Complaint:
    return _complaint((await uow.conn.execute(select(complaints).where(complaints.c.id == complaint_id))).one())
