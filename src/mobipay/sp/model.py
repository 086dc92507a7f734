"""The pure rules of SP governance (移动梦网): what an SP and its services are, when a
subscription is billed, when the platform asks the subscriber to confirm, the 72-hour
waiver, the double refund, the complaint rate and the violation catalogue with its penalty
ladders, cards and points. No I/O: the service applies these; tests check them alone.

Facts (MII notice of 2006-09-15; the operators' published practice): a subscription is
billed only after the subscriber confirms; the confirmation SMS names the SP, the service,
the price, the billing cycle and the hotline; a subscription cancelled within 72 hours is
not charged; a billing error is refunded double (计费误差双倍返还); charge records are kept
at least five months. The 24-hour reply window, the thresholds, points and card lifetimes
are design defaults (the sources give none): they are data here so the operator can change
them in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fractions import Fraction

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.money import yuan

CONFIRM_WINDOW = timedelta(hours=24)  # design default: an unconfirmed order lapses, unbilled
WAIVER_WINDOW = timedelta(hours=72)  # fact: cancelled within 72 h => not charged
CHARGE_RECORDS_KEPT = timedelta(days=153)  # fact: at least five months
YES_WORDS = frozenset({"是", "Y", "YES", "SHI"})
SERVICE_CODE = re.compile(r"1066\d{4,8}")  # Monternet SP service codes: 1066 + the SP's digits


class Cycle(StrEnum):
    PER_MESSAGE = "per_message"  # 按条
    MONTHLY = "monthly"  # 包月

    @property
    def words(self) -> str:
        return "元/条" if self is Cycle.PER_MESSAGE else "元/月"


class SpState(StrEnum):
    """What the subscriber and the SP see of an SP, the worst measure in force first."""

    ACTIVE = "active"
    SETTLEMENT_SUSPENDED = "settlement_suspended"
    SERVICE_OFFLINE = "service_offline"
    PORT_SHIELDED = "port_shielded"
    EXITED = "exited"


class ChargeMethod(StrEnum):
    PHONE_BILL = "phone_bill"  # on the subscriber's phone bill through the operator's billing system
    WALLET = "wallet"  # from the mobipay wallet, where the subscriber chose it


@dataclass(frozen=True, slots=True)
class Sp:
    """An SP as the rules see it: its flags are the measures in force."""

    code: str  # the service code, e.g. 10661234
    name: str
    licence: str
    hotline: str
    share_bp: int  # the SP's revenue share in basis points (e.g. 8500 = 85%)
    registered_at: datetime
    exited: bool = False
    port_shielded: bool = False
    settlement_suspended: bool = False
    forced_confirmation: bool = False
    yellow_level: int = 0  # 0 (none) … 3, in force now
    red_card: bool = False

    @property
    def state(self) -> SpState:
        if self.exited:
            return SpState.EXITED
        if self.port_shielded:
            return SpState.PORT_SHIELDED
        if self.settlement_suspended:
            return SpState.SETTLEMENT_SUSPENDED
        return SpState.ACTIVE

    @property
    def takes_orders(self) -> bool:
        """New subscriptions and charges need an SP that has not exited and whose port is open."""
        return not self.exited and not self.port_shielded


@dataclass(frozen=True, slots=True)
class Service:
    sp_code: str
    keyword: str  # what the subscriber sends to the service code, e.g. "TQ"
    name: str
    price: int  # fen per message or per month
    cycle: Cycle
    online: bool = True

    @property
    def price_words(self) -> str:
        return f"{yuan(self.price)}{self.cycle.words}"


def confirmation_text(sp: Sp, service: Service) -> str:
    """The secondary-confirmation SMS: SP, service, price, cycle and hotline, and how to reply."""
    return (f"您将订购{sp.name}的“{service.name}”业务，资费{service.price_words}，由中国移动代收费，"
            f"客服电话{sp.hotline}。24小时内回复“是”或Y确认订购，不回复不订购、不收费。"
            f"{sp.name} {service.name}: {yuan(service.price)} CNY "
            f"{'per message' if service.cycle is Cycle.PER_MESSAGE else 'per month'}, hotline {sp.hotline}. "
            f"Reply Y within 24 hours to subscribe; no reply, no charge.")


def is_yes(text: str) -> bool:
    return text.strip().upper().rstrip("。.!！") in YES_WORDS


# ---------------------------------------------------------------- subscriptions


class SubState(StrEnum):
    AWAITING = "awaiting_confirmation"
    ACTIVE = "active"
    LAPSED = "lapsed"  # no "是" within the window: never billed
    CANCELLED = "cancelled"


class ReplyOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already_confirmed"  # a second "是": nothing more happens
    LATE = "late"  # after the window: the order lapsed, nothing is billed
    NOTHING = "nothing_waiting"  # no order waits for this number (or it was cancelled)


def reply_outcome(state: SubState, ordered_at: datetime, now: datetime) -> ReplyOutcome:
    """What a subscriber's "是" does to their order. The window is half-open: exactly 24 h
    after the order is too late."""
    if state is SubState.ACTIVE:
        return ReplyOutcome.ALREADY
    if state is SubState.LAPSED:
        return ReplyOutcome.LATE
    if state is not SubState.AWAITING:
        return ReplyOutcome.NOTHING
    return ReplyOutcome.CONFIRMED if now < ordered_at + CONFIRM_WINDOW else ReplyOutcome.LATE


def waived(active_since: datetime, cancelled_at: datetime) -> bool:
    """A subscription cancelled within 72 hours of starting is not charged (72 h itself counts)."""
    return cancelled_at - active_since <= WAIVER_WINDOW


def first_charge_due(active_since: datetime) -> datetime:
    """Charges wait out the waiver window: what is cancelled in it was never billed, so
    nothing needs refunding."""
    return active_since + WAIVER_WINDOW


def next_month_start(at: datetime) -> datetime:
    """The first moment of the next calendar month in Shanghai: when a monthly fee is due again."""
    local = at.astimezone(SHANGHAI)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)  # stored as UTC everywhere


def period_of(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


def double_refund(billed: int) -> int:
    """A confirmed billing error is refunded double (计费误差双倍返还)."""
    return 2 * billed


# ---------------------------------------------------------------- smart dynamic confirmation


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the platform knows about one order when it decides whether to ask."""

    sp: Sp
    service: Service
    at: datetime
    orders_by_number_recent: int  # this number's orders in the burst window, this one included
    number_used_sp_before: bool  # any confirmed subscription, ever
    sp_orders_at_night: int  # the SP's orders in the last hour, when it is night


