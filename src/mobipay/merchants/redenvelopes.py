"""The red-envelope zone: merchants fund campaigns, the platform issues red envelopes
(coupons) to subscribers by the campaign's rule, a coupon pays part of a checkout at that
merchant, and unused coupons expire back to the merchant.

Every step is a ledger posting, so the budget is the ledger's to guard: funding moves money
from the merchant's payable into the campaign account; issuing moves the coupon's face
from the campaign into the campaign's "issued" account; both accounts may never go
negative, so concurrent issues past the budget are refused by the ledger itself, not by a
read-then-write check. Using a coupon pays the merchant from the issued account (the
wallet pays the rest); expiry returns the face to the merchant's payable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.money import check_amount
from mobipay.ledger import errors as ledger_errors
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec
from mobipay.ledger.uow import Transaction, UnitOfWork, UnitOfWorkRunner
from mobipay.merchants import errors
from mobipay.merchants.model import MerchantState, TradeRecord
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.merchants.tables import campaigns, coupons, merchants, trades
from mobipay.platform import audit
from mobipay.wallet.service import Principal

log = structlog.get_logger(__name__)
RULES = ("new_user", "threshold", "brand")
NEW_USER_DAYS = 30


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    merchant_id: str
    name: str
    rule: str
    face: int
    min_spend: int
    budget: int
    state: str


@dataclass(frozen=True, slots=True)
class Coupon:
    id: str
    campaign_id: str
    merchant_id: str
    face: int
    min_spend: int
    state: str
    expires_at: datetime


def _campaign(r: Any) -> Campaign:
    return Campaign(r.id, r.merchant_id, r.name, r.rule, r.face, r.min_spend, r.budget, r.state)


def _coupon(r: Any) -> Coupon:
    return Coupon(r.id, r.campaign_id, r.merchant_id, r.face, r.min_spend, r.state, as_utc(r.expires_at))


class RedEnvelopes:
    def __init__(self, merchants: MerchantService, uow: UnitOfWorkRunner) -> None:
        self.merchants = merchants
        self.uow = uow

    async def create_campaign(self, merchant: Merchant, *, name: str, rule: str, face: object, min_spend: object,
                              budget: object, valid_days: int = 7, actor: str) -> Campaign:
        """A campaign funded now from the merchant's payable (refused if it holds too little)."""
        if rule not in RULES:
            raise ValidationFailed(f"rule is one of {', '.join(RULES)}", field="rule")
        face, budget = check_amount(face), check_amount(budget)
        min_spend = int(min_spend) if isinstance(min_spend, int) and min_spend >= 0 else -1
        if min_spend < face or budget < face or not 1 <= valid_days <= 90:
            raise ValidationFailed("min_spend at least the face value, a budget of at least one envelope, "
                                   "valid 1 to 90 days", field="min_spend")
        if merchant.state is not MerchantState.APPROVED:
            raise errors.MerchantNotActive(f"the merchant is {merchant.state.value}")
        campaign_id = new_id("cmp")
        budget_spec = AccountSpec(f"liability:campaign:{campaign_id}", AccountKind.LIABILITY,
                                  name=f"Campaign {name}", debits_must_not_exceed_credits=True)
        issued_spec = AccountSpec(f"liability:campaign_issued:{campaign_id}", AccountKind.LIABILITY,
                                  name=f"Campaign {name}, issued", debits_must_not_exceed_credits=True)

        async def work(uow: UnitOfWork) -> Campaign:
            await uow.open_account(budget_spec)
            await uow.open_account(issued_spec)
            [result] = await uow.post([Transfer(f"fund:{campaign_id}", (Leg.debit(merchant.account_code, budget),
                                                                        Leg.credit(budget_spec.code, budget)),
                                                "campaign.fund", reference=name[:64])])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(insert(campaigns).values(
                id=campaign_id, merchant_id=merchant.id, name=name[:64], rule=rule, face=face, min_spend=min_spend,
                budget=budget, valid_days=valid_days, account_code=budget_spec.code, reserved_code=issued_spec.code,
                state="active", created_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="campaign.create", target=campaign_id,
                               reason=name, after={"budget": budget, "face": face, "rule": rule})
            return _campaign((await uow.conn.execute(select(campaigns).where(campaigns.c.id == campaign_id))).one())

        return await self.uow.run("create_campaign", work)

    async def claim(self, me: Principal, campaign_id: str) -> Coupon:
        """Give me this campaign's red envelope if its rule says so (one each)."""
        user = await self.merchants.wallet.user_by_msisdn(me.msisdn)

        async def work(uow: UnitOfWork) -> Coupon:
            c = (await uow.conn.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
            if c is None or c.state != "active":
                raise errors.NotEligible("no such running campaign", field="campaign_id")
            mine = (await uow.conn.execute(select(coupons).where(coupons.c.campaign_id == c.id,
                                                                 coupons.c.user_id == user.id))).first()
            if mine is not None:
                return _coupon(mine)  # one each: claiming again shows the one you have
            if c.rule == "new_user" and uow.now - user.created_at > timedelta(days=NEW_USER_DAYS):
                raise errors.NotEligible(f"for subscribers who joined in the last {NEW_USER_DAYS} days")
            if c.rule == "brand" and (await uow.conn.execute(select(trades.c.id).where(
                    trades.c.merchant_id == c.merchant_id, trades.c.payer_id == user.id,
                    trades.c.paid_at.is_not(None)).limit(1))).first() is None:
                raise errors.NotEligible("for this shop's customers: buy there once first")
            coupon_id = new_id("rp")
            [result] = await uow.post([Transfer(f"issue:{coupon_id}", (Leg.debit(c.account_code, c.face),
                                                                       Leg.credit(c.reserved_code, c.face)),
                                                "campaign.issue", reference=c.name)])
            if isinstance(result.error, ledger_errors.InsufficientFunds):
                raise errors.BudgetExhausted("the campaign's budget is used up")
            if result.error is not None:
                raise result.error
            await uow.conn.execute(insert(coupons).values(
                id=coupon_id, campaign_id=c.id, merchant_id=c.merchant_id, user_id=user.id, face=c.face,
                min_spend=c.min_spend, state="issued", issued_at=uow.now,
                expires_at=uow.now + timedelta(days=c.valid_days)))
            await uow.emit(SmsRequested(key=f"{coupon_id}:issued", to=user.msisdn, template="red_envelope.issued",
                                        params={"campaign": c.name, "face_fen": c.face}))
            return _coupon((await uow.conn.execute(select(coupons).where(coupons.c.id == coupon_id))).one())

        return await self.uow.run("claim_coupon", work)

    async def zone(self, limit: int = 100, offset: int = 0) -> list[tuple[str, str, Campaign, int]]:
        """The zone's listing: (merchant id, merchant name, running campaign, envelopes left)."""
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(
                select(campaigns, merchants.c.name.label("merchant_name")).join(
                    merchants, merchants.c.id == campaigns.c.merchant_id).where(
                    campaigns.c.state == "active", merchants.c.state == MerchantState.APPROVED.value)
                .order_by(campaigns.c.created_at, campaigns.c.id).limit(limit).offset(offset)))

        rows = await self.uow.run("red_envelope_zone", work)
        left = await self.uow.ledger.accounts([r.account_code for r in rows]) if rows else {}
        return [(r.merchant_id, r.merchant_name, _campaign(r), left[r.account_code].balance // r.face) for r in rows]

    async def mine(self, me: Principal) -> list[Coupon]:
        async def work(uow: UnitOfWork) -> list[Coupon]:
            rows = await uow.conn.execute(select(coupons).where(coupons.c.user_id == me.user_id)
                                          .order_by(coupons.c.issued_at.desc()))
            return [_coupon(r) for r in rows]

        return await self.uow.run("my_coupons", work)

    async def use_in(self, tx: Transaction, coupon_id: str, user_id: str, trade: TradeRecord) -> tuple[int, str]:
        """In the paying unit of work: lock the coupon, check it fits, mark it used; returns
        (face, the account that pays it)."""
        uow = cast(UnitOfWork, tx)  # (the red-envelope zone keeps its rows in SQL)
        row = (await uow.conn.execute(select(coupons).where(coupons.c.id == coupon_id).with_for_update())).first()
        if row is None or row.user_id != user_id:
            raise errors.CouponNotUsable("no such red envelope of yours", field="coupon_id")
        if row.state != "issued" or as_utc(row.expires_at) <= uow.now:
            raise errors.CouponNotUsable(f"this red envelope is {row.state if row.state != 'issued' else 'expired'}",
                                         field="coupon_id")
        if row.merchant_id != trade.merchant_id or trade.amount < row.min_spend:
            raise errors.CouponNotUsable(f"for this shop's orders of at least {row.min_spend / 100:.2f} CNY",
                                         field="coupon_id")
        reserved = (await uow.conn.execute(select(campaigns.c.reserved_code).where(
            campaigns.c.id == row.campaign_id))).scalar_one()
        await uow.conn.execute(update(coupons).where(coupons.c.id == coupon_id).values(
            state="used", trade_id=trade.id, settled_at=uow.now))
        return int(row.face), str(reserved)

    async def expire_due(self, limit: int = 500) -> int:
        """Send the face of expired, unused envelopes back to their merchants."""

        async def work(uow: UnitOfWork) -> int:
            rows = list(await uow.conn.execute(select(coupons, campaigns.c.reserved_code).join(
                campaigns, campaigns.c.id == coupons.c.campaign_id).where(
                coupons.c.state == "issued", coupons.c.expires_at <= uow.now).limit(limit).with_for_update()))
            for r in rows:
                merchant = await _merchant_account(uow, r.merchant_id)
                [result] = await uow.post([Transfer(f"expire:{r.id}", (Leg.debit(r.reserved_code, r.face),
                                                                       Leg.credit(merchant, r.face)),
                                                    "campaign.expire", reference=r.campaign_id)])
                if result.error is not None:
                    raise result.error
                await uow.conn.execute(update(coupons).where(coupons.c.id == r.id).values(
                    state="expired", settled_at=uow.now))
            return len(rows)

        return await self.uow.run("expire_coupons", work)


async def _merchant_account(uow: UnitOfWork, merchant_id: str) -> str:
    return str((await uow.conn.execute(select(merchants.c.account_code).where(merchants.c.id == merchant_id)))
               .scalar_one())
