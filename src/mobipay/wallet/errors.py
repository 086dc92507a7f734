"""Wallet refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class InvalidMsisdn(MobipayError):
    code = "INVALID_MSISDN"
    status = 400
    title = "Not a mainland China mobile number"


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
