"""Alliances and brand privileges, the pure model (no I/O).

The operator's subscribers carry a **brand** (全球通 GoTone, 动感地带 M-Zone, 神州行 Easy-own)
and GoTone subscribers a **VIP level** (银卡 silver 1, 金卡 gold 2, 白金卡 platinum 3, 钻石卡
diamond 4; 0 is a subscriber without a VIP card, and every M-Zone and Easy-own subscriber). An
**alliance programme** is a set of member stores and, per brand and least level, its
**privilege rules**, valid for a period; the member merchant funds every privilege (it is
paid, and settled, that much less).

Rules are one of three kinds:

* ``percent``: ``value`` basis points off the amount (1,200 = 12 % off), optionally at most
  ``cap`` fen. The discount is **rounded down to the fen** (``amount × value // 10000``): a
  payer never gets more off than advertised and the merchant never funds a fraction of a fen.
* ``fixed``: ``value`` fen off, for amounts of at least ``min_spend`` (which is more than
  ``value``, so something is always paid).
* ``points``: ``value`` is the multiplier in tenths (20 = double points): points =
  ``value × base // 10`` rounded down, where the **base** is 1 point per whole yuan paid
  (``paid // 100``, the operator's rule for loyalty points). Points are not money: they are
  recorded per payment, never posted to the ledger.

Every rule may need ``min_spend`` fen. Whatever the rule, at least 1 fen is paid: a discount
never exceeds ``amount - 1``.

**The best privilege** of a payment is chosen among the rules of the programmes valid then
(``valid_from <= at < valid_until``, state active) whose stores include the store, for the
payer's brand and a ``min_level`` at most the payer's level, whose ``min_spend`` the amount
reaches: the largest discount; then the most points; then the oldest programme (smallest id)
and its first rule, so the choice is deterministic. Money comes before points: privileges do
not combine (one per payment).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mobipay.instore import errors


class Brand(StrEnum):
    GOTONE = "gotone"  # 全球通
    MZONE = "mzone"  # 动感地带
    EASYOWN = "easyown"  # 神州行


class Kind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"
    POINTS = "points"


#: (Chinese, English) names of the brands and of GoTone's VIP levels.
BRAND_NAMES: dict[Brand, tuple[str, str]] = {Brand.GOTONE: ("全球通", "GoTone"), Brand.MZONE: ("动感地带", "M-Zone"),
                                             Brand.EASYOWN: ("神州行", "Easy-own")}
LEVEL_NAMES: dict[int, tuple[str, str]] = {0: ("普通", "standard"), 1: ("银卡", "silver"), 2: ("金卡", "gold"),
                                           3: ("白金卡", "platinum"), 4: ("钻石卡", "diamond")}
MAX_LEVEL = 4
MAX_PERCENT_BP = 9_000  # at most 90 % off
MAX_POINTS_X10 = 100  # at most ten times the points
MAX_RULES = 20


@dataclass(frozen=True, slots=True)
class Rule:
    """One privilege of a programme: for ``brand`` subscribers of at least ``min_level``."""

    brand: Brand
    min_level: int
    kind: Kind
    value: int  # percent: basis points off; fixed: fen off; points: multiplier in tenths
    min_spend: int = 0  # fen the amount must reach
    cap: int = 0  # percent only: at most this many fen off (0: no cap)


@dataclass(frozen=True, slots=True)
class Programme:
    id: str
    code: str
    name: str
    description: str
    valid_from: datetime
    valid_until: datetime
    state: str  # active | ended
    rules: tuple[Rule, ...]

    def valid_at(self, at: datetime) -> bool:
        return self.state == "active" and self.valid_from <= at < self.valid_until


@dataclass(frozen=True, slots=True)
class Privilege:
    """The privilege a payment gets: what the receipt shows."""

    programme_id: str
    programme_name: str
    brand: Brand
    level: int
    rule: Rule
    amount: int  # the price, fen
    discount: int  # fen off (funded by the merchant)
    points: int

    @property
    def paid(self) -> int:
        return self.amount - self.discount


def parse_brand(value: object, *, field: str = "brand") -> Brand:
    try:
        return Brand(str(value).strip().lower())
    except ValueError:
        raise errors.AllianceInvalid(f"a brand is one of {', '.join(b.value for b in Brand)}",
                                     field=field) from None


def check_level(brand: Brand, level: object, *, field: str = "level") -> int:
    """A VIP level: 0-4 for GoTone (全球通 VIP cards); 0 for the other brands."""
    if type(level) is not int or not 0 <= level <= MAX_LEVEL:
        raise errors.AllianceInvalid(f"a level is 0 to {MAX_LEVEL}", field=field)
    if level and brand is not Brand.GOTONE:
        raise errors.AllianceInvalid("only GoTone (全球通) subscribers have VIP levels", field=field)
    return level


def check_rule(rule: Rule) -> Rule:
    """A rule the model can apply, or ``ALLIANCE_INVALID`` naming the field."""
    check_level(rule.brand, rule.min_level, field="min_level")
    for name in ("value", "min_spend", "cap"):
        if type(getattr(rule, name)) is not int or getattr(rule, name) < 0:
            raise errors.AllianceInvalid(f"{name} is a whole number", field=name)
    if rule.kind is Kind.PERCENT and not 1 <= rule.value <= MAX_PERCENT_BP:
        raise errors.AllianceInvalid(f"a percent rule gives 1 to {MAX_PERCENT_BP} basis points off", field="value")
    if rule.kind is Kind.FIXED and not (rule.value >= 1 and rule.min_spend > rule.value):
        raise errors.AllianceInvalid("a fixed rule gives at least 1 fen off, for amounts above it (min_spend)",
                                     field="min_spend")
    if rule.kind is Kind.POINTS and not 10 <= rule.value <= MAX_POINTS_X10:
        raise errors.AllianceInvalid("a points rule multiplies by 1.0 to 10.0 (value 10 to 100, in tenths)",
                                     field="value")
    if rule.cap and rule.kind is not Kind.PERCENT:
        raise errors.AllianceInvalid("only a percent rule has a cap", field="cap")
    return rule


def check_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    out = tuple(check_rule(r) for r in rules)
    if len(out) > MAX_RULES:
        raise errors.AllianceInvalid(f"at most {MAX_RULES} rules a programme", field="rules")
    return out


def check_programme_fields(code: str, name: str, valid_from: datetime, valid_until: datetime) -> tuple[str, str]:
    code, name = code.strip(), name.strip()
    if not (1 <= len(code) <= 32 and code.isascii() and all(c.isalnum() or c in "_-" for c in code)):
        raise errors.AllianceInvalid("a code is 1-32 of A-Z a-z 0-9 _ -", field="code")
    if not 1 <= len(name) <= 64:
        raise errors.AllianceInvalid("a name is 1-64 characters", field="name")
    if valid_until <= valid_from:
        raise errors.AllianceInvalid("a programme ends after it starts", field="valid_until")
    return code, name


def base_points(paid: int) -> int:
    """The operator's points rule: 1 point per whole yuan paid."""
    return paid // 100


