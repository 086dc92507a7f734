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
