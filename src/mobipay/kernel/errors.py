"""One error tree with stable codes.

Every refusal in mobipay is a :class:`MobipayError` subclass carrying a stable ``code``
(``INSUFFICIENT_FUNDS``), an HTTP status and a title. Channels map the code to their own
words in one place each (problem+json for HTTP, a reply for SMS, a prompt for voice);
``docs/errors.md`` is generated from :data:`CATALOGUE`.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: code -> error class, filled by subclassing; the source of docs/errors.md.
CATALOGUE: dict[str, type[MobipayError]] = {}


class MobipayError(Exception):
    """Base of every expected refusal. Unexpected failures are plain exceptions (5xx)."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field
        self.extra = extra

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            if cls.code in CATALOGUE:
                raise TypeError(f"error code {cls.code} defined twice")
            CATALOGUE[cls.code] = cls

    def to_dict(self) -> dict[str, Any]:
        """The error as data, for logs and channel mappers."""
        return {"code": self.code, "detail": self.detail, "field": self.field, **self.extra}


class ValidationFailed(MobipayError):
    code = "VALIDATION_FAILED"
    status = 400
    title = "The request is not valid"


class InvalidAmount(MobipayError):
    code = "INVALID_AMOUNT"
    status = 400
    title = "Invalid amount"


class InvalidCurrency(MobipayError):
    code = "INVALID_CURRENCY"
    status = 400
    title = "Invalid currency"


class NotFound(MobipayError):
    code = "NOT_FOUND"
    status = 404
    title = "Not found"


class Unauthorized(MobipayError):
    code = "UNAUTHORIZED"
    status = 401
    title = "A valid bearer token is required"


class IdempotencyConflict(MobipayError):
    code = "IDEMPOTENCY_CONFLICT"
    status = 409
    title = "Idempotency key reused with different content"


class RequestInProgress(MobipayError):
    code = "REQUEST_IN_PROGRESS"
    status = 409
    title = "A request with this idempotency key is still in progress"


class IdempotencyKeyMissing(MobipayError):
    code = "IDEMPOTENCY_KEY_REQUIRED"
    status = 400
    title = "Idempotency-Key header is required"


class ServiceUnavailable(MobipayError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "A dependency is unavailable"


class RateLimited(MobipayError):
    code = "RATE_LIMITED"
    status = 429
    title = "Too many requests; slow down"


class UnsupportedCurrency(MobipayError):
    code = "UNSUPPORTED_CURRENCY"
    status = 422
    title = "The wallet moves CNY only"


class ControlCharacter(MobipayError):
    code = "CONTROL_CHARACTER"
    status = 400
    title = "Control characters are not accepted"


class PayloadTooLarge(MobipayError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    title = "The request body is too large"


class RoleRequired(MobipayError):
    code = "ROLE_REQUIRED"
    status = 403
    title = "This action needs an operator role you do not have"


class InvalidMsisdn(MobipayError):
    code = "INVALID_MSISDN"
    status = 400
    title = "Not a mainland China mobile number"
