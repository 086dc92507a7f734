"""Orders sent to a partner (a bank, an operator's billing system, a biller…): their
states and what a partner's answer may do to them. Pure rules; the engine that stores
orders and holds their money is ``orders/service.py``.

An order is *pending* from the moment it is written (with a ledger hold) until the
partner's answer is clear. Only a pending order changes state; the same answer twice is
a no-op; a contradicting answer (succeeded, then failed) is refused loudly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mobipay.orders.errors import OrderConflict


class OrderState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PartnerStatus(enum.StrEnum):
    """What a partner said about an order."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PROCESSING = "processing"  # accepted, not finished: ask again later
    NOT_FOUND = "not_found"  # the partner has no such order (it never arrived)
    UNKNOWN = "unknown"  # no trustworthy answer (timeout, error, unsigned reply)


@dataclass(frozen=True, slots=True)
class PartnerAnswer:
    order_id: str
    status: PartnerStatus
    partner_ref: str = ""
    reason: str = ""

    @property
    def final(self) -> OrderState | None:
        """The state this answer settles the order in, or None (ask again later)."""
        return {PartnerStatus.SUCCEEDED: OrderState.SUCCEEDED,
                PartnerStatus.FAILED: OrderState.FAILED}.get(self.status)


def check_settle(current: OrderState, to: OrderState) -> bool:
    """Whether an order in ``current`` may move to ``to``: True to apply, False when it is
    already there (a repeated answer: nothing to do); otherwise :class:`OrderConflict`."""
    if current is to:
        return False
    if current is OrderState.PENDING and to is not OrderState.PENDING:
        return True
    raise OrderConflict(f"an order {current.value} at the partner cannot become {to.value}")


def next_check_s(checks: int, first_s: int = 5, max_s: int = 3600) -> int:
    """Seconds until the next status query of a pending order: 5 s, doubling to an hour."""
    return min(max_s, first_s << min(checks, 16))
