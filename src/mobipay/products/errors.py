"""Product refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class ProductNotFound(MobipayError):
    code = "PRODUCT_NOT_FOUND"
    status = 404
    title = "No such product"


class ProductNotAvailable(MobipayError):
    code = "PRODUCT_NOT_AVAILABLE"
    status = 422
    title = "This product is not sold to this number"


class DeliveryFailed(MobipayError):
    code = "DELIVERY_FAILED"
    status = 422
    title = "The provider could not deliver; the money is back in the wallet"


class CoolingOffOver(MobipayError):
    code = "COOLING_OFF_OVER"
    status = 422
    title = "The cooling-off period of this policy has ended"


class PolicyNotFound(MobipayError):
    code = "POLICY_NOT_FOUND"
    status = 404
    title = "No such policy in your wallet"


class AlreadySubscribed(MobipayError):
    code = "ALREADY_SUBSCRIBED"
    status = 409
    title = "This number already subscribes to this product; nothing was charged"


class SubscriptionNotFound(MobipayError):
    code = "SUBSCRIPTION_NOT_FOUND"
    status = 404
    title = "No such subscription in your wallet"


class SubscriptionNotActive(MobipayError):
    code = "SUBSCRIPTION_NOT_ACTIVE"
    status = 409
    title = "This subscription has ended; there is nothing to cancel"


class ProductOrderNotFound(MobipayError):
    code = "PRODUCT_ORDER_NOT_FOUND"
    status = 404
    title = "No such product order in your wallet"


class CancellationDeclined(MobipayError):
    code = "CANCELLATION_DECLINED"
    status = 422
    title = "The insurer declined the cancellation: the policy stays in force and nothing was refunded"
