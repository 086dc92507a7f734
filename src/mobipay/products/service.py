"""Product use cases: buy one of the operator's own products (wireless music, 12580
information services, Fetion membership) or an insurance policy from the wallet, and
cancel a policy within its cooling-off period for a full refund.

A monthly product is a subscription (``products/tables.py``): one live subscription per
product and subscriber, renewed from the wallet at each period's end by the worker
(``renew_due``: each period's order id derives from the subscription and the period, so a
rerun never charges twice), cancelled by the subscriber (the paid period runs out), and
lapsed when a renewal cannot be paid or delivered. "once" products stay one-off orders.

Each purchase is a partner order (``orders/service.py``) to the provider that
delivers it: the operator's product platform (the price is the operator's income) or
the insurer (the premium is collected for it). A failed delivery voids the hold: the
refund is automatic. A cancellation is a partner order of its own whose hold moves the
premium back from the insurer's payable to the wallet once the insurer confirms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key
from mobipay.kernel.msisdn import mask_name
from mobipay.ledger.chart import OPERATOR_PRODUCT_INCOME, PAYABLE_INSURER
from mobipay.ledger.model import Leg
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.orders.service import order_id as make_order_id
from mobipay.products import errors
from mobipay.products.gateway import ProviderGateway, ProviderPartner
from mobipay.products.model import (
    LIVE,
    InsuranceProduct,
    OperatorProduct,
    Subscription,
    SubscriptionState,
    add_months,
    renewal_order_id,
)
from mobipay.products.tables import product_subscriptions as subs
from mobipay.wallet.service import Principal, User, WalletService

OPERATOR_PRODUCTS = "operator_products"  # the partner names in the order book
INSURER = "insurer"
PRODUCT, POLICY, POLICY_CANCEL = "operator_product", "insurance", "insurance_cancel"
MONTHLY = "monthly"


class _Superseded(Exception):
    """A renewal found its subscription changed meanwhile (cancelled, renewed): not placed."""


def _subscription(row: Any) -> Subscription:
    return Subscription(row.id, row.user_id, row.msisdn, row.product, SubscriptionState(row.state),
                        as_utc(row.anchor), row.cycle, as_utc(row.paid_until), row.order_id, row.renewal_order,
                        row.reminded_cycle, as_utc(row.created_at),
                        as_utc(row.cancelled_at) if row.cancelled_at else None)


def subscription_id(first_order_id: str) -> str:
    """A subscription is named after the order that started it."""
    return make_order_id("ps_", first_order_id)


def _yyyymmdd(when: datetime) -> str:
    return f"{when.astimezone(SHANGHAI):%Y-%m-%d}"


class ProductsService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 gateways: dict[str, ProviderGateway], catalogue: dict[str, OperatorProduct],
                 insurance: dict[str, InsuranceProduct], home_operator: str = "china_mobile", *,
                 renewal_notice_days: int = 3) -> None:
        self.uow = uow
        #: how long before a renewal the subscriber is told (MOBIPAY_PRODUCT_RENEWAL_NOTICE_DAYS)
        self.renewal_notice = timedelta(days=renewal_notice_days)
        self.wallet = wallet
        self.orders = orders
        self.catalogue = catalogue
        self.insurance = insurance
        self.home_operator = home_operator
        for partner, gateway in gateways.items():
            orders.register(partner, ProviderPartner(gateway))
        for kind in (PRODUCT, POLICY, POLICY_CANCEL):
            orders.on_settled(kind, self._settled)

    # ------------------------------------------------------------------ the operator's products

    async def buy_product(self, me: Principal, code: str, *, idempotency_key: str, pin: str | None = None
                          ) -> PartnerOrder:
        """Subscribe my own number to one of the operator's products."""
        product = self.catalogue.get(code.upper())
        if product is None:
            raise errors.ProductNotFound(f"no product {code!r}; see GET /v1/products", field="product")
        check_idempotency_key(idempotency_key)
        _, operator, _ = self.wallet.operator_of(me.msisdn)
        if operator != self.home_operator:
            raise errors.ProductNotAvailable(f"{product.name} is for {self.home_operator} numbers only",
                                             field="product")
        order_id = make_order_id("po_", me.user_id, idempotency_key)
        details = {"product": product.code, "name": product.name, "family": product.family.value,
                   "period": product.period, "msisdn": me.msisdn}
        # The key first: a replay is answered without a new PIN, another order under it refused.
        replay = await self.orders.known(order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, amount=product.price,
                                         details=details)
        if not replay and product.period == MONTHLY:  # before the PIN: a refusal asks for nothing
            await self._refuse_if_subscribed(me.user_id, product)
        payer = None if replay else await self.wallet.authorize_payment(me, product.price, pin)
        then = self._counted(payer, product.price)
        if then is not None and product.period == MONTHLY:
            then = self._subscribing(then, me, product, order_id)
        try:
            return await self.orders.place(
                order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, user_id=me.user_id,
                msisdn=me.msisdn, amount=product.price, fee=0, then=then,
                legs=[Leg.debit(me.account_code, product.price), Leg.credit(OPERATOR_PRODUCT_INCOME, product.price)],
                details=details, reference=product.name)
        except IntegrityError:
            # A racing request won: the same key (answer its order) or another purchase of
            # this product (the live subscription's unique index refused ours; nothing charged).
            if not await self.orders.known(order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, amount=product.price,
                                           details=details):
                raise errors.AlreadySubscribed(f"{product.name} was subscribed by another request just now",
                                               field="product") from None
            return await self.orders.place(
                order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, user_id=me.user_id, msisdn=me.msisdn,
                amount=product.price, fee=0, details=details, reference=product.name,
                legs=[Leg.debit(me.account_code, product.price), Leg.credit(OPERATOR_PRODUCT_INCOME, product.price)])

    async def product_orders(self, me: Principal, limit: int = 50) -> list[PartnerOrder]:
        """My product orders (purchases and renewals) with their states, newest first."""
        return await self.orders.of_user(me.user_id, (PRODUCT,), limit)

    async def product_order(self, me: Principal, order_id: str) -> PartnerOrder:
        """One of my product orders; a pending one is asked about at the provider first."""
        order = await self.orders.get(order_id, refresh=True)
        if order is None or order.user_id != me.user_id or order.kind != PRODUCT:
            raise errors.ProductOrderNotFound("no such product order in your wallet", field="order_id")
        return order

    # ------------------------------------------------------------------ subscriptions

    async def subscriptions(self, me: Principal, limit: int = 50) -> list[Subscription]:
        """My subscriptions, live and past, newest first."""

        async def work(uow: UnitOfWork) -> list[Subscription]:
            rows = await uow.conn.execute(select(subs).where(subs.c.user_id == me.user_id)
                                          .order_by(subs.c.created_at.desc(), subs.c.id).limit(limit))
            return [_subscription(r) for r in rows]

        return await self.uow.run("product_subscriptions", work)

    async def subscription(self, me: Principal, sub_id: str) -> Subscription:
        """One of my subscriptions (another subscriber's looks exactly like a missing one)."""

        async def work(uow: UnitOfWork) -> Subscription:
            return await self._mine(uow, me, sub_id, lock=False)

        return await self.uow.run("product_subscription", work)

    async def cancel_subscription(self, me: Principal, sub_id: str) -> Subscription:
        """Stop the renewals of one of my subscriptions: the period paid for stays in service
        until it ends, nothing is refunded or charged. Asking again answers the same."""

        async def work(uow: UnitOfWork) -> Subscription:
            sub = await self._mine(uow, me, sub_id, lock=True)
            if not sub.check_cancellable():
                return sub
            await uow.conn.execute(update(subs).where(subs.c.id == sub.id).values(
                state=SubscriptionState.CANCELLED.value, cancelled_at=uow.now, updated_at=uow.now))
            await uow.emit(SmsRequested(key=f"{sub.id}:cancelled", to=sub.msisdn, template="product.cancelled",
                                        params={"name": self._name(sub.product), "until": _yyyymmdd(sub.paid_until)}))
            return await self._mine(uow, me, sub_id, lock=False)

        return await self.uow.run("cancel_product_subscription", work)

    async def renew_due(self, limit: int = 100) -> int:
        """The worker's job: tell subscribers ``renewal_notice`` before a renewal, end the
        cancelled subscriptions whose period ran out, and renew the active ones that are due
        from the wallet. Idempotent: each notice and state change is claimed under a
        condition on the row, each renewal's order id derives from subscription and period.
        Returns how many subscriptions it acted on."""

        async def due(uow: UnitOfWork) -> tuple[list[Subscription], list[Subscription], list[Subscription]]:
            now = uow.now
            notices = await uow.conn.execute(select(subs).where(
                subs.c.state == SubscriptionState.ACTIVE.value, subs.c.reminded_cycle < subs.c.cycle,
                subs.c.paid_until > now, subs.c.paid_until <= now + self.renewal_notice)
                .order_by(subs.c.paid_until).limit(limit))
            ended = await uow.conn.execute(select(subs).where(
                subs.c.state == SubscriptionState.CANCELLED.value, subs.c.renewal_order.is_(None),
                subs.c.paid_until <= now).order_by(subs.c.paid_until).limit(limit))
            renewals = await uow.conn.execute(select(subs).where(
                subs.c.state == SubscriptionState.ACTIVE.value, subs.c.renewal_order.is_(None),
                subs.c.paid_until <= now).order_by(subs.c.paid_until).limit(limit))
            return ([_subscription(r) for r in notices], [_subscription(r) for r in ended],
                    [_subscription(r) for r in renewals])

        notices, ended, renewals = await self.uow.run("subscriptions_due", due)
        for sub in notices:
            await self.uow.run("subscription_notice", partial(self._notice, sub=sub))
        for sub in ended:
            await self.uow.run("subscription_end", partial(self._end, sub=sub))
        for sub in renewals:
            await self._renew(sub)
        return len(notices) + len(ended) + len(renewals)

    async def _refuse_if_subscribed(self, user_id: str, product: OperatorProduct) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self._check_free(uow, user_id, product)

        await self.uow.run("product_subscribed", work)

    async def _check_free(self, uow: UnitOfWork, user_id: str, product: OperatorProduct) -> None:
        """Refuse a second live subscription; close one whose paid period ran out and that
        the worker has not closed yet (so it no longer holds the product)."""
        row = (await uow.conn.execute(select(subs).where(subs.c.live_key == f"{user_id}|{product.code}")
                                      .with_for_update())).first()
        if row is None:
            return
        sub = _subscription(row)
        if sub.holds_product(uow.now):
            what = ("waiting for the provider" if sub.state is SubscriptionState.PENDING
                    else f"paid until {sub.paid_until.astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing time"
                    + (", cancelled" if sub.state is SubscriptionState.CANCELLED else ", renews by itself"))
            raise errors.AlreadySubscribed(f"{product.name} is already subscribed ({what}); see "
                                           f"GET /v1/products/subscriptions/{sub.id}", field="product",
                                           subscription_id=sub.id)
        done = SubscriptionState.ENDED if sub.state is SubscriptionState.CANCELLED else SubscriptionState.LAPSED
        await uow.conn.execute(update(subs).where(subs.c.id == sub.id).values(
            state=done.value, live_key=None, updated_at=uow.now))

    def _subscribing(self, count: Callable[[UnitOfWork], Awaitable[None]], me: Principal, product: OperatorProduct,
                     order_id: str) -> Callable[[UnitOfWork], Awaitable[None]]:
        """In the placing unit of work: count the payment and start the subscription (pending
        until the provider answers). A subscription started meanwhile refuses it, hold and all."""

        async def start(uow: UnitOfWork) -> None:
            await count(uow)
            await self._check_free(uow, me.user_id, product)
            await uow.conn.execute(insert(subs).values(
                id=subscription_id(order_id), user_id=me.user_id, msisdn=me.msisdn, product=product.code,
                state=SubscriptionState.PENDING.value, anchor=uow.now, cycle=1, paid_until=add_months(uow.now, 1),
                order_id=order_id, renewal_order=None, reminded_cycle=0, live_key=f"{me.user_id}|{product.code}",
                created_at=uow.now, updated_at=uow.now))

        return start

    async def _mine(self, uow: UnitOfWork, me: Principal, sub_id: str, *, lock: bool) -> Subscription:
        query = select(subs).where(subs.c.id == sub_id, subs.c.user_id == me.user_id)
        row = (await uow.conn.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            raise errors.SubscriptionNotFound("no such subscription in your wallet", field="subscription_id")
        return _subscription(row)

    def _name(self, code: str) -> str:
        product = self.catalogue.get(code)
        return product.name if product else code

    async def _notice(self, uow: UnitOfWork, sub: Subscription) -> None:
        """The renewal notice, once per period (the row's ``reminded_cycle`` is the claim)."""
        claimed = await uow.conn.execute(update(subs).where(
            subs.c.id == sub.id, subs.c.state == SubscriptionState.ACTIVE.value,
            subs.c.reminded_cycle < sub.cycle).values(reminded_cycle=sub.cycle, updated_at=uow.now))
        product = self.catalogue.get(sub.product)
        if claimed.rowcount and product is not None:
            await uow.emit(SmsRequested(
                key=f"{sub.id}:{sub.cycle + 1}:notice", to=sub.msisdn, template="product.renewal_notice",
                params={"name": product.name, "amount_fen": product.price, "date": _yyyymmdd(sub.paid_until)}))

    async def _end(self, uow: UnitOfWork, sub: Subscription) -> None:
        """A cancelled subscription's paid period is over: it no longer holds the product."""
        closed = await uow.conn.execute(update(subs).where(
            subs.c.id == sub.id, subs.c.state == SubscriptionState.CANCELLED.value,
            subs.c.renewal_order.is_(None)).values(state=SubscriptionState.ENDED.value, live_key=None,
                                                   updated_at=uow.now))
        if closed.rowcount:
            await uow.emit(SmsRequested(key=f"{sub.id}:ended", to=sub.msisdn, template="product.ended",
                                        params={"name": self._name(sub.product)}))

    async def _renew(self, sub: Subscription) -> None:
        """Pay the next period from the wallet as a partner order (standing consent: no PIN;
        the tier's limits still apply). A refusal (balance, limits, a frozen wallet, a
        product no longer sold monthly) lapses the subscription, told by SMS."""
        cycle = sub.cycle + 1
        order_id = renewal_order_id(sub.id, cycle)
        product = self.catalogue.get(sub.product)
        try:
            if product is None or product.period != MONTHLY:
                raise errors.ProductNotFound(f"{sub.product} is no longer sold by the month", field="product")
            details = {"product": product.code, "name": product.name, "family": product.family.value,
                       "period": product.period, "msisdn": sub.msisdn, "subscription": sub.id, "cycle": cycle}
            me = await self.wallet.principal(sub.user_id)
            replay = await self.orders.known(order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT,
                                             amount=product.price, details=details)
            payer = None if replay else await self.wallet.authorize_payment(me, product.price, None, consent=True)
            await self.orders.place(
                order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, user_id=sub.user_id, msisdn=sub.msisdn,
                amount=product.price, fee=0, then=self._renewing(payer, sub, cycle, order_id),
                legs=[Leg.debit(me.account_code, product.price), Leg.credit(OPERATOR_PRODUCT_INCOME, product.price)],
                details=details, reference=f"{product.name} renewal")
        except _Superseded:
            return
        except MobipayError as exc:
            if await self.orders.get(order_id) is not None:
                return  # placed: its settlement (the hook) decides, not this refusal
            code = exc.code
            await self.uow.run("subscription_lapse", lambda uow: self._lapse(uow, sub, code))

    def _renewing(self, payer: User | None, sub: Subscription, cycle: int, order_id: str
                  ) -> Callable[[UnitOfWork], Awaitable[None]]:
        """In the placing unit of work: the subscription is still due (not cancelled or renewed
        meanwhile: else nothing is placed), the payment counts, the renewal is at the provider."""

        async def claim(uow: UnitOfWork) -> None:
            row = (await uow.conn.execute(select(subs).where(subs.c.id == sub.id).with_for_update())).one()
            if (row.state, row.cycle, row.renewal_order) != (SubscriptionState.ACTIVE.value, cycle - 1, None):
                raise _Superseded
            if payer is not None:
                await self.wallet.count_payment(uow, payer, self.catalogue[sub.product].price)
            await uow.conn.execute(update(subs).where(subs.c.id == sub.id).values(renewal_order=order_id,
                                                                                  updated_at=uow.now))

        return claim

    async def _lapse(self, uow: UnitOfWork, sub: Subscription, code: str) -> None:
        lapsed = await uow.conn.execute(update(subs).where(
            subs.c.id == sub.id, subs.c.state == SubscriptionState.ACTIVE.value, subs.c.cycle == sub.cycle,
            subs.c.renewal_order.is_(None)).values(state=SubscriptionState.LAPSED.value, live_key=None,
                                                   updated_at=uow.now))
        if lapsed.rowcount:
            product = self.catalogue.get(sub.product)
            await uow.emit(SmsRequested(
                key=f"{sub.id}:{sub.cycle + 1}:lapsed", to=sub.msisdn, template="product.renewal_refused",
                params={"name": self._name(sub.product), "amount_fen": product.price if product else 0,
                        "code": code}))

    async def _subscription_settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> bool:
        """A monthly order settled: start the subscription, or extend it by the period paid;
        a failure ends it (the hold is voided: the money is back). True when it told the
        subscriber itself."""
        cycle = int(order.details.get("cycle", 1))
        sub_id = str(order.details.get("subscription") or subscription_id(order.id))
        row = (await uow.conn.execute(select(subs).where(subs.c.id == sub_id).with_for_update())).first()
        if row is None:
            return False  # bought before subscriptions existed
        sub = _subscription(row)
        name = self._name(sub.product)
        if state is OrderState.SUCCEEDED:
            values: dict[str, Any] = {"updated_at": uow.now}
            if cycle == 1 and sub.state is SubscriptionState.PENDING:
                values["state"] = SubscriptionState.ACTIVE.value
            elif cycle == sub.cycle + 1:
                values.update(cycle=cycle, paid_until=add_months(sub.anchor, cycle), order_id=order.id,
                              renewal_order=None)
            await uow.conn.execute(update(subs).where(subs.c.id == sub.id).values(**values))
            if cycle == 1:
                return False  # the purchase's own SMS: activated, with the provider's reference
            until, template = add_months(sub.anchor, cycle), "product.renewed"
        else:
            if sub.state in LIVE:
                await uow.conn.execute(update(subs).where(subs.c.id == sub.id).values(
                    state=(SubscriptionState.FAILED if cycle == 1 else SubscriptionState.LAPSED).value,
                    live_key=None, renewal_order=None, updated_at=uow.now))
            if cycle == 1:
                return False  # the purchase's own SMS: could not be activated, money back
            until, template = sub.paid_until, "product.renewal_failed"
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn, template=template,
                                    params={"name": name, "amount_fen": order.amount, "until": _yyyymmdd(until)}))
        return True

    # ------------------------------------------------------------------ insurance

    async def buy_policy(self, me: Principal, code: str, *, insured_name: object, insured_id: object,
                         starts_on: date, idempotency_key: str, pin: str | None = None) -> PartnerOrder:
        """Buy a policy covering a person (myself or another) from ``starts_on`` (Shanghai)."""
        product = self.insurance.get(code.upper())
        if product is None:
            raise errors.ProductNotFound(f"no insurance product {code!r}; see GET /v1/insurance/products",
                                         field="product")
        check_idempotency_key(idempotency_key)
        name, id_number = self.wallet.check_identity(insured_name, insured_id)
        today = self.uow.clock.now().astimezone(SHANGHAI).date()
        if not today <= starts_on <= today + timedelta(days=90):
            raise ValidationFailed("cover starts between today and 90 days from now", field="starts_on")
        starts = datetime.combine(starts_on, time.min, SHANGHAI)
        order_id = make_order_id("ip_", me.user_id, idempotency_key)
        details = {"product": product.code, "name": product.name, "insurer": product.insurer,
                   "insured_name": name, "insured_id": id_number, "msisdn": me.msisdn,
                   "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(days=product.term_days)).isoformat()}
        replay = await self.orders.known(order_id, partner=INSURER, kind=POLICY, amount=product.premium,
                                         details=details)  # the key first, as for products
        payer = None if replay else await self.wallet.authorize_payment(me, product.premium, pin)
        return await self.orders.place(
            order_id, partner=INSURER, kind=POLICY, user_id=me.user_id,
            msisdn=me.msisdn, amount=product.premium, fee=0, then=self._counted(payer, product.premium),
            legs=[Leg.debit(me.account_code, product.premium), Leg.credit(PAYABLE_INSURER, product.premium)],
            details=details, reference=product.name)

    async def policies(self, me: Principal) -> list[tuple[PartnerOrder, PartnerOrder | None]]:
        """My policies, each with its latest cancellation attempt (if any), newest first."""
        bought = await self.orders.of_user(me.user_id, (POLICY,))
        return [(p, (await self._cancellations(p.id))[1]) for p in bought]

    async def _cancellations(self, policy_order_id: str) -> tuple[int, PartnerOrder | None]:
        """The number and order of a policy's latest cancellation attempt (0, None: none yet)."""
        attempt, latest = 0, None
        while (found := await self.orders.get(cancel_order_id(policy_order_id, attempt + 1))) is not None:
            attempt, latest = attempt + 1, found
        return attempt, latest

    async def cancel_policy(self, me: Principal, policy_id: str) -> PartnerOrder:
        """Cancel a policy within its cooling-off period: the insurer confirms, the premium
        comes back in full. Asking again returns the same cancellation while it is pending
        or done; after the insurer declined one, asking again within the cooling-off period
        is a new attempt (a new order: its id derives from the policy and the attempt)."""
        policy = await self.orders.get(policy_id)
        if policy is None or policy.user_id != me.user_id or policy.kind != POLICY or (
                policy.state is not OrderState.SUCCEEDED):
            raise errors.PolicyNotFound("no such issued policy in your wallet", field="policy_id")
        attempt, latest = await self._cancellations(policy.id)
        if latest is not None and latest.state is not OrderState.FAILED:
            attempt, details = attempt - 1, latest.details  # the same attempt: a replay (pending: sent again)
        else:
            product = self.insurance[policy.details["product"]]
            product.check_cancellable(policy.created_at, datetime.fromisoformat(policy.details["starts_at"]),
                                      self.uow.clock.now())
            details = {"policy": policy.partner_ref, "policy_order": policy.id, "product": policy.details["product"],
                       "paid_at": policy.created_at.isoformat(), "starts_at": policy.details["starts_at"],
                       "attempt": attempt + 1}
        payer = await self.wallet.principal(me.user_id)
        return await self.orders.place(
            cancel_order_id(policy.id, attempt + 1), partner=INSURER, kind=POLICY_CANCEL, user_id=me.user_id,
            msisdn=me.msisdn, amount=policy.amount, fee=0, reference=f"cancel {policy.partner_ref}",
            legs=[Leg.debit(PAYABLE_INSURER, policy.amount), Leg.credit(payer.account_code, policy.amount)],
            details=details)

    def cancellable_until(self, cancellation: PartnerOrder) -> datetime | None:
        """Until when a declined cancellation may be asked for again (None: the policy's
        product is no longer on sale, or the order is not a cancellation)."""
        product = self.insurance.get(str(cancellation.details.get("product", "")))
        if product is None or "paid_at" not in cancellation.details:
            return None
        paid = datetime.fromisoformat(cancellation.details["paid_at"])
        starts = cancellation.details.get("starts_at")
        return product.cancellable_until(paid, datetime.fromisoformat(starts) if starts else paid)

    # ------------------------------------------------------------------ outcomes

    def _counted(self, payer: User | None, amount: int) -> Callable[[UnitOfWork], Awaitable[None]] | None:
        """Count a new payment against the payer's limits (None: a replay, nothing to count)."""
        if payer is None:
            return None

        async def count(uow: UnitOfWork) -> None:
            await self.wallet.count_payment(uow, payer, amount)

        return count

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        """Tell the subscriber; a failed purchase or a done refund stops counting against limits."""
        if order.kind in (PRODUCT, POLICY) and state is OrderState.FAILED:
            await self.wallet.uncount_payment(uow, order.user_id, order.amount, order.created_at)
        if order.kind == POLICY_CANCEL and state is OrderState.SUCCEEDED:
            await self.wallet.uncount_payment(uow, order.user_id, order.amount,
                                              datetime.fromisoformat(order.details["paid_at"]))
        if order.kind == PRODUCT and order.details.get("period") == MONTHLY and (
                await self._subscription_settled(uow, order, state)):
            return
        code = order.details.get("product", "")
        known = self.insurance.get(code) or self.catalogue.get(code)
        params = {"name": order.details.get("name") or (known.name if known else code), "amount_fen": order.amount,
                  "ref": order.partner_ref}
        template = f"{order.kind}.{state.value}"
        if order.kind == POLICY:
            params["insured"] = mask_name(order.details["insured_name"])
        if order.kind == POLICY_CANCEL and state is OrderState.FAILED:
            # Declined: the premium stays with the insurer; say so, and until when to ask again.
            params["name"] = self._insurance_name(order)
            until = self.cancellable_until(order)
            template, params["until"] = "insurance_cancel.declined", (
                f"{until.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if until else "-")
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn, template=template,
                                    params=params))

    def _insurance_name(self, order: PartnerOrder) -> str:
        product = self.insurance.get(str(order.details.get("product", "")))
        return product.name if product else str(order.details.get("product", ""))


def cancel_order_id(policy_order_id: str, attempt: int) -> str:
    """A policy's cancellation attempt ``attempt`` (1, 2, …): the first keeps the id it
    always had; each retry after a decline is its own order, so the insurer sees a new one."""
    if attempt == 1:
        return make_order_id("ic_", policy_order_id)
    return make_order_id("ic_", policy_order_id, str(attempt))
