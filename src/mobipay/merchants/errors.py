"""Merchant refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class InvalidCreditCode(MobipayError):
    code = "INVALID_CREDIT_CODE"
    status = 400
    title = "Not a valid unified social credit code"


class BadSignature(MobipayError):
    code = "BAD_SIGNATURE"
    status = 401
    title = "The request's signature does not verify"
