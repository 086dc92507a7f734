"""Merchant use cases so far: simplified onboarding with review, API apps with RSA2 or
HMAC keys (rotation with an overlap), signed-request authentication (timestamp window,
nonces), and the trade API: create, pay from the wallet, query, close, refund.

A payment moves the amount from the payer's wallet to the merchant's payable account
(``liability:merchant:<id>``) in the same unit of work that marks the trade paid, under a
row lock on the trade: a trade is paid once however often "pay" is pressed. A refund is
keyed by the merchant's refund request number and never exceeds what is left of the
payment; it moves money back from the merchant's payable, which may not go negative.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, Unauthorized, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.kernel.roles import Roster
from mobipay.kernel.urls import DestinationPolicy
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants import errors as E
from mobipay.merchants.model import (
    Category,
    MerchantState,
    TradeState,
    check_credit_code,
    check_mcc,
    check_merchant_move,
    check_notify_url,
    check_refund,
    check_trade_move,
    check_website,
)
from mobipay.merchants.notify import queue_notification
from mobipay.merchants.signing import public_pem, verify_hmac, verify_rsa2
from mobipay.merchants.tables import merchant_apps, merchant_nonces, merchants, refunds, stores, trades
from mobipay.platform import audit
from mobipay.wallet.service import Principal, WalletService

WINDOW_S = 300
KEY_OVERLAP = timedelta(days=7)


class CouponUse(Protocol):
    async def use_in(self, uow: UnitOfWork, coupon_id: str, user_id: str, trade: Any) -> tuple[int, str]: ...


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    credit_code: str
    mcc: str
    state: MerchantState
    reason: str
    fee_bps: int
    account_code: str
    website: str


@dataclass(frozen=True, slots=True)
class Trade:
    id: str
    merchant_id: str
    out_trade_no: str
    amount: int
    subject: str
    state: TradeState
    refunded: int
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    red_envelope: int = 0  # fen of the amount a red envelope paid (the wallet paid the rest)


def _merchant(r: Any) -> Merchant:
    return Merchant(r.id, r.name, r.credit_code, r.mcc, MerchantState(r.state), r.reason, r.fee_bps, r.account_code,
                    r.website)


def _trade(r: Any, now: datetime | None = None) -> Trade:
    state = TradeState(r.state)
    if state is TradeState.WAIT_BUYER_PAY and now is not None and as_utc(r.expires_at) <= now:
        state = TradeState.TRADE_CLOSED  # expired unpaid
    return Trade(r.id, r.merchant_id, r.out_trade_no, r.amount, r.subject, state, r.refunded, as_utc(r.expires_at),
                 as_utc(r.created_at), as_utc(r.paid_at) if r.paid_at else None, int(r.coupon_amount or 0))


class MerchantService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, platform_key: bytes,
                 categories: dict[str, Category], roster: Roster | None = None,
                 notify_policy: DestinationPolicy | None = None) -> None:
        self.uow = uow
        self.notify_policy = notify_policy or DestinationPolicy()  # public addresses only
        self.roster = roster or Roster("operator:admin")
        self.wallet = wallet
        self.categories = categories
        self.platform_key = platform_key  # PEM private key signing our answers and notifications
        self.platform_public_key = public_pem(platform_key)
        self.coupons: CouponUse | None = None  # the red-envelope zone plugs in here

    # ------------------------------------------------------------------ onboarding

    async def apply(self, *, name: str, credit_code: str, legal_person: str, contact: str, mcc: str,
                    website: str, settlement_account: str) -> Merchant:
        """A merchant's application; low-risk categories (config) are approved at once."""
        code = check_credit_code(credit_code)
        mcc = check_mcc(mcc)
        category = self.categories.get(mcc)
        if category is None:
            raise E.InvalidMerchantField(f"MCC {mcc} is not a category we accept", field="mcc")
        msisdn = normalize_msisdn(contact)
        website = check_website(website)
        if not (2 <= len(name.strip()) <= 128 and 2 <= len(legal_person.strip()) <= 64):
            raise E.InvalidMerchantField("give the business name and the legal person's name", field="name")
        account = "".join(settlement_account.split())
        if not (account.isdigit() and 8 <= len(account) <= 32):
            raise E.InvalidMerchantField("the settlement account is the bank account number",
                                         field="settlement_account")
        merchant_id = new_id("mch")
        spec = AccountSpec(f"liability:merchant:{merchant_id}", AccountKind.LIABILITY, name=f"Payable to {name}",
                           debits_must_not_exceed_credits=True)
        auto = category.risk == "low"

        async def work(uow: UnitOfWork) -> Merchant:
            if (await uow.conn.execute(select(merchants.c.id).where(merchants.c.credit_code == code))).first():
                raise E.InvalidMerchantField("a merchant with this credit code exists already", field="credit_code")
            await uow.open_account(spec)
            state = MerchantState.APPROVED if auto else MerchantState.SUBMITTED
            await uow.conn.execute(insert(merchants).values(
                id=merchant_id, name=name.strip(), credit_code=code, legal_person=legal_person.strip(),
                contact_msisdn=msisdn, mcc=mcc, website=website,
                settlement_account=account, state=state.value,
                reason="low-risk category: approved by rule" if auto else "", fee_bps=category.fee_bps,
                settlement_days=category.settlement_days, per_trade_limit=category.per_trade_limit,
                daily_limit=category.daily_limit,
                account_code=spec.code, created_at=uow.now, updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor="merchant", action="merchant.apply", target=merchant_id,
                               reason=name, after={"state": state.value, "mcc": mcc})
            return _merchant((await uow.conn.execute(select(merchants).where(merchants.c.id == merchant_id))).one())

        return await self.uow.run("merchant_apply", work)

    async def review(self, merchant_id: str, to: MerchantState, *, actor: str, reason: str) -> Merchant:
        """A reviewer (or operations) moves a merchant: approve, reject, ask for more
        information, suspend, suspend settlement, terminate. Audited with the reason."""
        if not reason.strip():
            raise ValidationFailed("give the reason (audited; the merchant sees it)", field="reason")

        async def work(uow: UnitOfWork) -> Merchant:
            row = (await uow.conn.execute(select(merchants).where(merchants.c.id == merchant_id)
                                          .with_for_update())).first()
            if row is None:
                raise E.MerchantNotFound(f"no merchant {merchant_id}", field="merchant_id")
            current = MerchantState(row.state)
            check_merchant_move(current, to)
            # the review queue is the merchant-review role's; suspending and resuming is risk's
            self.roster.require(actor, "merchant_review" if current in (MerchantState.SUBMITTED,
                                                                        MerchantState.MORE_INFO) else "risk")
            await uow.conn.execute(update(merchants).where(merchants.c.id == merchant_id).values(
                state=to.value, reason=reason.strip()[:500], updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="merchant.review", target=merchant_id,
                               reason=reason, before={"state": row.state}, after={"state": to.value})
            return _merchant((await uow.conn.execute(select(merchants).where(merchants.c.id == merchant_id))).one())

        return await self.uow.run("merchant_review", work)

    async def merchant(self, merchant_id: str) -> Merchant:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(merchants).where(merchants.c.id == merchant_id))).first()

        row = await self.uow.run("merchant", work)
        if row is None:
            raise E.MerchantNotFound(f"no merchant {merchant_id}", field="merchant_id")
        return _merchant(row)

    async def find(self, *, state: MerchantState | None = None, q: str | None = None, mcc: str | None = None,
                   limit: int = 20) -> list[Merchant]:
        """Merchants, newest first: in a state, of a category, or whose name, id or credit
        code contains ``q`` (how an operator finds a merchant id)."""
        query = select(merchants).order_by(merchants.c.created_at.desc(), merchants.c.id.desc()).limit(
            max(1, min(limit, 1000)))
        if state is not None:
            query = query.where(merchants.c.state == state.value)
        if mcc:
            query = query.where(merchants.c.mcc == mcc.strip())
        if q and q.strip():
            like = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(merchants.c.name.ilike(like, escape="\\") | merchants.c.id.ilike(like, escape="\\")
                                | merchants.c.credit_code.ilike(like, escape="\\"))

        async def work(uow: UnitOfWork) -> list[Merchant]:
            return [_merchant(r) for r in await uow.conn.execute(query)]

        return await self.uow.run("merchant_find", work)

    async def review_queue(self) -> list[Merchant]:
        async def work(uow: UnitOfWork) -> list[Merchant]:
            rows = await uow.conn.execute(select(merchants).where(merchants.c.state == MerchantState.SUBMITTED.value)
                                          .order_by(merchants.c.created_at))
            return [_merchant(r) for r in rows]

        return await self.uow.run("merchant_queue", work)

    # ------------------------------------------------------------------ API apps and keys

    async def create_app(self, merchant_id: str, sign_type: str, *, public_key: str | None = None,
                         notify_url: str = "") -> tuple[str, str | None]:
        """An API app: (app id, the HMAC key to show once, or None for RSA2)."""
        if sign_type not in ("RSA2", "HMAC"):
            raise ValidationFailed("sign_type is RSA2 or HMAC", field="sign_type")
        if sign_type == "RSA2" and not (public_key and "BEGIN PUBLIC KEY" in public_key):
            raise ValidationFailed("RSA2 needs the merchant's public key (PEM)", field="public_key")
        notify_url = check_notify_url(notify_url, self.notify_policy)
        await self.merchant(merchant_id)
        app_id, key = new_id("app"), secrets.token_hex(32) if sign_type == "HMAC" else None

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(merchant_apps).values(
                app_id=app_id, merchant_id=merchant_id, sign_type=sign_type, public_key=public_key, hmac_key=key,
                notify_url=notify_url, created_at=uow.now))

        await self.uow.run("merchant_app", work)
        return app_id, key

    async def rotate_key(self, app_id: str, public_key: str) -> None:
        """Upload a new RSA2 public key; the old one is still accepted for KEY_OVERLAP."""

        async def work(uow: UnitOfWork) -> None:
            row = (await uow.conn.execute(select(merchant_apps).where(merchant_apps.c.app_id == app_id))).first()
            if row is None or row.sign_type != "RSA2":
                raise E.MerchantNotFound("no RSA2 app with this id", field="app_id")
            await uow.conn.execute(update(merchant_apps).where(merchant_apps.c.app_id == app_id).values(
                public_key=public_key, previous_key=row.public_key, previous_until=uow.now + KEY_OVERLAP))

        await self.uow.run("rotate_key", work)

    async def authenticate(self, params: dict[str, Any]) -> tuple[Merchant, bytes | None]:
        """The merchant behind a signed request (``app_id``, ``timestamp`` in Unix seconds,
        ``nonce``, ``sign_type``, ``sign``) and, for an HMAC app, the key our answer is signed
        with; or ``UNAUTHORIZED`` / ``BAD_SIGNATURE``."""
        app_id, ts = str(params.get("app_id", "")), str(params.get("timestamp", ""))
        nonce = str(params.get("nonce", ""))
        # ASCII digits only, and few: "²" and 5,000 digits pass isdigit() but not int() (500s).
        if not (app_id and ts.isascii() and ts.isdigit() and len(ts) <= 12 and 8 <= len(nonce) <= 64
                and params.get("sign")):
            raise Unauthorized("send app_id, timestamp (Unix seconds), nonce (8-64 chars), sign_type and sign")
        if abs(time.time() - int(ts)) > WINDOW_S:
            raise Unauthorized(f"timestamp is more than {WINDOW_S} s away from our clock")

        async def work(uow: UnitOfWork) -> tuple[Merchant, bytes | None]:
            app = (await uow.conn.execute(select(merchant_apps).where(merchant_apps.c.app_id == app_id))).first()
            if app is None:
                raise Unauthorized("unknown app_id")
            if params.get("sign_type") != app.sign_type:
                raise Unauthorized(f"this app signs with {app.sign_type}")
            if app.sign_type == "HMAC":
                verify_hmac(params, str(params["sign"]), app.hmac_key.encode())
            else:
                try:
                    verify_rsa2(params, str(params["sign"]), app.public_key.encode())
                except E.BadSignature:
                    if not (app.previous_key and app.previous_until and as_utc(app.previous_until) > uow.now):
                        raise
                    verify_rsa2(params, str(params["sign"]), app.previous_key.encode())
            if (await uow.conn.execute(select(merchant_nonces.c.nonce).where(
                    merchant_nonces.c.app_id == app_id, merchant_nonces.c.nonce == nonce))).first():
                raise Unauthorized("nonce was used already: a replayed request")
            await uow.conn.execute(insert(merchant_nonces).values(app_id=app_id, nonce=nonce, seen_at=uow.now))
            await uow.conn.execute(delete(merchant_nonces).where(
                merchant_nonces.c.seen_at < uow.now - timedelta(seconds=2 * WINDOW_S)))
            merchant = _merchant((await uow.conn.execute(select(merchants).where(
                merchants.c.id == app.merchant_id))).one())
            return merchant, app.hmac_key.encode() if app.sign_type == "HMAC" else None

        return await self.uow.run("merchant_authenticate", work)

    async def add_store(self, merchant: Merchant, name: str, address: str = "") -> str:
        """A store of the merchant (trades may name the store they were taken in)."""
        if not 1 <= len(name.strip()) <= 128:
            raise ValidationFailed("a store has a name", field="name")
        store_id = new_id("sto")

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(stores).values(id=store_id, merchant_id=merchant.id, name=name.strip(),
                                                         address=address.strip()[:256], created_at=uow.now))

        await self.uow.run("add_store", work)
        return store_id

    # ------------------------------------------------------------------ trades

    async def create_trade(self, merchant: Merchant, out_trade_no: str, amount: object, subject: str,
                           expire_minutes: int = 30, *, app_id: str = "", notify_url: str = "",
                           store_id: str | None = None) -> Trade:
        """A trade waiting for the buyer; the same out_trade_no and content returns it again."""
        if merchant.state not in (MerchantState.APPROVED, MerchantState.SETTLEMENT_SUSPENDED):
            raise E.MerchantNotActive(f"the merchant is {merchant.state.value}")
        check_idempotency_key(out_trade_no)
        amount = check_amount(amount)
        limit = await self.uow.run("merchant_limit", lambda uow: _scalar(uow, select(merchants.c.per_trade_limit).where(
            merchants.c.id == merchant.id)))
        if amount > limit:
            raise E.MerchantLimitExceeded(f"this merchant takes at most {limit / 100:.2f} CNY a payment",
                                          field="total_amount")
        if not 1 <= expire_minutes <= 24 * 60:
            raise ValidationFailed("expire_minutes is from 1 to 1440", field="expire_minutes")
        if not subject.strip():
            raise ValidationFailed("send a subject: what the buyer pays for", field="subject")
        notify_url = check_notify_url(notify_url, self.notify_policy)

        async def work(uow: UnitOfWork) -> Trade:
            row = (await uow.conn.execute(select(trades).where(trades.c.merchant_id == merchant.id,
                                                               trades.c.out_trade_no == out_trade_no))).first()
            if row is not None:
                if (row.amount, row.subject) != (amount, subject.strip()[:256]):
                    raise E.TradeExists("this out_trade_no was used for another amount or subject",
                                        field="out_trade_no")
                return _trade(row, uow.now)
            if store_id and (await uow.conn.execute(select(stores.c.merchant_id).where(
                    stores.c.id == store_id))).scalar_one_or_none() != merchant.id:
                raise E.MerchantNotFound("no such store of yours", field="store_id")
            trade_id = new_id("trd")
            url = notify_url or (await uow.conn.execute(select(merchant_apps.c.notify_url).where(
                merchant_apps.c.app_id == app_id))).scalar_one_or_none() or ""
            await uow.conn.execute(insert(trades).values(
                id=trade_id, merchant_id=merchant.id, out_trade_no=out_trade_no, amount=amount, app_id=app_id,
                store_id=store_id,
                notify_url=url,
                subject=subject.strip()[:256], state=TradeState.WAIT_BUYER_PAY.value, created_at=uow.now,
                expires_at=uow.now + timedelta(minutes=expire_minutes)))
            return _trade((await uow.conn.execute(select(trades).where(trades.c.id == trade_id))).one(), uow.now)

        return await self.uow.run("create_trade", work)

    async def trade(self, trade_id: str) -> Trade:
        async def work(uow: UnitOfWork) -> Trade:
            row = (await uow.conn.execute(select(trades).where(trades.c.id == trade_id))).first()
            if row is None:
                raise E.TradeNotFound("no such trade", field="trade_id")
            return _trade(row, uow.now)

        return await self.uow.run("trade", work)

    async def trade_by_out_no(self, merchant: Merchant, out_trade_no: str) -> Trade:
        async def work(uow: UnitOfWork) -> Trade:
            row = (await uow.conn.execute(select(trades).where(trades.c.merchant_id == merchant.id,
                                                               trades.c.out_trade_no == out_trade_no))).first()
            if row is None:
                raise E.TradeNotFound("no trade with this out_trade_no", field="out_trade_no")
            return _trade(row, uow.now)

        return await self.uow.run("trade", work)

    async def pay(self, me: Principal, trade_id: str, *, pin: str | None = None, coupon_id: str | None = None
                  ) -> Trade:
        """The buyer pays a trade from the wallet (PIN above the password-free amount),
        optionally with a red envelope paying part; a second press returns the paid trade,
        never a second payment."""
        trade = await self.trade(trade_id)
        if trade.state is TradeState.TRADE_SUCCESS and trade.paid_at is not None:
            return trade
        check_trade_move(trade.state, TradeState.TRADE_SUCCESS, why="pay")
        merchant = await self.merchant(trade.merchant_id)
        if merchant.state not in (MerchantState.APPROVED, MerchantState.SETTLEMENT_SUSPENDED):
            raise E.MerchantNotActive(f"the merchant is {merchant.state.value}: it cannot be paid now")
        payer = await self.wallet.authorize_payment(me, trade.amount, pin)

        async def work(uow: UnitOfWork) -> Trade:
            row = (await uow.conn.execute(select(trades).where(trades.c.id == trade_id).with_for_update())).one()
            current = _trade(row, uow.now)
            if current.state is TradeState.TRADE_SUCCESS and row.payer_id == payer.id:
                return current  # paid by this very press a moment ago
            check_trade_move(current.state, TradeState.TRADE_SUCCESS, why="pay")
            await _check_daily(uow, merchant.id, row.amount)
            transfer_id = f"trade:{trade_id}"
            face, funded_by = 0, ""
            if coupon_id:
                if self.coupons is None:
                    raise E.CouponNotUsable("red envelopes are not available", field="coupon_id")
                face, funded_by = await self.coupons.use_in(uow, coupon_id, payer.id, row)
            wallet_part = row.amount - face
            legs = [Leg.credit(merchant.account_code, row.amount)]
            if wallet_part:
                legs.insert(0, Leg.debit(payer.account_code, wallet_part))
            if face:
                legs.insert(0, Leg.debit(funded_by, face))
            [result] = await uow.post([Transfer(transfer_id, tuple(legs), "merchant.payment",
                                                reference=f"{merchant.name} {row.out_trade_no}")])
            if result.error is not None:
                raise result.error
            if wallet_part:
                await self.wallet.count_payment(uow, payer, wallet_part)
            await uow.conn.execute(update(trades).where(trades.c.id == trade_id).values(
                state=TradeState.TRADE_SUCCESS.value, payer_id=payer.id, transfer_id=transfer_id, paid_at=uow.now,
                coupon_id=coupon_id, coupon_amount=face))
            params: dict[str, Any] = {"merchant": merchant.name, "amount_fen": row.amount}
            if face:  # the red envelope's share, said: the wallet paid less than the price
                params |= {"envelope_fen": face, "paid_fen": wallet_part}
            await uow.emit(SmsRequested(key=f"{trade_id}:paid", to=payer.msisdn,
                                        template="merchant.paid_with_envelope" if face else "merchant.paid",
                                        params=params))
            await queue_notification(uow, row, TradeState.TRADE_SUCCESS, row.refunded, red_envelope=face)
            return _trade((await uow.conn.execute(select(trades).where(trades.c.id == trade_id))).one(), uow.now)

        return await self.uow.run("pay_trade", work)

    async def close(self, merchant: Merchant, out_trade_no: str) -> Trade:
        """Close an unpaid trade (the buyer can no longer pay it)."""
        trade = await self.trade_by_out_no(merchant, out_trade_no)

        async def work(uow: UnitOfWork) -> Trade:
            row = (await uow.conn.execute(select(trades).where(trades.c.id == trade.id).with_for_update())).one()
            current = _trade(row, uow.now)
            if current.state is TradeState.TRADE_CLOSED and row.paid_at is None:
                return current  # closed (or expired) already
            check_trade_move(TradeState(row.state), TradeState.TRADE_CLOSED, why="close")
            if row.paid_at is not None:
                raise E.TradeStateInvalid("a paid trade is not closed: refund it", field="out_trade_no")
            await uow.conn.execute(update(trades).where(trades.c.id == trade.id).values(
                state=TradeState.TRADE_CLOSED.value, closed_at=uow.now))
            return _trade((await uow.conn.execute(select(trades).where(trades.c.id == trade.id))).one(), uow.now)

        return await self.uow.run("close_trade", work)

    async def cancel(self, merchant: Merchant, out_trade_no: str) -> Trade:
        """Undo a trade whatever its state (Alipay's cancel): close it if unpaid, refund what
        the wallet paid if paid (request number ``cancel``). Safe to repeat."""
        trade = await self.trade_by_out_no(merchant, out_trade_no)
        if trade.paid_at is None:
            return await self.close(merchant, out_trade_no)
        refundable = await self.uow.run("trade_refundable", lambda uow: _scalar(uow, select(
            trades.c.amount - trades.c.coupon_amount - trades.c.refunded).where(trades.c.id == trade.id)))
        if refundable:
            trade, _, _ = await self.refund(merchant, out_trade_no, "cancel", int(refundable))
        return trade

    async def refund_query(self, merchant: Merchant, out_trade_no: str, out_request_no: str) -> tuple[Trade, int]:
        """A refund by its request number: (the trade, the amount refunded)."""
        trade = await self.trade_by_out_no(merchant, out_trade_no)
        amount = await self.uow.run("refund", lambda uow: _first(uow, select(refunds.c.amount).where(
            refunds.c.trade_id == trade.id, refunds.c.out_request_no == out_request_no)))
        if amount is None:
            raise E.TradeNotFound("no refund with this out_request_no", field="out_request_no")
        return trade, int(amount)

    async def upload_key(self, merchant: Merchant, app_id: str, public_key: str) -> None:
        """A merchant replaces its RSA2 key through the signed API (the old one keeps working
        for the overlap, so requests in flight are not refused)."""
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(merchant_apps.c.merchant_id).where(
                merchant_apps.c.app_id == app_id))).scalar_one_or_none()

        if await self.uow.run("app_owner", work) != merchant.id:
            raise E.MerchantNotFound("no such app of yours", field="app_id")
        if "BEGIN PUBLIC KEY" not in public_key:
            raise ValidationFailed("send the new public key as PEM", field="public_key")
        await self.rotate_key(app_id, public_key)

    async def refund(self, merchant: Merchant, out_trade_no: str, out_request_no: str, amount: object
                     ) -> tuple[Trade, int, bool]:
        """Refund part or all of a paid trade, once per ``out_request_no``; returns (trade,
        amount refunded by this request, replayed)."""
        check_idempotency_key(out_request_no)
        amount = check_amount(amount)
        trade = await self.trade_by_out_no(merchant, out_trade_no)
        if trade.paid_at is None:
            raise E.TradeStateInvalid("only a paid trade can be refunded", field="out_trade_no")
        payer_id = await self.uow.run("trade_payer", lambda uow: _scalar(uow, select(trades.c.payer_id).where(
            trades.c.id == trade.id)))
        payer = await self.wallet.principal(str(payer_id))  # cash goes back where it came from
        payer_wallet = payer.account_code

        async def work(uow: UnitOfWork) -> tuple[Trade, int, bool]:
            row = (await uow.conn.execute(select(trades).where(trades.c.id == trade.id).with_for_update())).one()
            known = (await uow.conn.execute(select(refunds).where(refunds.c.trade_id == trade.id,
                                                                  refunds.c.out_request_no == out_request_no))).first()
            if known is not None:
                if known.amount != amount:
                    raise IdempotencyConflict("this out_request_no was used for another amount", field="out_request_no")
                return _trade(row, uow.now), known.amount, True
            if row.paid_at is None:
                raise E.TradeStateInvalid("only a paid trade can be refunded", field="out_trade_no")
            check_refund(row.amount - row.coupon_amount, row.refunded, amount)  # a red envelope is not cash
            transfer_id = "refund:" + hashlib.sha256(f"{trade.id}|{out_request_no}".encode()).hexdigest()[:40]
            [result] = await uow.post([Transfer(transfer_id, (Leg.debit(merchant.account_code, amount),
                                                              Leg.credit(payer_wallet, amount)),
                                                "merchant.refund", reference=f"{merchant.name} {out_trade_no}")])
            if result.error is not None:
                raise result.error
            refunded = row.refunded + amount
            await uow.conn.execute(insert(refunds).values(
                id=new_id("rfd"), trade_id=trade.id, out_request_no=out_request_no, amount=amount,
                transfer_id=transfer_id, created_at=uow.now))
            state = TradeState.TRADE_CLOSED if refunded == row.amount - row.coupon_amount else TradeState.TRADE_SUCCESS
            await uow.conn.execute(update(trades).where(trades.c.id == trade.id).values(
                refunded=refunded, **({"state": state.value, "closed_at": uow.now}
                                      if state is TradeState.TRADE_CLOSED else {})))
            await queue_notification(uow, row, state, refunded, red_envelope=int(row.coupon_amount or 0),
                                     refund=(out_request_no, amount))
            # The buyer did not move this money: told in the same transaction, with the request number.
            await uow.emit(SmsRequested(key=f"{transfer_id}:sms", to=payer.msisdn, template="merchant.refunded",
                                        params={"merchant": merchant.name, "amount_fen": amount,
                                                "out_request_no": out_request_no}))
            return _trade((await uow.conn.execute(select(trades).where(trades.c.id == trade.id))).one(), uow.now), \
                amount, False

        return await self.uow.run("refund_trade", work)



async def _scalar(uow: UnitOfWork, query: Any) -> Any:
    return (await uow.conn.execute(query)).scalar_one()


async def _first(uow: UnitOfWork, query: Any) -> Any:
    return (await uow.conn.execute(query)).scalar_one_or_none()


async def _check_daily(uow: UnitOfWork, merchant_id: str, amount: int) -> None:
    """The merchant's daily limit (Shanghai day), counted under the paying transaction."""
    day = uow.now.astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=0, minute=0, second=0, microsecond=0)
    start = day.astimezone(uow.now.tzinfo)
    limit = await _scalar(uow, select(merchants.c.daily_limit).where(merchants.c.id == merchant_id))
    today = await _scalar(uow, select(func.coalesce(func.sum(trades.c.amount), 0)).where(
        trades.c.merchant_id == merchant_id, trades.c.paid_at >= start))
    if today + amount > limit:
        raise E.MerchantLimitExceeded(f"this merchant's daily limit: {max(0, limit - today) / 100:.2f} CNY left "
                                      "today", field="amount")
