"""The rural marketplace: sellers (farmers, co-operatives, village shops) list products; buyers
order and pay; the money waits in **escrow** (``liability:rural:escrow``) until the buyer
confirms receipt, the villager picks the order up at the agent with the SMS code, or
``release_days`` pass; then the seller is paid less the platform's fee. A buyer may dispute
while the money is held; staff decide (refund or release) by the deadline, and a dispute
nobody decided is refunded at the deadline. Villagers order through their agent, paying by
wallet (with their PIN) or in cash at the agent (the agent's float pays the escrow).

Sellers sign in with their own wallet's session (they are paid into it); staff decide
disputes through the back office (admin token and ``X-Operator``), the console and the CLI.

Shipments: the logistics partner's client (``logistics_http.py``) creates one when the
seller ships; the worker polls its events and texts the buyer at each step. Price notices:
SMS subscriptions per product and county, sent when staff publish a price.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import func, insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.kernel.roles import Roster
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.service import order_id as derived_id
from mobipay.platform import audit
from mobipay.rural import errors
from mobipay.rural.model import CODE_TRIES, OrderState, check_dispute, check_release, code_hash, platform_fee
from mobipay.rural.service import AgentStaff, RuralService, _sms, _yuan, float_account
from mobipay.rural.tables import agents, orders, price_subs, prices, products, sellers, shipment_events
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

ESCROW = "liability:rural:escrow"
MARKET_FEES = "income:rural:market_fees"
STAFF_ROLE = "operations"
SELLER_KINDS = ("farmer", "coop", "shop")
STEP_WORDS = {"picked_up": ("已揽收", "picked up"), "in_transit": ("运输中", "in transit"),
              "at_village_point": ("已到村服务点", "at the village point"), "delivered": ("已送达", "delivered")}
ACCOUNTS = (AccountSpec(ESCROW, AccountKind.LIABILITY, name="Rural marketplace escrow",
                        debits_must_not_exceed_credits=True),
            AccountSpec(MARKET_FEES, AccountKind.INCOME, name="Rural marketplace fees"))


class Logistics(Protocol):
    async def create(self, order_id: str, county: str, address: str) -> str: ...
    async def events(self, tracking_no: str) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    seller_id: str
    seller: str
    title: str
    price: int
    unit: str
    stock: int
    origin: str
    photos: tuple[str, ...]
    delivery: tuple[str, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class MarketOrder:
    id: str
    product_id: str
    title: str
    buyer: str
    agent_id: str | None
    quantity: int
    amount: int
    fee: int
    paid_by: str
    state: str
    tracking_no: str | None
    release_at: datetime
    decide_by: datetime | None
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Seller:
    id: str
    msisdn: str
    name: str
    kind: str
    county: str


@dataclass(frozen=True, slots=True)
class SellerOrder:
    """An order as its seller sees it: what to send where (the buyer's number masked)."""

    order: MarketOrder
    buyer_masked: str
    county: str
    address: str


@dataclass(frozen=True, slots=True)
class Dispute:
    """An open dispute as staff see it: what, who, why, and the deadline (refunded then)."""

    order_id: str
    title: str
    seller_id: str
    seller: str
    buyer: str
    amount: int
    paid_by: str
    reason: str
    decide_by: datetime


#: The audit actions of a staff decision on a dispute, and whether each refunded; their
#: ``after`` keeps the decision's idempotency key (the decision's record: no extra table).
DECISIONS = {"rural.dispute_refunded": True, "rural.dispute_released": False}


def _order(row: Any, title: str = "", replayed: bool = False) -> MarketOrder:
    return MarketOrder(row.id, row.product_id, title, row.buyer, row.agent_id, row.quantity, int(row.amount),
                       int(row.fee), row.paid_by, row.state, row.tracking_no, as_utc(row.release_at),
                       as_utc(row.decide_by) if row.decide_by else None, as_utc(row.created_at), replayed)


class Marketplace:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, rural: RuralService, roster: Roster,
                 logistics: Logistics | None, secret: bytes, *, fee_bps: int = 300, release_days: int = 10,
                 dispute_days: int = 5) -> None:
        self.uow = uow
        self.wallet = wallet
        self.rural = rural
        self.roster = roster
        self.logistics = logistics
        self.code_key = rural.code_key
        self.fee_bps = fee_bps
        self.release_after = timedelta(days=release_days)
        self.decide_within = timedelta(days=dispute_days)
        rural.market = self

    async def open_accounts(self) -> None:
        async def work(uow: UnitOfWork) -> None:
            for spec in ACCOUNTS:
                await uow.open_account(spec)

        await self.uow.run("rural_market_accounts", work)

    # ------------------------------------------------------------------ sellers and products

    async def add_seller(self, msisdn: str, name: str, kind: str, county: str) -> str:
        """A seller, paid into its wallet (it must have one)."""
        if kind not in SELLER_KINDS:
            raise errors.RuralInvalid(f"a seller is one of {', '.join(SELLER_KINDS)}", field="kind")
        user = await self.wallet.user_by_msisdn(msisdn)
        sid = new_id("rsl")

        async def work(uow: UnitOfWork) -> str:
            known = (await uow.conn.execute(select(sellers.c.id).where(sellers.c.msisdn == user.msisdn))).first()
            if known is not None:
                return str(known[0])
            await uow.conn.execute(insert(sellers).values(id=sid, msisdn=user.msisdn, name=name[:80], kind=kind,
                                                          county=county[:32], created_at=uow.now))
            return sid

        return await self.uow.run("rural_add_seller", work)

    async def seller(self, ref: str) -> Seller:
        """A seller by its id (``rsl_…``) or its number."""
        if ref.startswith("rsl_"):
            where = sellers.c.id == ref[:40]
        else:
            try:
                where = sellers.c.msisdn == normalize_msisdn(ref)
            except MobipayError:
                raise errors.SellerNotFound(field="seller") from None
        row = await self.uow.run("rural_seller", lambda uow: _first(uow, select(sellers).where(where)))
        if row is None:
            raise errors.SellerNotFound(field="seller")
        return Seller(row.id, row.msisdn, row.name, row.kind, row.county)

    async def seller_of(self, me: Principal) -> Seller:
        """The seller whose wallet is signed in: sellers are paid into their wallet, so the
        wallet's session is the seller's sign-in (docs/rural.md)."""
        try:
            return await self.seller(me.msisdn)
        except errors.SellerNotFound:
            raise errors.NotSeller() from None

    async def list_product(self, seller_id: str, *, title: str, price: int, unit: str, stock: int, origin: str,
                           photos: Sequence[str] = (), delivery: Sequence[str] = ("*",),
                           idempotency_key: str | None = None, actor: str = "") -> Product:
        """A new product of ``seller_id``. With an ``idempotency_key`` the product id is
        derived from the seller and the key: a retry answers the first product (``replayed``),
        the same key for another product is ``IDEMPOTENCY_CONFLICT``. ``actor``: staff listing
        it for the seller (operations role, audited)."""
        if actor:
            self.roster.require(actor, STAFF_ROLE)
        _check_product(title=title, price=price, unit=unit, stock=stock, origin=origin, photos=photos,
                       delivery=delivery)
        pid = derived_id("rpd_", seller_id, check_idempotency_key(idempotency_key)) if idempotency_key is not None \
            else new_id("rpd")
        fields = {"title": title.strip(), "price": price, "unit": unit.strip()[:16], "stock": stock,
                  "origin": origin.strip()[:80], "photos": json.dumps(list(photos)),
                  "delivery": json.dumps(list(delivery) or ["*"], ensure_ascii=False)}

        async def work(uow: UnitOfWork) -> bool:
            if (await uow.conn.execute(select(sellers.c.id).where(sellers.c.id == seller_id))).first() is None:
                raise errors.SellerNotFound(field="seller_id")
            known = (await uow.conn.execute(select(products).where(products.c.id == pid))).first()
            if known is not None:
                # title and unit never change (price, stock, photos... may have since): they name it
                if known.seller_id != seller_id or (known.title, known.unit) != (fields["title"], fields["unit"]):
                    raise IdempotencyConflict("this Idempotency-Key listed another product", field="Idempotency-Key")
                return True
            await uow.conn.execute(insert(products).values(id=pid, seller_id=seller_id, created_at=uow.now, **fields))
            if actor:
                await uow.audit(actor=actor, action="rural.product_listed", target=pid, reason="for the seller",
                                after={"seller_id": seller_id, **fields})
            return False

        replayed = await self.uow.run("rural_list_product", work)
        return replace(await self.product(pid), replayed=replayed)

    async def seller_products(self, seller_id: str, limit: int = 200) -> list[Product]:
        """All of a seller's products, sold out too, newest first."""

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(products, sellers.c.name.label("seller")).join(
                sellers, sellers.c.id == products.c.seller_id).where(products.c.seller_id == seller_id)
                .order_by(products.c.created_at.desc(), products.c.id.desc()).limit(limit)))

        return [_product(r) for r in await self.uow.run("rural_seller_products", work)]

    async def update_product(self, seller_id: str, product_id: str, *, price: int | None = None,
                             stock: int | None = None, photos: Sequence[str] | None = None,
                             origin: str | None = None, delivery: Sequence[str] | None = None,
                             actor: str = "") -> Product:
        """The seller changes its own product (what is given; the rest stays). Orders
        already placed keep their price. Another seller's product is "no such product"."""
        if actor:
            self.roster.require(actor, STAFF_ROLE)
        current = await self.product(product_id)
        if current.seller_id != seller_id:
            raise errors.ProductNotFound(field="product_id")
        new_price = current.price if price is None else price
        new_stock = current.stock if stock is None else stock
        new_photos = current.photos if photos is None else tuple(photos)
        new_origin = current.origin if origin is None else origin
        new_delivery = current.delivery if delivery is None else tuple(delivery)
        _check_product(title=current.title, price=new_price, unit=current.unit, stock=new_stock, origin=new_origin,
                       photos=new_photos, delivery=new_delivery)
        values: dict[str, Any] = {}
        if price is not None:
            values["price"] = price
        if stock is not None:
            values["stock"] = stock
        if photos is not None:
            values["photos"] = json.dumps(list(photos))
        if origin is not None:
            values["origin"] = origin.strip()[:80]
        if delivery is not None:
            values["delivery"] = json.dumps(list(delivery) or ["*"], ensure_ascii=False)
        if not values:
            raise errors.RuralInvalid("say what changes: price, stock, photos, origin or delivery", field="body")

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(products).where(products.c.id == product_id,
                                                          products.c.seller_id == seller_id).values(**values))
            if actor:
                await uow.audit(actor=actor, action="rural.product_updated", target=product_id,
                                reason="for the seller", after=values)

        await self.uow.run("rural_update_product", work)
        return await self.product(product_id)

    async def product(self, product_id: str) -> Product:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(products, sellers.c.name.label("seller")).join(
                sellers, sellers.c.id == products.c.seller_id).where(products.c.id == product_id))).first()

        row = await self.uow.run("rural_product", work)
        if row is None:
            raise errors.ProductNotFound(field="product_id")
        return _product(row)

    async def browse(self, *, county: str = "", limit: int = 50) -> list[Product]:
        """Products in stock (delivered to ``county`` when given), newest first."""

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(products, sellers.c.name.label("seller")).join(
                sellers, sellers.c.id == products.c.seller_id).where(products.c.stock > 0)
                .order_by(products.c.created_at.desc()).limit(500)))

        out = [_product(r) for r in await self.uow.run("rural_browse", work)]
        return [p for p in out if not county or "*" in p.delivery or county in p.delivery][:limit]

    # ------------------------------------------------------------------ ordering

    async def order(self, me: Principal, product_id: str, quantity: int, *, county: str, address: str,
                    idempotency_key: str, pin: str | None = None) -> MarketOrder:
        """A buyer's order paid from the wallet into escrow; the stock is taken at once."""
        check_idempotency_key(idempotency_key)
        oid = derived_id("rmo_", me.user_id, idempotency_key)
        known = await self._known(oid, product_id, quantity)
        if known is not None:
            return known
        product = await self._orderable(product_id, quantity, county)
        amount = product.price * quantity
        payer = await self.wallet.authorize_payment(me, amount, pin)

        async def work(uow: UnitOfWork) -> Any:
            await self.wallet.count_payment(uow, payer, amount)
            await self._take(uow, oid, product, quantity, me.msisdn, None, "wallet", county, address)
            [r] = await uow.post([Transfer(f"rural:{oid}", (Leg.debit(payer.account_code, amount),
                                                            Leg.credit(ESCROW, amount)), "rural.market_paid",
                                           reference=product.title[:100])])
            if r.error is not None:
                raise r.error
            return (await uow.conn.execute(select(orders).where(orders.c.id == oid))).one()

        return _order(await self.uow.run("rural_order", work), product.title)

    async def agent_order(self, me: AgentStaff, villager: str, product_id: str, quantity: int, *, paid_by: str,
                          idempotency_key: str, pin: str | None = None) -> MarketOrder:
        """The agent orders for a villager, delivered to the agent's village point. ``wallet``:
        the villager's PIN typed at the agent; ``cash``: the villager paid the agent, whose
        float pays the escrow."""
        check_idempotency_key(idempotency_key)
        if paid_by not in ("wallet", "cash"):
            raise errors.RuralInvalid("paid_by is wallet or cash", field="paid_by")
        number = normalize_msisdn(villager)
        oid = derived_id("rmo_", me.agent_id, idempotency_key)
        known = await self._known(oid, product_id, quantity)
        if known is not None:
            return known
        agent = await self.rural.agent(me.agent_id)
        product = await self._orderable(product_id, quantity, agent.location.county)
        amount = product.price * quantity
        payer = None
        if paid_by == "wallet":
            await self.wallet.verify_pin(number, pin)
            user = await self.wallet.user_by_msisdn(number)
            payer = await self.wallet.authorize_payment(await self.wallet.principal(user.id), amount, None,
                                                        consent=True)
        point = f"{agent.location.village} {agent.name}"

        async def work(uow: UnitOfWork) -> Any:
            if payer is not None:
                await self.wallet.count_payment(uow, payer, amount)
                source = payer.account_code
            else:
                source = float_account(agent.id)
                await uow.conn.execute(update(agents).where(agents.c.id == agent.id).values(
                    cash=agents.c.cash + amount))
            await self._take(uow, oid, product, quantity, number, agent.id, paid_by, agent.location.county, point)
            [r] = await uow.post([Transfer(f"rural:{oid}", (Leg.debit(source, amount), Leg.credit(ESCROW, amount)),
                                           "rural.market_paid", reference=product.title[:100])])
            if r.error is not None:
                raise errors.FloatInsufficient(field="amount") if payer is None else r.error
            await uow.emit(_sms(f"{oid}:ordered", number,
                                f"{agent.name}已为您订购{product.title}×{quantity}，{_yuan(amount)}元，到货后凭短信取货码取货。"
                                f"{agent.name} ordered {quantity} x {product.title} for you ({_yuan(amount)} CNY)."))
            return (await uow.conn.execute(select(orders).where(orders.c.id == oid))).one()

        return _order(await self.uow.run("rural_agent_order", work), product.title)

    async def _orderable(self, product_id: str, quantity: int, county: str) -> Product:
        product = await self.product(product_id)
        if not isinstance(quantity, int) or not 1 <= quantity <= 999:
            raise errors.RuralInvalid("quantity is 1 to 999", field="quantity")
        if "*" not in product.delivery and county not in product.delivery:
            raise errors.NotDeliverable(f"{product.seller} delivers to {', '.join(product.delivery)}", field="county")
        if product.stock < quantity:
            raise errors.OutOfStock(f"{product.stock} {product.unit} left", field="quantity")
        return product

    async def _take(self, uow: UnitOfWork, oid: str, product: Product, quantity: int, buyer: str,
                    agent_id: str | None, paid_by: str, county: str, address: str) -> None:
        taken = await uow.conn.execute(update(products).where(products.c.id == product.id,
                                                              products.c.stock >= quantity)
                                       .values(stock=products.c.stock - quantity))
        if taken.rowcount != 1:
            raise errors.OutOfStock(field="quantity")
        amount = product.price * quantity
        await uow.conn.execute(insert(orders).values(
            id=oid, product_id=product.id, seller_id=product.seller_id, buyer=buyer, agent_id=agent_id,
            quantity=quantity, amount=amount, fee=platform_fee(amount, self.fee_bps), paid_by=paid_by,
            state=OrderState.PAID.value, county=county[:32], address=address[:200],
            release_at=uow.now + self.release_after, created_at=uow.now, updated_at=uow.now))

    async def _known(self, oid: str, product_id: str, quantity: int) -> MarketOrder | None:
        row = await self.uow.run("rural_order_known", lambda uow: _first(uow, select(orders).where(orders.c.id == oid)))
        if row is None:
            return None
        if (row.product_id, row.quantity) != (product_id, quantity):
            raise IdempotencyConflict("this Idempotency-Key ordered something else", field="Idempotency-Key")
        return _order(row, replayed=True)

    async def get(self, order_id: str) -> MarketOrder:
        row = await self.uow.run("rural_order_get", lambda uow: _first(uow, select(orders).where(
            orders.c.id == order_id)))
        if row is None:
            raise errors.MarketOrderNotFound(field="order_id")
        return _order(row)

    # ------------------------------------------------------------------ shipping

    async def seller_orders(self, seller_id: str, *, state: str = "", limit: int = 50) -> list[SellerOrder]:
        """A seller's orders, newest first (one state when given): what to ship, and where."""
        if state and state not in {s.value for s in OrderState}:
            raise errors.RuralInvalid(f"state is one of {', '.join(s.value for s in OrderState)}", field="state")
        q = select(orders, products.c.title).join(products, products.c.id == orders.c.product_id).where(
            orders.c.seller_id == seller_id)
        if state:
            q = q.where(orders.c.state == state)
        rows = await self.uow.run("rural_seller_orders", lambda uow: _all(uow, q.order_by(
            orders.c.created_at.desc(), orders.c.id.desc()).limit(min(max(limit, 1), 200))))
        return [SellerOrder(_order(r, r.title), mask_msisdn(r.buyer), r.county, r.address) for r in rows]

    async def ship(self, seller_id: str, order_id: str, *, actor: str = "") -> MarketOrder:
        """The seller hands the order to the carrier: a shipment is created (once per order:
        the carrier keys it by the order id). Asking again answers the shipped order
        (``replayed``); an order that is disputed, refunded or released unshipped is refused.
        Another seller's order is "no such order". ``actor``: staff for the seller (audited)."""
        if actor:
            self.roster.require(actor, STAFF_ROLE)
        row = await self.uow.run("rural_order_row", lambda uow: _first(uow, select(orders).where(
            orders.c.id == order_id)))
        if row is None or row.seller_id != seller_id:
            raise errors.MarketOrderNotFound(field="order_id")
        if row.tracking_no is not None:
            return _order(row, replayed=True)
        if row.state != OrderState.PAID.value:
            raise errors.MarketOrderState(f"an order that is {row.state} is not shipped", field="order_id")
        if self.logistics is None:
            raise errors.MarketOrderState("no logistics partner is configured")
        tracking = await self.logistics.create(order_id, row.county, row.address)

        async def work(uow: UnitOfWork) -> None:
            moved = await uow.conn.execute(update(orders).where(orders.c.id == order_id,
                                                                orders.c.state == OrderState.PAID.value)
                                           .values(state=OrderState.SHIPPED.value, tracking_no=tracking,
                                                   updated_at=uow.now))
            if moved.rowcount:
                await uow.emit(_sms(f"{order_id}:shipped", row.buyer, f"您的订单已发货，运单号{tracking}。"
                                                                       f"Your order shipped: {tracking}."))
                if actor:
                    await uow.audit(actor=actor, action="rural.order_shipped", target=order_id,
                                    reason="for the seller", after={"tracking_no": tracking})
            else:  # disputed (or shipped by a racing call) while the carrier was asked
                now = (await uow.conn.execute(select(orders.c.state, orders.c.tracking_no).where(
                    orders.c.id == order_id))).one()
                if now.tracking_no is None:
                    raise errors.MarketOrderState(f"an order that is {now.state} is not shipped", field="order_id")

        await self.uow.run("rural_ship", work)
        return await self.get(order_id)

    async def track(self, limit: int = 100) -> int:
        """The worker's job: new carrier events of shipped orders, each texted to the buyer
        once; at the village point an agent order's pick-up code goes to the villager."""
        if self.logistics is None:
            return 0
        rows = await self.uow.run("rural_tracked", lambda uow: _all(uow, select(orders).where(
            orders.c.state == OrderState.SHIPPED.value).order_by(orders.c.updated_at).limit(limit)))
        seen = 0
        for row in rows:
            try:
                events = list(await self.logistics.events(row.tracking_no))
            except MobipayError as exc:
                log.warning("rural.tracking_unavailable", order=row.id, error=exc.detail)
                continue
            if len(events) > row.shipment_seen:
                seen += await self._events(row, events)
        return seen

    async def _events(self, row: Any, events: list[Any]) -> int:
        code = f"{secrets.randbelow(10**6):06d}"

        async def work(uow: UnitOfWork) -> int:
            fresh = (await uow.conn.execute(select(orders).where(orders.c.id == row.id).with_for_update())).one()
            new = events[fresh.shipment_seen:]
            values: dict[str, Any] = {"shipment_seen": len(events), "updated_at": uow.now}
            for n, e in enumerate(new, fresh.shipment_seen + 1):
                await uow.conn.execute(insert(shipment_events).values(order_id=row.id, seq=n, status=e.status,
                                                                      place=e.place[:80], at=e.at))
                zh, en = STEP_WORDS.get(e.status, (e.status, e.status))
                text = f"订单{row.id[-6:]}{zh}（{e.place}）。Order {row.id[-6:]} {en} ({e.place})."
                if e.status == "at_village_point" and fresh.agent_id:
                    values["pickup_hash"] = code_hash(self.code_key, "pickup", row.id, code)
                    text += f" 取货码{code}，请到服务点出示。Pick-up code {code}: show it at the point."
                if e.status in ("delivered", "at_village_point"):
                    values["state"] = OrderState.DELIVERED.value
                await uow.emit(_sms(f"{row.id}:ship:{n}", fresh.buyer, text))
            await uow.conn.execute(update(orders).where(orders.c.id == row.id).values(**values))
            return len(new)

        return await self.uow.run("rural_shipment_events", work)

    async def shipment(self, order_id: str) -> list[tuple[str, str, datetime]]:
        rows = await self.uow.run("rural_shipment", lambda uow: _all(uow, select(shipment_events).where(
            shipment_events.c.order_id == order_id).order_by(shipment_events.c.seq)))
        return [(r.status, r.place, as_utc(r.at)) for r in rows]

    # ------------------------------------------------------------------ escrow: release, disputes

    async def confirm_receipt(self, me: Principal, order_id: str) -> MarketOrder:
        """The buyer got it: the seller is paid now (less the fee)."""
        order = await self.get(order_id)
        if order.buyer != me.msisdn:
            raise errors.MarketOrderNotFound(field="order_id")
        return await self._release(order_id, "confirmed")

    async def pick_up(self, me: AgentStaff, order_id: str, code: str) -> MarketOrder:
        """The villager shows the pick-up code at the agent: delivered, and the seller paid."""
        row = await self.uow.run("rural_order_row", lambda uow: _first(uow, select(orders).where(
            orders.c.id == order_id)))
        if row is None or row.agent_id != me.agent_id:
            raise errors.MarketOrderNotFound(field="order_id")
        if row.state == OrderState.RELEASED.value:
            return _order(row, replayed=True)
        if row.pickup_hash is None or row.pickup_wrong >= CODE_TRIES or \
                row.pickup_hash != code_hash(self.code_key, "pickup", order_id, code):
            async def wrong(uow: UnitOfWork) -> None:
                await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
                    pickup_wrong=orders.c.pickup_wrong + 1))

            if row.pickup_hash is not None:
                await self.uow.run("rural_pickup_wrong", wrong)
            raise errors.CodeWrong()
        return await self._release(order_id, "picked_up")

    async def release_due(self, limit: int = 200) -> int:
        """The worker's job: orders held ``release_days`` without a dispute are released;
        disputes past their deadline undecided are refunded to the buyer."""
        now = self.uow.clock.now()
        due = await self.uow.run("rural_due", lambda uow: _all(uow, select(orders.c.id, orders.c.state).where(
            ((orders.c.state.in_([s.value for s in (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED)]))
             & (orders.c.release_at <= now)) | ((orders.c.state == OrderState.DISPUTED.value)
                                                & (orders.c.decide_by <= now))).limit(limit)))
        for oid, state in due:
            if state == OrderState.DISPUTED.value:
                await self._refund(oid, "dispute deadline passed")
            else:
                await self._release(oid, "time")
        return len(due)

    async def dispute(self, me: Principal, order_id: str, reason: str) -> MarketOrder:
        """The buyer disputes while the money is held: staff decide by the deadline."""
        if not 2 <= len(reason.strip()) <= 200:
            raise errors.RuralInvalid("say what is wrong (2 to 200 characters)", field="reason")

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).first()
            if row is None or row.buyer != me.msisdn:
                raise errors.MarketOrderNotFound(field="order_id")
            check_dispute(OrderState(row.state), as_utc(row.release_at), uow.now)
            await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
                state=OrderState.DISPUTED.value, dispute_reason=reason.strip(), decide_by=uow.now + self.decide_within,
                updated_at=uow.now))
            return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one()

        return _order(await self.uow.run("rural_dispute", work))

    async def disputes(self, *, actor: str, limit: int = 200) -> list[Dispute]:
        """Open disputes for staff (operations role), the nearest deadline first: a dispute
        nobody decides is refunded at its deadline."""
        self.roster.require(actor, STAFF_ROLE)
        q = (select(orders, products.c.title, sellers.c.name.label("seller"))
             .join(products, products.c.id == orders.c.product_id).join(sellers, sellers.c.id == orders.c.seller_id)
             .where(orders.c.state == OrderState.DISPUTED.value)
             .order_by(orders.c.decide_by, orders.c.id).limit(min(max(limit, 1), 500)))
        rows = await self.uow.run("rural_disputes", lambda uow: _all(uow, q))
        return [Dispute(r.id, r.title, r.seller_id, r.seller, r.buyer, int(r.amount), r.paid_by, r.dispute_reason or "",
                        as_utc(r.decide_by)) for r in rows]

    async def decide_dispute(self, order_id: str, *, actor: str, refund: bool, note: str = "",
                             idempotency_key: str | None = None) -> MarketOrder:
        """Staff's decision (operations role): refund the buyer (money and stock back), or
        release to the seller (less the fee); audited with the reason. One decision per
        dispute, taken under the order's row lock: the same actor's ``idempotency_key`` again
        answers the first decision (``replayed``; the key is kept in the decision's audit entry),
        the same key with the other decision is ``IDEMPOTENCY_CONFLICT``, any other second
        decision ``RURAL_DISPUTE_DECIDED``."""
        self.roster.require(actor, STAFF_ROLE)
        key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
        if note and not 2 <= len(note.strip()) <= 200:
            raise errors.RuralInvalid("the reason is 2 to 200 characters", field="reason")
        reason = note.strip() or "staff decision"

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id[:40]).with_for_update())).first()
            if row is None:
                raise errors.MarketOrderNotFound(field="order_id")
            if row.state == OrderState.DISPUTED.value:
                done = await (self._refund_in(uow, row, reason, actor=actor, key=key) if refund
                              else self._release_in(uow, row, reason, actor=actor, key=key))
                return done, False
            if row.dispute_reason is None or row.state not in (OrderState.REFUNDED.value, OrderState.RELEASED.value):
                raise errors.MarketOrderState(f"an order that is {row.state} has no open dispute", field="order_id")
            for entry in await audit.entries(uow.conn, order_id):
                after = json.loads(entry["after"]) if entry["after"] else {}
                mine = (after.get("key"), entry["actor"]) == (key, actor)
                if key is not None and entry["action"] in DECISIONS and mine:
                    if DECISIONS[entry["action"]] != refund:
                        raise IdempotencyConflict("this Idempotency-Key decided otherwise", field="Idempotency-Key")
                    return row, True
            by = row.decided_by or "the deadline (refunded undecided)"
            raise errors.DisputeDecided(f"already {row.state} by {by}", field="order_id", state=row.state,
                                        decided_by=row.decided_by)

        row, replayed = await self.uow.run("rural_decide_dispute", work)
        return _order(row, replayed=replayed)

    async def _release(self, order_id: str, why: str) -> MarketOrder:
        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).one()
            if row.state == OrderState.RELEASED.value:
                return row
            check_release(OrderState(row.state))
            return await self._release_in(uow, row, why)

        return _order(await self.uow.run("rural_release", work))

    async def _release_in(self, uow: UnitOfWork, row: Any, why: str, *, actor: str = "",
                          key: str | None = None) -> Any:
        """Pay the escrow to the seller (less the fee), in the caller's transaction, the
        order's row locked."""
        order_id = row.id
        seller = (await uow.conn.execute(select(sellers).where(sellers.c.id == row.seller_id))).one()
        net, fee = int(row.amount) - int(row.fee), int(row.fee)
        legs = [Leg.debit(ESCROW, int(row.amount)), Leg.credit(f"wallet:{seller.msisdn}", net)]
        legs += [Leg.credit(MARKET_FEES, fee)] if fee else []
        [r] = await uow.post([Transfer(f"rural:{order_id}:release", tuple(legs), "rural.market_released",
                                       reference=f"Order {order_id} ({why})"[:100])])
        if r.error is not None:
            raise r.error
        await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
            state=OrderState.RELEASED.value, decided_by=actor or None, updated_at=uow.now))
        await uow.emit(_sms(f"{order_id}:released", seller.msisdn,
                            f"订单{order_id[-6:]}货款{_yuan(net)}元已到账（平台服务费{_yuan(fee)}元）。"
                            f"Order {order_id[-6:]}: {_yuan(net)} CNY paid to you (fee {_yuan(fee)})."))
        if actor:
            await uow.audit(actor=actor, action="rural.dispute_released", target=order_id, reason=why,
                            before={"state": row.state}, after={"state": "released", "key": key})
        return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one()

    async def _refund(self, order_id: str, why: str) -> MarketOrder:
        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).one()
            if row.state == OrderState.REFUNDED.value:
                return row
            if row.state != OrderState.DISPUTED.value:
                raise errors.MarketOrderState("only a disputed order is refunded", field="order_id")
            return await self._refund_in(uow, row, why)

        return _order(await self.uow.run("rural_refund", work))

    async def _refund_in(self, uow: UnitOfWork, row: Any, why: str, *, actor: str = "",
                         key: str | None = None) -> Any:
        """The escrow back to the buyer and the stock back, in the caller's transaction."""
        order_id = row.id
        # cash paid at the agent goes back to the agent's float, which pays the villager in cash
        to = float_account(row.agent_id) if row.paid_by == "cash" else f"wallet:{row.buyer}"
        [r] = await uow.post([Transfer(f"rural:{order_id}:refund", (Leg.debit(ESCROW, int(row.amount)),
                                                                    Leg.credit(to, int(row.amount))),
                                       "rural.market_refunded", reference=f"Order {order_id} ({why})"[:100])])
        if r.error is not None:
            raise r.error
        await uow.conn.execute(update(products).where(products.c.id == row.product_id).values(
            stock=products.c.stock + row.quantity))
        await uow.conn.execute(update(orders).where(orders.c.id == order_id).values(
            state=OrderState.REFUNDED.value, decided_by=actor or None, updated_at=uow.now))
        where = "请到代理点领取现金。Collect the cash at the agent." if row.paid_by == "cash" else \
            "已退回钱包。Back in your wallet."
        await uow.emit(_sms(f"{order_id}:refunded", row.buyer,
                            f"订单{order_id[-6:]}已退款{_yuan(int(row.amount))}元，{where}"))
        if actor:
            await uow.audit(actor=actor, action="rural.dispute_refunded", target=order_id, reason=why,
                            before={"state": row.state}, after={"state": "refunded", "key": key})
        return (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).one()

    # ------------------------------------------------------------------ price notices

    async def subscribe_prices(self, msisdn: str, product: str, county: str) -> None:
        number = normalize_msisdn(msisdn)

        async def work(uow: UnitOfWork) -> None:
            known = (await uow.conn.execute(select(price_subs).where(
                price_subs.c.msisdn == number, price_subs.c.product == product[:16],
                price_subs.c.county == county[:32]))).first()
            if known is None:
                await uow.conn.execute(insert(price_subs).values(msisdn=number, product=product[:16],
                                                                 county=county[:32], created_at=uow.now))

        await self.uow.run("rural_price_sub", work)

    async def publish_price(self, product: str, county: str, price: int, unit: str, *, actor: str) -> int:
        """Staff publish a price (operations role): every subscriber of the product and
        county is texted, in the same transaction (the outbox sends them)."""
        self.roster.require(actor, STAFF_ROLE)
        if not isinstance(price, int) or price <= 0:
            raise errors.RuralInvalid("price is positive fen", field="price")
        pid = new_id("rpr")

        async def work(uow: UnitOfWork) -> int:
            await uow.conn.execute(insert(prices).values(id=pid, product=product[:16], county=county[:32], price=price,
                                                         unit=unit[:16], actor=actor, published_at=uow.now))
            subs = [r[0] for r in await uow.conn.execute(select(price_subs.c.msisdn).where(
                price_subs.c.product == product, price_subs.c.county == county))]
            for number in subs:
                await uow.emit(_sms(f"{pid}:{number}", number,
                                    f"{county}{product}今日价格{_yuan(price)}元/{unit}。"
                                    f"{product} in {county}: {_yuan(price)} CNY per {unit}."))
            return len(subs)

        return await self.uow.run("rural_publish_price", work)

    async def counts(self) -> dict[str, int]:
        rows = await self.uow.run("rural_order_counts", lambda uow: _all(uow, select(
            orders.c.state, func.count()).group_by(orders.c.state)))
        return {r[0]: int(r[1]) for r in rows}


