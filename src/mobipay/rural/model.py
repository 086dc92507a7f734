"""Pure rural rules: agent locations, tiers of fees and commissions (as data), the agent's
and customer's limits, the fraud rules, codes, the marketplace's escrow states and the SMS
grammar of agents and villagers. No I/O.

Codes (cash-out and pick-up) are 6 random digits sent by SMS to the customer; only an HMAC
of each is stored, and a few wrong tries void the request, so a code cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files

from mobipay.rural import errors

MIN_AMOUNT = 100  # 1 CNY
MAX_AMOUNT = 500_000  # 5,000 CNY: the top tier
CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 3  # wrong codes before a cash-out request is void
STAFF_LOCK = (5, timedelta(minutes=15))  # wrong staff PINs before a lock, and its length
SPLIT_WINDOW = timedelta(hours=1)
NEW_NUMBER_WINDOW = timedelta(days=3)


class AgentKind(StrEnum):
    AGENT = "agent"
    SUPER = "super"  # a super-agent (aggregator): rebalances its agents' float


class TxKind(StrEnum):
    CASH_IN = "cash_in"
    CASH_OUT = "cash_out"
    REBALANCE = "rebalance"
    FLOAT_BUY = "float_buy"
    FLOAT_SELL = "float_sell"
    COMMISSION = "commission"
    MARKET = "market"  # the agent's float paid a villager's marketplace order (cash at the agent)


class Flag(StrEnum):
    SPLIT_DEPOSIT = "split_deposit"  # deposits split to earn more commission than one would
    NEW_NUMBER_SAME_AGENT = "new_number_same_agent"  # cash-out by a number this agent registered just now
    SELF_DEPOSIT = "self_deposit"  # the agent (or its staff) depositing to its own number


@dataclass(frozen=True, slots=True)
class Location:
    """Where an agent is: the five levels of rural China's administration."""

    province: str
    city: str
    county: str
    township: str
    village: str

    def check(self) -> Location:
        for name in ("province", "city", "county", "township", "village"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 1 <= len(value.strip()) <= 32:
                raise errors.RuralInvalid(f"{name} is 1 to 32 characters", field=name)
        return Location(*(getattr(self, n).strip() for n in ("province", "city", "county", "township", "village")))


@dataclass(frozen=True, slots=True)
class Tier:
    kind: str
    up_to: int
    fee: int  # charged to the customer
    commission: int  # earned on the transaction, split between agent and super-agent
    super_pct: int


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """An agent's limits: the float it may hold (cash-outs and rebalancing fill it) and what it
    may pay out in cash in a Beijing day; the customer's daily total at agents each way."""

    max_float: int = 5_000_000  # 50,000 CNY
    daily_cash_out: int = 2_000_000  # 20,000 CNY
    customer_daily_cash_out: int = 500_000  # 5,000 CNY
    customer_daily_cash_in: int = 1_000_000  # 10,000 CNY


@cache
def tiers() -> tuple[Tier, ...]:
    """The tiers (rural/data/tiers.csv), read once: commissions and fees are data."""
    text = files("mobipay.rural").joinpath("data/tiers.csv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("kind,"):
            continue
        kind, up_to, fee, commission, pct = line.split(",")
        out.append(Tier(kind, int(up_to), int(fee), int(commission), int(pct)))
    return tuple(sorted(out, key=lambda t: (t.kind, t.up_to)))


def tier_of(kind: TxKind, amount: int, table: Sequence[Tier] | None = None) -> Tier:
    """The tier an amount falls in; refuses amounts outside every tier."""
    check_amount(amount)
    for t in table if table is not None else tiers():
        if t.kind == kind.value and amount <= t.up_to:
            return t
    raise errors.RuralInvalid(f"{amount / 100:.2f} CNY is over the highest tier", field="amount")


def check_amount(amount: object) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise errors.RuralInvalid(f"an amount at agents is {MIN_AMOUNT // 100} to {MAX_AMOUNT // 100} CNY",
                                  field="amount")
    return amount


def split(commission: int, super_pct: int, has_super: bool) -> tuple[int, int]:
    """(agent's, super-agent's) share of a commission; no super-agent: the agent has it all."""
    if not has_super:
        return commission, 0
    to_super = commission * super_pct // 100
    return commission - to_super, to_super


def check_cash_out_limits(limits: AgentLimits, amount: int, *, float_now: int, agent_today: int,
                          customer_today: int) -> None:
    """A cash-out fills the float and empties the till: refused past the float cap, the
    agent's day, or the customer's day. Exactly at a limit is allowed."""
    if float_now + amount > limits.max_float:
        raise errors.AgentLimitExceeded(
            f"the agent's float would pass its cap of {limits.max_float / 100:.2f} CNY: sell float to the bank "
            "or to its super-agent first", field="amount", limit="float")
    if agent_today + amount > limits.daily_cash_out:
        raise errors.AgentLimitExceeded(
            f"the agent may pay out {max(0, limits.daily_cash_out - agent_today) / 100:.2f} CNY more today",
            field="amount", limit="daily_cash_out")
    if customer_today + amount > limits.customer_daily_cash_out:
        raise errors.CustomerLimitExceeded(
            f"the customer may take {max(0, limits.customer_daily_cash_out - customer_today) / 100:.2f} CNY more "
            "in cash today", field="amount", limit="customer_daily_cash_out")


def check_cash_in_limits(limits: AgentLimits, amount: int, *, customer_today: int) -> None:
    if customer_today + amount > limits.customer_daily_cash_in:
        raise errors.CustomerLimitExceeded(
            f"the customer may deposit {max(0, limits.customer_daily_cash_in - customer_today) / 100:.2f} CNY more "
            "at agents today", field="amount", limit="customer_daily_cash_in")


def is_split_deposit(earlier: Sequence[int], amount: int, table: Sequence[Tier] | None = None) -> bool:
    """Deposits by one agent to one customer within the window earn more commission apart than
    one deposit of their total would (at least three of them): commission farming."""
    amounts = [*earlier, amount]
    if len(amounts) < 3:
        return False
    total = sum(amounts)
    apart = sum(tier_of(TxKind.CASH_IN, a, table).commission for a in amounts)
    together = tier_of(TxKind.CASH_IN, min(total, MAX_AMOUNT), table).commission * max(1, -(-total // MAX_AMOUNT))
    return apart > together


def fraud_flags(kind: TxKind, *, customer: str, agent_numbers: Sequence[str], earlier_deposits: Sequence[int],
                amount: int, registered_here_at: datetime | None, now: datetime) -> list[Flag]:
    """The rules a transaction breaks (flagged to the risk role; its commission is held)."""
    flags: list[Flag] = []
    if kind is TxKind.CASH_IN:
        if customer in agent_numbers:
            flags.append(Flag.SELF_DEPOSIT)
        if is_split_deposit(earlier_deposits, amount):
            flags.append(Flag.SPLIT_DEPOSIT)
    if kind is TxKind.CASH_OUT and registered_here_at is not None and now - registered_here_at < NEW_NUMBER_WINDOW:
        flags.append(Flag.NEW_NUMBER_SAME_AGENT)
    return flags


def code_hash(key: bytes, purpose: str, ref: str, code: str) -> str:
    return hmac.new(key, f"{purpose}|{ref}|{code}".encode(), hashlib.sha256).hexdigest()


def check_pin(pin: object) -> str:
    if not (isinstance(pin, str) and len(pin) == 6 and pin.isascii() and pin.isdigit()):
        raise errors.RuralInvalid("a staff PIN is exactly 6 digits", field="pin")
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise errors.RuralInvalid("choose a PIN that is not all one digit or a run", field="pin")
    return pin


def month_of(period: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", period)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise errors.RuralInvalid("a month is YYYY-MM", field="month")
    return int(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------------- marketplace


class OrderState(StrEnum):
    PAID = "paid"  # money in escrow
    SHIPPED = "shipped"
    DELIVERED = "delivered"  # at the buyer's door or the village point
    DISPUTED = "disputed"
    RELEASED = "released"  # paid to the seller (less the fee)
    REFUNDED = "refunded"


OPEN_STATES = frozenset({OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED})


def platform_fee(amount: int, bps: int) -> int:
    """The marketplace's fee on an order, rounded half up to the fen; never all of it."""
    return min(amount - 1, (amount * bps + 5_000) // 10_000) if amount > 1 else 0


def check_release(state: OrderState) -> None:
    if state not in OPEN_STATES:
        raise errors.MarketOrderState(f"an order that is {state.value} cannot be released", field="order_id")


def check_dispute(state: OrderState, release_at: datetime, now: datetime) -> None:
    if state not in OPEN_STATES:
        raise errors.MarketOrderState(f"an order that is {state.value} cannot be disputed", field="order_id")
    if now >= release_at:
        raise errors.DisputeClosed("disputes are open until the money is released to the seller")


SHIPMENT_STEPS = ("picked_up", "in_transit", "at_village_point", "delivered")


# ---------------------------------------------------------------------- SMS grammar


@dataclass(frozen=True, slots=True)
class SmsCommand:
    """A rural SMS: what it asks, the number and amount (fen) or code it names."""

    action: str  # cash_in | agent_cash_out | customer_cash_out | confirm_cash_out | float | statement
    #              | commissions | pickup | price_sub | help
    msisdn: str = ""
    amount: int = 0
    code: str = ""
    words: tuple[str, ...] = ()


#: Keywords no other SMS command uses (the channel's grammar: YE ZZ CZ JF MX BZ TD KT YW DG CP BX TB GS SJBZ).
SMS_WORDS = {
    "CK": "cash_in", "存款": "cash_in",  # agent: CK number amount
    "DQ": "agent_cash_out", "代取": "agent_cash_out",  # agent: DQ number amount | DQ code
    "QK": "customer_cash_out", "取款": "customer_cash_out",  # customer: QK agent-number amount | QK code
    "DLYE": "float", "备付金": "float",
    "DLMX": "statement", "代理明细": "statement",
    "YJ": "commissions", "佣金": "commissions",
    "QH": "pickup", "取货": "pickup",  # agent: QH order-number code
    "JG": "price_sub", "价格": "price_sub",  # anyone: JG product county
    "DLBZ": "help", "代理帮助": "help",
}
SMS_HELP = ("代理点：存款CK 手机号 金额；代取DQ 手机号 金额，客户报码后DQ 验证码；备付金DLYE；明细DLMX；佣金YJ；"
            "取货QH 订单号 取货码。客户取款：QK 代理点号码 金额，再回复QK 验证码。价格订阅：JG 产品 区县。"
            " Agents: CK number amount; DQ number amount then DQ code; DLYE float; DLMX statement; YJ commissions;"
            " QH order code. Customers: QK agent-number amount, then QK code. Prices: JG product county.")


def parse_sms(text: str) -> SmsCommand | None:
    """The rural command in an SMS, None when it is not one (the channel's own commands go on).
    Raises ``RURAL_INVALID`` whose detail is the reply when it is one but malformed."""
    clean = " ".join(unicodedata.normalize("NFKC", text).upper().split())
    if not clean:
        return None
    first, *rest = clean.split(" ")
    action = SMS_WORDS.get(first)
    if action is None:
        return None
    usage = errors.RuralInvalid(SMS_HELP)
    if action in ("float", "statement", "commissions", "help"):
        if rest:
            raise usage
        return SmsCommand(action)
    if action == "price_sub":
        if len(rest) != 2:
            raise errors.RuralInvalid("价格订阅请发：JG 产品 区县，如 JG 玉米 宁乡县。Send: JG product county.")
        return SmsCommand(action, words=(rest[0][:16], rest[1][:32]))
    if action == "pickup":
        if len(rest) != 2 or not re.fullmatch(r"\d{6}", rest[1]):
            raise errors.RuralInvalid("取货请发：QH 订单号 取货码。Send: QH order-number code.")
        return SmsCommand(action, words=(rest[0].lower(),), code=rest[1])
    if action in ("agent_cash_out", "customer_cash_out") and len(rest) == 1 and re.fullmatch(r"\d{6}", rest[0]):
        return SmsCommand("confirm_cash_out", code=rest[0], words=(action,))
    if len(rest) != 2:
        raise usage
    number = rest[0].removeprefix("+86").removeprefix("86") if len(rest[0]) > 11 else rest[0]
    if not re.fullmatch(r"1\d{10}", number):
        raise errors.RuralInvalid(f"“{rest[0]}”不是手机号。Not a mobile number. " + SMS_HELP)
    return SmsCommand(action, msisdn="+86" + number, amount=sms_amount(rest[1], text))


def sms_amount(word: str, typed: str) -> int:
    """Yuan as typed (digits 0-9 only) to fen."""
    if any(ch.isnumeric() and not ch.isascii() for ch in typed):
        raise errors.RuralInvalid("金额请用半角数字 0-9。Type the amount in the digits 0-9.")
    word = word.lstrip("¥￥").removesuffix("元")
    if not re.fullmatch(r"[0-9]{1,5}(\.[0-9]{1,2})?", word):
        raise errors.RuralInvalid("金额应为数字，如 200 或 12.50。Amount as a number, e.g. 200.")
    yuan, _, cents = word.partition(".")
    return int(yuan) * 100 + int((cents + "00")[:2])
