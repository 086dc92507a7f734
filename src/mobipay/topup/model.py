"""Top-up rules without I/O: face values, bounds, price rules (discounts) and the route.

A top-up credits a phone number's operator balance with a *face value*; the payer pays
the *price*: the face value less the best matching discount from ``data/price_rules.csv``
(data, not code, so marketing changes it without a release). Numbers of the home operator
go to its own billing system; other operators' numbers to a top-up aggregator.
"""

from __future__ import annotations

import csv
import enum
from dataclasses import dataclass
from datetime import date

from mobipay.topup.errors import InvalidFaceValue

FACE_VALUES = (1_000, 2_000, 3_000, 5_000, 10_000, 20_000, 30_000, 50_000)  # 10 … 500 CNY, in fen


class Route(enum.StrEnum):
    OPERATOR_BILLING = "operator_billing"  # the home operator's own billing system
    AGGREGATOR = "topup_aggregator"  # other operators' numbers


@dataclass(frozen=True, slots=True)
class TopupPolicy:
    """What may be topped up (fen); from settings. Any whole-yuan amount within bounds."""

    minimum: int = 1_000
    maximum: int = 50_000
    home_operator: str = "china_mobile"

    def check(self, face: int) -> int:
        if face % 100:
            raise InvalidFaceValue("top up a whole number of yuan (e.g. 50 CNY is 5000 fen)", field="amount")
        if not self.minimum <= face <= self.maximum:
            raise InvalidFaceValue(f"top up between {self.minimum // 100} and {self.maximum // 100} CNY",
                                   field="amount")
        return face

    def route(self, operator: str) -> Route:
        return Route.OPERATOR_BILLING if operator == self.home_operator else Route.AGGREGATOR


@dataclass(frozen=True, slots=True)
class PriceRule:
    operator: str  # or "*"
    min_face: int
    max_face: int
    discount_bps: int
    valid_from: date
    valid_to: date
    name: str

    def applies(self, operator: str, face: int, day: date) -> bool:
        return (self.operator in ("*", operator) and self.min_face <= face <= self.max_face
                and self.valid_from <= day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Quote:
    msisdn: str
    operator: str
    route: Route
    face: int
    price: int
    discount: int
    rule: str  # the rule's name, "" when none applies


class PriceRules:
    def __init__(self, rules: list[PriceRule]) -> None:
        self.rules = rules

    @classmethod
    def from_csv(cls, text: str) -> PriceRules:
        rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
        rules = []
        for r in rows:
            rule = PriceRule(r["operator"], int(r["min_face_fen"]), int(r["max_face_fen"]), int(r["discount_bps"]),
                             date.fromisoformat(r["valid_from"]), date.fromisoformat(r["valid_to"]), r["name"])
            if not (0 <= rule.discount_bps < 10_000 and rule.min_face <= rule.max_face):
                raise ValueError(f"bad price rule {rule.name!r}")
            rules.append(rule)
        return cls(rules)

    def quote(self, msisdn: str, operator: str, face: int, day: date, policy: TopupPolicy) -> Quote:
        """The price of ``face`` for this number today: the biggest discount that applies,
        rounded down to the fen (the payer is never charged more than the rule says)."""
        best = max((r for r in self.rules if r.applies(operator, face, day)), key=lambda r: r.discount_bps,
                   default=None)
        discount = face * best.discount_bps // 10_000 if best else 0
        return Quote(msisdn, operator, policy.route(operator), face, face - discount, discount,
                     best.name if best else "")
