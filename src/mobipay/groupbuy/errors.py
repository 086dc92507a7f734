"""Group-buy refusals, each with a stable code (see docs/errors.md).

A code a shop types that matches nothing it may consume (unknown, another merchant's, a
mistyped one) is one answer, ``VOUCHER_CODE_UNKNOWN``, so the answer tells a guesser nothing;
every such answer counts towards the shop's lock (``VOUCHER_GUESSING_LOCKED``).
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class DealInvalid(MobipayError):
    code = "DEAL_INVALID"
    status = 400
    title = "The deal's terms are not valid"


class DealNotFound(MobipayError):
    code = "DEAL_NOT_FOUND"
    status = 404
    title = "No such deal"


class DealNotOnSale(MobipayError):
    code = "DEAL_NOT_ON_SALE"
    status = 422
    title = "The deal is not on sale now"


class SoldOut(MobipayError):
    code = "SOLD_OUT"
    status = 409
    title = "Sold out: no vouchers of this deal are left"


class PerUserLimit(MobipayError):
    code = "DEAL_PER_USER_LIMIT"
    status = 422
    title = "You may not buy more vouchers of this deal"


class OrderNotFound(MobipayError):
    code = "GROUPBUY_ORDER_NOT_FOUND"
    status = 404
    title = "No such group-buy order"


class RefundNotAllowed(MobipayError):
    code = "VOUCHER_REFUND_NOT_ALLOWED"
    status = 422
    title = "These vouchers cannot be refunded"


class CodeInvalid(MobipayError):
    code = "VOUCHER_CODE_INVALID"
    status = 400
    title = "A voucher code is 10 to 12 digits"


class CodeUnknown(MobipayError):
    code = "VOUCHER_CODE_UNKNOWN"
    status = 404
    title = "No voucher with this code can be used at this shop"


class GuessingLocked(MobipayError):
    code = "VOUCHER_GUESSING_LOCKED"
    status = 429
    title = "Too many wrong voucher codes at this shop: verification is locked for a while"


class VoucherNotUsable(MobipayError):
    code = "VOUCHER_NOT_USABLE"
    status = 422
    title = "This voucher cannot be used now"


class NotEnoughVouchers(MobipayError):
    code = "VOUCHER_COUNT_EXCEEDS_LEFT"
    status = 422
    title = "The order has fewer unused vouchers than asked to consume"


class RequestIdConflict(MobipayError):
    code = "CONSUME_REQUEST_CONFLICT"
    status = 409
    title = "This request id was used for another consumption"


class ConsumptionNotFound(MobipayError):
    code = "CONSUMPTION_NOT_FOUND"
    status = 404
    title = "No such consumption at this merchant"


class ReverseNotAllowed(MobipayError):
    code = "CONSUMPTION_NOT_REVERSIBLE"
    status = 422
    title = "This consumption can no longer be reversed"


class ShopNotFound(MobipayError):
    code = "GROUPBUY_SHOP_NOT_FOUND"
    status = 404
    title = "No such store of this merchant"
