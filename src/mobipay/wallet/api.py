"""Wallet HTTP API (``/v1``): one-time codes, sign-up, sessions, the subscriber's own
profile and balance, the payment PIN, transfers, money requests, history and receipts.

Subscribers authenticate with ``Authorization: Bearer <access_token>`` from
``POST /v1/sessions``; access tokens last 15 minutes and are renewed with the rotating
refresh token (``POST /v1/sessions/refresh``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.ledger.model import Side
from mobipay.platform.api_common import OTP_LIMIT, PENDING, PIN_LIMIT, IdemKey, MoneyIn, MoneyOut, require_key, sent_as
from mobipay.wallet import errors
from mobipay.wallet.api_deps import BearerToken, Me, WalletDep
from mobipay.wallet.model import MoneyRequest, OtpPurpose, Tokens, TransferDone
from mobipay.wallet.service import WalletService

router = APIRouter(prefix="/v1", tags=["wallet"])


class OtpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32, description="Mainland mobile number, any common spelling",
                        examples=["13800138000", "+86 138 0013 8000"])
    purpose: OtpPurpose = OtpPurpose.REGISTER


class OtpOut(BaseModel):
    msisdn: str = Field(description="The number, masked")
    expires_at: datetime
    resend_after_s: int


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32)
    code: str = Field(min_length=1, max_length=12, description="The code received by SMS")


class UserOut(BaseModel):
    id: str
    msisdn: str = Field(description="E.164")
    operator: str
    tier: int
    created_at: datetime


@router.post("/otp", response_model=OtpOut, status_code=202, summary="Send a one-time code by SMS",
             dependencies=OTP_LIMIT)
async def request_otp(body: OtpIn, wallet: WalletDep) -> OtpOut:
    sent = await wallet.request_otp(body.msisdn, body.purpose)
    return OtpOut(msisdn=mask_msisdn(sent.msisdn), expires_at=sent.expires_at, resend_after_s=sent.resend_after_s)


@router.post("/users", response_model=UserOut, status_code=201,
             summary="Register the owner of a number with the code sent to it", dependencies=PIN_LIMIT)
async def register(body: RegisterIn, wallet: WalletDep) -> UserOut:
    user = await wallet.register(body.msisdn, body.code)
    return UserOut(id=user.id, msisdn=user.msisdn, operator=user.operator, tier=int(user.tier),
                   created_at=user.created_at)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32)
    code: str | None = Field(default=None, max_length=12, description="SMS code (purpose login)")
    pin: str | None = Field(default=None, max_length=12, description="Or the payment PIN")
    device_id: str = Field(min_length=1, max_length=128)
    device_name: str = Field(default="", max_length=128)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=256)


class TokensOut(BaseModel):
    session_id: str
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int
    refresh_token: str


class DeviceOut(BaseModel):
    session_id: str
    device_id: str
    device_name: str
    created_at: datetime
    last_used_at: datetime
    current: bool


class MeOut(BaseModel):
    id: str
    msisdn: str
    state: str = Field(description="active | frozen (an operator stopped payments: call customer service) | "
                       "closing (the balance is on its way to the bank card) | closed")
    tier: int
    balance: MoneyOut
    available: MoneyOut


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str = Field(max_length=12, description="The new 6-digit payment PIN")
    current_pin: str | None = Field(default=None, max_length=12, description="Required to change a PIN")


def _tokens(t: Tokens) -> TokensOut:
    return TokensOut(session_id=t.session_id, access_token=t.access_token, expires_in=t.expires_in,
                     refresh_token=t.refresh_token)


@router.post("/sessions", response_model=TokensOut, status_code=201, summary="Sign in on a device",
             dependencies=PIN_LIMIT)
async def login(body: LoginIn, wallet: WalletDep) -> TokensOut:
    return _tokens(await wallet.login(body.msisdn, device_id=body.device_id, device_name=body.device_name,
                                      code=body.code, pin=body.pin))


@router.post("/sessions/refresh", response_model=TokensOut, summary="Rotate the tokens of a session")
async def refresh(body: RefreshIn, wallet: WalletDep) -> TokensOut:
    return _tokens(await wallet.refresh(body.refresh_token))


@router.get("/sessions", response_model=list[DeviceOut], summary="Signed-in devices")
async def devices(me: Me, wallet: WalletDep) -> list[DeviceOut]:
    return [DeviceOut(session_id=d.id, device_id=d.device_id, device_name=d.device_name, created_at=d.created_at,
                      last_used_at=d.last_used_at, current=d.id == me.session_id)
            for d in await wallet.devices(me.user_id)]


@router.delete("/sessions/{session_id}", status_code=204, summary="Sign out one device ('current' for this one)")
async def logout(session_id: str, me: Me, wallet: WalletDep) -> Response:
    target = me.session_id if session_id == "current" else session_id
    if not await wallet.logout(me.user_id, target):
        raise errors.SessionInvalid("no such session of yours")
    return Response(status_code=204)


@router.delete("/sessions", status_code=204, summary="Sign out everywhere")
async def logout_everywhere(me: Me, wallet: WalletDep) -> Response:
    await wallet.logout(me.user_id)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="The signed-in subscriber and their balance")
async def me(me: Me, wallet: WalletDep) -> MeOut:
    user = await wallet.user_by_msisdn(me.msisdn)
    account = await wallet.uow.ledger.account(me.account_code)
    return MeOut(id=user.id, msisdn=user.msisdn, state=user.status.value, tier=int(user.tier),
                 balance=MoneyOut(amount=account.balance, currency=account.currency),
                 available=MoneyOut(amount=account.available, currency=account.currency))


@router.put("/me/pin", status_code=204, summary="Set the payment PIN, or change it with the current one",
            dependencies=PIN_LIMIT)
async def set_pin(body: PinIn, me: Me, wallet: WalletDep) -> Response:
    if body.current_pin is None:
        await wallet.set_pin(me.msisdn, body.pin)
    else:
        await wallet.change_pin(me.msisdn, body.current_pin, body.pin)
    return Response(status_code=204)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, description="The recipient's mobile number")
    amount: MoneyIn
    pin: str | None = Field(default=None, max_length=12, description="Needed above the password-free amount")
    note: str = Field(default="", max_length=64)


class TransferOut(BaseModel):
    id: str
    to: str = Field(description="The recipient, masked")
    amount: MoneyOut
    status: Literal["succeeded", "waiting_for_recipient"] = Field(
        description="waiting_for_recipient: the number has no wallet yet; the money waits 3 days for it to "
        "register, then comes back")
    created_at: datetime


TRANSFERS = "/transfers"  # also the lane's (TransferLane)


@router.post(TRANSFERS, response_model=TransferOut, status_code=201, responses=PENDING,
             summary="Send money to another subscriber by number (Idempotency-Key required)")
@sent_as(msisdn="to")
async def transfer(body: TransferIn, response: Response, token: BearerToken, wallet: WalletDep,
                   idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)] = None,
                   ) -> TransferOut:
    # The token, not a Principal: on PostgreSQL the sign-in check joins the transfer's batch.
    done = await wallet.transfer_as(token, body.to, body.amount.amount, idempotency_key=require_key(idempotency_key),
                                    pin=body.pin, note=body.note)
    return _transfer_out(done, response)


def _transfer_out(done: TransferDone, response: Response) -> TransferOut:
    status, headers, out = transfer_answer(done)
    response.status_code = status
    response.headers.update(headers)
    return out


def transfer_answer(done: TransferDone) -> tuple[int, dict[str, str], TransferOut]:
    """201 for a new transfer, 202 while it waits for its recipient, 200 for a replay."""
    status, headers = 201, {}
    if done.replayed:
        status, headers = 200, {"Idempotent-Replayed": "true"}
    elif done.status == "waiting_for_recipient":
        status = 202
    return status, headers, TransferOut(id=done.id, to=mask_msisdn(done.recipient), amount=MoneyOut(
        amount=done.amount, currency="CNY"), status=done.status, created_at=done.created_at)


class _NotForTheLane(Exception):
    """Not for the lane: the route decides."""


class TransferLane:
    """``POST /v1/transfers`` straight to the wallet, past the framework's routing and
    dependency solving: about a third of the server's work per transfer (docs/performance.md).

    Only a request the route itself would accept takes the lane: a JSON body that
    :class:`TransferIn` validates (parsed as FastAPI parses it), ``Authorization: Bearer``
    and an Idempotency-Key of at most 64 characters. Anything else goes on, body intact,
    to the route :func:`transfer`, which stays the one definition of the endpoint: its
    validation errors, its OpenAPI. What the wallet answers is rendered as the route
    renders it (:func:`transfer_answer`, and the app's problem+json for a refusal).
    """

    def __init__(self, app: ASGIApp, refusal: Callable[[Request, MobipayError], Awaitable[Response]],
                 unexpected: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.refusal = refusal
        self.unexpected = unexpected  # the lane is outside the framework's error middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _LANE_ROUTE.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # The edge in front (platform/edge.py) has read the body, bounded by its limit, and
        # checked it for control characters and depth: it comes whole, in one message.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        sent = False

        async def replay_body() -> Message:  # the body already read, then whatever the client still sends
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"")
            key = headers.get(b"idempotency-key", b"").decode("latin-1")
            if (not auth.startswith(b"Bearer ") or len(auth) < 8 or not key or len(key) > 64
                    or not headers.get(b"content-type", b"").startswith(b"application/json")):
                raise _NotForTheLane
            ask = TransferIn.model_validate(json.loads(body))
        except (_NotForTheLane, ValueError, RecursionError, ValidationError):
            await self.app(scope, replay_body, send)
            return
        scope["route"], scope["endpoint"] = _LANE_ROUTE, transfer  # the route's metrics and field names
        response: Response
        try:
            wallet: WalletService = scope["app"].state.container.wallet  # (Starlette sets "app" first)
            done = await wallet.transfer_as(auth[7:].decode("latin-1"), ask.to, ask.amount.amount,
                                            idempotency_key=key, pin=ask.pin, note=ask.note)
        except MobipayError as exc:
            response = await self.refusal(Request(scope), exc)
        except Exception as exc:  # answered as the app answers any bug: 500, logged
            response = await self.unexpected(Request(scope), exc)
        else:  # what JSONResponse sends, without building one
            status, extra, out = transfer_answer(done)
            content = out.model_dump_json().encode()
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-length", str(len(content)).encode()), (b"content-type", b"application/json"),
                *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items())]})
            await send({"type": "http.response.body", "body": content})
            return
        await response(scope, replay_body, send)


class _LaneRoute:
    """The lane's path, and what the request-metrics middleware reads of a route."""

    path = router.prefix + TRANSFERS


_LANE_ROUTE = _LaneRoute()


class EntryOut(BaseModel):
    transfer_id: str
    kind: str = Field(description="What moved the money: p2p, cash_in, topup…")
    direction: Literal["in", "out"]
    amount: MoneyOut
    balance_after: MoneyOut
    state: Literal["pending", "succeeded", "failed"] = Field(
        description="pending: held, waiting for the partner; succeeded; failed: the hold was released, nothing paid")
    pending: bool = Field(description="state == pending")
    reference: str
    created_at: datetime


class EntriesOut(BaseModel):
    items: list[EntryOut]
    next: str | None


@router.get("/me/transactions", response_model=EntriesOut,
            summary="My wallet's history, oldest first, one line per payment with its state; filtered by kind, "
                    "direction and time; page with next")
async def history(
    me: Me, wallet: WalletDep, limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="The next cursor of a page")] = None,
    kind: Annotated[list[str] | None, Query(max_length=10, description="p2p, cash_in, cash_out… (repeatable)")] = None,
    direction: Annotated[Literal["in", "out"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(alias="from", description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Before this time")] = None,
) -> EntriesOut:
    if (since and since.tzinfo is None) or (until and until.tzinfo is None):
        raise ValidationFailed("give from/to with a time zone, e.g. 2026-11-25T00:00:00+08:00", field="from")
    side = {"out": Side.DEBIT, "in": Side.CREDIT}.get(direction or "")
    items, nxt = await wallet.history(me.account_code, after=int(after or 0), limit=limit, codes=kind, side=side,
                                      since=since, until=until)
    return EntriesOut(items=[
        EntryOut(transfer_id=e["transfer_id"], kind=e["code"], direction="out" if e["amount"] > 0 else "in",
                 amount=MoneyOut(amount=abs(e["amount"]), currency=e["currency"]),
                 balance_after=MoneyOut(amount=e["balance_after"], currency=e["currency"]), state=e["state"],
                 pending=e["pending"],
                 reference=e["reference"], created_at=e["created_at"])
        for e in items], next=str(nxt) if nxt is not None else None)


class ReceiptOut(BaseModel):
    transfer_id: str
    kind: str
    amount: MoneyOut
    direction: Literal["in", "out"]
    counterparty: str | None = Field(description="The other wallet, masked, when there is one")
    reference: str
    created_at: datetime
    note: str = Field(default="", description="What the sender wrote with a transfer")
    prize_tax: MoneyOut | None = Field(default=None, description="A lottery prize above 10,000 CNY: the 20% "
                                       "income tax withheld (amount is the prize after it)")
    waiting_for_recipient: bool = Field(
        default=False, description="A transfer to a number without a wallet, not yet claimed: the money waits "
        "for the recipient to register until recipient_expires_at, then comes back")
    recipient_expires_at: datetime | None = Field(default=None, description="Until when the money waits")
    recipient_state: Literal["waiting", "claimed", "returned"] | None = Field(
        default=None, description="For a transfer to a number without a wallet: what became of it")
    state: Literal["pending", "succeeded", "failed"] = Field(
        default="succeeded", description="pending: held, waiting for the partner; succeeded; failed: the hold was "
        "released, nothing was paid (no net debit: the money is back in the wallet)")


@router.get("/me/transactions/{transfer_id}", response_model=ReceiptOut, summary="A receipt for one transaction")
async def receipt(transfer_id: str, me: Me, wallet: WalletDep) -> ReceiptOut:
    r = await wallet.receipt(me, transfer_id)
    return ReceiptOut(transfer_id=r.transfer_id, kind=r.kind, amount=MoneyOut(amount=r.amount, currency=r.currency),
                      direction="out" if r.direction == "out" else "in", counterparty=r.counterparty,
                      reference=r.reference, created_at=r.created_at, note=r.note,
                      prize_tax=MoneyOut(amount=r.prize_tax, currency=r.currency) if r.prize_tax else None,
                      waiting_for_recipient=r.claim_state == "waiting", recipient_expires_at=r.claim_expires_at,
                      recipient_state=r.claim_state, state=r.state)


class PinResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32)
    code: str = Field(min_length=1, max_length=12, description="SMS code asked for with purpose reset_pin")
    pin: str = Field(max_length=12, description="The new 6-digit payment PIN")
    id_number: str | None = Field(default=None, max_length=32,
                                  description="Identity card number; required once the real name is verified")


@router.post("/pin-resets", status_code=204, summary="Reset a forgotten or locked PIN with an SMS code",
             dependencies=PIN_LIMIT)
@sent_as(id_card="id_number")
async def reset_pin(body: PinResetIn, wallet: WalletDep) -> Response:
    await wallet.reset_pin(body.msisdn, body.code, body.pin, body.id_number)
    return Response(status_code=204)


class MoneyRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    payer: str = Field(alias="from", max_length=32, description="The number asked to pay")
    amount: MoneyIn
    note: str = Field(default="", max_length=64)


class MoneyRequestOut(BaseModel):
    id: str
    requester: str = Field(description="Masked")
    payer: str = Field(description="Masked")
    amount: MoneyOut
    note: str
    state: Literal["open", "paid", "declined", "expired"]
    created_at: datetime
    expires_at: datetime


class MoneyRequestsOut(BaseModel):
    incoming: list[MoneyRequestOut] = Field(description="Asked of me")
    outgoing: list[MoneyRequestOut] = Field(description="Asked by me")


#: The pay call's Idempotency-Key: optional (the request id is the key), so said in the spec.
OptionalIdemKey = Annotated[str | None, Header(alias="Idempotency-Key", description=(
    "Optional: the request id already makes paying idempotent; a key sent is checked (1-64 printable "
    "characters) and otherwise ignored"))]


class PayRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str | None = Field(default=None, max_length=12)


def _request_out(r: MoneyRequest) -> MoneyRequestOut:
    return MoneyRequestOut(id=r.id, requester=mask_msisdn(r.requester), payer=mask_msisdn(r.payer),
                           amount=MoneyOut(amount=r.amount, currency="CNY"), note=r.note,
                           state=r.state,
                           created_at=r.created_at, expires_at=r.expires_at)


@router.post("/money-requests", response_model=MoneyRequestOut, status_code=201,
             summary="Ask a number for money (Idempotency-Key required)")
@sent_as(msisdn="from")
async def request_money(body: MoneyRequestIn, me: Me, wallet: WalletDep, idempotency_key: IdemKey = None
                        ) -> MoneyRequestOut:
    return _request_out(await wallet.request_money(me, body.payer, body.amount.amount,
                                                   idempotency_key=require_key(idempotency_key), note=body.note))


@router.get("/money-requests", response_model=MoneyRequestsOut, summary="Requests asked of me and by me")
async def list_requests(me: Me, wallet: WalletDep) -> MoneyRequestsOut:
    incoming, outgoing = await wallet.money_requests(me)
    return MoneyRequestsOut(incoming=[_request_out(r) for r in incoming], outgoing=[_request_out(r) for r in outgoing])


@router.post("/money-requests/{request_id}/pay", response_model=TransferOut, status_code=201,
             summary="Pay a request asked of me (once, however often it is sent; Idempotency-Key optional)")
async def pay_request(request_id: str, body: PayRequestIn, response: Response, me: Me, wallet: WalletDep,
                      idempotency_key: OptionalIdemKey = None) -> TransferOut:
    """Pay a money request. The request id is the idempotency key: a retry, with any
    Idempotency-Key or none, returns the first payment (200, Idempotent-Replayed: true) and
    moves nothing. So the header is optional, as the spec says; one that is sent must still
    be 1 to 64 printable characters (a client sending garbage has a bug worth hearing about),
    but it does not decide anything: two keys for one request are one payment."""
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64 and idempotency_key.isprintable()):
        raise errors.IdempotencyKeyInvalid("send no Idempotency-Key, or one of 1 to 64 printable characters",
                                           field="Idempotency-Key")
    return _transfer_out(await wallet.pay_request(me, request_id, pin=body.pin), response)


@router.post("/money-requests/{request_id}/decline", response_model=MoneyRequestOut,
             summary="Decline a request asked of me")
async def decline_request(request_id: str, me: Me, wallet: WalletDep) -> MoneyRequestOut:
    return _request_out(await wallet.decline_request(me, request_id))
