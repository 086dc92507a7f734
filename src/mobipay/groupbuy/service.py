"""The group-buy community (聚惠啦): deals, buying vouchers from the wallet, shops consuming
them, refunds. One method per use case, one transaction each.

Money: a purchase moves the price from the buyer's wallet to the deal's escrow account
(``liability:groupbuy:escrow:<deal>``). It stays there while the voucher is unused. A refund
(随时退 on request, 过期自动退 at expiry, or a group that did not form) moves it back. A
shop's consumption can be reversed for ``reverse_window``; once that has passed the worker's
``groupbuy.settle`` job moves the money to the merchant's payable and records a paid trade,
so the merchants' own T+1 settlement pays it with the day's other trades (fee and all):
the merchant is paid on consumption, never on sale.

Stock: the buying transaction starts with ``UPDATE … SET stock_left = stock_left - n WHERE
stock_left >= n``; when no row moves the deal is ``SOLD_OUT`` and nothing else happens, so
concurrent buyers cannot oversell (the row lock orders them on PostgreSQL; SQLite has one
writer).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any, Protocol

import structlog
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import and_, func, insert, select, update

from mobipay.groupbuy import errors
from mobipay.groupbuy.model import (
    CATEGORIES,
    DEFAULT_CODE_LENGTH,
    GUESS_LOCKOUT,
    REVERSE_WINDOW,
    DealTerms,
    GroupState,
    RefundReason,
    VoucherState,
    check_on_sale,
    check_quantity,
    check_refundable,
    check_reversible,
    check_terms,
    check_usable,
    code_hash,
    distance_km,
    group_outcome,
    masked,
    normalise_code,
    voucher_code,
)
from mobipay.groupbuy.tables import consumptions, deal_shops, deals, orders, refunds, shop_guard, vouchers
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.chart import wallet_account
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.service import CounterPayment, MerchantService
from mobipay.orders.service import order_id as derived_id
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

ESCROW_PREFIX = "liability:groupbuy:escrow:"
ACTIVE = ("approved", "settlement_suspended")  # merchant states that may sell


def escrow_account(deal_id: str) -> str:
    return ESCROW_PREFIX + deal_id


@dataclass(frozen=True, slots=True)
class City:
    name: str
    province: str
    lat: float
    lon: float


@cache
def cities() -> tuple[City, ...]:
    """The community's cities (groupbuy/data/cities.csv), read once."""
    text = files("mobipay.groupbuy").joinpath("data/cities.csv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("city,"):
            continue
        name, province, lat, lon = line.split(",")
        out.append(City(name, province, float(lat), float(lon)))
    return tuple(out)


def keys_from_secret(code_key: str, secret_key: str) -> tuple[bytes, bytes]:
    """(the key codes are derived with, the key their stored hashes are made with):
    ``MOBIPAY_GROUPBUY_CODE_KEY`` (base64 of 32 bytes) or, when empty, derived from
    ``MOBIPAY_SECRET_KEY`` with HKDF-SHA256, as the payment-code key is; the two are separate
    HKDF outputs of it, so the stored hashes say nothing about how codes are made."""
    if code_key:
        root = base64.b64decode(code_key, validate=True)
        if len(root) != 32:
            raise ValueError("MOBIPAY_GROUPBUY_CODE_KEY is base64 of 32 bytes")
    else:
        root = secret_key.encode()

    def derive(info: bytes) -> bytes:
        return HKDF(SHA256(), 32, salt=None, info=info).derive(root)

    return derive(b"mobipay groupbuy voucher codes v1"), derive(b"mobipay groupbuy voucher code hashes v1")


class Staff(Protocol):
    """A merchant's operator signed in to the portal (merchants.operators.MerchantOperator)."""

    @property
    def merchant_id(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Deal:
    id: str
    merchant_id: str
    merchant_name: str
    terms: DealTerms
    stock_left: int
    group_state: GroupState
    shops: tuple[str, ...]
    distance_km: float | None = None

    @property
    def sold(self) -> int:
        return self.terms.stock - self.stock_left


@dataclass(frozen=True, slots=True)
class Voucher:
    id: str
    seq: int
    code: str  # shown to its buyer only
    state: str
    consumed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    deal_id: str
    title: str
    quantity: int
    amount: int
    refunded: int
    created_at: datetime
    valid_until: datetime
    vouchers: tuple[Voucher, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RefundDone:
    id: str
    order_id: str
    count: int
    amount: int
    reason: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a shop sees for a typed code before consuming (Dianping's ``prepare``)."""

    receipt_code: str  # masked
    deal_id: str
    title: str
    price: int
    market_price: int
    valid_until: datetime
    count: int  # unused vouchers of the order that can be consumed now
    state: str  # this code's voucher
    mobile: str  # masked
    usable: bool
    reason: str = ""
    consumed_at: datetime | None = None
    left: int = 0  # unused vouchers of the order


@dataclass(frozen=True, slots=True)
class Consumption:
    id: str
    request_id: str
    merchant_id: str
    store_id: str
    deal_id: str
    title: str
    order_id: str
    count: int
    amount: int
    codes: tuple[str, ...]  # masked
    operator: str
    state: str
    created_at: datetime
    reversible_until: datetime
    left: int = 0
    reversed_at: datetime | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class DailySpend:
    day: date
    orders: int
    vouchers: int
    amount: int
    refunded: int
    consumed: int
    by_city: dict[str, int] = field(default_factory=dict)


def _masked_msisdn(msisdn: str) -> str:
    return msisdn[:-8] + "****" + msisdn[-4:] if len(msisdn) >= 11 else "****"


def _day_window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


class GroupBuy:
    """Deals, purchases, vouchers, shop verification and refunds."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService, wallet: WalletService,
                 keys: tuple[bytes, bytes], *, code_length: int = DEFAULT_CODE_LENGTH,
                 reverse_window: timedelta = REVERSE_WINDOW) -> None:
        self.uow = uow
        self.merchants = merchants
        self.wallet = wallet
        self.code_key, self.hash_key = keys
        self.code_length = code_length
        self.reverse_window = reverse_window
        self._names: dict[str, str] = {}
        self._accounts: dict[str, str] = {}

    # ------------------------------------------------------------------ deals

    async def open_deal(self, merchant_id: str, terms: DealTerms, store_ids: Sequence[str], *,
                        actor: str = "") -> Deal:
        """A merchant's deal, valid at the given stores of its own; its escrow account opens
        with it. Terms are checked (model.check_terms)."""
        merchant = await self.merchants.merchant(merchant_id)
        if merchant.state.value not in ACTIVE:
            raise errors.DealInvalid(f"the merchant is {merchant.state.value}: it cannot sell", field="merchant_id")
        terms = check_terms(terms, frozenset(CATEGORIES), frozenset(c.name for c in cities()))
        if not store_ids:
            raise errors.DealInvalid("name the stores where the vouchers may be used", field="store_ids")
        for store_id in store_ids:
            try:
                await self.merchants.own_store(merchant_id, store_id)
            except MobipayError:
                raise errors.ShopNotFound(f"{store_id} is not a store of this merchant", field="store_ids") from None
        deal_id = new_id("deal")
        t = terms

        async def work(uow: UnitOfWork) -> None:
            await uow.open_account(AccountSpec(escrow_account(deal_id), AccountKind.LIABILITY,
                                               name=f"Group-buy escrow {t.title[:60]}",
                                               debits_must_not_exceed_credits=True))
            await uow.conn.execute(insert(deals).values(
                id=deal_id, merchant_id=merchant_id, title=t.title, city=t.city, category=t.category, price=t.price,
                market_price=t.market_price, stock=t.stock, stock_left=t.stock, sale_start=t.sale_start,
                sale_end=t.sale_end, per_user_limit=t.per_user_limit, valid_from=t.valid_from,
                valid_until=t.valid_until, refund_anytime=t.refund_anytime, refund_on_expiry=t.refund_on_expiry,
                group_min=t.group_min, group_deadline=t.group_deadline,
                group_state=(GroupState.OPEN if t.group_min else GroupState.NONE).value,
                lat_e6=round(t.lat * 1e6) if t.lat is not None else None,
                lon_e6=round(t.lon * 1e6) if t.lon is not None else None, created_at=uow.now))
            await uow.conn.execute(insert(deal_shops), [{"deal_id": deal_id, "store_id": s}
                                                        for s in dict.fromkeys(store_ids)])
            if actor:
                await uow.audit(actor=actor, action="groupbuy.deal_open", target=deal_id, reason=t.title,
                                after={"price": t.price, "stock": t.stock, "city": t.city})

        await self.uow.run("groupbuy_open_deal", work)
        return await self.deal(deal_id)

    async def deal(self, deal_id: str) -> Deal:
        async def work(uow: UnitOfWork) -> tuple[Any, list[str]]:
            row = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id))).first()
            if row is None:
                raise errors.DealNotFound(field="deal_id")
            shops = [r[0] for r in await uow.conn.execute(
                select(deal_shops.c.store_id).where(deal_shops.c.deal_id == deal_id).order_by(deal_shops.c.store_id))]
            return row, shops

        row, shops = await self.uow.run("groupbuy_deal", work)
        return await self._deal(row, tuple(shops))

    async def _merchant_name(self, merchant_id: str) -> str:
        if merchant_id not in self._names:
            self._names[merchant_id] = (await self.merchants.merchant(merchant_id)).name
        return self._names[merchant_id]

    async def _deal(self, row: Any, shops: tuple[str, ...] = (), distance: float | None = None) -> Deal:
        return Deal(row.id, row.merchant_id, await self._merchant_name(row.merchant_id), _terms(row),
                    int(row.stock_left), GroupState(row.group_state), shops, distance)

    async def browse(self, *, city: str, category: str = "", lat: float | None = None, lon: float | None = None,
                     limit: int = 20, after: str = "", now_only: bool = True) -> tuple[list[Deal], str | None]:
        """Deals of a city (and category), on sale now; nearest first when a position is
        given (cursor: an offset), else newest first (cursor: the last id)."""
        if city not in {c.name for c in cities()}:
            raise ValidationFailed(f"unknown city {city!r} (see GET /v1/groupbuy/cities)", field="city")
        if category and category not in CATEGORIES:
            raise ValidationFailed(f"category is one of {', '.join(CATEGORIES)}", field="category")
        if not 1 <= limit <= 50:
            raise ValidationFailed("limit is 1 to 50", field="limit")
        if (lat is None) != (lon is None):
            raise ValidationFailed("send lat and lon together", field="lat")
        now = self.uow.clock.now()

        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(deals).where(deals.c.city == city)
            if category:
                q = q.where(deals.c.category == category)
            if now_only:
                q = q.where(deals.c.sale_start <= now, deals.c.sale_end > now,
                            deals.c.group_state != GroupState.FAILED.value)
            if lat is None and after:
                q = q.where(deals.c.id < after)
            q = q.order_by(deals.c.id.desc())
            if lat is None:
                q = q.limit(limit + 1)
            return list(await uow.conn.execute(q.limit(2000)))

        rows = await self.uow.run("groupbuy_browse", work)
        if lat is not None and lon is not None:
            offset = int(after) if after.isdigit() else 0
            measured = sorted(((distance_km(lat, lon, r.lat_e6 / 1e6, r.lon_e6 / 1e6)
                                if r.lat_e6 is not None else float("inf"), r) for r in rows),
                              key=lambda p: (p[0], p[1].id))
            near = measured[offset:offset + limit]
            more = offset + limit < len(measured)
            out = [await self._deal(r, (), None if d == float("inf") else round(d, 2)) for d, r in near]
            return out, str(offset + limit) if more else None
        page, more = rows[:limit], len(rows) > limit
        return [await self._deal(r) for r in page], page[-1].id if more and page else None

    # ------------------------------------------------------------------ buying

    async def buy(self, me: Principal, deal_id: str, quantity: int, *, idempotency_key: str,
                  pin: str | None = None) -> Order:
        """Buy ``quantity`` vouchers of a deal from the wallet. The same Idempotency-Key returns
        the first order (``replayed``); the same key for another deal or quantity is
        ``IDEMPOTENCY_CONFLICT``. ``SOLD_OUT`` when the stock is gone: nothing is charged."""
        check_idempotency_key(idempotency_key)
        oid = derived_id("gbo_", me.user_id, idempotency_key)

        async def look(uow: UnitOfWork) -> tuple[Any, Any]:
            known = (await uow.conn.execute(select(orders).where(orders.c.id == oid))).first()
            row = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id))).first()
            return known, row

        known, row = await self.uow.run("groupbuy_buy_look", look)
        if known is not None:
            return await self._replay(known, deal_id, quantity)
        if row is None:
            raise errors.DealNotFound(field="deal_id")
        now = self.uow.clock.now()
        check_on_sale(as_utc(row.sale_start), as_utc(row.sale_end), GroupState(row.group_state), now)
        check_quantity(quantity, 0, int(row.per_user_limit))
        if row.stock_left < quantity:  # seen sold out: say so before asking the wallet anything
            raise self._sold_out(row, quantity)
        amount = int(row.price) * quantity
        payer = await self.wallet.authorize_payment(me, amount, pin)
        escrow = escrow_account(deal_id)

        async def work(uow: UnitOfWork) -> tuple[Any, list[tuple[str, str]], datetime]:
            again = (await uow.conn.execute(select(orders).where(orders.c.id == oid))).first()
            if again is not None:
                return again, [], uow.now  # the same key a moment ago (a retried transaction or a racing press)
            # The payer's usage row lock (limits) first: one payer's concurrent presses are taken
            # one after the other, so the per-user count below sees the ones before.
            await self.wallet.count_payment(uow, payer, amount)
            already = (await uow.conn.execute(select(func.coalesce(func.sum(orders.c.quantity), 0)).where(
                orders.c.deal_id == deal_id, orders.c.user_id == payer.id))).scalar_one()
            check_quantity(quantity, int(already), int(row.per_user_limit))
            await uow.conn.execute(insert(orders).values(
                id=oid, deal_id=deal_id, user_id=payer.id, msisdn=payer.msisdn, quantity=quantity, amount=amount,
                refunded=0, created_at=uow.now))
            made = await self._issue(uow, oid, deal_id, quantity)
            await uow.emit(SmsRequested(key=f"{oid}:vouchers", to=payer.msisdn, template="groupbuy.vouchers", params={
                "deal": row.title[:40], "count": quantity, "amount_fen": amount,
                "codes": " ".join(code for _, code in made),
                "until": as_utc(row.valid_until).astimezone(SHANGHAI).strftime("%Y-%m-%d")}))
            # The contended rows last, so their locks are held only to the commit: the escrow
            # account (the ledger locks it to post) and the deal's stock (the conditional UPDATE).
            [result] = await uow.post([Transfer(f"groupbuy:{oid}", (Leg.debit(payer.account_code, amount),
                                                                    Leg.credit(escrow, amount)),
                                                "groupbuy.purchase", reference=row.title[:100])])
            if result.error is not None:
                raise result.error
            taken = await uow.conn.execute(update(deals).where(deals.c.id == deal_id, deals.c.stock_left >= quantity)
                                           .values(stock_left=deals.c.stock_left - quantity))
            if taken.rowcount != 1:
                raise self._sold_out(row, quantity)  # rolls all of it back: nothing charged
            if row.group_state == GroupState.OPEN.value:
                await self._maybe_form(uow, row)
            return None, made, uow.now

        again, made, at = await self.uow.run("groupbuy_buy", work)
        if again is not None:
            return await self._replay(again, deal_id, quantity)
        # answered from what was written (no read back: the hot path of a flash sale)
        return Order(oid, deal_id, row.title, quantity, amount, 0, at, as_utc(row.valid_until),
                     tuple(Voucher(v, n + 1, code, VoucherState.UNUSED.value) for n, (v, code) in enumerate(made)))

    def _sold_out(self, row: Any, quantity: int) -> MobipayError:
        left = max(0, int(row.stock_left))
        if left == 0:
            return errors.SoldOut(f"{row.title}: all {row.stock} vouchers are sold", field="deal_id")
        return errors.SoldOut(f"{row.title}: only {left} left, fewer than the {quantity} asked for", field="quantity")

    async def _replay(self, known: Any, deal_id: str, quantity: int) -> Order:
        if known.deal_id != deal_id or known.quantity != quantity:
            raise IdempotencyConflict("this Idempotency-Key bought another deal or quantity: use a new key",
                                      field="Idempotency-Key")
        found = await self._order(known.id, known.user_id)
        return Order(**{**{f: getattr(found, f) for f in found.__dataclass_fields__}, "replayed": True})

    async def _issue(self, uow: UnitOfWork, oid: str, deal_id: str, quantity: int) -> list[tuple[str, str]]:
        """The order's vouchers, each with its code; a code already taken (one in 10^12 per
        voucher sold) moves to the next nonce."""
        ids = [new_id("vch") for _ in range(quantity)]
        nonces = dict.fromkeys(ids, 0)
        while True:
            hashes = {v: code_hash(self.hash_key, voucher_code(self.code_key, v, nonces[v], self.code_length))
                      for v in ids}
            taken = {r[0] for r in await uow.conn.execute(
                select(vouchers.c.code_hash).where(vouchers.c.code_hash.in_(list(hashes.values()))))}
            clash = [v for v, h in hashes.items() if h in taken]
            if not clash and len(set(hashes.values())) == len(hashes):
                break
            for v in clash or ids[-1:]:
                nonces[v] += 1
        await uow.conn.execute(insert(vouchers), [
            {"id": v, "order_id": oid, "deal_id": deal_id, "seq": n + 1, "code_hash": hashes[v],
             "code_nonce": nonces[v], "state": VoucherState.UNUSED.value, "updated_at": uow.now}
            for n, v in enumerate(ids)])
        return [(v, voucher_code(self.code_key, v, nonces[v], self.code_length)) for v in ids]

    async def _maybe_form(self, uow: UnitOfWork, row: Any) -> None:
        buyers = (await uow.conn.execute(select(func.count(func.distinct(orders.c.user_id))).where(
            orders.c.deal_id == row.id, orders.c.refunded < orders.c.amount))).scalar_one()
        state = group_outcome(GroupState.OPEN, int(buyers), int(row.group_min), None, uow.now)
        if state is GroupState.FORMED:
            await uow.conn.execute(update(deals).where(deals.c.id == row.id, deals.c.group_state == "open")
                                   .values(group_state=GroupState.FORMED.value))

    def code_of(self, voucher_id: str, nonce: int) -> str:
        return voucher_code(self.code_key, voucher_id, nonce, self.code_length)

    async def order(self, me: Principal, order_id: str) -> Order:
        return await self._order(order_id, me.user_id)

    async def _order(self, order_id: str, user_id: str) -> Order:
        async def work(uow: UnitOfWork) -> tuple[Any, Any, list[Any], dict[str, datetime]]:
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).first()
            if row is None or row.user_id != user_id:  # another's order looks like none
                raise errors.OrderNotFound(field="order_id")
            deal = (await uow.conn.execute(select(deals).where(deals.c.id == row.deal_id))).one()
            vs = list(await uow.conn.execute(select(vouchers).where(vouchers.c.order_id == order_id)
                                             .order_by(vouchers.c.seq)))
            used = {c.id: as_utc(c.created_at) for c in await uow.conn.execute(select(consumptions).where(
                consumptions.c.order_id == order_id))}
            return row, deal, vs, used

        row, deal, vs, used = await self.uow.run("groupbuy_order", work)
        return _order_out(row, deal, [Voucher(v.id, v.seq, self.code_of(v.id, v.code_nonce), v.state,
                                              used.get(v.consumption_id or "")) for v in vs])

    async def mine(self, me: Principal, limit: int = 50) -> list[Order]:
        """The subscriber's orders, newest first, with their vouchers' codes (for the wallet)."""

        async def work(uow: UnitOfWork) -> list[str]:
            return [r[0] for r in await uow.conn.execute(select(orders.c.id).where(orders.c.user_id == me.user_id)
                                                         .order_by(orders.c.created_at.desc()).limit(limit))]

        return [await self._order(oid, me.user_id) for oid in await self.uow.run("groupbuy_mine", work)]

    async def voucher_code(self, me: Principal, voucher_id: str) -> str:
        """A voucher's code for its owner (the wallet draws it as a QR code)."""

        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(vouchers, orders.c.user_id).join(
                orders, orders.c.id == vouchers.c.order_id).where(vouchers.c.id == voucher_id))).first()

        row = await self.uow.run("groupbuy_voucher", work)
        if row is None or row.user_id != me.user_id:
            raise errors.OrderNotFound("no such voucher of yours", field="voucher_id")
        return self.code_of(row.id, row.code_nonce)

    # ------------------------------------------------------------------ refunds

    async def refund(self, me: Principal, order_id: str, count: int | None, *, idempotency_key: str) -> RefundDone:
        """随时退: the buyer takes ``count`` (default all) unused vouchers of an order back;
        the money returns from escrow to the wallet at once. Consumed vouchers are not
        refundable. The same Idempotency-Key returns the first refund."""
        check_idempotency_key(idempotency_key)
        if count is not None and not 1 <= count <= 1000:
            raise ValidationFailed("count is at least 1", field="count")
        rid = derived_id("gbr_", order_id, idempotency_key)

        async def work(uow: UnitOfWork) -> RefundDone:
            known = (await uow.conn.execute(select(refunds).where(refunds.c.id == rid))).first()
            if known is not None:
                if known.order_id != order_id or (count is not None and known.quantity != count):
                    raise IdempotencyConflict("this Idempotency-Key refunded something else", field="Idempotency-Key")
                return RefundDone(rid, order_id, known.quantity, int(known.amount), known.reason, replayed=True)
            row = (await uow.conn.execute(select(orders).where(orders.c.id == order_id))).first()
            if row is None or row.user_id != me.user_id:
                raise errors.OrderNotFound(field="order_id")
            deal = (await uow.conn.execute(select(deals).where(deals.c.id == row.deal_id))).one()
            check_refundable(bool(deal.refund_anytime), GroupState(deal.group_state), as_utc(deal.valid_until),
                             uow.now)
            done = await self._refund_in(uow, deal, row, count, rid, RefundReason.REQUEST)
            if done is None:
                raise errors.RefundNotAllowed("no unused vouchers are left in this order", field="order_id")
            return done

        return await self.uow.run("groupbuy_refund", work)

    async def _refund_in(self, uow: UnitOfWork, deal: Any, order: Any, count: int | None, rid: str,
                         reason: RefundReason) -> RefundDone | None:
        """Refund up to ``count`` unused vouchers of ``order`` (all when None) in the caller's
        transaction: None when none are unused."""
        q = select(vouchers.c.id).where(vouchers.c.order_id == order.id,
                                        vouchers.c.state == VoucherState.UNUSED.value).order_by(vouchers.c.seq)
        unused = [r[0] for r in await uow.conn.execute(q.with_for_update())]
        if not unused:
            return None
        if count is not None and count > len(unused):
            raise errors.RefundNotAllowed(f"only {len(unused)} unused vouchers are left in this order", field="count")
        take = unused[:count] if count is not None else unused
        moved = await uow.conn.execute(update(vouchers).where(vouchers.c.id.in_(take),
                                                              vouchers.c.state == VoucherState.UNUSED.value)
                                       .values(state=VoucherState.REFUNDED.value, refund_id=rid, updated_at=uow.now))
        if moved.rowcount != len(take):
            raise errors.RefundNotAllowed("these vouchers changed meanwhile: look at the order again")
        amount = int(deal.price) * len(take)
        [result] = await uow.post([Transfer(f"groupbuy:{rid}", (Leg.debit(escrow_account(deal.id), amount),
                                                                Leg.credit(wallet_account(order.msisdn).code, amount)),
                                            "groupbuy.refund", reference=f"{deal.title[:80]} {reason.value}")])
        if result.error is not None:
            raise result.error
        await uow.conn.execute(insert(refunds).values(id=rid, order_id=order.id, quantity=len(take), amount=amount,
                                                      reason=reason.value, created_at=uow.now))
        await uow.conn.execute(update(orders).where(orders.c.id == order.id)
                               .values(refunded=orders.c.refunded + amount))
        await uow.emit(SmsRequested(key=f"{rid}:refunded", to=order.msisdn, template=f"groupbuy.refund_{reason.value}",
                                    params={"deal": deal.title[:40], "count": len(take), "amount_fen": amount}))
        return RefundDone(rid, order.id, len(take), amount, reason.value)

    async def _refund_deal(self, deal_id: str, reason: RefundReason, limit: int) -> int:
        """Refund every unused voucher of a deal, ``limit`` orders a transaction; the vouchers
        refunded. A rerun finds only what is still unused (each order's refund id is derived
        from it and the reason, so it is never made twice)."""
        total = 0
        while True:
            async def work(uow: UnitOfWork) -> int:
                deal = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id))).one()
                ids = [r[0] for r in await uow.conn.execute(
                    select(vouchers.c.order_id).where(vouchers.c.deal_id == deal_id,
                                                      vouchers.c.state == VoucherState.UNUSED.value)
                    .group_by(vouchers.c.order_id).order_by(vouchers.c.order_id).limit(limit))]
                n = 0
                for row in await uow.conn.execute(select(orders).where(orders.c.id.in_(ids)).order_by(orders.c.id)):
                    done = await self._refund_in(uow, deal, row, None, derived_id("gbr_", row.id, reason.value),
                                                 reason)
                    n += done.count if done else 0
                return n

            n = await self.uow.run(f"groupbuy_refund_{reason.value}", work)
            total += n
            if n == 0:
                return total

    async def refund_expired(self, limit: int = 200) -> int:
        """Worker job (过期自动退): unused vouchers of deals whose validity has ended and which
        promise it are refunded to the wallets. Answers the vouchers refunded."""
        now = self.uow.clock.now()

        async def due(uow: UnitOfWork) -> list[str]:
            return [r[0] for r in await uow.conn.execute(select(deals.c.id).where(
                deals.c.refund_on_expiry.is_(True), deals.c.valid_until <= now, deals.c.expired_at.is_(None)))]

        total = 0
        for deal_id in await self.uow.run("groupbuy_expired", due):
            total += await self._refund_deal(deal_id, RefundReason.EXPIRY, limit)

            async def mark(uow: UnitOfWork, deal_id: str = deal_id) -> None:
                await uow.conn.execute(update(deals).where(deals.c.id == deal_id).values(expired_at=uow.now))

            await self.uow.run("groupbuy_expired_mark", mark)
        if total:
            log.info("groupbuy.expired_refunded", vouchers=total)
        return total

    async def decide_groups(self, limit: int = 200) -> int:
        """Worker job: a group deal whose deadline passed without enough buyers fails and every
        buyer is refunded in full; one with enough is formed. Answers the vouchers refunded."""
        now = self.uow.clock.now()

        async def due(uow: UnitOfWork) -> list[tuple[str, str]]:
            out = []
            rows = list(await uow.conn.execute(select(deals).where(
                deals.c.group_state.in_([GroupState.OPEN.value, GroupState.FAILED.value]),
                deals.c.group_deadline <= now).with_for_update()))
            for row in rows:
                if row.group_state == GroupState.OPEN.value:
                    buyers = (await uow.conn.execute(select(func.count(func.distinct(orders.c.user_id))).where(
                        orders.c.deal_id == row.id, orders.c.refunded < orders.c.amount))).scalar_one()
                    state = group_outcome(GroupState.OPEN, int(buyers), int(row.group_min), as_utc(row.group_deadline),
                                          now)
                    await uow.conn.execute(update(deals).where(deals.c.id == row.id).values(group_state=state.value))
                    out.append((row.id, state.value))
                elif row.expired_at is None:
                    out.append((row.id, row.group_state))  # failed before: refunds still to finish
            return out

        total = 0
        for deal_id, state in await self.uow.run("groupbuy_groups", due):
            if state == GroupState.FAILED.value:
                total += await self._refund_deal(deal_id, RefundReason.GROUP_FAILED, limit)

                async def mark(uow: UnitOfWork, deal_id: str = deal_id) -> None:
                    await uow.conn.execute(update(deals).where(deals.c.id == deal_id).values(expired_at=uow.now))

                await self.uow.run("groupbuy_group_mark", mark)
        return total

    # ------------------------------------------------------------------ the shop

    async def _guard(self, merchant_id: str, store_id: str) -> None:
        """Refuse while the store is locked for guessed codes; check the store is the merchant's."""
        try:
            await self.merchants.own_store(merchant_id, store_id)
        except MobipayError:
            raise errors.ShopNotFound(field="store_id") from None

        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(shop_guard).where(
                shop_guard.c.merchant_id == merchant_id, shop_guard.c.store_id == store_id))).first()

        row = await self.uow.run("groupbuy_guard", work)
        now = self.uow.clock.now()
        if row is not None and row.locked_until is not None and as_utc(row.locked_until) > now:
            wait = int((as_utc(row.locked_until) - now).total_seconds()) + 1
            raise errors.GuessingLocked(f"too many wrong codes at this store: try again in {wait // 60 + 1} minutes",
                                        field="receipt_code", retry_after_s=wait)

    async def _wrong_code(self, staff: Staff, store_id: str) -> MobipayError:
        """Count a wrong code at the store (committed on its own: the refusal rolls nothing
        back); the tenth within 15 minutes locks it, is audited and logged as an alert."""
        merchant_id = staff.merchant_id

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(shop_guard).where(
                shop_guard.c.merchant_id == merchant_id, shop_guard.c.store_id == store_id).with_for_update())).first()
            last = as_utc(row.last_failed_at) if row is not None and row.last_failed_at else None
            failures, locked = GUESS_LOCKOUT.after_failure(row.failures if row else 0, last, uow.now)
            values = {"failures": failures, "last_failed_at": uow.now}
            if locked is not None:
                values |= {"locked_until": locked, "locks": (row.locks if row else 0) + 1}
            if row is None:
                await uow.conn.execute(insert(shop_guard).values(merchant_id=merchant_id, store_id=store_id,
                                                                 locks=0, **values))
            else:
                await uow.conn.execute(update(shop_guard).where(shop_guard.c.merchant_id == merchant_id,
                                                                shop_guard.c.store_id == store_id).values(**values))
            if locked is not None:
                await uow.audit(actor=f"{merchant_id}/{staff.name}", action="groupbuy.code_guessing_locked",
                                target=f"{merchant_id}/{store_id}", reason=f"{GUESS_LOCKOUT.tries} wrong voucher codes",
                                after={"locked_until": locked.isoformat()})
            return locked is not None

        if await self.uow.run("groupbuy_wrong_code", work):
            log.warning("groupbuy.code_guessing", alert=True, merchant=merchant_id, store=store_id,
                        operator=staff.name)
            return errors.GuessingLocked("too many wrong codes at this store: verification is locked for "
                                         f"{int(GUESS_LOCKOUT.lock.total_seconds() // 60)} minutes",
                                         field="receipt_code",
                                         retry_after_s=int(GUESS_LOCKOUT.lock.total_seconds()))
        return errors.CodeUnknown(field="receipt_code")

    async def _voucher_at(self, uow: UnitOfWork, digest: str, merchant_id: str, store_id: str) -> Any:
        row = (await uow.conn.execute(select(vouchers, deals.c.merchant_id).join(
            deals, deals.c.id == vouchers.c.deal_id).where(vouchers.c.code_hash == digest))).first()
        if row is None or row.merchant_id != merchant_id:
            return None
        here = (await uow.conn.execute(select(deal_shops.c.store_id).where(
            deal_shops.c.deal_id == row.deal_id, deal_shops.c.store_id == store_id))).first()
        return row if here is not None else None

    async def prepare(self, staff: Staff, store_id: str, receipt_code: str) -> Prepared:
        """What a typed code is (Dianping's 输码验券校验): the deal, its price, expiry, how many
        of the order's vouchers can be consumed now, the buyer's masked number."""
        code = normalise_code(receipt_code)
        await self._guard(staff.merchant_id, store_id)
        digest = code_hash(self.hash_key, code)

        async def work(uow: UnitOfWork) -> tuple[Any, Any, Any, int, Any] | None:
            v = await self._voucher_at(uow, digest, staff.merchant_id, store_id)
            if v is None:
                return None
            deal = (await uow.conn.execute(select(deals).where(deals.c.id == v.deal_id))).one()
            order = (await uow.conn.execute(select(orders).where(orders.c.id == v.order_id))).one()
            left = (await uow.conn.execute(select(func.count()).where(
                vouchers.c.order_id == v.order_id, vouchers.c.state == VoucherState.UNUSED.value))).scalar_one()
            used = (await uow.conn.execute(select(consumptions.c.created_at).where(
                consumptions.c.id == v.consumption_id))).first() if v.consumption_id else None
            return v, deal, order, int(left), used

        found = await self.uow.run("groupbuy_prepare", work)
        if found is None:
            raise await self._wrong_code(staff, store_id)
        v, deal, order, left, used = found
        reason = ""
        try:
            check_usable(GroupState(deal.group_state), as_utc(deal.valid_from), as_utc(deal.valid_until),
                         self.uow.clock.now())
            if v.state != VoucherState.UNUSED.value:
                raise errors.VoucherNotUsable(f"this voucher is {v.state}")
        except MobipayError as exc:
            reason = exc.detail
        return Prepared(masked(code), deal.id, deal.title, int(deal.price), int(deal.market_price),
                        as_utc(deal.valid_until), 0 if reason else left, v.state, _masked_msisdn(order.msisdn),
                        not reason, reason, as_utc(used[0]) if used else None, left)

    async def consume(self, staff: Staff, store_id: str, receipt_code: str, count: int, *, request_id: str
                      ) -> Consumption:
        """Consume ``count`` unused vouchers of the order the typed code belongs to (the typed
        one first). ``request_id`` is the idempotency key: the same id again answers the first
        consumption (``replayed``); for another code or count it is refused. The money stays
        in escrow until the reversal window has passed."""
        check_idempotency_key(request_id)
        code = normalise_code(receipt_code)
        if not 1 <= count <= 100:
            raise ValidationFailed("count is 1 to 100", field="count")
        digest = code_hash(self.hash_key, code)
        cid = derived_id("gbc_", staff.merchant_id, request_id)
        known = await self._consumption_row(cid)
        if known is not None:
            if known.code_hash != digest or known.quantity != count or known.store_id != store_id:
                raise errors.RequestIdConflict("this request id consumed another code or count", field="request_id")
            return await self._consumption(known, replayed=True)
        await self._guard(staff.merchant_id, store_id)

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            again = (await uow.conn.execute(select(consumptions).where(consumptions.c.id == cid))).first()
            if again is not None:
                return again, True  # the same request id a moment ago (a racing retry)
            v = await self._voucher_at(uow, digest, staff.merchant_id, store_id)
            if v is None:
                return None, False
            deal = (await uow.conn.execute(select(deals).where(deals.c.id == v.deal_id))).one()
            check_usable(GroupState(deal.group_state), as_utc(deal.valid_from), as_utc(deal.valid_until), uow.now)
            rows = list(await uow.conn.execute(select(vouchers).where(vouchers.c.order_id == v.order_id)
                                               .order_by(vouchers.c.seq).with_for_update()))
            mine = next(r for r in rows if r.id == v.id)
            if mine.state == VoucherState.CONSUMED.value:
                at = (await uow.conn.execute(select(consumptions.c.created_at).where(
                    consumptions.c.id == mine.consumption_id))).scalar_one()
                when = as_utc(at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
                raise errors.VoucherNotUsable(f"this voucher was used at {when} Beijing time", field="receipt_code",
                                              used_at=as_utc(at).isoformat())
            if mine.state == VoucherState.REFUNDED.value:
                raise errors.VoucherNotUsable("this voucher was refunded", field="receipt_code")
            unused = [mine] + [r for r in rows if r.state == VoucherState.UNUSED.value and r.id != mine.id]
            if count > len(unused):
                raise errors.NotEnoughVouchers(f"the order has {len(unused)} unused vouchers left", field="count",
                                               left=len(unused))
            take = [r.id for r in unused[:count]]
            await uow.conn.execute(update(vouchers).where(vouchers.c.id.in_(take)).values(
                state=VoucherState.CONSUMED.value, consumption_id=cid, updated_at=uow.now))
            order = (await uow.conn.execute(select(orders).where(orders.c.id == v.order_id))).one()
            await uow.conn.execute(insert(consumptions).values(
                id=cid, merchant_id=staff.merchant_id, store_id=store_id, request_id=request_id, deal_id=deal.id,
                order_id=order.id, code_hash=digest, quantity=count, amount=int(deal.price) * count,
                operator=staff.name[:80], state="consumed", created_at=uow.now))
            await uow.emit(SmsRequested(key=f"{cid}:consumed", to=order.msisdn, template="groupbuy.consumed", params={
                "deal": deal.title[:40], "count": count, "left": len(unused) - count}))
            return (await uow.conn.execute(select(consumptions).where(consumptions.c.id == cid))).one(), False

        row, replayed = await self.uow.run("groupbuy_consume", work)
        if row is None:
            raise await self._wrong_code(staff, store_id)
        return await self._consumption(row, replayed=replayed)

    async def _consumption_row(self, cid: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(consumptions).where(consumptions.c.id == cid))).first()

        return await self.uow.run("groupbuy_consumption", work)

    async def _consumption(self, row: Any, *, replayed: bool = False) -> Consumption:
        async def work(uow: UnitOfWork) -> tuple[str, list[Any], int]:
            title = (await uow.conn.execute(select(deals.c.title).where(deals.c.id == row.deal_id))).scalar_one()
            vs = list(await uow.conn.execute(select(vouchers).where(vouchers.c.consumption_id == row.id)
                                             .order_by(vouchers.c.seq)))
            left = (await uow.conn.execute(select(func.count()).where(
                vouchers.c.order_id == row.order_id, vouchers.c.state == VoucherState.UNUSED.value))).scalar_one()
            return title, vs, int(left)

        title, vs, left = await self.uow.run("groupbuy_consumption_out", work)
        at = as_utc(row.created_at)
        codes = tuple(masked(self.code_of(v.id, v.code_nonce)) for v in vs)
        return Consumption(row.id, row.request_id, row.merchant_id, row.store_id, row.deal_id, title, row.order_id,
                           row.quantity, int(row.amount), codes, row.operator, row.state, at, at + self.reverse_window,
                           left, as_utc(row.reversed_at) if row.reversed_at else None, replayed)

    async def reverse(self, staff: Staff, consumption_id: str) -> Consumption:
        """撤销验券: the consumed vouchers are unused again, within the reversal window and
        before the merchant was paid; a second reversal answers the first. Audited."""

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(consumptions).where(consumptions.c.id == consumption_id)
                                          .with_for_update())).first()
            if row is None or row.merchant_id != staff.merchant_id:
                raise errors.ConsumptionNotFound(field="consumption_id")
            if row.state == "reversed":
                return row
            check_reversible(row.state, as_utc(row.created_at), uow.now, self.reverse_window)
            await uow.conn.execute(update(vouchers).where(vouchers.c.consumption_id == row.id).values(
                state=VoucherState.UNUSED.value, consumption_id=None, updated_at=uow.now))
            await uow.conn.execute(update(consumptions).where(consumptions.c.id == row.id).values(
                state="reversed", reversed_at=uow.now, reversed_by=staff.name[:80]))
            await uow.audit(actor=f"{staff.merchant_id}/{staff.name}", action="groupbuy.consumption_reverse",
                            target=row.id, reason="reversed at the shop",
                            before={"state": row.state, "count": row.quantity}, after={"state": "reversed"})
            return (await uow.conn.execute(select(consumptions).where(consumptions.c.id == row.id))).one()

        return await self._consumption(await self.uow.run("groupbuy_reverse", work))

    async def history(self, staff: Staff, day: date, store_id: str = "") -> list[Consumption]:
        """The merchant's consumptions on a Beijing day (reversed ones included, so marked)."""
        start, end = _day_window(day)

        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(consumptions).where(consumptions.c.merchant_id == staff.merchant_id,
                                           consumptions.c.created_at >= start, consumptions.c.created_at < end)
            if store_id:
                q = q.where(consumptions.c.store_id == store_id)
            return list(await uow.conn.execute(q.order_by(consumptions.c.created_at)))

        return [await self._consumption(r) for r in await self.uow.run("groupbuy_history", work)]

    async def settle_consumed(self, limit: int = 500) -> int:
        """Worker job: consumptions past their reversal window move from escrow to the
        merchant's payable, one ledger batch, each recorded as the merchant's paid trade
        (``out_trade_no`` ``gb-<consumption>``) for the T+1 settlement. Answers how many."""
        cutoff = self.uow.clock.now() - self.reverse_window

        async def due(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(consumptions, orders.c.user_id, deals.c.title).join(
                orders, orders.c.id == consumptions.c.order_id).join(deals, deals.c.id == consumptions.c.deal_id)
                .where(consumptions.c.state == "consumed", consumptions.c.created_at <= cutoff)
                .order_by(consumptions.c.created_at).limit(limit)))

        rows = await self.uow.run("groupbuy_settle_due", due)
        for r in rows:
            if r.merchant_id not in self._accounts:
                self._accounts[r.merchant_id] = (await self.merchants.merchant(r.merchant_id)).account_code
        if not rows:
            return 0

        async def work(uow: UnitOfWork) -> int:
            ids = [r.id for r in rows]
            moved = await uow.conn.execute(update(consumptions).where(consumptions.c.id.in_(ids),
                                                                      consumptions.c.state == "consumed")
                                           .values(state="settled", settled_at=uow.now))
            if moved.rowcount != len(ids):  # another worker took some: do them on the next round
                raise _Raced()
            results = await uow.post([
                Transfer(f"groupbuy:{r.id}", (Leg.debit(escrow_account(r.deal_id), r.amount),
                                              Leg.credit(self._accounts[r.merchant_id], r.amount)),
                         "groupbuy.consumed", reference=r.title[:80]) for r in rows])
            for result in results:
                if result.error is not None:
                    raise result.error
            trade_ids = await self.merchants.record_payments_in(uow, [
                CounterPayment(r.merchant_id, r.store_id, f"gb-{r.id}", int(r.amount), f"团购券 {r.title}"[:256],
                               r.user_id, f"groupbuy:{r.id}") for r in rows])
            for r, trade_id in zip(rows, trade_ids, strict=True):
                await uow.conn.execute(update(consumptions).where(consumptions.c.id == r.id).values(trade_id=trade_id))
            return len(rows)

        try:
            return await self.uow.run("groupbuy_settle", work)
        except _Raced:
            return 0

    # ------------------------------------------------------------------ the community's figures

    async def daily_spend(self, day: date) -> DailySpend:
        """What the community sold on a Beijing day: orders, vouchers, fen paid, refunded and
        consumed, and fen paid by city (the console's KPI line)."""
        start, end = _day_window(day)

        async def work(uow: UnitOfWork) -> DailySpend:
            o = (await uow.conn.execute(select(func.count(), func.coalesce(func.sum(orders.c.quantity), 0),
                                               func.coalesce(func.sum(orders.c.amount), 0)).where(
                orders.c.created_at >= start, orders.c.created_at < end))).one()
            back = (await uow.conn.execute(select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
                refunds.c.created_at >= start, refunds.c.created_at < end))).scalar_one()
            used = (await uow.conn.execute(select(func.coalesce(func.sum(consumptions.c.amount), 0)).where(
                consumptions.c.created_at >= start, consumptions.c.created_at < end,
                consumptions.c.state != "reversed"))).scalar_one()
            by_city: dict[str, int] = defaultdict(int)
            for city, amount in await uow.conn.execute(select(deals.c.city, func.sum(orders.c.amount)).join(
                    deals, deals.c.id == orders.c.deal_id).where(
                    and_(orders.c.created_at >= start, orders.c.created_at < end)).group_by(deals.c.city)):
                by_city[city] = int(amount)
            return DailySpend(day, int(o[0]), int(o[1]), int(o[2]), int(back), int(used),
                              dict(sorted(by_city.items(), key=lambda kv: -kv[1])))

        return await self.uow.run("groupbuy_daily_spend", work)


class _Raced(Exception):
    """Another worker settled some of the same consumptions first."""


def _terms(row: Any) -> DealTerms:
    return DealTerms(row.title, row.city, row.category, int(row.price), int(row.market_price), int(row.stock),
                     as_utc(row.sale_start), as_utc(row.sale_end), int(row.per_user_limit), as_utc(row.valid_from),
                     as_utc(row.valid_until), bool(row.refund_anytime), bool(row.refund_on_expiry),
                     int(row.group_min), as_utc(row.group_deadline) if row.group_deadline else None,
                     row.lat_e6 / 1e6 if row.lat_e6 is not None else None,
                     row.lon_e6 / 1e6 if row.lon_e6 is not None else None)


def _order_out(row: Any, deal: Any, vs: list[Voucher]) -> Order:
    return Order(row.id, row.deal_id, deal.title, row.quantity, int(row.amount), int(row.refunded),
                 as_utc(row.created_at), as_utc(deal.valid_until), tuple(vs))
