"""SP HTTP API.

For SPs' servers (``/v1/sp/...``): flat JSON parameters signed as merchants sign theirs
(docs/sp.md): ``sp_code``, ``timestamp`` (Unix seconds, within 5 minutes), ``nonce`` (used
once), ``sign`` = hex HMAC-SHA256 of the signing string under the SP's key. An SP orders a
subscription for a number (the subscriber still confirms by SMS when a rule asks), reads
its record and appeals a decision once.

For subscribers (``/v1/me/sp-subscriptions``): the mobile web's list, order, cancel and
complaint, as the wallet session's number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.errors import ValidationFailed
from mobipay.platform.api_common import from_container
from mobipay.sp.governance import SpGovernance
from mobipay.sp.model import ChargeMethod
from mobipay.sp.service import Cancelled, SpService, Subscription
from mobipay.wallet.api_deps import Me

router = APIRouter(tags=["sp"])

SpDep = Annotated[SpService, from_container("sp")]
GovDep = Annotated[SpGovernance, from_container("sp_governance")]


class SubscriptionOut(BaseModel):
    id: str
    msisdn: str
    sp_code: str
    service: str
    price: int = Field(description="fen per message or per month")
    cycle: str
    state: str = Field(description="awaiting_confirmation | active | lapsed | cancelled")
    method: str
    asked: bool = Field(description="Whether the subscriber is asked to confirm by SMS")
    rule: str = Field(description="The confirmation rule that decided (or policy)")
    reason: str
    ordered_at: datetime
    active_since: datetime | None


def _out(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(id=s.id, msisdn=s.msisdn, sp_code=s.sp_code, service=s.service_name, price=s.price,
                           cycle=s.cycle.value, state=s.state.value, method=s.method.value, asked=s.asked,
                           rule=s.rule, reason=s.reason, ordered_at=s.ordered_at, active_since=s.active_since)


class CancelledOut(BaseModel):
    subscription: SubscriptionOut
    waived: bool = Field(description="Cancelled within 72 hours: nothing charged")
    charged: int


def _cancelled(c: Cancelled) -> CancelledOut:
    return CancelledOut(subscription=_out(c.subscription), waived=c.waived, charged=c.charged)


# ---------------------------------------------------------------------- signed SP calls


async def signed(request: Request, service: SpDep) -> tuple[str, dict[str, Any]]:
    try:
        params = await request.json()
    except (ValueError, RecursionError):
        raise ValidationFailed("send the parameters as a JSON object") from None
    if not isinstance(params, dict):
        raise ValidationFailed("send the parameters as a JSON object")
    return await service.authenticate(params), params


SignedSp = Annotated[tuple[str, dict[str, Any]], Depends(signed)]


def _param(params: dict[str, Any], name: str, max_length: int = 64) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ValidationFailed(f"{name} is required (text up to {max_length} characters)", field=name)
    return value.strip()


@router.post("/v1/sp/subscriptions", response_model=SubscriptionOut, status_code=201,
             summary="The SP orders a subscription for a number (signed; confirmed by SMS when a rule asks)")
async def sp_subscribe(call: SignedSp, service: SpDep) -> SubscriptionOut:
    sp_code, params = call
    return _out(await service.subscribe(_param(params, "msisdn", 20), sp_code, _param(params, "keyword", 16),
                                        channel="api"))


class MessageChargeOut(BaseModel):
    charged: bool = Field(description="False: inside the subscription's 72-hour window, the message is free")
    charge_id: str | None
    amount: int
    state: str | None = Field(description="submitted | billed | failed (refused by the billing system or wallet)")


@router.post("/v1/sp/messages", response_model=MessageChargeOut,
             summary="The SP reports a message of a per-message service delivered (signed; charged once per id)")
async def sp_message(call: SignedSp, service: SpDep) -> MessageChargeOut:
    sp_code, params = call
    charge = await service.charge_message(sp_code, _param(params, "msisdn", 20), _param(params, "keyword", 16),
                                          _param(params, "message_id", 32))
    if charge is None:
        return MessageChargeOut(charged=False, charge_id=None, amount=0, state=None)
    return MessageChargeOut(charged=charge.state == "billed", charge_id=charge.id, amount=charge.amount,
                            state=charge.state)


@router.post("/v1/sp/record", summary="The SP's own record: points, cards, decisions (signed)")
async def sp_record(call: SignedSp, gov: GovDep) -> dict[str, Any]:
    sp_code, _ = call
    record, decisions = await gov.record(sp_code)
    now = gov.uow.clock.now()
    return {"sp_code": sp_code, "points": record.points(now), "yellow_level": record.yellow_level(now),
            "red_card": record.red(now),
            "decisions": [{"id": d.id, "kind": d.kind, "class": d.cls, "level": d.level, "state": d.state,
                           "measures": d.summary, "reason": d.reason, "appeal": d.appeal,
                           "appeal_outcome": d.appeal_outcome, "created_at": d.created_at.isoformat()}
                          for d in decisions]}


@router.post("/v1/sp/appeals", summary="The SP appeals a decision in force, once (signed)")
async def sp_appeal(call: SignedSp, gov: GovDep) -> dict[str, Any]:
    sp_code, params = call
    d = await gov.appeal(_param(params, "decision_id", 40), sp_code, _param(params, "text", 2000))
    return {"id": d.id, "state": d.state, "appeal": d.appeal}


# ---------------------------------------------------------------------- the subscriber's web


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sp_code: str = Field(max_length=16, examples=["10661234"])
    keyword: str = Field(max_length=16, examples=["TQ"])
    method: ChargeMethod = Field(default=ChargeMethod.PHONE_BILL, description="phone_bill or wallet")


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sp_code: str = Field(max_length=16)
    text: str = Field(min_length=1, max_length=1000)


@router.get("/v1/me/sp-subscriptions", response_model=list[SubscriptionOut],
            summary="My active SP subscriptions (what 0000 lists)")
async def my_subscriptions(me: Me, service: SpDep) -> list[SubscriptionOut]:
    return [_out(s) for s in await service.subscriptions(me.msisdn)]


@router.post("/v1/me/sp-subscriptions", response_model=SubscriptionOut, status_code=201,
             summary="Order an SP service (confirm with 是 by SMS when asked)")
async def my_order(body: OrderIn, me: Me, service: SpDep) -> SubscriptionOut:
    return _out(await service.subscribe(me.msisdn, body.sp_code, body.keyword, channel="web", method=body.method))


@router.delete("/v1/me/sp-subscriptions/{subscription_id}", response_model=CancelledOut,
               summary="Cancel one (within 72 hours: not charged)")
async def my_cancel(subscription_id: str, me: Me, service: SpDep) -> CancelledOut:
    return _cancelled(await service.cancel_subscription(subscription_id, me.msisdn))


@router.post("/v1/me/sp-complaints", status_code=201, summary="Complain about an SP")
async def my_complaint(body: ComplaintIn, me: Me, service: SpDep) -> dict[str, str]:
    return {"id": await service.complain(me.msisdn, body.sp_code, body.text, source="web")}
