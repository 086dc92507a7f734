"""Merchant refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError, Unauthorized


class InvalidCreditCode(MobipayError):
    code = "INVALID_CREDIT_CODE"
    status = 400
    title = "Not a valid unified social credit code"


class BadSignature(MobipayError):
    code = "BAD_SIGNATURE"
    status = 401
    title = "The request's signature does not verify"


class StateInvalid(MobipayError):
    code = "MERCHANT_STATE_INVALID"
    status = 409
    title = "The merchant cannot move to that state"


class TradeStateInvalid(MobipayError):
    code = "TRADE_STATE_INVALID"
    status = 409
    title = "The trade is not in a state that allows this"


class RefundExceedsPaid(MobipayError):
    code = "REFUND_EXCEEDS_PAID"
    status = 422
    title = "Refunds would exceed what was paid"


class InvalidMerchantField(MobipayError):
    code = "INVALID_MERCHANT_FIELD"
    status = 400
    title = "A merchant application field is not valid"


class MerchantNotFound(MobipayError):
    code = "MERCHANT_NOT_FOUND"
    status = 404
    title = "No such merchant"


class MerchantNotActive(MobipayError):
    code = "MERCHANT_NOT_ACTIVE"
    status = 403
    title = "This merchant may not take payments now"


class TradeNotFound(MobipayError):
    code = "TRADE_NOT_FOUND"
    status = 404
    title = "No such trade"


class MerchantLimitExceeded(MobipayError):
    code = "MERCHANT_LIMIT_EXCEEDED"
    status = 422
    title = "The payment is over a limit of this merchant"


class TradeExists(MobipayError):
    code = "TRADE_EXISTS"
    status = 409
    title = "This out_trade_no was used for another trade"


class CouponNotUsable(MobipayError):
    code = "COUPON_NOT_USABLE"
    status = 422
    title = "This red envelope cannot be used for this payment"


class NotEligible(MobipayError):
    code = "NOT_ELIGIBLE"
    status = 422
    title = "This campaign's rule does not give you a red envelope"


class BudgetExhausted(MobipayError):
    code = "BUDGET_EXHAUSTED"
    status = 409
    title = "The campaign's budget is used up"


class NotifyUrlRefused(MobipayError):
    code = "NOTIFY_URL_REFUSED"
    status = 400
    title = "The notify URL is not a public http(s) address the platform may call"


class ReturnUrlRefused(MobipayError):
    code = "RETURN_URL_REFUSED"
    status = 400
    title = "The return URL is not an unambiguous http(s) address on the merchant's website"


class SettlementDayOpen(MobipayError):
    code = "SETTLEMENT_DAY_OPEN"
    status = 409
    title = "That business day has not ended: it cannot be settled yet"


class MerchantSignInFailed(MobipayError):
    code = "MERCHANT_SIGN_IN_FAILED"
    status = 401
    title = "Wrong merchant, name or password"


class MerchantSignInLocked(MobipayError):
    code = "MERCHANT_SIGN_IN_LOCKED"
    status = 423
    title = "Too many wrong passwords: this portal account is locked for a while"


class MerchantSessionExpired(MobipayError):
    code = "MERCHANT_SESSION_EXPIRED"
    status = 401
    title = "Sign in to the merchant portal (again)"


class MerchantOperatorExists(MobipayError):
    code = "MERCHANT_OPERATOR_EXISTS"
    status = 409
    title = "This merchant already has an operator with this name"


class RefundPinIncorrect(MobipayError):
    code = "REFUND_PIN_INCORRECT"
    status = 403
    title = "Wrong refund PIN"


class RefundPinLocked(MobipayError):
    code = "REFUND_PIN_LOCKED"
    status = 423
    title = "Too many wrong refund PINs; refunds by this operator are locked for a while"


class MerchantRoleRequired(MobipayError):
    code = "MERCHANT_ROLE_REQUIRED"
    status = 403
    title = "Only the merchant's owner account may do this"


class MerchantNotApproved(MobipayError):
    code = "MERCHANT_NOT_APPROVED"
    status = 403
    title = "This merchant has not been approved: no API app, store or account can be set up for it"


class ApplicationNotFound(MobipayError):
    code = "APPLICATION_NOT_FOUND"
    status = 404
    title = "No merchant application with this id and application token"


class ApplicationTokenRequired(Unauthorized):
    """Reading or resubmitting an application without its token (code ``UNAUTHORIZED``)."""

    title = "Send Authorization: Bearer <application_token> (from the answer to the application)"


class RequestNotSigned(Unauthorized):
    """A merchant API request without a valid app, timestamp, nonce or signature (code
    ``UNAUTHORIZED``, titled for merchants: there is no bearer token on this API)."""

    title = "The request is not signed as the merchant API requires (docs/merchant-signatures.md)"
