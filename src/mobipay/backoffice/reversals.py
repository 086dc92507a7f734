"""Reversals with maker-checker: one operator asks for a ledger transfer to be reversed,
saying why; a *different* operator approves it (the ledger then posts the reversal, in the
same transaction as the decision and its audit entry) or rejects it.

The request moves ``pending → approved`` or ``pending → rejected`` once (row lock); one
pending request per transfer at a time (a partial unique index); the reversal's ledger id
derives from the request, so an approval that is retried posts nothing twice, and the
ledger itself refuses a second reversal of the same transfer (``ALREADY_REVERSED``).
Asking needs the ``operations`` role, deciding the ``finance`` role (``admin`` holds both,
but never for their own request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from mobipay.backoffice.errors import ReversalDecided, ReversalPending, SameOperator
from mobipay.backoffice.operators import Operator
from mobipay.backoffice.tables import reversal_requests
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import NotFound, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.ledger import errors
from mobipay.ledger.chart import wallet_owner
from mobipay.ledger.model import Reverse, Side, StoredTransfer, TransferType
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform import audit

REQUEST_ROLE, DECIDE_ROLE = "operations", "finance"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
DECISIONS = {APPROVED: "approve", REJECTED: "reject"}


@dataclass(frozen=True, slots=True)
class ReversalRequest:
    id: str
    transfer_id: str
    state: str
    requested_by: str
    request_reason: str
    requested_at: datetime
    decided_by: str | None
    decision_reason: str | None
    decided_at: datetime | None
    reversal_id: str | None


def _request(row: Any) -> ReversalRequest:
    return ReversalRequest(row.id, row.transfer_id, row.state, row.requested_by, row.request_reason,
                           as_utc(row.requested_at), row.decided_by, row.decision_reason,
                           as_utc(row.decided_at) if row.decided_at else None, row.reversal_id)


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationFailed("give the reason for the audit trail", field="reason")
    return reason.strip()[:500]


class Reversals:
    """Reversal requests and their decisions (maker-checker)."""

    def __init__(self, uow: UnitOfWorkRunner) -> None:
        self.uow = uow

    async def request(self, operator: Operator, transfer_id: str, *, reason: str) -> ReversalRequest:
        """Ask for ``transfer_id`` to be reversed; checked now so a hopeless request is refused
        at once (unknown, not a posted transfer, already reversed, already asked)."""
        operator.require(REQUEST_ROLE)
        why = _reason(reason)
        original = await self.uow.ledger.transfer(transfer_id.strip())  # TRANSFER_NOT_FOUND
        _check_reversible(original)
        if await self.uow.ledger.reversed_by(original.id) is not None:
            raise errors.AlreadyReversed(f"transfer {original.id} was already reversed", field="transfer_id")

        async def work(uow: UnitOfWork) -> ReversalRequest:
            if (await uow.conn.execute(select(reversal_requests.c.id).where(
                    reversal_requests.c.transfer_id == original.id, reversal_requests.c.state == APPROVED))).first():
                raise errors.AlreadyReversed(f"transfer {original.id} was already reversed", field="transfer_id")
            if (await uow.conn.execute(select(reversal_requests.c.id).where(
                    reversal_requests.c.transfer_id == original.id, reversal_requests.c.state == PENDING))).first():
                raise ReversalPending(f"a reversal of {original.id} is already waiting for approval",
                                      field="transfer_id")
            request_id = new_id("rvr")
            await uow.conn.execute(insert(reversal_requests).values(
                id=request_id, transfer_id=original.id, state=PENDING, requested_by=operator.name,
                request_reason=why, requested_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=operator.name, action="reversal.request",
                               target=original.id, reason=why, after={"request": request_id, "state": PENDING})
            return await _load(uow, request_id)

        return await self.uow.run("reversal_request", work)

    async def approve(self, operator: Operator, request_id: str, *, reason: str) -> ReversalRequest:
        """A second operator approves: the ledger posts the reversal in this transaction. A
        ledger refusal (e.g. the money was spent meanwhile) leaves the request pending."""
        return await self._decide(operator, request_id, APPROVED, reason)

    async def reject(self, operator: Operator, request_id: str, *, reason: str) -> ReversalRequest:
        return await self._decide(operator, request_id, REJECTED, reason)

    async def _decide(self, operator: Operator, request_id: str, to: str, reason: str) -> ReversalRequest:
        operator.require(DECIDE_ROLE)
        why = _reason(reason)

        async def work(uow: UnitOfWork) -> ReversalRequest:
            row = (await uow.conn.execute(select(reversal_requests).where(reversal_requests.c.id == request_id)
                                          .with_for_update())).first()
            if row is None:
                raise NotFound(f"no reversal request {request_id}", field="request_id")
            if row.state != PENDING:
                raise ReversalDecided(f"request {request_id} is already {row.state}", field="request_id")
            if row.requested_by == operator.name:
                raise SameOperator(f"{operator.name} made this request: another operator must decide it",
                                   field="request_id")
            values: dict[str, Any] = {"state": to, "decided_by": operator.name, "decision_reason": why,
                                      "decided_at": uow.now}
            if to == APPROVED:
                reversal_id = f"reversal:{request_id}"
                [result] = await uow.post([Reverse(reversal_id, row.transfer_id, code="reversal",
                                                   reference=f"maker-checker {request_id}",
                                                   metadata={"request": request_id, "requested_by": row.requested_by,
                                                             "approved_by": operator.name})])
                if result.error is not None:
                    raise result.error
                values["reversal_id"] = reversal_id
                assert result.transfer is not None
                await _tell_wallets(uow, result.transfer, row.transfer_id)
            await uow.conn.execute(update(reversal_requests).where(reversal_requests.c.id == request_id)
                                   .values(**values))
            await audit.record(uow.conn, at=uow.now, actor=operator.name, action=f"reversal.{DECISIONS[to]}",
                               target=row.transfer_id, reason=why,
                               before={"request": request_id, "state": PENDING, "requested_by": row.requested_by},
                               after={"state": to, "reversal_id": values.get("reversal_id")})
            return await _load(uow, request_id)

        return await self.uow.run(f"reversal_{to}", work)

    async def get(self, request_id: str) -> ReversalRequest:
        async def work(uow: UnitOfWork) -> ReversalRequest:
            return await _load(uow, request_id)

        return await self.uow.run("reversal_get", work)

    async def list(self, *, state: str | None = PENDING, transfer_id: str | None = None,
                   limit: int = 100) -> list[ReversalRequest]:
        """Requests, oldest first (the approval queue), optionally one state or one transfer."""

        async def work(uow: UnitOfWork) -> list[ReversalRequest]:
            query = select(reversal_requests)
            if state:
                query = query.where(reversal_requests.c.state == state)
            if transfer_id:
                query = query.where(reversal_requests.c.transfer_id == transfer_id)
            rows = await uow.conn.execute(query.order_by(reversal_requests.c.requested_at).limit(limit))
            return [_request(r) for r in rows]

        return await self.uow.run("reversal_list", work)


async def _tell_wallets(uow: UnitOfWork, reversal: StoredTransfer, original_id: str) -> None:
    """An SMS, in the reversal's transaction, to every subscriber whose wallet it moved: money
    they did not move themselves always reaches them in words."""
    for leg in reversal.legs:
        owner = wallet_owner(leg.account)
        if owner is None:
            continue
        out = leg.side is Side.DEBIT  # a wallet is a liability: a debit takes money out of it
        await uow.emit(SmsRequested(key=f"{reversal.id}:{owner}:{leg.side.value}", to=owner,
                                    template="reversal.out" if out else "reversal.in",
                                    params={"amount_fen": leg.amount, "ref": original_id[-12:]}))


def _check_reversible(original: StoredTransfer) -> None:
    if original.type not in (TransferType.POSTED, TransferType.POST_PENDING):
        raise errors.NotReversible(f"a {original.type.value} transfer cannot be reversed (only posted money moves)",
                                   field="transfer_id")


async def _load(uow: UnitOfWork, request_id: str) -> ReversalRequest:
    row = (await uow.conn.execute(select(reversal_requests).where(reversal_requests.c.id == request_id))).first()
    if row is None:
        raise NotFound(f"no reversal request {request_id}", field="request_id")
    return _request(row)
