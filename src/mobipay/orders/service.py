"""Orders to partners whose answer may be late, lost or wrong: one engine for cash-in and
cash-out at the bank, top-ups at the operator's billing system or an aggregator, bill
payments at billers, and the products after them.

The rule that keeps money right whatever the partner does:

1. ``place``: in one unit of work, write the order ``pending`` and hold its money in the
   ledger (a pending transfer whose legs the context chooses); its id, derived from the
   client's idempotency key, is the id the partner sees and keeps unique;
2. ``submit`` it, outside any transaction;
3. ``settle`` on the partner's clear answer: post the hold (succeeded) or void it
   (failed), and run the context's hook (SMS, closing a wallet…) in the same unit of work.
   No answer, a late one, an error or an unsigned reply leaves the order pending:
   ``resolve_pending`` (the worker) asks again with backoff and submits again when the
   partner never got it (same id: it cannot act twice), and ``reconcile`` settles from the
   partner's daily file and records every difference.

A crash between any two steps leaves a pending order that one of these settles.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy import func, insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, NotFound
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import wallet_owner
from mobipay.ledger.model import Leg, PostPending, Reverse, Side, Transfer, VoidPending
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.errors import OrderConflict
from mobipay.orders.model import OrderState, PartnerAnswer, PartnerStatus, check_settle, next_check_s
from mobipay.orders.tables import partner_orders, partner_recon_items
from mobipay.platform import audit

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PartnerOrder:
    id: str
    partner: str
    kind: str
    user_id: str
    msisdn: str
    amount: int
    fee: int
    state: OrderState
    partner_ref: str
    reason: str
    details: dict[str, Any]
    created_at: datetime
    settled_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a partner's daily file."""

    order_id: str
    partner_ref: str
    amount: int
    status: PartnerStatus


class PartnerPort(Protocol):
    """What the engine needs of a partner's adapter."""

    async def submit(self, order: PartnerOrder) -> PartnerAnswer: ...

    async def query(self, order: PartnerOrder) -> PartnerAnswer: ...


SettledHook = Callable[[UnitOfWork, PartnerOrder, OrderState], Awaitable[None]]


@dataclass
class ReconReport:
    partner: str
    day: date
    lines: int = 0
    matched: int = 0
    settled_from_file: int = 0
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None


def _order(row: Any, replayed: bool = False) -> PartnerOrder:
    return PartnerOrder(row.id, row.partner, row.kind, row.user_id, row.msisdn, row.amount, row.fee,
                        OrderState(row.state), row.partner_ref, row.reason, json.loads(row.details),
                        as_utc(row.created_at), as_utc(row.settled_at) if row.settled_at else None, replayed)


def order_id(prefix: str, *parts: str) -> str:
    """An order id derived from what makes the order unique (the payer and their
    Idempotency-Key, a partner and its order number…): the same request, the same order."""
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def hold_id(order_id: str) -> str:
    """The ledger transfer holding an order's money."""
    return f"order:{order_id}"


def settling_ids(hold: str) -> tuple[str, str]:
    """The ledger transfers that post and that void an order's hold (one of them, once):
    a receipt reads the order's state from which exists."""
    return f"{hold}:post", f"{hold}:void"


