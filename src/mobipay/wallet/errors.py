"""Wallet refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class UnknownNumberSegment(MobipayError):
    code = "UNKNOWN_NUMBER_SEGMENT"
    status = 422
    title = "No operator is known for this number segment"


class InvalidPin(MobipayError):
    code = "INVALID_PIN"
    status = 400
    title = "A payment PIN is exactly 6 digits"


class WeakPin(MobipayError):
    code = "WEAK_PIN"
    status = 422
    title = "This PIN is too easy to guess"


class InvalidIdCard(MobipayError):
    code = "INVALID_ID_CARD"
    status = 400
    title = "Not a valid resident identity card number"


class InvalidCardNumber(MobipayError):
    code = "INVALID_CARD_NUMBER"
    status = 400
    title = "Not a valid bank card number"


class OtpInvalid(MobipayError):
    code = "OTP_INVALID"
    status = 422
    title = "The one-time code is wrong"


class OtpExpired(MobipayError):
    code = "OTP_EXPIRED"
    status = 422
    title = "The one-time code has expired; ask for a new one"


class OtpAttemptsExceeded(MobipayError):
    code = "OTP_ATTEMPTS_EXCEEDED"
    status = 429
    title = "Too many wrong codes; ask for a new one"


class OtpResendTooSoon(MobipayError):
    code = "OTP_RESEND_TOO_SOON"
    status = 429
    title = "A code was sent moments ago; wait before asking again"


class UserExists(MobipayError):
    code = "USER_EXISTS"
    status = 409
    title = "This number is already registered"


class UserNotFound(MobipayError):
    code = "USER_NOT_FOUND"
    status = 404
    title = "No subscriber with this number"


class PinNotSet(MobipayError):
    code = "PIN_NOT_SET"
    status = 409
    title = "No payment PIN has been set yet"


class PinAlreadySet(MobipayError):
    code = "PIN_ALREADY_SET"
    status = 409
    title = "A payment PIN is set already; change it with the current PIN"


class PinIncorrect(MobipayError):
    code = "PIN_INCORRECT"
    status = 422
    title = "The payment PIN is wrong"


class PinLocked(MobipayError):
    code = "PIN_LOCKED"
    status = 423
    title = "Payments are locked after too many wrong PINs"


class SessionInvalid(MobipayError):
    code = "SESSION_INVALID"
    status = 401
    title = "Sign in again: the token is unknown, expired or revoked"


class LoginMethodRequired(MobipayError):
    code = "LOGIN_METHOD_REQUIRED"
    status = 400
    title = "Sign in with either an SMS code or the payment PIN"


class SelfTransfer(MobipayError):
    code = "SELF_TRANSFER"
    status = 422
    title = "You cannot send money to your own number"


class PinRequired(MobipayError):
    code = "PIN_REQUIRED"
    status = 422
    title = "This amount needs the payment PIN"


class UserFrozen(MobipayError):
    code = "USER_FROZEN"
    status = 423
    title = "This wallet is frozen; contact customer service"


class LimitExceeded(MobipayError):
    code = "LIMIT_EXCEEDED"
    status = 422
    title = "The payment exceeds a limit of your account"


class SelfRequest(MobipayError):
    code = "SELF_REQUEST"
    status = 422
    title = "You cannot ask your own number for money"


class RequestNotOpen(MobipayError):
    code = "REQUEST_NOT_OPEN"
    status = 409
    title = "This money request was already paid, declined or has expired"


class InvalidRealName(MobipayError):
    code = "INVALID_REAL_NAME"
    status = 400
    title = "Not a valid name"


class CardNotSupported(MobipayError):
    code = "CARD_NOT_SUPPORTED"
    status = 422
    title = "This card cannot be bound: its bank or card type is not supported"


class CardVerificationFailed(MobipayError):
    code = "CARD_VERIFICATION_FAILED"
    status = 422
    title = "The bank did not confirm this card for this name, identity card and number"


class CardAlreadyBound(MobipayError):
    code = "CARD_ALREADY_BOUND"
    status = 409
    title = "This card is already bound to a wallet"


class CardNotFound(MobipayError):
    code = "CARD_NOT_FOUND"
    status = 404
    title = "No such bound card in your wallet"


class RealNameRequired(MobipayError):
    code = "REAL_NAME_REQUIRED"
    status = 403
    title = "Verify your real name and bind a bank card first (Tier II)"


class IdentityMismatch(MobipayError):
    code = "IDENTITY_MISMATCH"
    status = 422
    title = "The identity card number does not match the wallet's verified identity"


class CardBusy(MobipayError):
    code = "CARD_BUSY"
    status = 409
    title = "An order on this card is still pending"


class BankUnavailable(MobipayError):
    code = "BANK_UNAVAILABLE"
    status = 503
    title = "The bank did not answer; nothing was changed, try again later"


class BalanceNotEmpty(MobipayError):
    code = "BALANCE_NOT_EMPTY"
    status = 409
    title = "The wallet still holds money; pay it out before closing"


class UserClosed(MobipayError):
    code = "USER_CLOSED"
    status = 410
    title = "This wallet is closed"


class BankDeclined(MobipayError):
    code = "BANK_DECLINED"
    status = 422
    title = "The bank declined the order; nothing was moved"


class IdentityRequired(MobipayError):
    code = "IDENTITY_REQUIRED"
    status = 400
    title = "Send the identity card number of this real-name wallet"


class IdempotencyKeyInvalid(MobipayError):
    """An optional Idempotency-Key that was sent but is not one (paying a money request)."""

    code = "IDEMPOTENCY_KEY_INVALID"
    status = 400
    title = "The Idempotency-Key header is not 1 to 64 printable characters"