@dataclass(frozen=True, slots=True)
class ConfirmationPolicy:
    """The parameters of the rules (design defaults)."""

    new_sp_days: int = 90
    burst_orders: int = 3
    burst_window: timedelta = timedelta(minutes=10)
    night_hours: tuple[int, int] = (0, 6)  # Shanghai, [start, end)
    night_bulk_orders: int = 50
    ask_by_default: bool = False  # what happens when no rule fires
    ask_from_price: int = 1000  # fen: a monthly fee from 10 CNY is always confirmed


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    reason: str


#: The rules in the order they are tried; the first that fires decides, with its reason.
RULES: tuple[Rule, ...] = (
    Rule("forced", "the SP is under forced secondary confirmation"),
    Rule("new_sp", "the SP is new (registered less than the policy's days ago)"),
    Rule("yellow_card", "the SP holds a yellow card"),
    Rule("burst", "several orders from this number within minutes"),
    Rule("first_use", "this number never used SP services"),
    Rule("night_bulk", "night-time bulk orders for this SP"),
    Rule("price", "the price is at or above the policy's threshold"),
)


@dataclass(frozen=True, slots=True)
class Decision:
    ask: bool
    rule: str  # the rule that decided, or "policy"
    reason: str


def _fires(rule: str, f: OrderFacts, p: ConfirmationPolicy) -> bool:
    local_hour = f.at.astimezone(SHANGHAI).hour
    match rule:
        case "forced":
            return f.sp.forced_confirmation
        case "new_sp":
            return f.at - f.sp.registered_at < timedelta(days=p.new_sp_days)
        case "yellow_card":
            return f.sp.yellow_level > 0 or f.sp.red_card
        case "burst":
            return f.orders_by_number_recent >= p.burst_orders
        case "first_use":
            return not f.number_used_sp_before
        case "night_bulk":
            start, end = p.night_hours
            return start <= local_hour < end and f.sp_orders_at_night >= p.night_bulk_orders
        case "price":
            return f.service.price >= p.ask_from_price
    raise ValueError(f"unknown confirmation rule {rule}")


def decide_confirmation(facts: OrderFacts, policy: ConfirmationPolicy, rules: Sequence[Rule] = RULES) -> Decision:
    """Smart dynamic secondary confirmation: ask when any rule fires (the first one is the
    recorded reason), otherwise as the policy says."""
    for rule in rules:
        if _fires(rule.name, facts, policy):
            return Decision(True, rule.name, rule.reason)
    if policy.ask_by_default:
        return Decision(True, "policy", "the policy asks for every order")
    return Decision(False, "policy", "no rule fired and the policy does not ask by default")


# ---------------------------------------------------------------- complaints


def complaint_rate(complaints: int, subscribers: int) -> Fraction:
    """Complaints per 10,000 subscribers in the month (no subscribers: every complaint counts as a full rate)."""
    return Fraction(complaints * 10_000, max(subscribers, 1))


