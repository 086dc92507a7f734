"""Payment codes and micropay over HTTP.

For the wallet app (bearer token, as every wallet route): provision the device's
payment-code secret (``POST /v1/instore/paycode/devices``, Idempotency-Key), list and revoke
devices, see the orders waiting for the PIN and confirm or decline them.

For POS terminals, signed as every terminal request (``terminals_api.terminal``):
``POST /v1/terminal/micropay`` charges a scanned payment code; ``/query``, ``/cancel`` and
``/refund`` follow the order (docs/instore.md gives the shapes, the states and the schedule).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.instore import paycode
from mobipay.instore.micropay import QUERY_EVERY_S, USERPAYING, Micropay, MicropayOrder, PaycodeDevice, Provisioned
from mobipay.instore.terminals_api import SignedTerminal
from mobipay.kernel.money import MAX_AMOUNT
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["in-store"])

MicropayDep = Annotated[Micropay, from_container("micropay")]

State = Literal["USERPAYING", "SUCCESS", "REFUND", "CLOSED", "PAYERROR"]


def _replayed(response: Response, replayed: bool, status: int) -> None:
    response.status_code = 200 if replayed else status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


# ---------------------------------------------------------------------- the wallet app's devices


class DeviceOut(BaseModel):
    device_id: str
    device_no: str = Field(description="The 8 digits every code of this device carries after the prefix 78")
    state: Literal["active", "locked", "revoked"]
    this_session: bool = Field(description="Issued to the session calling")
    created_at: datetime
    last_used_at: datetime | None
    locked_at: datetime | None


class ProvisionOut(DeviceOut):
    secret: str | None = Field(description="Base32 (RFC 4648, no padding) of the 20-byte secret: keep it on the "
                               "device only. Null on a replay once the device no longer pays")
    prefix: str = paycode.PREFIX
    algorithm: Literal["TOTP-SHA1"] = "TOTP-SHA1"
    digits: int = paycode.OTP_DIGITS
    period: int = Field(default=paycode.STEP, description="Seconds of a time step (RFC 6238)")
    server_time: int = Field(description="The platform's clock, Unix seconds: keep the offset to the device's clock")


class DevicesOut(BaseModel):
    server_time: int = Field(description="The platform's clock, Unix seconds (refresh the applet's offset)")
    devices: list[DeviceOut]


def _device_out(d: PaycodeDevice, me_session: str) -> DeviceOut:
    return DeviceOut(device_id=d.id, device_no=d.device_no, state=d.state,
                     this_session=d.session_id == me_session, created_at=d.created_at, last_used_at=d.last_used_at,
                     locked_at=d.locked_at)


@router.post("/instore/paycode/devices", response_model=ProvisionOut, status_code=201,
             responses={200: {"description": "A retry: the device made before (header Idempotent-Replayed: true)"}},
             summary="Issue this device's payment-code secret (a session opened by SMS code; Idempotency-Key)")
async def provision(me: Me, micropay: MicropayDep, response: Response,
                    idempotency_key: IdemKey = None) -> ProvisionOut:
    """A 20-byte secret and a random device number for the session calling; the session's
    earlier device (if any) stops paying. PAYCODE_DEVICE_NOT_BOUND for a session opened with
    the PIN alone."""
    made, replayed = await micropay.provision(me, idempotency_key=require_key(idempotency_key))
    _replayed(response, replayed, 201)
    return _provision_out(made, me.session_id)


def _provision_out(p: Provisioned, me_session: str) -> ProvisionOut:
    secret = base64.b32encode(p.secret).decode().rstrip("=") if p.secret is not None else None
    return ProvisionOut(**_device_out(p.device, me_session).model_dump(), secret=secret,
                        server_time=int(p.server_time.timestamp()))


@router.get("/instore/paycode/devices", response_model=DevicesOut,
            summary="Your payment-code devices, and the platform's clock")
async def devices(me: Me, micropay: MicropayDep) -> DevicesOut:
    found = await micropay.devices(me)
    return DevicesOut(server_time=int(micropay.uow.clock.now().timestamp()),
                      devices=[_device_out(d, me.session_id) for d in found])


@router.delete("/instore/paycode/devices/{device_id}", status_code=204,
               summary="Revoke a payment-code device: its codes stop paying at once")
async def revoke(device_id: str, me: Me, micropay: MicropayDep) -> Response:
    await micropay.revoke(me, device_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------- the payer's USERPAYING orders


class NamedOut(BaseModel):
    id: str
    name: str


class PayerOrderOut(BaseModel):
    order_id: str
    state: State
    amount: MoneyOut
    subject: str
    merchant: NamedOut | None = None
    store: NamedOut | None = None
    expires_at: datetime
    paid_at: datetime | None
    close_reason: str | None
    privilege: MoneyOut = Field(description="Off the amount once paid: the store's alliance privilege for your brand "
                                "(decided when you confirm; you pay amount - privilege)")


class PendingOut(BaseModel):
    orders: list[PayerOrderOut]


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str = Field(min_length=1, max_length=12, description="The payment PIN")


def _payer_out(o: MicropayOrder, merchant: NamedOut | None = None, store: NamedOut | None = None) -> PayerOrderOut:
    return PayerOrderOut(order_id=o.id, state=o.state,
                         amount=MoneyOut(amount=o.amount, currency="CNY"), subject=o.subject, merchant=merchant,
                         store=store, expires_at=o.expires_at, paid_at=o.paid_at, close_reason=o.close_reason,
                         privilege=MoneyOut(amount=o.privilege, currency="CNY"))


@router.get("/instore/micropay/pending", response_model=PendingOut,
            summary="Orders a till is waiting for you to confirm with the PIN (USERPAYING)")
async def pending(me: Me, micropay: MicropayDep) -> PendingOut:
    return PendingOut(orders=[_payer_out(p.order, NamedOut(id=p.merchant.id, name=p.merchant.name),
                                         NamedOut(id=p.store.id, name=p.store.name) if p.store else None)
                              for p in await micropay.pending(me)])


@router.post("/instore/micropay/{order_id}/confirm", response_model=PayerOrderOut,
             summary="Pay a waiting order with the PIN (Idempotency-Key; the order is the key: a retry returns it)")
async def confirm(order_id: str, body: ConfirmIn, me: Me, micropay: MicropayDep,
                  idempotency_key: IdemKey = None) -> PayerOrderOut:
    require_key(idempotency_key)
    return _payer_out(await micropay.confirm(me, order_id, body.pin))


@router.post("/instore/micropay/{order_id}/decline", response_model=PayerOrderOut,
             summary="Refuse a waiting order: it closes, nothing is paid")
async def decline(order_id: str, me: Me, micropay: MicropayDep) -> PayerOrderOut:
    return _payer_out(await micropay.decline(me, order_id))


# ---------------------------------------------------------------------- the terminal's micropay


class MicropayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_trade_no: str = Field(min_length=1, max_length=64, description="The till's number of the sale: a retry "
                              "sends the same (with the same code and amount)")
    auth_code: str = Field(max_length=32, description="The scanned payment code: 18 digits starting with 78")
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Integer fen")
    subject: str = Field(min_length=1, max_length=256, description="What the payer pays for")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_trade_no: str = Field(min_length=1, max_length=64)


class RefundIn(OrderIn):
    out_refund_no: str = Field(min_length=1, max_length=64, description="The till's number of this refund: a retry "
                               "sends the same")
    refund_amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Integer fen")


class TerminalOrderOut(BaseModel):
    out_trade_no: str
    trade_no: str | None = Field(description="The merchant trade (the merchant API and settlement know it)")
    order_id: str
    state: State
    amount: int = Field(description="Fen")
    subject: str
    store_id: str
    terminal_id: str = Field(description="The till that charged it")
    created_at: datetime
    expires_at: datetime = Field(description="A USERPAYING order closes unpaid at this time")
    paid_at: datetime | None
    refunded: int = Field(description="Fen refunded so far")
    privilege: int = Field(description="Fen off the amount: the store's alliance privilege for the payer's brand, "
                           "funded by the merchant")
    paid: int = Field(description="Fen the payer paid: amount - privilege (0 until paid)")
    close_reason: Literal["declined", "cancelled", "expired"] | None
    error_code: str | None = Field(description="PAYERROR: the refusal's code")
    next_query_s: int | None = Field(description="USERPAYING: query again after this many seconds")


class CancelOut(TerminalOrderOut):
    action: Literal["close", "refund"] = Field(description="close: it was unpaid; refund: it was paid and is "
                                               "refunded in full")


class RefundOut(TerminalOrderOut):
    out_refund_no: str
    refund_amount: int = Field(description="Fen refunded by this request")


def _terminal_out(o: MicropayOrder) -> TerminalOrderOut:
    return TerminalOrderOut(out_trade_no=o.out_trade_no, trade_no=o.trade_id, order_id=o.id,
                            state=o.state,
                            amount=o.amount, subject=o.subject, store_id=o.store_id, terminal_id=o.terminal_id,
                            created_at=o.created_at, expires_at=o.expires_at, paid_at=o.paid_at, refunded=o.refunded,
                            privilege=o.privilege, paid=o.amount - o.privilege if o.paid_at else 0,
                            close_reason=o.close_reason,
                            error_code=o.error_code, next_query_s=QUERY_EVERY_S if o.state == USERPAYING else None)


@router.post("/terminal/micropay", response_model=TerminalOrderOut,
             responses={202: {"model": TerminalOrderOut, "description": "USERPAYING: the payer confirms with the "
                              f"PIN; query every {QUERY_EVERY_S} s until expires_at, then cancel"}},
             summary="Charge a scanned payment code (signed terminal request)")
async def micropay_charge(body: MicropayIn, me: SignedTerminal, micropay: MicropayDep,
                          response: Response) -> TerminalOrderOut:
    """200 SUCCESS when paid at once (within the wallet's password-free amount), 202 USERPAYING
    when the payer must confirm in the app. A retry of the same out_trade_no answers the same
    order (header Idempotent-Replayed: true)."""
    order, replayed = await micropay.micropay(me, out_trade_no=body.out_trade_no, auth_code=body.auth_code,
                                              amount=body.amount, subject=body.subject)
    response.status_code = 202 if order.state == USERPAYING else 200
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _terminal_out(order)


@router.post("/terminal/micropay/query", response_model=TerminalOrderOut,
             summary="A micropay order's state (signed terminal request; any till of the merchant)")
async def micropay_query(body: OrderIn, me: SignedTerminal, micropay: MicropayDep) -> TerminalOrderOut:
    return _terminal_out(await micropay.query(me, body.out_trade_no))


@router.post("/terminal/micropay/cancel", response_model=CancelOut,
             summary="Cancel a micropay order: unpaid it closes, paid it is refunded in full (signed; repeatable)")
async def micropay_cancel(body: OrderIn, me: SignedTerminal, micropay: MicropayDep) -> CancelOut:
    order, action = await micropay.cancel(me, body.out_trade_no)
    return CancelOut(**_terminal_out(order).model_dump(), action=action)


@router.post("/terminal/micropay/refund", response_model=RefundOut,
             responses={200: {"description": "Header Idempotent-Replayed: true on a retry of out_refund_no"}},
             summary="Refund part or all of a paid micropay order, once per out_refund_no (signed)")
async def micropay_refund(body: RefundIn, me: SignedTerminal, micropay: MicropayDep,
                          response: Response) -> RefundOut:
    order, amount, replayed = await micropay.refund(me, body.out_trade_no, body.out_refund_no, body.refund_amount)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return RefundOut(**_terminal_out(order).model_dump(), out_refund_no=body.out_refund_no, refund_amount=amount)
