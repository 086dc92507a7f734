"""Secondary-confirmation refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class ConfirmationRefused(MobipayError):
    code = "CONFIRMATION_REFUSED"
    status = 422
    title = "No request is waiting for this code"
