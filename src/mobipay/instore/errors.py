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
