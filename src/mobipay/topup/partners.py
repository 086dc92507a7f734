"""Internet partners selling phone top-up (the seed's "external internet channels"): each
has an app id, an HMAC key, a commission and a prepaid deposit in the ledger.

A partner request is signed like every partner message here: ``X-Partner-Id``,
``X-Timestamp`` (within 300 s), ``X-Nonce`` (never twice) and ``X-Signature`` = hex
HMAC-SHA256 of ``timestamp \\n nonce \\n METHOD \\n path \\n body``. A top-up is the same
partner order as a subscriber's, paid from the partner's deposit: the deposit pays the
face value less the commission, the commission is the operator's expense, the operator
owes the crediting partner the face value. The partner's order number is its idempotency
key: sending it again returns the same top-up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from mobipay.kernel.errors import NotFound, Unauthorized, ValidationFailed
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.chart import BANK_SETTLEMENT, TOPUP_PARTNER_COMMISSION
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec
from mobipay.ledger.uow import UnitOfWork
from mobipay.orders.service import PartnerOrder
from mobipay.orders.service import order_id as make_order_id
from mobipay.platform import audit
from mobipay.topup.errors import PartnerSuspended
from mobipay.topup.service import KIND, PAYABLE, TopupService
from mobipay.topup.tables import partner_nonces, partners

WINDOW_S = 300


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    commission_bps: int
    status: str
    account_code: str


def _partner(row: Any) -> Partner:
    return Partner(row.id, row.name, row.commission_bps, row.status, row.account_code)


class TopupPartners:
    def __init__(self, topup: TopupService) -> None:
        self.service = topup
        self.uow = topup.uow

    async def create(self, name: str, commission_bps: int, *, actor: str, reason: str) -> tuple[Partner, str]:
        """A new partner and its HMAC key (shown once). Audited."""
        if not 0 <= commission_bps <= 2_000:
            raise ValidationFailed("commission is 0 to 2000 basis points (20 %)", field="commission_bps")
        partner_id, key = new_id("ptn"), secrets.token_hex(32)
        spec = AccountSpec(f"liability:partner_deposit:{partner_id}", AccountKind.LIABILITY,
                           name=f"Prepaid deposit of {name}", debits_must_not_exceed_credits=True)

        async def work(uow: UnitOfWork) -> Partner:
            await uow.open_account(spec)
            await uow.conn.execute(insert(partners).values(
                id=partner_id, name=name[:64], secret=key, commission_bps=commission_bps, status="active",
                account_code=spec.code, created_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="topup_partner.create", target=partner_id,
                               reason=reason, after={"name": name, "commission_bps": commission_bps})
            return Partner(partner_id, name, commission_bps, "active", spec.code)

        return await self.uow.run("create_partner", work), key

    async def fund(self, partner_id: str, amount: int, *, reference: str, actor: str) -> int:
        """Credit a partner's deposit with money it paid in (idempotent by its bank reference)."""
        partner = await self.get(partner_id)

        async def work(uow: UnitOfWork) -> int:
            [result] = await uow.post([Transfer(f"partner-deposit:{partner.id}:{reference}",
                                                (Leg.debit(BANK_SETTLEMENT, amount),
                                                 Leg.credit(partner.account_code, amount)),
                                                "partner.deposit", reference=reference)])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await audit.record(uow.conn, at=uow.now, actor=actor, action="topup_partner.fund",
                                   target=partner.id, reason=reference, after={"amount": amount})
            return amount

        await self.uow.run("fund_partner", work)
        return (await self.uow.ledger.account(partner.account_code)).balance

    async def set_status(self, partner_id: str, status: str, *, actor: str, reason: str) -> Partner:
        async def work(uow: UnitOfWork) -> None:
            done = await uow.conn.execute(update(partners).where(partners.c.id == partner_id).values(status=status))
            if done.rowcount == 0:
                raise NotFound(f"no partner {partner_id}", field="partner_id")
            await audit.record(uow.conn, at=uow.now, actor=actor, action=f"topup_partner.{status}",
                               target=partner_id, reason=reason)

        await self.uow.run("partner_status", work)
        return await self.get(partner_id)

    async def get(self, partner_id: str) -> Partner:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(partners).where(partners.c.id == partner_id))).first()

        row = await self.uow.run("partner", work)
        if row is None:
            raise NotFound(f"no partner {partner_id}", field="partner_id")
        return _partner(row)

    async def all(self) -> list[Partner]:
        async def work(uow: UnitOfWork) -> list[Partner]:
            return [_partner(r) for r in await uow.conn.execute(select(partners).order_by(partners.c.created_at))]

        return await self.uow.run("partners", work)

    async def authenticate(self, partner_id: str, timestamp: str, nonce: str, signature: str, method: str,
                           path: str, body: bytes) -> Partner:
        """The partner behind a signed request, or ``UNAUTHORIZED`` saying what is wrong."""
        if not (partner_id and timestamp.isdigit() and 8 <= len(nonce) <= 64 and signature):
            raise Unauthorized("sign the request: X-Partner-Id, X-Timestamp, X-Nonce (8-64 chars), X-Signature")
        if abs(time.time() - int(timestamp)) > WINDOW_S:
            raise Unauthorized(f"X-Timestamp is more than {WINDOW_S} s away from our clock")

        async def work(uow: UnitOfWork) -> Partner:
            row = (await uow.conn.execute(select(partners).where(partners.c.id == partner_id))).first()
            if row is None:
                raise Unauthorized("unknown X-Partner-Id")
            message = f"{timestamp}\n{nonce}\n{method}\n{path}\n".encode() + body
            expected = hmac.new(row.secret.encode(), message, hashlib.sha256).hexdigest().encode()
            if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):  # bytes: any text compares
                raise Unauthorized("bad X-Signature: HMAC-SHA256 of timestamp\\nnonce\\nMETHOD\\npath\\nbody")
            seen = (await uow.conn.execute(select(partner_nonces.c.nonce).where(
                partner_nonces.c.partner_id == partner_id, partner_nonces.c.nonce == nonce))).first()
            if seen is not None:
                raise Unauthorized("X-Nonce was used already: a replayed request")
            await uow.conn.execute(insert(partner_nonces).values(partner_id=partner_id, nonce=nonce, seen_at=uow.now))
            await uow.conn.execute(delete(partner_nonces).where(
                partner_nonces.c.seen_at < uow.now - timedelta(seconds=2 * WINDOW_S)))
            return _partner(row)

        return await self.uow.run("authenticate_partner", work)

    async def topup(self, partner: Partner, raw_msisdn: str, face: object, partner_order_id: str) -> PartnerOrder:
        """Top up a number for a partner's customer, paid from the partner's deposit."""
        if partner.status != "active":
            raise PartnerSuspended("this partner is suspended; contact the operator")
        check_idempotency_key(partner_order_id)
        quote = self.service.quote(raw_msisdn, face)
        commission = quote.face * partner.commission_bps // 10_000
        order_id = make_order_id("tp_", partner.id, partner_order_id)
        legs = [Leg.debit(partner.account_code, quote.face - commission), Leg.credit(PAYABLE[quote.route], quote.face)]
        if commission:
            legs.insert(1, Leg.debit(TOPUP_PARTNER_COMMISSION, commission))
        return await self.service.orders.place(
            order_id, partner=quote.route.value, kind=KIND, user_id=partner.id, msisdn=quote.msisdn,
            amount=quote.face, fee=0, legs=legs, reference=f"{partner.name} top-up {quote.msisdn}",
            details={"msisdn": quote.msisdn, "operator": quote.operator, "price": quote.face - commission,
                     "discount": 0, "rule": "", "channel": "partner", "partner": partner.id,
                     "partner_order_id": partner_order_id, "commission": commission})

    async def order(self, partner: Partner, partner_order_id: str) -> PartnerOrder:
        order_id = make_order_id("tp_", partner.id, partner_order_id)
        order = await self.service.orders.get(order_id, refresh=True)
        if order is None:
            raise NotFound("no such top-up of yours", field="partner_order_id")
        return order


def is_partner_order(order: PartnerOrder) -> bool:
    return order.details.get("channel") == "partner"


