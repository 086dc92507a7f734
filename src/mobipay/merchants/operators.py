"""Merchant operator accounts and what the merchant portal does with them.

A merchant's staff sign in to the portal with the merchant id, their name and a password
(argon2id, as PINs are). Each account also holds a 6-digit **refund PIN** (argon2id): a
refund is money leaving the merchant, so it needs a second secret typed at the moment of
the refund, with 5 tries before a 15-minute lock. Roles: ``owner`` (everything, including
API keys and the notify URL) and ``staff`` (orders, refunds, statements).

Every query here is scoped by the signed-in operator's merchant: an id from another
merchant looks exactly like a missing one (404), so changing an id in a URL shows nothing.
Sign-in, its lockout and sessions are the staff mechanism the console shares
(:mod:`mobipay.platform.staff_sessions`: random tokens kept only as SHA-256, 8 hours).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import (
    and_,
    insert,
    or_,
    select,
    update,
)

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import NotFound, ValidationFailed
from mobipay.kernel.ids import new_id
from mobipay.kernel.lockout import REFUND_PIN_LOCKOUT
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants import errors
from mobipay.merchants.errors import (
    MerchantOperatorExists,
    MerchantRoleRequired,
    MerchantSessionExpired,
    MerchantSignInFailed,
    MerchantSignInLocked,
    RefundPinIncorrect,
    RefundPinLocked,
)
from mobipay.merchants.model import check_may_set_up, check_notify_url
from mobipay.merchants.service import Merchant, MerchantService, Trade
from mobipay.merchants.store import trade_record
from mobipay.merchants.tables import (
    merchant_apps,
    merchant_operator_sessions,
    merchant_operators,
    refunds,
    settlements,
    trades,
)
from mobipay.platform import audit
from mobipay.platform.staff_sessions import SignIn, StaffSessions, check_account

ROLES = ("owner", "staff")


@dataclass(frozen=True, slots=True)
class MerchantOperator:
    id: str
    merchant_id: str
    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    sign_type: str
    notify_url: str
    rotated_until: datetime | None
    created_at: datetime
    protocol: str = "mobipay"


@dataclass(frozen=True, slots=True)
class RefundLine:
    out_request_no: str
    amount: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SettlementLine:
    day: str
    gross: int
    refunds: int
    fee: int
    net: int
    state: str


def _operator(row: Any) -> MerchantOperator:
    return MerchantOperator(row.id, row.merchant_id, row.name, row.role, as_utc(row.created_at))


def check_refund_pin(pin: object) -> str:
    if not isinstance(pin, str) or not re.fullmatch(r"\d{6}", pin):
        raise ValidationFailed("the refund PIN is 6 digits", field="refund_pin")
    return pin


class MerchantOperators:
    """Operator accounts, portal sessions and the merchant-scoped reads and writes of the portal."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService, hasher: PasswordHasher | None = None
                 ) -> None:
        self.uow = uow
        self.merchants = merchants
        self.staff = StaffSessions(merchant_operators, merchant_operator_sessions, audit_prefix="merchant_operator",
                                   hasher=hasher)

    # ------------------------------------------------------------------ accounts and sessions

    async def create(self, merchant_id: str, name: str, password: str, refund_pin: str, *, role: str = "staff",
                     actor: str = "cli", reason: str = "merchant operator account") -> MerchantOperator:
        """A new operator of ``merchant_id`` (audited)."""
        name = check_account(name, password)
        check_refund_pin(refund_pin)
        if role not in ROLES:
            raise ValidationFailed("role is owner or staff", field="role")
        owner = await self.merchants.merchant(merchant_id)  # MERCHANT_NOT_FOUND for an unknown id
        check_may_set_up(owner.id, owner.state)  # no portal sign-in before approval, nor after a rejection
        password_hash = await self.staff.hash_password(password)
        pin_hash = await self.staff.hash_password(refund_pin)

        async def work(uow: UnitOfWork) -> MerchantOperator:
            if (await uow.conn.execute(select(merchant_operators.c.id).where(
                    merchant_operators.c.merchant_id == merchant_id, merchant_operators.c.name == name))).first():
                raise MerchantOperatorExists(f"{merchant_id} already has an operator named {name!r}", field="name")
            operator_id = new_id("mop")
            await uow.conn.execute(insert(merchant_operators).values(
                id=operator_id, merchant_id=merchant_id, name=name, password_hash=password_hash,
                refund_pin_hash=pin_hash, role=role, pin_failures=0, created_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="merchant_operator.create",
                               target=f"{merchant_id}/{name}", reason=reason, after={"role": role})
            return MerchantOperator(operator_id, merchant_id, name, role, uow.now)

        return await self.uow.run("merchant_operator_create", work)

    async def exists(self, merchant_id: str, name: str) -> bool:
        """Whether ``merchant_id`` has an operator named ``name``."""

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(merchant_operators.c.id).where(
                merchant_operators.c.merchant_id == merchant_id, merchant_operators.c.name == name))).first()
            return row is not None

        return await self.uow.run("merchant_operator_exists", work)

    async def sign_in(self, merchant_id: str, name: str, password: str, *, client: str = ""
                      ) -> tuple[str, MerchantOperator]:
        """A session token (kept as SHA-256) for the right merchant, name and password; every
        failure looks the same so the page does not tell which accounts exist. Wrong
        passwords lock the account as the console's do (:data:`SIGN_IN_LOCKOUT`,
        ``MERCHANT_SIGN_IN_LOCKED``); failures, locks and sign-ins are audited."""

        async def load(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(merchant_operators).where(
                merchant_operators.c.merchant_id == merchant_id.strip(),
                merchant_operators.c.name == name.strip()))).first()

        row = await self.uow.run("merchant_operator_load", load)
        ok = await self.staff.check_password(row.password_hash if row is not None else None, password)
        if row is None:
            raise MerchantSignInFailed("wrong merchant id, name or password", field="password")
        who = f"{row.merchant_id}/{row.name}"

        async def decide(uow: UnitOfWork) -> tuple[SignIn, str | None]:
            return await self.staff.start(uow.conn, uow.now, row.id, ok, who=who, client=client,
                                          reason="portal sign-in")

        outcome, token = await self.uow.run("merchant_session_start", decide)
        if outcome is SignIn.LOCKED:
            minutes = int(self.staff.lockout.lock.total_seconds() // 60)
            raise MerchantSignInLocked(f"too many wrong passwords: this account is locked for up to {minutes} "
                                       "minutes; the merchant's owner can ask the platform to unlock it sooner",
                                       field="password")
        if token is None:
            raise MerchantSignInFailed("wrong merchant id, name or password", field="password")
        return token, _operator(row)

    async def unlock(self, merchant_id: str, name: str, *, actor: str, reason: str) -> MerchantOperator:
        """End a portal account's sign-in lock and forget its wrong passwords (audited)."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")

        async def work(uow: UnitOfWork) -> MerchantOperator:
            row = (await uow.conn.execute(select(merchant_operators).where(
                merchant_operators.c.merchant_id == merchant_id, merchant_operators.c.name == name)
                .with_for_update())).first()
            if row is None:
                raise NotFound(f"{merchant_id} has no operator named {name!r}", field="name")
            await self.staff.unlock(uow.conn, row.id)
            await audit.record(uow.conn, at=uow.now, actor=actor, action="merchant_operator.unlock",
                               target=f"{merchant_id}/{name}", reason=reason,
                               before={"failures": row.sign_in_failures, "locked_until": row.sign_in_locked_until})
            return _operator(row)

        return await self.uow.run("merchant_operator_unlock", work)

    async def session(self, token: str) -> MerchantOperator:
        async def work(uow: UnitOfWork) -> Any:
            return await self.staff.holder(uow.conn, uow.now, token)

        row = await self.uow.run("merchant_session", work) if token else None
        if row is None:
            raise MerchantSessionExpired("sign in to the merchant portal")
        return _operator(row)

    async def sign_out(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self.staff.end(uow.conn, uow.now, token)

        await self.uow.run("merchant_sign_out", work)

    # ------------------------------------------------------------------ orders and refunds

    async def trades(self, op: MerchantOperator, *, q: str = "", state: str = "", before: str = "",
                     limit: int = 20) -> tuple[list[Trade], str | None]:
        """The merchant's trades, newest first, searched by order number or subject; keyset
        paging on the trade id (ids sort by time)."""

        async def work(uow: UnitOfWork) -> list[Trade]:
            query = select(trades).where(trades.c.merchant_id == op.merchant_id)
            if q.strip():
                like = f"%{q.strip()}%"
                query = query.where(or_(trades.c.out_trade_no.like(like), trades.c.subject.like(like),
                                        trades.c.id == q.strip()))
            if state:
                query = query.where(trades.c.state == state)
            if before:
                query = query.where(trades.c.id < before)
            rows = await uow.conn.execute(query.order_by(trades.c.id.desc()).limit(limit + 1))
            return [trade_record(r).seen_at(uow.now) for r in rows]

        items = await self.uow.run("merchant_trades", work)
        more = len(items) > limit
        items = items[:limit]
        return items, (items[-1].id if more and items else None)

    async def trade(self, op: MerchantOperator, trade_id: str) -> tuple[Trade, list[RefundLine]]:
        """One of the merchant's trades with its refunds; another merchant's is not found."""

        async def work(uow: UnitOfWork) -> tuple[Any, list[Any]]:
            row = (await uow.conn.execute(select(trades).where(
                and_(trades.c.id == trade_id, trades.c.merchant_id == op.merchant_id)))).first()
            back = list(await uow.conn.execute(select(refunds).where(refunds.c.trade_id == trade_id)
                                               .order_by(refunds.c.created_at))) if row is not None else []
            return (trade_record(row).seen_at(uow.now) if row is not None else None), back

        found, back = await self.uow.run("merchant_trade", work)
        if found is None:
            raise errors.TradeNotFound("no such trade of your merchant", field="trade_id")
        return found, [RefundLine(r.out_request_no, r.amount, as_utc(r.created_at)) for r in back]

    async def check_refund_pin(self, op: MerchantOperator, pin: str) -> None:
        """The operator's refund PIN, counted (:data:`~mobipay.kernel.lockout.REFUND_PIN_LOCKOUT`:
        5 wrong tries lock refunds for 15 minutes)."""
        check_refund_pin(pin)

        async def load(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(merchant_operators).where(
                merchant_operators.c.id == op.id))).one()

        row = await self.uow.run("refund_pin_load", load)
        now = self.uow.clock.now()
        if REFUND_PIN_LOCKOUT.is_locked(as_utc(row.pin_locked_until) if row.pin_locked_until else None, now):
            raise RefundPinLocked("try again later", field="refund_pin")
        ok = await self.staff.check_password(row.refund_pin_hash, pin)

        async def record(uow: UnitOfWork) -> tuple[int, datetime | None]:
            if ok:
                await uow.conn.execute(update(merchant_operators).where(merchant_operators.c.id == op.id).values(
                    pin_failures=0, pin_locked_until=None))
                return 0, None
            before = int((await uow.conn.execute(select(merchant_operators.c.pin_failures).where(
                merchant_operators.c.id == op.id).with_for_update())).scalar_one())
            failures, locked = REFUND_PIN_LOCKOUT.after_failure(before, None, uow.now)
            await uow.conn.execute(update(merchant_operators).where(merchant_operators.c.id == op.id).values(
                pin_failures=failures, pin_locked_until=locked))
            return failures, locked

        failures, locked = await self.uow.run("refund_pin_record", record)
        if not ok:
            if locked is not None:
                minutes = int(REFUND_PIN_LOCKOUT.lock.total_seconds() // 60)
                raise RefundPinLocked(f"too many wrong refund PINs; refunds are locked for {minutes} minutes",
                                      field="refund_pin")
            left = REFUND_PIN_LOCKOUT.tries - failures
            raise RefundPinIncorrect(f"{left} tries left", field="refund_pin", tries_left=left)

    async def refund(self, op: MerchantOperator, trade_id: str, amount: int, *, out_request_no: str, pin: str
                     ) -> tuple[Trade, int, bool]:
        """Refund part of one of the merchant's trades with the operator's refund PIN, through
        the trade API's refund (once per ``out_request_no``); audited."""
        trade, _ = await self.trade(op, trade_id)
        await self.check_refund_pin(op, pin)
        merchant = await self.merchants.merchant(op.merchant_id)
        done = await self.merchants.refund(merchant, trade.out_trade_no, out_request_no, amount)

        async def note(uow: UnitOfWork) -> None:
            await audit.record(uow.conn, at=uow.now, actor=f"{op.merchant_id}/{op.name}", action="merchant.refund",
                               target=trade.id, reason=f"portal refund {out_request_no}",
                               after={"amount": amount, "replayed": done[2]})

        await self.uow.run("merchant_refund_audit", note)
        return done

    # ------------------------------------------------------------------ statements and settlement

    async def settlements(self, op: MerchantOperator, limit: int = 60) -> list[SettlementLine]:
        async def work(uow: UnitOfWork) -> list[SettlementLine]:
            rows = await uow.conn.execute(select(settlements).where(settlements.c.merchant_id == op.merchant_id)
                                          .order_by(settlements.c.day.desc()).limit(limit))
            return [SettlementLine(r.day, r.gross, r.refunds, r.fee, r.net, r.state) for r in rows]

        return await self.uow.run("merchant_settlements", work)

    @staticmethod
    def parse_day(raw: str) -> date:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValidationFailed("give the business day as YYYY-MM-DD", field="day") from None

    # ------------------------------------------------------------------ API apps, keys, notify URL

    def require_owner(self, op: MerchantOperator) -> None:
        if op.role != "owner":
            raise MerchantRoleRequired("ask the merchant's owner account", field="role")

    async def apps(self, op: MerchantOperator) -> list[App]:
        async def work(uow: UnitOfWork) -> list[App]:
            rows = await uow.conn.execute(select(merchant_apps).where(merchant_apps.c.merchant_id == op.merchant_id)
                                          .order_by(merchant_apps.c.created_at))
            return [App(r.app_id, r.sign_type, r.notify_url,
                        as_utc(r.previous_until) if r.previous_until else None, as_utc(r.created_at), r.protocol)
                    for r in rows]

        return await self.uow.run("merchant_apps", work)

    async def _own_app(self, op: MerchantOperator, app_id: str) -> None:
        if app_id not in {a.app_id for a in await self.apps(op)}:
            raise NotFound("no such app of your merchant", field="app_id")

    async def create_app(self, op: MerchantOperator, sign_type: str, public_key: str | None, notify_url: str,
                         protocol: str = "mobipay") -> tuple[str, str | None]:
        """A new API app through the merchant service (the HMAC key is shown once)."""
        self.require_owner(op)
        return await self.merchants.create_app(op.merchant_id, sign_type, public_key=public_key or None,
                                               notify_url=notify_url, protocol=protocol)

    async def rotate_key(self, op: MerchantOperator, app_id: str, public_key: str) -> None:
        """A new RSA2 public key; the old one keeps working for the overlap (merchant service)."""
        self.require_owner(op)
        await self._own_app(op, app_id)
        merchant: Merchant = await self.merchants.merchant(op.merchant_id)
        await self.merchants.upload_key(merchant, app_id, public_key)

    async def set_notify_url(self, op: MerchantOperator, app_id: str, url: str) -> None:
        """Where new trades of this app are notified (audited)."""
        self.require_owner(op)
        url = check_notify_url(url, self.merchants.notify_policy)
        await self._own_app(op, app_id)

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(merchant_apps).where(
                merchant_apps.c.app_id == app_id, merchant_apps.c.merchant_id == op.merchant_id).values(
                notify_url=url))
            await audit.record(uow.conn, at=uow.now, actor=f"{op.merchant_id}/{op.name}",
                               action="merchant.notify_url", target=app_id, reason="portal setting",
                               after={"notify_url": url})

        await self.uow.run("merchant_notify_url", work)
