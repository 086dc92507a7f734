"""Refusals of the screenless channels' shared actions, each with a stable code (see
docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class NoBillToFetch(MobipayError):
    code = "NO_BILL_TO_FETCH"
    status = 422
    title = "This biller has no bills to fetch; pay an amount instead"
