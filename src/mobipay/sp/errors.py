"""SP governance refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class SpInvalid(MobipayError):
    code = "SP_INVALID"
    status = 400
    title = "The SP or service details are not valid"


class SpNotFound(MobipayError):
    code = "SP_NOT_FOUND"
    status = 404
    title = "No such SP"


class SpExists(MobipayError):
    code = "SP_EXISTS"
    status = 409
    title = "An SP or service with this code is already registered"


class SpServiceNotFound(MobipayError):
    code = "SP_SERVICE_NOT_FOUND"
    status = 404
    title = "The SP has no such service"


class SpPortClosed(MobipayError):
    code = "SP_PORT_CLOSED"
    status = 409
    title = "The SP takes no orders: its port is shielded or it has exited"


class SpServiceOffline(MobipayError):
    code = "SP_SERVICE_OFFLINE"
    status = 409
    title = "The service has been taken offline"


class SpAlreadySubscribed(MobipayError):
    code = "SP_ALREADY_SUBSCRIBED"
    status = 409
    title = "This number already subscribes to the service"


class SpSubscriptionNotFound(MobipayError):
    code = "SP_SUBSCRIPTION_NOT_FOUND"
    status = 404
    title = "No such subscription"


class SpChargeNotFound(MobipayError):
    code = "SP_CHARGE_NOT_FOUND"
    status = 404
    title = "No such charge"


class SpRefundRefused(MobipayError):
    code = "SP_REFUND_REFUSED"
    status = 409
    title = "This charge cannot be refunded"


class SpBillingUnavailable(MobipayError):
    code = "SP_BILLING_UNAVAILABLE"
    status = 503
    title = "The operator's billing system did not answer; try again"


class SpDecisionNotFound(MobipayError):
    code = "SP_DECISION_NOT_FOUND"
    status = 404
    title = "No such governance decision"


class SpDecisionRefused(MobipayError):
    code = "SP_DECISION_REFUSED"
    status = 409
    title = "This governance decision cannot be made"


class SpBadSignature(MobipayError):
    code = "SP_BAD_SIGNATURE"
    status = 401
    title = "The SP's call is not signed with its key, is stale or was replayed"
