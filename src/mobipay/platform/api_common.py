"""What every subscriber-facing HTTP router shares: who is calling (``Me``), money in and
out of JSON, the Idempotency-Key header and per-address rate limits. One place, so every
product's API speaks the same way (API-CONVENTIONS.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.kernel.errors import IdempotencyKeyMissing, MobipayError
from mobipay.kernel.orders import OrderState
from mobipay.platform.partner_orders import PartnerOrder
from mobipay.platform.ratelimit import RateLimiter
from mobipay.wallet.errors import SessionInvalid
from mobipay.wallet.service import Principal, WalletService


def from_container(name: str) -> Any:
    """A dependency giving a router the container's ``name`` service (built once at start)."""

    async def service(request: Request) -> Any:
        return getattr(request.app.state.container, name)

    return Depends(service)


WalletDep = Annotated[WalletService, from_container("wallet")]
bearer = HTTPBearer(auto_error=False, scheme_name="subscriber")


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    if credentials is None:
        raise SessionInvalid("send Authorization: Bearer <access_token> from POST /v1/sessions")
    return credentials.credentials


#: The presented access token, not yet checked (for a use case that checks it itself).
BearerToken = Annotated[str, Depends(bearer_token)]


async def subscriber(wallet: WalletDep, token: BearerToken) -> Principal:
    return await wallet.authenticate(token)


Me = Annotated[Principal, Depends(subscriber)]


def rate_limited(action: str) -> Any:
    """A dependency counting this request against the per-address limit for ``action``."""

    async def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.container.rate_limiter
        await limiter.hit(action, request.client.host if request.client else "unknown")

    return Depends(check)


OTP_LIMIT = [rate_limited("otp")]
PIN_LIMIT = [rate_limited("pin")]
LOOKUP_LIMIT = [rate_limited("lookup")]


class MoneyOut(BaseModel):
    amount: int
    currency: str


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, description="Integer fen; 12.50 CNY is 1250")
    currency: Literal["CNY"] = "CNY"


IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)]


def require_key(key: str | None) -> str:
    if not key:
        raise IdempotencyKeyMissing("send an Idempotency-Key header, unique per operation you mean to make")
    return key


def answer_order(order: PartnerOrder, response: Response, refused: type[MobipayError], what: str) -> None:
    """One status convention for every order sent to a partner: 201 done, 202 outcome not
    known yet (poll it), 200 a replay of the same Idempotency-Key, and the product's own
    refusal (422, with ``order_id``) when the partner said no: then nothing was taken."""
    if order.state is OrderState.FAILED:
        raise refused(f"{what} refused it ({order.reason or 'no reason given'})", order_id=order.id)
    if order.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    elif order.state is OrderState.PENDING:
        response.status_code = 202
