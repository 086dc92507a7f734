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


# ---------------------------------------------------------------------- alliances and brand privileges
# Programmes of merchants giving the operator's subscribers privileges by brand (instore/alliances.py):
# the operator's refusals when setting them up, and a subscriber's when reading the directory.


class AllianceInvalid(MobipayError):
    """A programme, privilege rule, enrolment or brand record the operator sent is not valid
    (``field`` names what): nothing is changed."""

    code = "ALLIANCE_INVALID"
    status = 400
    title = "An alliance programme, privilege rule or subscriber brand is not valid; see the field"


class AllianceNotFound(MobipayError):
    """No alliance programme has this id (or code)."""

    code = "ALLIANCE_NOT_FOUND"
    status = 404
    title = "No alliance programme with this id"


class AllianceExists(MobipayError):
    """Programme codes are unique: another programme has this one."""

    code = "ALLIANCE_EXISTS"
    status = 409
    title = "An alliance programme with this code exists already"


# ---------------------------------------------------------------------- NFC wallet (HCE phones, SIM sticker cards)
# A tap the platform will not pay (instore/nfc.py, tokens.py, taps.py): online the terminal
# shows the refusal at once; in an offline upload each tap carries its own code. Each refusal
# moves nothing.


class NfcTapMalformed(MobipayError):
    code = "NFC_TAP_MALFORMED"
    status = 400
    title = ("A tap's fields are not what a device makes (ATC, amount, currency 156, 8 hex digits of unpredictable "
             "number, 16 of cryptogram)")


class NfcTokenUnknown(MobipayError):
    code = "NFC_TOKEN_UNKNOWN"
    status = 404
    title = "No NFC token has this id (or it is another wallet's)"


class NfcCryptogramInvalid(MobipayError):
    code = "NFC_CRYPTOGRAM_INVALID"
    status = 422
    title = "The tap's cryptogram does not verify with the token's key over its amount, terminal, date and ATC"


class NfcAtcReplayed(MobipayError):
    code = "NFC_ATC_REPLAYED"
    status = 409
    title = "This token's transaction counter (ATC) was used already: a replayed tap"


class NfcAtcOutOfWindow(MobipayError):
    code = "NFC_ATC_OUT_OF_WINDOW"
    status = 422
    title = ("The tap's ATC is not a next value of the token's counter (online it must increase; never far from "
             "the highest seen)")


class NfcKeyExhausted(MobipayError):
    code = "NFC_KEY_EXHAUSTED"
    status = 422
    title = "The token's limited-use key made all its taps or its cumulative amount: the phone replenishes keys online"


class NfcKeyExpired(MobipayError):
    code = "NFC_KEY_EXPIRED"
    status = 422
    title = "The token's limited-use key expired or was replaced (or the tap was made outside its lifetime)"


class NfcTokenSuspended(MobipayError):
    code = "NFC_TOKEN_SUSPENDED"
    status = 403
    title = "The NFC token is suspended (a lost phone or card): it pays nothing until resumed"


class NfcTokenDenied(MobipayError):
    code = "NFC_TOKEN_DENIED"
    status = 403
    title = "The NFC token is on the deny list: an offline tap is unpaid; topping up the wallet pays it"


class NfcOfflineLimit(MobipayError):
    code = "NFC_OFFLINE_LIMIT"
    status = 422
    title = "An offline tap is above the offline limit: a terminal takes larger amounts online only"


class NfcCvmRequired(MobipayError):
    code = "NFC_CVM_REQUIRED"
    status = 422
    title = "Above the password-free amount the payer unlocks the phone (device verification) before tapping"


class NfcDeviceNotBound(MobipayError):
    code = "NFC_DEVICE_NOT_BOUND"
    status = 403
    title = "NFC tokens are provisioned and replenished only on the token's device, signed in with an SMS code"


class NfcTokenLimit(MobipayError):
    code = "NFC_TOKEN_LIMIT"
    status = 422
    title = "This wallet has as many live NFC tokens as it may: suspend or retire one first"


class NfcMerchantNotActive(MobipayError):
    code = "NFC_MERCHANT_NOT_ACTIVE"
    status = 422
    title = "The terminal's merchant cannot be paid now (suspended, terminated)"


