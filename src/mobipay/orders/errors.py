"""Partner-order refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class OrderConflict(MobipayError):
    code = "ORDER_CONFLICT"
    status = 409
    title = "The partner's answer contradicts the order's settled state"