#: (rate per 10,000 from which it applies, the violation it is recorded as): design defaults.
COMPLAINT_THRESHOLDS: tuple[tuple[int, str, str], ...] = (
    (50, "complaints", "grave"),
    (20, "complaints", "serious"),
    (10, "complaints", "minor"),
)


def complaint_violation(rate: Fraction) -> tuple[str, str] | None:
    """The violation (class, level) a month's complaint rate amounts to, if any."""
    for threshold, cls, level in COMPLAINT_THRESHOLDS:
        if rate >= threshold:
            return cls, level
    return None


# ---------------------------------------------------------------- violations, penalties, cards


class Measure(StrEnum):
    DEDUCT_POINTS = "deduct_points"
    DEDUCT_FEES = "deduct_fees"  # percent of the month's information fees
    YELLOW_CARD = "yellow_card"  # level 1-3
    RED_CARD = "red_card"
    SUSPEND_SETTLEMENT = "suspend_settlement"
    FORCE_CONFIRMATION = "force_confirmation"
    SHIELD_PORT = "shield_port"
    SERVICE_OFFLINE = "service_offline"
    EXIT = "exit"  # with a report to the provincial communications administration


#: The five classes of violation (design: the regulator's notices name these kinds).
CLASSES: dict[str, str] = {
    "unconfirmed": "未经确认定制或强制定制 Subscription without the subscriber's confirmation",
    "pricing": "资费不明示或误导宣传 Price not shown or misleading",
    "spam": "发送垃圾或骚扰信息 Unsolicited or harassing messages",
    "billing": "计费错误或乱收费 Wrong or unauthorised charges",
    "complaints": "投诉率超标 Complaint rate above the threshold",
}
LEVELS: dict[str, str] = {"minor": "一般 Minor", "serious": "严重 Serious", "grave": "特别严重 Grave"}


@dataclass(frozen=True, slots=True)
class Step:
    measure: Measure
    value: int = 0  # points, percent or card level


def _steps(text: str) -> tuple[Step, ...]:
    out = []
    for part in filter(None, text.split()):
        name, _, value = part.partition(":")
        out.append(Step(Measure(name), int(value or 0)))
    return tuple(out)


#: The ladder per level: rung n applies to the n-th offence of that class within the
#: escalation window (the last rung repeats). Fees are 10-30% (operators' notices);
#: 45 points for a class-3 case is the figure seen in one notice.
_LADDERS: dict[str, tuple[str, str, str]] = {
    "minor": ("deduct_points:10 deduct_fees:10",
              "deduct_points:20 deduct_fees:20 yellow_card:1",
              "deduct_points:30 deduct_fees:30 yellow_card:2 force_confirmation"),
    "serious": ("deduct_points:30 deduct_fees:20 yellow_card:1 force_confirmation",
                "deduct_points:45 deduct_fees:30 yellow_card:2 suspend_settlement",
                "yellow_card:3 suspend_settlement shield_port"),
    "grave": ("deduct_points:45 deduct_fees:30 yellow_card:3 suspend_settlement service_offline",
              "red_card suspend_settlement shield_port",
              "exit"),
}
#: What a class adds to every rung of its ladder.
_CLASS_EXTRA: dict[str, str] = {
    "unconfirmed": "force_confirmation",
    "pricing": "",
    "spam": "",
    "billing": "",
    "complaints": "force_confirmation",
}

CATALOGUE: dict[tuple[str, str], tuple[tuple[Step, ...], ...]] = {
    (cls, level): tuple(_steps(f"{rung} {_CLASS_EXTRA[cls]}") for rung in ladder)
    for cls in CLASSES for level, ladder in _LADDERS.items()
}