# ---------------------------------------------------------------------- payment-code devices and micropay
# A code that verifies may still not pay: its device revoked or locked, the code used already.
# A terminal's micropay order is keyed by (merchant, out_trade_no): a retry must be the same
# order. Each refusal moves nothing.


class PaycodeUsed(MobipayError):
    code = "PAYCODE_USED"
    status = 409
    title = "This payment code has been used already (each code pays once): ask the payer for the next code"


class PaycodeDeviceUnknown(MobipayError):
    code = "PAYCODE_DEVICE_UNKNOWN"
    status = 422
    title = "The payment code names no mobipay device: ask the payer to open the wallet app again"


class PaycodeDeviceRevoked(MobipayError):
    code = "PAYCODE_DEVICE_REVOKED"
    status = 422
    title = ("The payment code's device no longer pays: its secret was re-issued or revoked, or the wallet "
             "signed out on it")


class PaycodeDeviceLocked(MobipayError):
    code = "PAYCODE_DEVICE_LOCKED"
    status = 423
    title = ("Too many wrong payment codes in a row for this device: it is locked until the payer re-issues "
             "its payment code in the app")


class TerminalPaycodeThrottled(MobipayError):
    """Too many refused payment codes (unknown device, wrong code, revoked or locked device) from
    one terminal, whatever the devices: someone may be guessing device numbers. Its micropay
    charges are refused until the window ends (``retry_after_s``, header Retry-After); no code
    is read, so no payer's device counts anything."""

    code = "TERMINAL_PAYCODE_THROTTLED"
    status = 429
    title = "Too many refused payment codes from this terminal: it may charge payment codes again after Retry-After"


class PaycodeDeviceNotBound(MobipayError):
    code = "PAYCODE_DEVICE_NOT_BOUND"
    status = 403
    title = "A payment code is issued only to a device signed in with an SMS code sent to the wallet's number"


class PaycodeDeviceNotFound(MobipayError):
    code = "PAYCODE_DEVICE_NOT_FOUND"
    status = 404
    title = "No such payment-code device of yours"


class MicropayOrderNotFound(MobipayError):
    code = "MICROPAY_ORDER_NOT_FOUND"
    status = 404
    title = "No micropay order with this out_trade_no for your merchant (or this order id for your wallet)"


class MicropayAmountMismatch(MobipayError):
    code = "MICROPAY_AMOUNT_MISMATCH"
    status = 409
    title = "This out_trade_no is an order of another amount: a retry sends the same amount, a new sale a new number"


class MicropayCodeMismatch(MobipayError):
    code = "MICROPAY_CODE_MISMATCH"
    status = 409
    title = "This out_trade_no was paid with another payment code: a retry sends the same code"


class MicropayOrderFailed(MobipayError):
    code = "MICROPAY_ORDER_FAILED"
    status = 409
    title = "This order's payment was refused ('error_code' says why): charge again with a new out_trade_no"


class MicropayOrderClosed(MobipayError):
    code = "MICROPAY_ORDER_CLOSED"
    status = 409
    title = "The order is closed (declined by the payer or cancelled by the till): nothing was paid"


class MicropayOrderExpired(MobipayError):
    code = "MICROPAY_ORDER_EXPIRED"
    status = 409
    title = "The order waited 60 seconds for the payer and closed unpaid: the till charges again"


class MicropayOrderPaid(MobipayError):
    code = "MICROPAY_ORDER_PAID"
    status = 409
    title = "The order is paid already: the till refunds it, the payer cannot decline it"


class MicropayNotPaid(MobipayError):
    code = "MICROPAY_NOT_PAID"
    status = 409
    title = "Only a paid micropay order can be refunded: cancel an unpaid one"


class NfcTapUnpaid(MobipayError):
    """A refund of an offline NFC tap the payer has not paid yet (a debt not yet recovered): the
    merchant was paid by the platform, so giving the payer money back would pay them for nothing.
    Refund it once the debt is recovered (the next top-up), or the payer owes less by nothing."""

    code = "NFC_TAP_UNPAID"
    status = 409
    title = "The tap is still a debt the payer has not paid: it can be refunded once the debt is recovered"
