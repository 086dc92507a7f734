"""Product rules without I/O: the operator's catalogue and insurance products as data,
what may be bought by whom, and when a policy may still be cancelled for a refund."""

from __future__ import annotations

import calendar
import csv
import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from mobipay.kernel.clock import SHANGHAI
from mobipay.products import errors


class Family(enum.StrEnum):
    MUSIC = "music"  # wireless music
    INFO = "info"  # 12580 information services
    FETION = "fetion"  # Fetion membership


@dataclass(frozen=True, slots=True)
class OperatorProduct:
    code: str
    name: str
    family: Family
    price: int
    period: str  # monthly | once
    description: str


@dataclass(frozen=True, slots=True)
class InsuranceProduct:
    code: str
    name: str
    insurer: str
    kind: str  # accident | travel
    premium: int
    coverage: int
    term_days: int
    cooling_off_days: int

    def cancellable_until(self, bought_at: datetime, starts_at: datetime) -> datetime:
        """Until when a policy may be cancelled for a full refund: the cooling-off period
        after purchase, or (without one) until the cover starts."""
        if self.cooling_off_days:
            return bought_at + timedelta(days=self.cooling_off_days)
        return starts_at

    def check_cancellable(self, bought_at: datetime, starts_at: datetime, now: datetime) -> None:
        until = self.cancellable_until(bought_at, starts_at)
        if now >= until:
            raise errors.CoolingOffOver(f"{self.name} could be cancelled until "
                                        f"{until.astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing time", field="policy_id")


class SubscriptionState(enum.StrEnum):
    """A monthly product's subscription: ``pending`` while its first order is at the
    provider; ``active`` (renews at the period's end); ``cancelled`` by the subscriber (in
    service until the paid period ends, never renewed); then ``ended``; ``lapsed`` when a
    renewal could not be paid or delivered; ``failed`` when the first order failed."""

    PENDING = "pending"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    ENDED = "ended"
    LAPSED = "lapsed"
    FAILED = "failed"


#: States in which the subscription holds its product for the subscriber (one at a time).
LIVE = frozenset({SubscriptionState.PENDING, SubscriptionState.ACTIVE, SubscriptionState.CANCELLED})


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` plus whole calendar months in Shanghai, the day clamped to the month's last
    (31 January + 1 = 28/29 February): periods count from the first purchase, so they never drift."""
    local = anchor.astimezone(SHANGHAI)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(anchor.tzinfo)


def renewal_order_id(subscription_id: str, cycle: int) -> str:
    """The order paying period ``cycle`` of a subscription: derived, so a rerun of the
    renewal job finds the same order and never charges twice."""
    return "pr_" + hashlib.sha256(f"{subscription_id}|{cycle}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    user_id: str
    msisdn: str
    product: str
    state: SubscriptionState
    anchor: datetime  # when the first period started
    cycle: int  # the period paid for last (1 = the purchase)
    paid_until: datetime  # the end of period ``cycle``
    order_id: str  # the order that paid period ``cycle`` (or is paying it)
    renewal_order: str | None  # the renewal at the provider now, if any
    reminded_cycle: int  # the last cycle whose renewal notice was sent
    created_at: datetime
    cancelled_at: datetime | None

    def holds_product(self, now: datetime) -> bool:
        """Whether buying the product again would pay for a period already paid for."""
        if self.state is SubscriptionState.PENDING or (self.state in LIVE and self.renewal_order is not None):
            return True  # an order for it is at the provider
        return self.state in LIVE and now < self.paid_until

    def renewal_due(self, now: datetime) -> bool:
        return self.state is SubscriptionState.ACTIVE and self.renewal_order is None and now >= self.paid_until

    def notice_due(self, now: datetime, notice: timedelta) -> bool:
        """Whether the subscriber should now be told that the next period will be charged."""
        return (self.state is SubscriptionState.ACTIVE and self.reminded_cycle < self.cycle
                and self.paid_until - notice <= now < self.paid_until)

    def check_cancellable(self) -> bool:
        """True to cancel, False when it already is (asking again changes nothing); an ended
        subscription is refused: there is nothing left to stop."""
        if self.state is SubscriptionState.CANCELLED:
            return False
        if self.state is not SubscriptionState.ACTIVE:
            raise errors.SubscriptionNotActive(f"this subscription is {self.state.value}: nothing to cancel",
                                               field="subscription_id", state=self.state.value)
        return True


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#")))


def parse_operator_products(text: str) -> dict[str, OperatorProduct]:
    out = {}
    for r in _rows(text):
        p = OperatorProduct(r["code"], r["name"], Family(r["family"]), int(r["price_fen"]), r["period"],
                            r["description"])
        if p.price <= 0 or p.period not in ("monthly", "once"):
            raise ValueError(f"bad operator product {p.code!r}")
        out[p.code] = p
    return out


def parse_insurance_products(text: str) -> dict[str, InsuranceProduct]:
    out = {}
    for r in _rows(text):
        p = InsuranceProduct(r["code"], r["name"], r["insurer"], r["kind"], int(r["premium_fen"]),
                             int(r["coverage_fen"]), int(r["term_days"]), int(r["cooling_off_days"]))
        if p.premium <= 0 or p.term_days <= 0 or p.kind not in ("accident", "travel"):
            raise ValueError(f"bad insurance product {p.code!r}")
        out[p.code] = p
    return out
