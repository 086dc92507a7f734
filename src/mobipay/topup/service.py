"""Top-up use cases: quote, top up any mainland number from the wallet, follow the order,
reconcile a partner's daily file.

A top-up is a partner order (``orders/service.py``) whose hold takes the price
from the payer's wallet (and the discount from the marketing expense account) towards
what the operator platform owes the partner that credits the phone (the home operator's
billing system, or the aggregator). The partner's success posts it; its failure voids it
and the payer has their money back; no answer leaves it pending until a status query or
the partner's file settles it. The payer gets an SMS for each outcome, and the topped-up
number too when it is someone else's. The payment counts against the payer's limits.
"""

from __future__ import annotations

from datetime import date

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import NotFound
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key
from mobipay.kernel.money import check_amount
from mobipay.ledger.chart import PAYABLE_AGGREGATOR, PAYABLE_OPERATOR_BILLING, TOPUP_DISCOUNTS
from mobipay.ledger.model import Leg
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder, ReconReport
from mobipay.orders.service import order_id as make_order_id
from mobipay.topup.gateway import TopupGateway, TopupPartner
from mobipay.topup.model import PriceRules, Quote, Route, TopupPolicy
from mobipay.wallet.service import Principal, WalletService

KIND = "topup"
PAYABLE = {Route.OPERATOR_BILLING: PAYABLE_OPERATOR_BILLING, Route.AGGREGATOR: PAYABLE_AGGREGATOR}


class TopupService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 gateways: dict[Route, TopupGateway], rules: PriceRules, policy: TopupPolicy | None = None) -> None:
        self.uow = uow
        self.wallet = wallet
        self.orders = orders
        self.gateways = gateways
        self.rules = rules
        self.policy = policy or TopupPolicy()
        for route, gateway in gateways.items():
            orders.register(route.value, TopupPartner(gateway))
        orders.on_settled(KIND, self._settled)

    def quote(self, raw_msisdn: str, face: object) -> Quote:
        """What topping up ``face`` fen on this number costs today, and who credits it."""
        amount = self.policy.check(check_amount(face))
        msisdn, operator, _ = self.wallet.operator_of(raw_msisdn)
        today = self.uow.clock.now().astimezone(SHANGHAI).date()
        return self.rules.quote(msisdn, operator, amount, today, self.policy)

    async def topup(self, me: Principal, raw_msisdn: str, face: object, *, idempotency_key: str,
                    pin: str | None = None, consent: bool = False) -> PartnerOrder:
        """Top up a number (the payer's own or anyone's) by ``face`` fen, paying the price.
        ``consent``: the channel confirmed intent in place of the PIN (SMS secondary confirmation)."""
        quote = self.quote(raw_msisdn, face)
        check_idempotency_key(idempotency_key)
        order_id = make_order_id("tu_", me.user_id, idempotency_key)
        details = {"msisdn": quote.msisdn, "operator": quote.operator, "price": quote.price,
                   "discount": quote.discount, "rule": quote.rule}
        # The key first: a replay is answered without a new PIN, another order under it refused.
        replay = await self.orders.known(order_id, partner=quote.route.value, kind=KIND, amount=quote.face,
                                         details=details)
        payer = None if replay else await self.wallet.authorize_payment(me, quote.price, pin,
                                                                         consent=consent)
        legs = [Leg.debit(me.account_code, quote.price), Leg.credit(PAYABLE[quote.route], quote.face)]
        if quote.discount:
            legs.insert(1, Leg.debit(TOPUP_DISCOUNTS, quote.discount))

        async def count(uow: UnitOfWork) -> None:
            assert payer is not None
            await self.wallet.count_payment(uow, payer, quote.price)

        return await self.orders.place(
            order_id, partner=quote.route.value, kind=KIND, user_id=me.user_id, msisdn=me.msisdn,
            amount=quote.face, fee=0, legs=legs, then=None if replay else count, reference=f"top-up {quote.msisdn}",
            details=details)

    async def get(self, me: Principal, order_id: str) -> PartnerOrder:
        """One of my top-ups; a pending one is asked about at the partner first."""
        order = await self.orders.get(order_id, refresh=True)
        if order is None or order.user_id != me.user_id or order.kind != KIND:
            raise NotFound("no such top-up in your wallet", field="order_id")
        return order

    async def mine(self, me: Principal, limit: int = 50) -> list[PartnerOrder]:
        return await self.orders.of_user(me.user_id, (KIND,), limit)

    async def reconcile(self, route: Route, day: date) -> ReconReport:
        """Fetch a partner's daily file and reconcile it (see ``OrderBook.reconcile``)."""
        return await self.orders.reconcile(route.value, day, await self.gateways[route].statement(day))

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        """Tell the payer (and the topped-up number, when it is someone else's); a failed
        top-up no longer counts against the payer's limits."""
        target = str(order.details["msisdn"])
        if order.details.get("channel") == "partner":  # a partner's customer: the partner tells them
            return
        if state is OrderState.FAILED:
            await self.wallet.uncount_payment(uow, order.user_id, int(order.details["price"]), order.created_at)
        params = {"msisdn": target, "face_fen": order.amount, "price_fen": order.details["price"]}
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn,
                                    template=f"topup.{state.value}", params=params))
        if state is OrderState.SUCCEEDED and target != order.msisdn:
            await uow.emit(SmsRequested(key=f"{order.id}:recipient", to=target, template="topup.received",
                                        params={"face_fen": order.amount}))
