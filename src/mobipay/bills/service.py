"""Bill-zone use cases: the biller registry (import, browse by city and category, search),
fetch a bill, pay it from the wallet, receipts, and reconciling each biller's daily file.

Payment follows the national bill-payment networks' shape (fetch → confirm → hold → send
→ post or void): a payment is a partner order (``orders/service.py``) to the
partner ``biller:<CODE>``, whose hold moves the amount from the wallet towards what the
platform owes that biller (``liability:payable:biller:<CODE>``). The receipt carries the
biller's reference. Paying the same customer's bill again in the same period asks for an
explicit confirmation (``confirm_duplicate``: two bills in one month are real); a bill
itself — the biller's bill number, whichever fetch it came from — is consumed by its
payment and is never paid again, confirmation or not, unless that payment failed. A
payment counts against the payer's limits, and is given back if the biller refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from mobipay.bills import errors
from mobipay.bills.gateway import PREFIX, BillerGateway, BillerPartner, partner_name
from mobipay.bills.model import AmountRule, Bill, Biller, Category, FetchMode
from mobipay.bills.tables import billers, fetched_bills
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_name
from mobipay.ledger.model import AccountKind, Leg
from mobipay.ledger.service import AccountSpec
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder, ReconReport
from mobipay.orders.service import order_id as make_order_id
from mobipay.platform import audit
from mobipay.wallet.service import Principal, WalletService

KIND = "bill"


def payable(code: str) -> str:
    """What the platform owes a biller for the bills paid to it."""
    return f"liability:payable:biller:{code}"


@dataclass(frozen=True, slots=True)
class FetchedBill:
    id: str
    bill: Bill


def _biller(row: Any) -> Biller:
    return Biller(row.code, row.name, Category(row.category), row.city, row.province, row.id_label, row.id_regex,
                  FetchMode(row.fetch), AmountRule(row.amount_rule), row.min_fen, row.max_fen,
                  time.fromisoformat(row.opens), time.fromisoformat(row.closes), row.adapter, row.latency_ms,
                  bool(row.active))


class BillsService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 adapters: dict[str, BillerGateway]) -> None:
        self.uow = uow
        self.wallet = wallet
        self.orders = orders
        self.adapters = adapters
        orders.register(PREFIX, BillerPartner(adapters))
        orders.on_settled(KIND, self._settled)

    # ------------------------------------------------------------------ registry

    async def import_billers(self, rows: list[Biller], *, actor: str, reason: str) -> tuple[int, int]:
        """Add or update billers from a registry file (audited); returns (added, updated)."""
        for b in rows:
            if b.adapter not in self.adapters:
                raise ValueError(f"biller {b.code}: unknown adapter {b.adapter!r} (known: {', '.join(self.adapters)})")

        async def work(uow: UnitOfWork) -> tuple[int, int]:
            known = {r[0] for r in await uow.conn.execute(select(billers.c.code))}
            added = updated = 0
            for b in rows:
                values = {"name": b.name, "category": b.category.value, "city": b.city, "province": b.province,
                          "id_label": b.id_label, "id_regex": b.id_regex, "fetch": b.fetch.value,
                          "amount_rule": b.amount_rule.value, "min_fen": b.minimum, "max_fen": b.maximum,
                          "opens": b.opens.strftime("%H:%M"), "closes": b.closes.strftime("%H:%M"),
                          "adapter": b.adapter, "latency_ms": b.latency_ms, "active": b.active, "updated_at": uow.now}
                if b.code in known:
                    await uow.conn.execute(update(billers).where(billers.c.code == b.code).values(**values))
                    updated += 1
                else:
                    await uow.conn.execute(insert(billers).values(code=b.code, **values))
                    added += 1
            await audit.record(uow.conn, at=uow.now, actor=actor, action="billers.import", target="billers",
                               reason=reason, after={"added": added, "updated": updated})
            return added, updated

        return await self.uow.run("import_billers", work)

    async def cities(self) -> list[tuple[str, str, int]]:
        """(city, province, number of billers), for browsing."""

        async def work(uow: UnitOfWork) -> list[tuple[str, str, int]]:
            rows = await uow.conn.execute(select(billers.c.city, billers.c.province, func.count())
                                          .where(billers.c.active.is_(True))
                                          .group_by(billers.c.city, billers.c.province).order_by(billers.c.province))
            return [(r[0], r[1], int(r[2])) for r in rows]

        return await self.uow.run("bill_cities", work)

    async def find(self, *, city: str | None = None, category: Category | None = None, q: str | None = None,
                   limit: int = 50) -> list[Biller]:
        """Billers by city and category, or by a piece of their name or code."""

        async def work(uow: UnitOfWork) -> list[Biller]:
            query = select(billers).where(billers.c.active.is_(True))
            if city:
                query = query.where(billers.c.city == city)
            if category:
                query = query.where(billers.c.category == category.value)
            if q:
                like = f"%{q.strip()}%"
                query = query.where(or_(billers.c.name.like(like), billers.c.code.like(like.upper())))
            rows = await uow.conn.execute(query.order_by(billers.c.city, billers.c.category, billers.c.code)
                                          .limit(limit))
            return [_biller(r) for r in rows]

        return await self.uow.run("find_billers", work)

    async def biller(self, code: str) -> Biller:
        async def work(uow: UnitOfWork) -> Biller:
            row = (await uow.conn.execute(select(billers).where(billers.c.code == code.upper()))).first()
            if row is None or not row.active:
                raise errors.BillerNotFound(f"no biller {code!r}; browse GET /v1/billers?city=…", field="biller")
            return _biller(row)

        return await self.uow.run("biller", work)

    # ------------------------------------------------------------------ fetch and pay

    async def fetch(self, me: Principal, code: str, raw_customer_id: object) -> FetchedBill:
        """Ask the biller for the customer's open bill and keep it for the payment."""
        biller = await self.biller(code)
        customer_id = biller.check_customer_id(raw_customer_id)
        if biller.fetch is FetchMode.NONE:
            raise errors.BillNotFound(f"{biller.name} has no bills: pay an amount directly", field="biller")
        bill = await self.adapters[biller.adapter].fetch(biller.code, customer_id)
        if bill is None:
            raise errors.BillNotFound(f"{biller.name} has no open bill for this {biller.id_label}", field="customer_id")

        async def work(uow: UnitOfWork) -> FetchedBill:
            bill_id = new_id("bill")
            await uow.conn.execute(insert(fetched_bills).values(
                id=bill_id, user_id=me.user_id, biller=bill.biller, customer_id=bill.customer_id,
                bill_number=bill.bill_number, amount_due=bill.amount_due, customer_name=mask_name(bill.customer_name),
                due_date=bill.due_date, period=bill.period, fetched_at=uow.now))
            return FetchedBill(bill_id, replace(bill, customer_name=mask_name(bill.customer_name)))

        return await self.uow.run("fetch_bill", work)

    async def pay(self, me: Principal, code: str, raw_customer_id: object, amount: object, *, idempotency_key: str,
                  bill_id: str | None = None, pin: str | None = None, confirm_duplicate: bool = False,
                  preauthorized: bool = False) -> PartnerOrder:
        """Pay a biller from the wallet: a fetched bill (``bill_id``) or, where the biller
        allows, an amount for a customer number. ``preauthorized``: the payer's autopay
        consent stands in for the PIN."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        biller = await self.biller(code)
        customer_id = biller.check_customer_id(raw_customer_id)
        now = self.uow.clock.now()
        bill = await self._fetched(me, bill_id, biller, customer_id) if bill_id else None
        period = bill.period if bill else now.astimezone(SHANGHAI).strftime("%Y-%m")
        order_id = make_order_id("bp_", me.user_id, idempotency_key)
        partner = partner_name(biller.code)
        details = {"biller": biller.code, "biller_name": biller.name, "adapter": biller.adapter,
                   "customer_id": customer_id, "period": period, "category": biller.category.value,
                   "city": biller.city, "bill_number": bill.bill_number if bill else ""}
        replay = await self.orders.known(order_id, partner=partner, kind=KIND, amount=amount, details=details)
        payer = None
        if not replay:  # the key first: a replay is answered as one, whatever else has changed
            biller.check_open(now.astimezone(SHANGHAI).time())
            biller.check_amount(amount, bill.amount_due if bill else None)
            if bill is not None:
                fetched = bill
                await self.uow.run("bill_consumed", lambda uow: self._check_unpaid(uow, order_id, biller, fetched,
                                                                                  amount))
            if not confirm_duplicate and await self._paid_before(order_id, biller.code, customer_id, period):
                raise errors.DuplicatePayment(f"this {biller.id_label} was already paid for {period}; send "
                                              "confirm_duplicate=true to pay another bill of it",
                                              field="confirm_duplicate")
            payer = await self.wallet.authorize_payment(me, amount, pin, consent=preauthorized)
            await self.uow.ledger.open_account(AccountSpec(payable(biller.code), AccountKind.LIABILITY,
                                                           name=f"Payable to {biller.name}"))

        async def count(uow: UnitOfWork) -> None:
            assert payer is not None
            if bill is not None:  # again in the placing transaction, under lock: racing payments pay it once
                await self._check_unpaid(uow, order_id, biller, bill, amount, lock=True)
            await self.wallet.count_payment(uow, payer, amount)

        return await self.orders.place(
            order_id, partner=partner, kind=KIND, user_id=me.user_id, msisdn=me.msisdn,
            amount=amount, fee=0, details=details, then=None if replay else count,
            reference=f"{biller.name} {customer_id}",
            legs=[Leg.debit(me.account_code, amount), Leg.credit(payable(biller.code), amount)])

    async def _check_unpaid(self, uow: UnitOfWork, order_id: str, biller: Biller, bill: Bill, amount: int, *,
                            lock: bool = False) -> None:
        """Refuse a consumed bill: one whose number earlier payments (pending or done, not
        failed) paid in full — for an exact bill, any payment does — whichever fetch each came
        from; a partial payment only up to what is left. ``lock``: first lock the customer's
        fetched bills, so payments of one bill in flight at once are decided one by one."""
        if lock:
            await uow.conn.execute(select(fetched_bills.c.id).where(
                fetched_bills.c.biller == biller.code, fetched_bills.c.customer_id == bill.customer_id)
                .order_by(fetched_bills.c.id).with_for_update())
        paid = await self.orders.standing(uow, partner=partner_name(biller.code), kind=KIND, excluding=order_id,
                                             details={"customer_id": bill.customer_id,
                                                      "bill_number": bill.bill_number})
        if not paid:
            return
        # The bill's full amount: the largest the biller ever said was due (before any payment).
        due = max(bill.amount_due, int((await uow.conn.execute(select(func.max(fetched_bills.c.amount_due)).where(
            fetched_bills.c.biller == biller.code, fetched_bills.c.customer_id == bill.customer_id,
            fetched_bills.c.bill_number == bill.bill_number))).scalar_one() or 0))
        if biller.amount_rule is AmountRule.EXACT or paid >= due:
            raise errors.BillAlreadyPaid(f"bill {bill.bill_number} of this {biller.id_label} is already paid; "
                                         "fetch the bill again to see what is due now", field="bill_id")
        if biller.amount_rule is AmountRule.PARTIAL and paid + amount > due:
            raise errors.AmountNotAllowed(f"{(due - paid) / 100:.2f} CNY of this bill is left to pay", field="amount")

    async def _fetched(self, me: Principal, bill_id: str, biller: Biller, customer_id: str) -> Bill:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(fetched_bills).where(fetched_bills.c.id == bill_id))).first()

        row = await self.uow.run("fetched_bill", work)
        if row is None or row.user_id != me.user_id or (row.biller, row.customer_id) != (biller.code, customer_id):
            raise errors.BillNotFound("no such fetched bill for this biller and customer; fetch it again",
                                      field="bill_id")
        return Bill(row.biller, row.customer_id, row.bill_number, row.amount_due, row.customer_name, row.due_date,
                    row.period)

    async def _paid_before(self, order_id: str, code: str, customer_id: str, period: str) -> bool:
        """Whether another payment (pending or done) for this customer and period exists."""

        async def work(uow: UnitOfWork) -> bool:
            return await self.orders.any_standing(uow, partner=partner_name(code), kind=KIND, excluding=order_id,
                                                  details={"customer_id": customer_id, "period": period})

        return await self.uow.run("paid_before", work)

    async def get(self, me: Principal, order_id: str) -> PartnerOrder:
        """One of my bill payments (a receipt); a pending one is asked about first."""
        order = await self.orders.get(order_id, refresh=True)
        if order is None or order.user_id != me.user_id or order.kind != KIND:
            raise errors.BillNotFound("no such bill payment in your wallet", field="payment_id")
        return order

    async def mine(self, me: Principal, limit: int = 50) -> list[PartnerOrder]:
        return await self.orders.of_user(me.user_id, (KIND,), limit)

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        if state is OrderState.FAILED:
            await self.wallet.uncount_payment(uow, order.user_id, order.amount, order.created_at)
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn, template=f"bill.{state.value}",
                                    params={"biller": order.details["biller_name"], "amount_fen": order.amount,
                                            "ref": order.partner_ref}))

    # ------------------------------------------------------------------ daily files

    async def reconcile(self, day: date, code: str | None = None) -> list[ReconReport]:
        """Reconcile ``day`` with each biller's file (one biller, or every active one)."""
        targets = [await self.biller(code)] if code else await self.find(limit=100_000)
        reports = []
        for biller in targets:
            lines = await self.adapters[biller.adapter].statement(biller.code, day)
            reports.append(await self.orders.reconcile(partner_name(biller.code), day, lines))
        return reports

