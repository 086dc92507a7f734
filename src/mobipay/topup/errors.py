"""Top-up refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class InvalidFaceValue(MobipayError):
    code = "INVALID_FACE_VALUE"
    status = 422
    title = "Top-ups are whole yuan within the allowed range"


class PartnerSuspended(MobipayError):
    code = "PARTNER_SUSPENDED"
    status = 403
    title = "This partner may not sell top-up now"


class TopupFailed(MobipayError):
    code = "TOPUP_FAILED"
    status = 422
    title = "The operator did not credit the number; the money is back in the wallet"
