"""What every HTTP router shares, naming no context: services from the container, money in
and out of JSON, the Idempotency-Key header, per-address rate limits, field names as sent.
One place, so every product's API speaks the same way (the API conventions in docs/architecture.md). Who the
subscriber is (``Me``) is the wallet's (``wallet/api_deps.py``); the status convention of
partner orders is the order engine's (``orders/api.py``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.kernel.errors import IdempotencyKeyMissing, Unauthorized, ValidationFailed
from mobipay.kernel.money import MAX_AMOUNT
from mobipay.platform.ratelimit import RateLimiter


def from_container(name: str) -> Any:
    """A dependency giving a router the container's ``name`` service (built once at start)."""

    async def service(request: Request) -> Any:
        return getattr(request.app.state.container, name)

    return Depends(service)


def rate_limited(action: str) -> Any:
    """A dependency counting this request against the per-address limit for ``action``."""

    async def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.container.rate_limiter
        await limiter.hit(action, request.client.host if request.client else "unknown")

    return Depends(check)


OTP_LIMIT = [rate_limited("otp")]
PIN_LIMIT = [rate_limited("pin")]
LOOKUP_LIMIT = [rate_limited("lookup")]


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_SENT_AS: dict[Callable[..., Any], dict[str, str]] = {}


def sent_as(**names: str) -> Callable[[Endpoint], Endpoint]:
    """Name a route's refusals by what its request sent: the services speak of ``msisdn``
    or ``id_card``, this route's body of ``to`` or ``id_number`` (``@sent_as(msisdn="to")``).
    The app's error handler renames the field of every refusal the route raises."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _SENT_AS[endpoint] = names
        return endpoint

    return mark


def field_as_sent(endpoint: object, field: str | None) -> str | None:
    """``field`` as the request of ``endpoint`` (the route's function) named it."""
    if field is None or not callable(endpoint):
        return field
    return _SENT_AS.get(endpoint, {}).get(field, field)


class MoneyOut(BaseModel):
    amount: int
    currency: str


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Integer fen; 12.50 CNY is 1250")
    currency: Literal["CNY"] = Field(default="CNY", description="The wallet moves CNY only: another ISO 4217 code "
                                     "is UNSUPPORTED_CURRENCY, anything else INVALID_CURRENCY")


IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)]


def require_key(key: str | None) -> str:
    if not key:
        raise IdempotencyKeyMissing("send an Idempotency-Key header, unique per operation you mean to make")
    return key


#: ``responses=`` of a route answering 202 while a partner's (or a recipient's) outcome is
#: not known yet; the OpenAPI document gives it the body of the route's 201.
PENDING: dict[int | str, dict[str, Any]] = {
    200: {"description": "A replay of the same order (Idempotency-Key or the partner's order id): the first "
          "answer again (header Idempotent-Replayed: true)"},
    202: {"description": "Accepted, the outcome not known yet: the same body, its state says what is awaited"}}


#: The back office's system credential (``MOBIPAY_ADMIN_TOKEN``) as a bearer token.
admin_bearer = HTTPBearer(auto_error=False, scheme_name="admin_token")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]
) -> None:
    """A back-office call: the admin token proves the system (compared in constant time)."""
    expected = request.app.state.container.settings.admin_token.get_secret_value()
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("send Authorization: Bearer <MOBIPAY_ADMIN_TOKEN>")


def operator_name(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
    x_operator: Annotated[str | None, Header(alias="X-Operator", max_length=64)] = None,
) -> str:
    """The operator a back-office call acts for: the admin token proves the system,
    ``X-Operator`` names the person, whose role the use case checks in the roster."""
    require_admin(request, credentials)
    if not x_operator or not x_operator.strip():
        raise ValidationFailed("send X-Operator: the operator's name (audited; needs the operations role)",
                               field="X-Operator")
    return x_operator.strip()


OperatorDep = Annotated[str, Depends(operator_name)]