def discount_of(rule: Rule, amount: int) -> int | None:
    """The fen this rule gives off ``amount``, None when it does not apply (below ``min_spend``);
    percent rounded down, capped, and never more than ``amount - 1``."""
    if amount < max(rule.min_spend, 1):
        return None
    if rule.kind is Kind.PERCENT:
        off = amount * rule.value // 10_000
        if rule.cap:
            off = min(off, rule.cap)
    elif rule.kind is Kind.FIXED:
        off = rule.value
    else:
        off = 0
    return max(0, min(off, amount - 1))


def points_of(rule: Rule, paid: int) -> int:
    """Points a payment of ``paid`` fen earns under ``rule``: multiplier × base, rounded down."""
    return rule.value * base_points(paid) // 10 if rule.kind is Kind.POINTS else 0


def best(programmes: Iterable[Programme], brand: Brand | None, level: int, amount: int,
         at: datetime) -> Privilege | None:
    """The best privilege for this payment among ``programmes`` (those the store is a member
    of), or None: see the module's rule of choice."""
    if brand is None:
        return None
    found: tuple[tuple[int, int], Privilege] | None = None
    for p in sorted(programmes, key=lambda p: p.id):
        if not p.valid_at(at):
            continue
        for rule in p.rules:
            if rule.brand is not brand or rule.min_level > level:
                continue
            off = discount_of(rule, amount)
            if off is None:
                continue
            points = points_of(rule, amount - off)
            if off == 0 and points == 0:
                continue
            if found is None or (off, points) > found[0]:
                found = ((off, points), Privilege(p.id, p.name, brand, level, rule, amount, off, points))
    return found[1] if found else None


def describe(rule: Rule, *, english: bool = False) -> str:
    """A rule in words for the directory and receipts: 12 % off, 5.00 off from 50.00, 2× points."""
    spend = f"{rule.min_spend // 100}.{rule.min_spend % 100:02d}"
    level = LEVEL_NAMES[rule.min_level][1 if english else 0]
    who = ("" if not rule.min_level else (f" ({level} and above)" if english else f"（{level}及以上）"))
    if rule.kind is Kind.PERCENT:
        pct = f"{rule.value // 100}" + (f".{rule.value % 100:02d}".rstrip("0") if rule.value % 100 else "")
        cap = f"{rule.cap // 100}.{rule.cap % 100:02d}"
        text = f"{pct}% off" if english else f"立减{pct}%"
        if rule.cap:
            text += f", at most {cap}" if english else f"，最高{cap}元"
    elif rule.kind is Kind.FIXED:
        off = f"{rule.value // 100}.{rule.value % 100:02d}"
        text = f"{off} off" if english else f"立减{off}元"
    else:
        times = f"{rule.value // 10}" + (f".{rule.value % 10}" if rule.value % 10 else "")
        text = f"{times}× points" if english else f"{times}倍积分"
    if rule.min_spend:
        text = f"{text} from {spend}" if english else f"满{spend}元{text}"
    return text + who