def _check_product(*, title: str, price: object, unit: str, stock: object, origin: str, photos: Sequence[str],
                   delivery: Sequence[str]) -> None:
    """What a product must be, when listed and after every change."""
    if not isinstance(price, int) or isinstance(price, bool) or not 0 < price <= 100_000_000:
        raise errors.RuralInvalid("price is positive fen (at most 1,000,000 CNY)", field="price")
    if not isinstance(stock, int) or isinstance(stock, bool) or not 0 <= stock <= 1_000_000:
        raise errors.RuralInvalid("stock is 0 to 1,000,000", field="stock")
    if not 2 <= len(title.strip()) <= 80:
        raise errors.RuralInvalid("a product has a title of 2 to 80 characters", field="title")
    if not unit.strip():
        raise errors.RuralInvalid("say the unit it is sold by (袋, 斤, box…)", field="unit")
    if not origin.strip():
        raise errors.RuralInvalid("say where it comes from (its origin)", field="origin")
    if len(photos) > 9 or any(not isinstance(p, str) or not p.startswith(("https://", "/")) or len(p) > 300
                              for p in photos):
        raise errors.RuralInvalid("up to 9 photos, each an https:// or /path URL", field="photos")
    if len(delivery) > 100 or any(not isinstance(d, str) or not 1 <= len(d.strip()) <= 32 for d in delivery):
        raise errors.RuralInvalid('delivery is up to 100 county names, or ["*"] for everywhere', field="delivery")


def _product(row: Any) -> Product:
    return Product(row.id, row.seller_id, row.seller, row.title, int(row.price), row.unit, int(row.stock), row.origin,
                   tuple(json.loads(row.photos)), tuple(json.loads(row.delivery)))


async def _first(uow: UnitOfWork, q: Any) -> Any:
    return (await uow.conn.execute(q)).first()


async def _all(uow: UnitOfWork, q: Any) -> list[Any]:
    return list(await uow.conn.execute(q))
