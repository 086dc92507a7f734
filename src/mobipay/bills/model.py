"""Bill-zone rules without I/O: billers as data, customer numbers, opening hours and the
amount a bill may be paid with.

Every biller is a row of ``data/billers.csv`` (or an imported file): its category and
city, the shape of its customer number, whether a bill must be fetched before paying,
how the amount relates to the bill (exact, partial, over-payment, free amount within
min/max), its opening hours and the adapter that speaks to it. Nothing about a biller is
in code, so adding one is a data change.
"""

from __future__ import annotations

import csv
import enum
import re
from dataclasses import dataclass
from datetime import date, time

from mobipay.bills import errors


class Category(enum.StrEnum):
    WATER = "water"
    ELECTRICITY = "electricity"
    GAS = "gas"
    TELECOM = "telecom"
    BUS_CARD = "bus_card"
    CABLE_TV = "cable_tv"
    HEATING = "heating"
    MEDICAL_INSURANCE = "medical_insurance"


class FetchMode(enum.StrEnum):
    MANDATORY = "mandatory"  # pay only a bill fetched from the biller
    OPTIONAL = "optional"  # fetch if the user wants; paying an amount without a bill is fine
    NONE = "none"  # no bills (e.g. topping up a bus card): pay an amount


class AmountRule(enum.StrEnum):
    EXACT = "exact"  # the bill's amount due, exactly
    PARTIAL = "partial"  # up to the amount due
    OVER = "over"  # at least the minimum, more than due allowed (credit on the account)
    ANY = "any"  # any amount within min..max (no bill)


@dataclass(frozen=True, slots=True)
class Biller:
    code: str
    name: str
    category: Category
    city: str
    province: str
    id_label: str
    id_regex: str
    fetch: FetchMode
    amount_rule: AmountRule
    minimum: int
    maximum: int
    opens: time
    closes: time
    adapter: str
    latency_ms: int = 0
    active: bool = True

    def check_customer_id(self, raw: object) -> str:
        value = raw.strip() if isinstance(raw, str) else ""
        if not value or not re.fullmatch(self.id_regex, value):
            raise errors.InvalidCustomerId(f"{self.name} needs a {self.id_label} like the one on your bill",
                                           field="customer_id")
        return value

    def check_open(self, now: time) -> None:
        """Refuse outside opening hours (Shanghai time), saying when it opens."""
        if not self.opens <= now <= self.closes:
            raise errors.BillerClosed(f"{self.name} takes payments from {self.opens:%H:%M} to {self.closes:%H:%M} "
                                      "(Beijing time)")

    def check_amount(self, amount: int, due: int | None) -> int:
        """The amount, if the biller's rule allows it for a bill of ``due`` (None: no bill)."""
        if due is None and self.fetch is FetchMode.MANDATORY:
            raise errors.BillFetchRequired(f"fetch the bill of your {self.id_label} first", field="bill_id")
        if not self.minimum <= amount <= self.maximum:
            raise errors.AmountNotAllowed(f"pay between {self.minimum / 100:.2f} and {self.maximum / 100:.2f} CNY",
                                          field="amount")
        if due is not None:
            if self.amount_rule is AmountRule.EXACT and amount != due:
                raise errors.AmountNotAllowed(f"this bill is paid in full: {due / 100:.2f} CNY", field="amount")
            if self.amount_rule is AmountRule.PARTIAL and amount > due:
                raise errors.AmountNotAllowed(f"at most the amount due, {due / 100:.2f} CNY", field="amount")
        return amount


@dataclass(frozen=True, slots=True)
class Bill:
    """A bill as fetched from the biller (the customer's name only masked)."""

    biller: str
    customer_id: str
    bill_number: str
    amount_due: int
    customer_name: str
    due_date: date
    period: str  # e.g. 2026-11


def parse_billers(text: str) -> list[Biller]:
    """Billers from CSV text (``#`` lines are comments); refuses a bad row, naming it."""
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    billers = []
    for n, r in enumerate(rows, start=2):
        try:
            re.compile(r["customer_id_regex"])
            biller = Biller(r["code"].strip(), r["name"].strip(), Category(r["category"]), r["city"].strip(),
                            r["province"].strip(), r["customer_id_label"], r["customer_id_regex"],
                            FetchMode(r["fetch"]), AmountRule(r["amount_rule"]), int(r["min_fen"]), int(r["max_fen"]),
                            time.fromisoformat(r["opens"]), time.fromisoformat(r["closes"]), r["adapter"],
                            int(r.get("latency_ms") or 0))
        except (KeyError, ValueError, re.error) as exc:
            raise ValueError(f"billers file line {n}: {exc}") from exc
        if not (re.fullmatch(r"[A-Z0-9_]{2,32}", biller.code) and 0 < biller.minimum <= biller.maximum):
            raise ValueError(f"billers file line {n}: bad code or amount range for {biller.code!r}")
        if biller.amount_rule is AmountRule.ANY and biller.fetch is not FetchMode.NONE:
            raise ValueError(f"billers file line {n}: amount rule 'any' is for billers without bills")
        billers.append(biller)
    codes = [b.code for b in billers]
    if len(codes) != len(set(codes)):
        raise ValueError("billers file: a biller code appears twice")
    return billers


class ComplaintReason(enum.StrEnum):
    NOT_CREDITED = "not_credited"  # paid, but the biller shows it unpaid
    WRONG_AMOUNT = "wrong_amount"
    WRONG_ACCOUNT = "wrong_account"  # paid to the wrong customer number
    DUPLICATE = "duplicate"  # charged twice
    OTHER = "other"


class ComplaintState(enum.StrEnum):
    OPEN = "open"  # waiting for the assignee to take it
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"


#: Who may move a complaint where: the state machine (final states have no way out).
COMPLAINT_MOVES: dict[ComplaintState, frozenset[ComplaintState]] = {
    ComplaintState.OPEN: frozenset({ComplaintState.IN_PROGRESS, ComplaintState.RESOLVED, ComplaintState.REJECTED}),
    ComplaintState.IN_PROGRESS: frozenset({ComplaintState.RESOLVED, ComplaintState.REJECTED}),
    ComplaintState.RESOLVED: frozenset(),
    ComplaintState.REJECTED: frozenset(),
}

#: Hours the assignee has in each open state before the complaint escalates a level
#: (biller → operator → supervisor), in the manner of BBPS's turnaround times.
COMPLAINT_DEADLINE_H = {ComplaintState.OPEN: 48, ComplaintState.IN_PROGRESS: 120}
MAX_LEVEL = 2


def check_complaint_move(current: ComplaintState, to: ComplaintState) -> None:
    if to not in COMPLAINT_MOVES[current]:
        raise errors.ComplaintStateInvalid(f"a complaint {current.value} cannot become {to.value}", field="state")