class OrderBook:
    """Places, submits, settles and reconciles partner orders for every context."""

    def __init__(self, uow: UnitOfWorkRunner, report_dir: Path = Path("var/reports")) -> None:
        self.uow = uow
        self.report_dir = report_dir
        self.ports: dict[str, PartnerPort] = {}
        self.hooks: dict[str, SettledHook] = {}
        #: partner → the partner whose daily file lists its orders (the bank's payouts are in the bank's file)
        self.files: dict[str, str] = {}

    async def standing(self, uow: UnitOfWork, *, partner: str, kind: str, details: dict[str, str],
                       excluding: str = "") -> int:
        """In the caller's transaction: how much ``partner``'s orders of ``kind`` that have
        not failed (pending or done) and whose details hold every pair of ``details`` add
        up to, leaving out the order ``excluding`` (e.g. what a bill number was paid)."""
        query = select(func.coalesce(func.sum(partner_orders.c.amount), 0)).where(
            *_standing(partner, kind, details, excluding))
        return int((await uow.conn.execute(query)).scalar_one())

    async def any_standing(self, uow: UnitOfWork, *, partner: str, kind: str, details: dict[str, str],
                           excluding: str = "") -> bool:
        """Whether one such order exists (stops at the first)."""
        query = select(partner_orders.c.id).where(*_standing(partner, kind, details, excluding)).limit(1)
        return (await uow.conn.execute(query)).first() is not None

    def register(self, partner: str, port: PartnerPort, *, file_of: str | None = None) -> None:
        """Route orders to ``partner`` (or, for a family like ``biller``, to ``biller:<CODE>``) to ``port``.
        ``file_of``: another partner's daily file lists these orders too (one bank, two kinds of call)."""
        self.ports[partner] = port
        if file_of is not None:
            self.files[partner] = file_of

    def _in_file(self, partner: str) -> set[str]:
        """The partners whose orders ``partner``'s daily file lists."""
        return {partner} | {p for p, f in self.files.items() if f == partner}

    def _port(self, partner: str) -> PartnerPort:
        return self.ports.get(partner) or self.ports[partner.split(":", 1)[0]]

    def on_settled(self, kind: str, hook: SettledHook) -> None:
        """Run ``hook`` in the settling unit of work whenever an order of ``kind`` settles."""
        self.hooks[kind] = hook

    async def place(self, order_id: str, *, partner: str, kind: str, user_id: str, msisdn: str, amount: int,
                    fee: int, legs: Sequence[Leg], details: dict[str, Any], reference: str = "",
                    then: Callable[[UnitOfWork], Awaitable[None]] | None = None) -> PartnerOrder:
        """Write the order and its hold (or find it again: the same id with the same partner,
        kind, amount and details is a replay, anything else a conflict), then submit it while
        it is pending. ``then`` runs in the placing unit of work, first time only."""

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            row = await _row(uow, order_id)
            if row is not None:
                _check_same(row, partner, kind, amount, details)
                return row, True
            [result] = await uow.post([Transfer(hold_id(order_id), tuple(legs), kind, pending=True,
                                                reference=reference or f"{partner} order {order_id}")])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(insert(partner_orders).values(
                id=order_id, partner=partner, kind=kind, user_id=user_id, msisdn=msisdn, amount=amount, fee=fee,
                state=OrderState.PENDING.value, details=json.dumps(details, ensure_ascii=False, sort_keys=True),
                created_at=uow.now, updated_at=uow.now, next_check_at=uow.now + timedelta(seconds=next_check_s(0))))
            if then is not None:
                await then(uow)
            return await _row(uow, order_id), False

        row, replayed = await self.uow.run(f"place_{kind}", work)
        order = _order(row, replayed)
        if order.state is OrderState.PENDING:
            await self.submit(order)  # a replay of a pending order submits again: the partner dedupes by id
            order = _order(await self._find(order_id), replayed)
        return order

    async def known(self, order_id: str, *, partner: str, kind: str, amount: int, details: dict[str, Any]) -> bool:
        """Whether this order was placed before (a replay: ``place`` answers it, no new PIN or
        check is needed); another order under the same id is refused here, before anything
        else is asked (IDEMPOTENCY_CONFLICT). Contexts call it first: the key comes first."""
        row = await self._find(order_id)
        if row is None:
            return False
        _check_same(row, partner, kind, amount, details)
        return True

    async def submit(self, order: PartnerOrder) -> OrderState:
        return await self.settle(await self._port(order.partner).submit(order))

    async def settle(self, answer: PartnerAnswer) -> OrderState:
        """Apply a partner's answer: post or void the hold on a final answer, otherwise
        schedule the next status query. A repeated answer changes nothing."""
        target = answer.final

        async def work(uow: UnitOfWork) -> OrderState:
            row = (await uow.conn.execute(select(partner_orders).where(partner_orders.c.id == answer.order_id)
                                          .with_for_update())).one()
            current = OrderState(row.state)
            if target is None:
                if current is OrderState.PENDING:
                    await uow.conn.execute(update(partner_orders).where(partner_orders.c.id == row.id).values(
                        checks=row.checks + 1, updated_at=uow.now,
                        next_check_at=uow.now + timedelta(seconds=next_check_s(row.checks + 1))))
                return current
            if not check_settle(current, target):
                return current
            hold = hold_id(row.id)
            post_id, void_id = settling_ids(hold)
            command = (PostPending(post_id, hold, code=row.kind) if target is OrderState.SUCCEEDED
                       else VoidPending(void_id, hold, code=f"{row.kind}.failed"))
            [result] = await uow.post([command])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(update(partner_orders).where(partner_orders.c.id == row.id).values(
                state=target.value, partner_ref=answer.partner_ref[:64], reason=answer.reason[:64],
                settled_at=uow.now, updated_at=uow.now))
            hook = self.hooks.get(row.kind)
            if hook is not None:
                await hook(uow, _order(await _row(uow, row.id)), target)
            return target

        try:
            return await self.uow.run("settle_order", work)
        except OrderConflict:
            log.error("partner.contradicting_answer", order_id=answer.order_id, status=answer.status.value)
            raise

    async def resolve(self, order: PartnerOrder) -> None:
        """Ask the partner about a pending order; submit it again if the partner never got it."""
        answer = await self._port(order.partner).query(order)
        if answer.status is PartnerStatus.NOT_FOUND:
            await self.submit(order)
        else:
            await self.settle(answer)

    async def resolve_pending(self, limit: int = 100) -> int:
        """Ask partners about pending orders that are due; returns how many were asked."""

        async def due(uow: UnitOfWork) -> list[PartnerOrder]:
            rows = await uow.conn.execute(select(partner_orders).where(
                partner_orders.c.state == OrderState.PENDING.value, partner_orders.c.next_check_at <= uow.now)
                .order_by(partner_orders.c.next_check_at).limit(limit))
            return [_order(r) for r in rows]

        orders = await self.uow.run("orders_due", due)
        for order in orders:
            with contextlib.suppress(OrderConflict):  # logged; reconciliation lists it for a person
                await self.resolve(order)
        return len(orders)


    async def get(self, order_id: str, *, refresh: bool = False) -> PartnerOrder | None:
        """An order; with ``refresh`` a pending one is asked about at the partner first."""
        row = await self._find(order_id)
        if row is None:
            return None
        order = _order(row)
        if refresh and order.state is OrderState.PENDING:
            with contextlib.suppress(OrderConflict):
                await self.resolve(order)
            order = _order(await self._find(order_id))
        return order

    async def of_user(self, user_id: str, kinds: Sequence[str], limit: int = 50) -> list[PartnerOrder]:
        async def work(uow: UnitOfWork) -> list[PartnerOrder]:
            rows = await uow.conn.execute(select(partner_orders).where(
                partner_orders.c.user_id == user_id, partner_orders.c.kind.in_(list(kinds)))
                .order_by(partner_orders.c.created_at.desc()).limit(limit))
            return [_order(r) for r in rows]

        return await self.uow.run("orders_of_user", work)

    async def pending_for(self, user_id: str, **details: str) -> bool:
        """Whether the user has a pending order whose details include ``details``."""

        async def work(uow: UnitOfWork) -> bool:
            rows = await uow.conn.execute(select(partner_orders.c.details).where(
                partner_orders.c.user_id == user_id, partner_orders.c.state == OrderState.PENDING.value))
            return any(details.items() <= json.loads(r[0]).items() for r in rows)

        return await self.uow.run("pending_orders", work)

    # ------------------------------------------------------------------ resolving differences

    async def repush(self, order_id: str, *, actor: str, reason: str) -> PartnerOrder:
        """Send an order again to a partner that does not know it ("paid here, unknown
        there"): the same id, so a partner that has it after all does nothing twice."""
        order = await self._require(order_id)
        answer = await self._port(order.partner).submit(order)
        await self._resolution(order, "repushed", actor, reason, answer.status.value)
        return order

    async def refund(self, order_id: str, *, actor: str, reason: str) -> PartnerOrder:
        """Give a payer back a succeeded order the partner never received: the posted hold is
        reversed in the ledger (once: the reversal's id derives from the order)."""
        order = await self._require(order_id)
        if order.state is not OrderState.SUCCEEDED:
            raise OrderConflict(f"only a succeeded order can be refunded; this one is {order.state.value}")

        async def work(uow: UnitOfWork) -> None:
            [result] = await uow.post([Reverse(f"refund:{order.id}", f"{hold_id(order.id)}:post",
                                               code=f"{order.kind}.refund", reference="refund after reconciliation")])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await audit.record(uow.conn, at=uow.now, actor=actor, action="order.refund", target=order.id,
                                   reason=reason, after={"amount": order.amount})
                assert result.transfer is not None
                back = sum(leg.amount for leg in result.transfer.legs
                           if wallet_owner(leg.account) is not None and leg.side is Side.CREDIT)
                if back:  # the payer is told, in this transaction: they did not ask for it
                    await uow.emit(SmsRequested(key=f"refund:{order.id}", to=order.msisdn, template="order.refunded",
                                                params={"amount_fen": back, "kind": order.kind,
                                                        "ref": order.id[-12:]}))

        await self.uow.run("refund_order", work)
        await self._resolution(order, "refunded", actor, reason, None)
        return order

    async def recon_exceptions(self, *, open_only: bool = True, partner: str | None = None,
                               limit: int = 200) -> list[dict[str, Any]]:
        """Differences the daily files left for a person (``investigate``), newest day first;
        with ``open_only=False`` also those already repushed or refunded."""

        async def work(uow: UnitOfWork) -> list[dict[str, Any]]:
            query = select(partner_recon_items).where(partner_recon_items.c.kind != "settled_from_file")
            if open_only:
                query = query.where(partner_recon_items.c.resolution == "investigate")
            if partner:
                query = query.where(partner_recon_items.c.partner == partner)
            rows = await uow.conn.execute(query.order_by(partner_recon_items.c.day.desc(),
                                                         partner_recon_items.c.created_at).limit(limit))
            return [dict(r._mapping) for r in rows]

        return await self.uow.run("recon_exceptions", work)

    async def _require(self, order_id: str) -> PartnerOrder:
        row = await self._find(order_id)
        if row is None:
            raise NotFound(f"no order {order_id}", field="order_id")
        return _order(row)

    async def _resolution(self, order: PartnerOrder, resolution: str, actor: str, reason: str,
                          partner_status: str | None) -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(partner_recon_items).where(
                partner_recon_items.c.order_id == order.id, partner_recon_items.c.resolution == "investigate")
                .values(resolution=resolution))
            await audit.record(uow.conn, at=uow.now, actor=actor, action=f"order.{resolution}", target=order.id,
                               reason=reason, after={"partner_status": partner_status})

        await self.uow.run("recon_resolution", work)

    # ------------------------------------------------------------------ the daily file

    async def reconcile(self, partner: str, day: date, lines: Sequence[StatementLine]) -> ReconReport:
        """Match a partner's file for ``day`` with our orders (its own and those of the partners
        registered with ``file_of=partner``): settle what is still pending from it and record
        every difference (also written to a CSV report)."""
        report = ReconReport(partner, day, lines=len(lines))
        covered = self._in_file(partner)
        seen: set[str] = set()
        for line in lines:
            seen.add(line.order_id)
            row = await self._find(line.order_id)
            ours = (row.state, row.amount) if row is not None else (None, None)
            if row is None or row.partner not in covered:
                kind = "missing_here"
            elif row.amount != line.amount:
                kind = "amount_mismatch"
            elif row.state == OrderState.PENDING.value and line.status in (PartnerStatus.SUCCEEDED,
                                                                           PartnerStatus.FAILED):
                await self.settle(PartnerAnswer(line.order_id, line.status, line.partner_ref, "from the daily file"))
                report.settled_from_file += 1
                await self._recon_item(partner, day, line.order_id, "settled_from_file", ours, line, "settled")
                continue
            elif row.state != line.status.value:
                kind = "status_mismatch"
            else:
                report.matched += 1
                continue
            report.exceptions.append(await self._recon_item(partner, day, line.order_id, kind, ours, line,
                                                            "investigate"))
        start = datetime.combine(day, datetime.min.time(), SHANGHAI).astimezone(UTC)  # stored as UTC

        async def ours_of_day(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(partner_orders).where(
                partner_orders.c.partner.in_(sorted(covered)), partner_orders.c.state == OrderState.SUCCEEDED.value,
                partner_orders.c.settled_at >= start, partner_orders.c.settled_at < start + timedelta(days=1))))

        for row in await self.uow.run("orders_of_day", ours_of_day):
            if row.id not in seen:
                report.exceptions.append(await self._recon_item(partner, day, row.id, "missing_there",
                                                                (row.state, row.amount), None, "investigate"))
        report.report_path = self._write_report(report)
        return report

    async def _recon_item(self, partner: str, day: date, order_id: str, kind: str, ours: tuple[Any, Any],
                          line: StatementLine | None, resolution: str) -> dict[str, Any]:
        item = {"partner": partner, "day": day, "order_id": order_id, "kind": kind, "our_state": ours[0],
                "our_amount": ours[1], "partner_status": line.status.value if line else None,
                "partner_amount": line.amount if line else None, "resolution": resolution}

        async def work(uow: UnitOfWork) -> None:
            exists = (await uow.conn.execute(select(partner_recon_items.c.id).where(
                partner_recon_items.c.partner == partner, partner_recon_items.c.day == day,
                partner_recon_items.c.order_id == order_id))).first()
            if exists is None:  # a second run of the same day records nothing twice
                await uow.conn.execute(insert(partner_recon_items).values(id=new_id("rci"), created_at=uow.now,
                                                                          **item))

        await self.uow.run("recon_item", work)
        return item

    def _write_report(self, report: ReconReport) -> Path:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / f"{report.partner}-recon-{report.day.isoformat()}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["partner", "day", "lines", "matched", "settled_from_file", "exceptions"])
            writer.writerow([report.partner, report.day, report.lines, report.matched, report.settled_from_file,
                             len(report.exceptions)])
            writer.writerow([])
            columns = ["order_id", "kind", "our_state", "our_amount", "partner_status", "partner_amount",
                       "resolution"]
            writer.writerow(columns)
            for item in report.exceptions:
                writer.writerow([item[c] for c in columns])
        return path

    async def _find(self, order_id: str) -> Any:
        return await self.uow.run("order", lambda uow: _row(uow, order_id))


def _check_same(row: Any, partner: str, kind: str, amount: int, details: dict[str, Any]) -> None:
    if (row.partner, row.kind, row.amount, json.loads(row.details)) != (partner, kind, amount, details):
        raise IdempotencyConflict("this Idempotency-Key was used for another order", field="id")


async def _row(uow: UnitOfWork, order_id: str) -> Any:
    return (await uow.conn.execute(select(partner_orders).where(partner_orders.c.id == order_id))).first()


def _standing(partner: str, kind: str, details: dict[str, str], excluding: str) -> list[Any]:
    """The orders of :meth:`OrderBook.standing`: not failed, with every pair in their details
    (JSON with sorted keys, so one pair is one exact substring)."""
    o = partner_orders
    return [o.c.partner == partner, o.c.kind == kind, o.c.state != OrderState.FAILED.value, o.c.id != excluding,
            *(o.c.details.contains(json.dumps({k: v}, ensure_ascii=False)[1:-1], autoescape=True)
              for k, v in details.items())]
