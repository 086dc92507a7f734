"""Product use cases: buy one of the operator's own products (wireless music, 12580
information services, Fetion membership) or an insurance policy from the wallet, and
cancel a policy within its cooling-off period for a full refund.

Each purchase is a partner order (``orders/service.py``) to the provider that
delivers it: the operator's product platform (the price is the operator's income) or
the insurer (the premium is collected for it). A failed delivery voids the hold: the
refund is automatic. A cancellation is a partner order of its own whose hold moves the
premium back from the insurer's payable to the wallet once the insurer confirms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import ValidationFailed
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
from mobipay.products.model import InsuranceProduct, OperatorProduct
from mobipay.wallet.service import Principal, User, WalletService

OPERATOR_PRODUCTS = "operator_products"  # the partner names in the order book
INSURER = "insurer"
PRODUCT, POLICY, POLICY_CANCEL = "operator_product", "insurance", "insurance_cancel"


class ProductsService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 gateways: dict[str, ProviderGateway], catalogue: dict[str, OperatorProduct],
                 insurance: dict[str, InsuranceProduct], home_operator: str = "china_mobile") -> None:
        self.uow = uow
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
        payer = None if replay else await self.wallet.authorize_payment(me, product.price, pin)
        return await self.orders.place(
            order_id, partner=OPERATOR_PRODUCTS, kind=PRODUCT, user_id=me.user_id,
            msisdn=me.msisdn, amount=product.price, fee=0, then=self._counted(payer, product.price),
            legs=[Leg.debit(me.account_code, product.price), Leg.credit(OPERATOR_PRODUCT_INCOME, product.price)],
            details=details, reference=product.name)

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
        """My policies, each with its cancellation (if any), newest first."""
        bought = await self.orders.of_user(me.user_id, (POLICY,))
        return [(p, await self.orders.get(make_order_id("ic_", p.id))) for p in bought]

    async def cancel_policy(self, me: Principal, policy_id: str) -> PartnerOrder:
        """Cancel a policy within its cooling-off period: the insurer confirms, the premium
        comes back in full. Asking again returns the same cancellation."""
        policy = await self.orders.get(policy_id)
        if policy is None or policy.user_id != me.user_id or policy.kind != POLICY or (
                policy.state is not OrderState.SUCCEEDED):
            raise errors.PolicyNotFound("no such issued policy in your wallet", field="policy_id")
        cancel_id = make_order_id("ic_", policy.id)
        existing = await self.orders.get(cancel_id)
        if existing is None or existing.state is OrderState.FAILED:
            product = self.insurance[policy.details["product"]]
            product.check_cancellable(policy.created_at, datetime.fromisoformat(policy.details["starts_at"]),
                                      self.uow.clock.now())
        payer = await self.wallet.principal(me.user_id)
        return await self.orders.place(
            cancel_id, partner=INSURER, kind=POLICY_CANCEL, user_id=me.user_id, msisdn=me.msisdn,
            amount=policy.amount, fee=0, reference=f"cancel {policy.partner_ref}",
            legs=[Leg.debit(PAYABLE_INSURER, policy.amount), Leg.credit(payer.account_code, policy.amount)],
            details={"policy": policy.partner_ref, "policy_order": policy.id, "product": policy.details["product"],
                     "paid_at": policy.created_at.isoformat()})

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
        params = {"name": order.details.get("name", order.details.get("product")), "amount_fen": order.amount,
                  "ref": order.partner_ref}
        if order.kind == POLICY:
            params["insured"] = mask_name(order.details["insured_name"])
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn,
                                    template=f"{order.kind}.{state.value}", params=params))