ESCALATION_WINDOW = timedelta(days=365)  # offences of a class within it climb the ladder
POINTS_START = 100  # an SP's credit points per year (design default)
POINTS_LIFETIME = timedelta(days=365)  # a deduction counts for a year
YELLOW_LIFETIME: dict[int, timedelta] = {1: timedelta(days=90), 2: timedelta(days=180), 3: timedelta(days=365)}
RED_LIFETIME = timedelta(days=365)
FORCE_LIFETIME = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class Penalty:
    """An applied measure with its lifetime (None: until lifted by a decision)."""

    measure: Measure
    value: int
    decided_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Record:
    """An SP's governance record as the ladder needs it."""

    violations: Sequence[tuple[str, datetime]] = ()  # (class, when)
    penalties: Sequence[Penalty] = ()

    def offences(self, cls: str, now: datetime) -> int:
        return sum(1 for c, at in self.violations if c == cls and now - at < ESCALATION_WINDOW)

    def in_force(self, now: datetime) -> list[Penalty]:
        return [p for p in self.penalties if p.expires_at is None or p.expires_at > now]

    def yellow_level(self, now: datetime) -> int:
        return max((p.value for p in self.in_force(now) if p.measure is Measure.YELLOW_CARD), default=0)

    def red(self, now: datetime) -> bool:
        return any(p.measure is Measure.RED_CARD for p in self.in_force(now))

    def points(self, now: datetime) -> int:
        return POINTS_START - sum(p.value for p in self.in_force(now) if p.measure is Measure.DEDUCT_POINTS)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What a violation leads to: the rung applied and the steps after card escalation."""

    rung: int  # 1-based
    steps: tuple[Step, ...]
    needs_checker: bool  # red card and exit need a second member of staff
    escalated: list[str] = field(default_factory=list)  # why a card went higher than the ladder says


def rule(cls: str, level: str, record: Record, now: datetime) -> Ruling:
    """The penalty for one more violation of ``cls`` at ``level``: the rung by repeat
    offences within the window; a yellow card while one is in force goes a level above it;
    above level 3 it turns red; a red card while one is in force is exit."""
    if (cls, level) not in CATALOGUE:
        raise KeyError(f"no violation {cls}/{level} in the catalogue")
    ladder = CATALOGUE[(cls, level)]
    rung = min(record.offences(cls, now) + 1, len(ladder))
    steps = list(ladder[rung - 1])
    why: list[str] = []
    held_yellow, held_red = record.yellow_level(now), record.red(now)
    for i, s in enumerate(steps):
        if s.measure is Measure.YELLOW_CARD and held_yellow and s.value <= held_yellow:
            up = held_yellow + 1
            why.append(f"yellow card {s.value} while holding {held_yellow}: " +
                       ("red card" if up > 3 else f"yellow card {up}"))
            steps[i] = Step(Measure.RED_CARD) if up > 3 else Step(Measure.YELLOW_CARD, up)
    if held_red and any(s.measure is Measure.RED_CARD for s in steps):
        why.append("red card while holding a red card: exit")
        steps = [Step(Measure.EXIT)]
    if any(s.measure is Measure.RED_CARD for s in steps):
        steps += [Step(Measure.SUSPEND_SETTLEMENT), Step(Measure.SHIELD_PORT)]
    unique: list[Step] = []
    for s in steps:
        if s not in unique:
            unique.append(s)
    checker = any(s.measure in (Measure.RED_CARD, Measure.EXIT) for s in unique)
    return Ruling(rung, tuple(unique), checker, why)


def expiry(step: Step, now: datetime) -> datetime | None:
    """When an applied measure stops counting (None: until a decision lifts it)."""
    match step.measure:
        case Measure.DEDUCT_POINTS:
            return now + POINTS_LIFETIME
        case Measure.YELLOW_CARD:
            return now + YELLOW_LIFETIME[step.value]
        case Measure.RED_CARD:
            return now + RED_LIFETIME
        case Measure.FORCE_CONFIRMATION:
            return now + FORCE_LIFETIME
    return None


def fee_deduction(fees: int, percent: int) -> int:
    """The deduction from a month's information fees, in whole fen, rounded down."""
    return fees * percent // 100


def describe(steps: Sequence[Step]) -> str:
    words = {Measure.DEDUCT_POINTS: "deduct {} points", Measure.DEDUCT_FEES: "deduct {}% of information fees",
             Measure.YELLOW_CARD: "yellow card level {}", Measure.RED_CARD: "red card",
             Measure.SUSPEND_SETTLEMENT: "suspend settlement", Measure.FORCE_CONFIRMATION: "force confirmation",
             Measure.SHIELD_PORT: "shield the port", Measure.SERVICE_OFFLINE: "take the service offline",
             Measure.EXIT: "exit, reported to the provincial communications administration"}
    return "; ".join(words[s.measure].format(s.value) for s in steps)


# ---------------------------------------------------------------- settlement


def split_fees(fees: int, share_bp: int) -> tuple[int, int]:
    """(the SP's share, the operator's share) of information fees, in fen; the SP's rounded down."""
    sp = fees * share_bp // 10_000
    return sp, fees - sp


# ---------------------------------------------------------------- the SP's API


API_WINDOW = timedelta(minutes=5)  # a signed call's timestamp must be this close to our clock


def signing_string(params: dict[str, object]) -> str:
    """What an SP signs, as merchants do (docs/merchant-signatures.md): every parameter except
    ``sign`` and the empty ones, sorted by name, as ``k=v`` joined by ``&``, values as sent."""
    items = sorted((k, v) for k, v in params.items() if k != "sign" and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)
