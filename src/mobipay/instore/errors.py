"""In-store refusals, each with a stable code (see docs/errors.md).

A QR code that cannot be read is the scanner's problem (400); one that reads but that
mobipay cannot pay (another scheme's, a foreign currency, no amount) is 422.
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class QrBadCrc(MobipayError):
    code = "QR_BAD_CRC"
    status = 400
    title = "The QR code's checksum does not match its content; scan it again"


class QrMissingTag(MobipayError):
    code = "QR_MISSING_TAG"
    status = 400
    title = "The QR code lacks a field every merchant code must have"


class QrBadTag(MobipayError):
    code = "QR_BAD_TAG"
    status = 400
    title = "The QR code has a field whose tag is not two digits"


class QrBadLength(MobipayError):
    code = "QR_BAD_LENGTH"
    status = 400
    title = "The QR code has a field length that is not two digits or runs past the end of the code"


class QrDuplicateTag(MobipayError):
    code = "QR_DUPLICATE_TAG"
    status = 400
    title = "The QR code has the same field twice"


class QrBadValue(MobipayError):
    code = "QR_BAD_VALUE"
    status = 400
    title = "A field of the QR code does not have the form the EMV specification sets"


class QrValueTooLong(MobipayError):
    code = "QR_VALUE_TOO_LONG"
    status = 400
    title = "A field of the QR code is longer than the EMV specification allows"


class QrAmountRequired(MobipayError):
    code = "QR_AMOUNT_REQUIRED"
    status = 422
    title = "A QR code for one order must carry its amount"


class QrBadAmount(MobipayError):
    code = "QR_BAD_AMOUNT"
    status = 422
    title = "The QR code's amount is not yuan with at most 2 decimals greater than 0"


class QrBadCurrency(MobipayError):
    code = "QR_BAD_CURRENCY"
    status = 422
    title = "The QR code asks for a currency other than yuan (156)"


class QrNotOurs(MobipayError):
    code = "QR_NOT_OURS"
    status = 422
    title = "The QR code is not a mobipay merchant's code"


# ---------------------------------------------------------------------- POS terminals
# A terminal request that cannot be verified is refused before anything is done, each reason
# with its own code, so a till's developer sees at once which part of the signature is wrong.


class TerminalNotSigned(MobipayError):
    code = "TERMINAL_NOT_SIGNED"
    status = 401
    title = "Send Terminal-Id, Timestamp (Unix seconds), Nonce and Signature headers (docs/instore.md)"


class TerminalUnknown(MobipayError):
    code = "TERMINAL_UNKNOWN"
    status = 401
    title = "No terminal has this Terminal-Id"


class TerminalDisabled(MobipayError):
    code = "TERMINAL_DISABLED"
    status = 403
    title = "This terminal is disabled: the merchant enables it again in the portal"


class TerminalClockSkew(MobipayError):
    code = "TERMINAL_CLOCK_SKEW"
    status = 401
    title = "The Timestamp is more than 5 minutes away from the platform's clock: set the terminal's clock"


class TerminalNonceReplayed(MobipayError):
    code = "TERMINAL_NONCE_REPLAYED"
    status = 401
    title = "This Nonce was used already: a replayed request"


class TerminalBadSignature(MobipayError):
    code = "TERMINAL_BAD_SIGNATURE"
    status = 401
    title = "The Signature does not verify with the terminal's key over the request (docs/instore.md)"


class TerminalNotFound(MobipayError):
    code = "TERMINAL_NOT_FOUND"
    status = 404
    title = "No such terminal of yours"


class InvalidTerminalField(MobipayError):
    code = "INVALID_TERMINAL_FIELD"
    status = 400
    title = "A terminal's label or public key is not valid"


# ---------------------------------------------------------------------- scan and pay
# A code that reads but names nothing payable, and the payer's daily QR limits (PBoC 2017/296):
# each refusal moves nothing.


class QrMerchantUnknown(MobipayError):
    code = "QR_MERCHANT_UNKNOWN"
    status = 404
    title = "The QR code names no mobipay merchant"


class QrMerchantNotActive(MobipayError):
    code = "QR_MERCHANT_NOT_ACTIVE"
    status = 422
    title = "The merchant of this QR code cannot be paid now"


class QrStoreNotFound(MobipayError):
    code = "QR_STORE_NOT_FOUND"
    status = 404
    title = "The QR code names a store the merchant does not have"


class QrTradeNotFound(MobipayError):
    code = "QR_TRADE_NOT_FOUND"
    status = 404
    title = "The QR code names no order of this merchant, or another amount than the order's"


class QrTradeExpired(MobipayError):
    code = "QR_TRADE_EXPIRED"
    status = 409
    title = "The order of this QR code has expired: ask the merchant for a new code"


class QrTradeClosed(MobipayError):
    code = "QR_TRADE_CLOSED"
    status = 409
    title = "The order of this QR code was closed by the merchant"


class QrTradePaid(MobipayError):
    code = "QR_TRADE_PAID"
    status = 409
    title = "The order of this QR code has been paid already"


class QrAmountFixed(MobipayError):
    code = "QR_AMOUNT_FIXED"
    status = 422
    title = "A dynamic QR code carries its amount: send none"


class QrAmountMissing(MobipayError):
    code = "QR_AMOUNT_MISSING"
    status = 422
    title = "A static QR code has no amount: send the amount in fen"


class QrScanMismatch(MobipayError):
    code = "QR_SCAN_MISMATCH"
    status = 422
    title = "The scan_id is not the one this payload's scan answered"


class QrStaticLimitExceeded(MobipayError):
    code = "QR_STATIC_DAILY_LIMIT"
    status = 422
    title = "Payments by static QR codes are at most the daily limit (PBoC 2017/296); 'left' says what remains today"


class QrDynamicLimitExceeded(MobipayError):
    code = "QR_DYNAMIC_DAILY_LIMIT"
    status = 422
    title = ("Payments by dynamic QR codes are at most the daily limit of their factors (PBoC 2017/296); "
             "'limit' names it, 'left' says what remains today")


# ---------------------------------------------------------------------- payment codes (付款码)
# The 18-digit code a wallet shows for the till to scan (instore/paycode.py): a code the till
# misread is 400, one that reads but mobipay will not take (another wallet's, too old, a wrong
# one-time password) is 422. Each refusal moves nothing.


class PaycodeMalformed(MobipayError):
    code = "PAYCODE_MALFORMED"
    status = 400
    title = "A payment code is exactly 18 ASCII digits: scan the payer's code again"


class PaycodeNotOurs(MobipayError):
    code = "PAYCODE_NOT_OURS"
    status = 422
    title = "The payment code is not a mobipay code (another wallet's prefix)"


class PaycodeExpired(MobipayError):
    code = "PAYCODE_EXPIRED"
    status = 422
    title = "The payment code is older than 60 seconds: ask the payer to show the new one"


class PaycodeInvalid(MobipayError):
    code = "PAYCODE_INVALID"
    status = 422
    title = "The payment code does not verify for its device: ask the payer to show the code again"
