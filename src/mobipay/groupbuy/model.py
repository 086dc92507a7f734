"""Pure group-buy rules: a deal's terms, voucher codes, refunds, group thresholds, the
consumption window and the shop's lock against guessed codes. No I/O.

Voucher codes (10–12 digits, as Meituan/Dianping's 10-digit and allinpay's 12-digit receipt
codes) are never stored. A code is derived from the voucher's id with a secret key
(HMAC-SHA256 → decimal digits), so it is unpredictable without the key yet can be shown
again in the buyer's wallet; the database keeps only a second keyed hash of it (another
key), which is how a shop's typed code is looked up. Whoever reads the tables can neither
list codes nor test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mobipay.groupbuy import errors
from mobipay.kernel.lockout import LockoutPolicy

CODE_LENGTHS = (10, 11, 12)
DEFAULT_CODE_LENGTH = 12
#: A consumption may be reversed (撤销验券) this long after it was made, then it is final and
#: the merchant is paid. The commonly cited 60 minutes is not in an authoritative source: a
#: design default (setting MOBIPAY_GROUPBUY_REVERSE_MINUTES).
REVERSE_WINDOW = timedelta(minutes=60)
#: Wrong codes typed at one store: 10 within 15 minutes lock its verification for 30 minutes.
GUESS_LOCKOUT = LockoutPolicy(tries=10, window=timedelta(minutes=15), lock=timedelta(minutes=30))
MAX_PER_ORDER = 20  # vouchers one purchase may buy (a family dinner, not a reseller)


class VoucherState(StrEnum):
    UNUSED = "unused"
    CONSUMED = "consumed"
    REFUNDED = "refunded"


class GroupState(StrEnum):
    NONE = "none"  # no threshold: the deal happens with the first buyer
    OPEN = "open"  # waiting for enough buyers
    FORMED = "formed"  # enough buyers: vouchers may be used
    FAILED = "failed"  # too few by the deadline: every buyer refunded


class RefundReason(StrEnum):
    REQUEST = "request"  # 随时退: the buyer asked
    EXPIRY = "expiry"  # 过期自动退: unused at the end of validity
    GROUP_FAILED = "group_failed"  # the threshold was not met


@dataclass(frozen=True, slots=True)
class DealTerms:
    """What a deal promises. Money in fen; times UTC."""

    title: str
    city: str
    category: str
    price: int
    market_price: int
    stock: int
    sale_start: datetime
    sale_end: datetime
    per_user_limit: int
    valid_from: datetime
    valid_until: datetime
    refund_anytime: bool = True  # 随时退
    refund_on_expiry: bool = True  # 过期自动退
    group_min: int = 0  # 0: no threshold; else N buyers by group_deadline
    group_deadline: datetime | None = None
    lat: float | None = None  # the deal's shop, for distance
    lon: float | None = None


def check_terms(t: DealTerms, categories: frozenset[str], cities: frozenset[str]) -> DealTerms:
    """Refuse terms that cannot be sold honestly; answer them tidied (title stripped)."""

    def bad(why: str, field: str) -> errors.DealInvalid:
        return errors.DealInvalid(why, field=field)

    title = t.title.strip()
    if not 1 <= len(title) <= 120:
        raise bad("a title of 1 to 120 characters", "title")
    if t.city not in cities:
        raise bad(f"unknown city {t.city!r} (see GET /v1/groupbuy/cities)", "city")
    if t.category not in categories:
        raise bad(f"category is one of {', '.join(sorted(categories))}", "category")
    if not 1 <= t.price <= 10_000_000:
        raise bad("price is 1 fen to 100,000 CNY", "price")
    if t.market_price < t.price:
        raise bad("the market price is at least the deal's price", "market_price")
    if not 1 <= t.stock <= 10_000_000:
        raise bad("stock is 1 to 10,000,000 vouchers", "stock")
    if t.sale_end <= t.sale_start:
        raise bad("the sale ends after it starts", "sale_end")
    if not 1 <= t.per_user_limit <= MAX_PER_ORDER * 10:
        raise bad(f"the per-user limit is 1 to {MAX_PER_ORDER * 10}", "per_user_limit")
    if t.valid_until <= t.valid_from or t.valid_until < t.sale_end:
        raise bad("vouchers are valid for a while, at least until the sale ends", "valid_until")
    if t.group_min < 0 or t.group_min > t.stock:
        raise bad("the group threshold is 0 (none) up to the stock", "group_min")
    if t.group_min and (t.group_deadline is None or not t.sale_start < t.group_deadline <= t.sale_end):
        raise bad("a group threshold needs a deadline within the sale", "group_deadline")
    if t.lat is None or t.lon is None:
        if t.lat is not None or t.lon is not None:
            raise bad("latitude and longitude together, in degrees", "lat")
    elif not (-90 <= t.lat <= 90 and -180 <= t.lon <= 180):
        raise bad("latitude -90 to 90 and longitude -180 to 180 degrees", "lat")
    return DealTerms(**{**{f: getattr(t, f) for f in t.__dataclass_fields__}, "title": title})


def check_on_sale(sale_start: datetime, sale_end: datetime, group: GroupState, now: datetime) -> None:
    if now < sale_start:
        raise errors.DealNotOnSale(f"the sale starts at {sale_start:%Y-%m-%d %H:%M} UTC")
    if now >= sale_end or group is GroupState.FAILED:
        raise errors.DealNotOnSale("the sale has ended")


def check_quantity(quantity: int, already: int, per_user_limit: int) -> None:
    """A purchase of ``quantity`` by someone who bought ``already`` (not counting refunds)."""
    if not 1 <= quantity <= MAX_PER_ORDER:
        raise errors.DealInvalid(f"buy 1 to {MAX_PER_ORDER} vouchers at once", field="quantity")
    if already + quantity > per_user_limit:
        left = max(0, per_user_limit - already)
        raise errors.PerUserLimit(f"at most {per_user_limit} per person; you may buy {left} more", field="quantity")


def group_outcome(state: GroupState, buyers: int, group_min: int, deadline: datetime | None,
                  now: datetime) -> GroupState:
    """The group's state with ``buyers`` distinct paying buyers: formed as soon as there are
    enough, failed when the deadline passes without them."""
    if state is not GroupState.OPEN:
        return state
    if buyers >= group_min:
        return GroupState.FORMED
    if deadline is not None and now >= deadline:
        return GroupState.FAILED
    return GroupState.OPEN


def check_refundable(refund_anytime: bool, group: GroupState, valid_until: datetime, now: datetime) -> None:
    """Whether the buyer may ask for unused vouchers back now (随时退)."""
    if not refund_anytime:
        raise errors.RefundNotAllowed("this deal does not promise 随时退 (refund any time)")
    if group is GroupState.FAILED:
        raise errors.RefundNotAllowed("the group did not form: the refund was made already")
    del valid_until, now  # 随时退 holds before and after expiry for unused vouchers


def check_usable(group: GroupState, valid_from: datetime, valid_until: datetime, now: datetime) -> None:
    """Whether a shop may consume an unused voucher of the deal now."""
    if group is GroupState.OPEN:
        raise errors.VoucherNotUsable("the group has not formed yet: vouchers can be used once it has")
    if group is GroupState.FAILED:
        raise errors.VoucherNotUsable("the group did not form: this voucher was refunded")
    if now < valid_from:
        raise errors.VoucherNotUsable(f"valid from {valid_from:%Y-%m-%d}")
    if now >= valid_until:
        raise errors.VoucherNotUsable(f"expired on {valid_until:%Y-%m-%d}")


def check_reversible(state: str, consumed_at: datetime, now: datetime, window: timedelta = REVERSE_WINDOW) -> None:
    if state == "settled" or now - consumed_at > window:
        minutes = int(window.total_seconds() // 60)
        raise errors.ReverseNotAllowed(f"a consumption may be reversed within {minutes} minutes; this one is final")


# ---------------------------------------------------------------------- voucher codes

def voucher_code(key: bytes, voucher_id: str, nonce: int = 0, length: int = DEFAULT_CODE_LENGTH) -> str:
    """The code of a voucher: HMAC-SHA256(key, id|nonce) read as a number, its last ``length``
    digits (the bias of 256 bits modulo 10^12 is below 2^-200). ``nonce`` moves to another code
    when one is taken already."""
    if length not in CODE_LENGTHS:
        raise ValueError(f"a code is {CODE_LENGTHS[0]} to {CODE_LENGTHS[-1]} digits")
    digest = hmac.new(key, f"{voucher_id}|{nonce}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**length).zfill(length)


def code_hash(key: bytes, code: str) -> str:
    """What the database keeps of a code: a keyed hash (HMAC-SHA256, hex)."""
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(raw: object) -> str:
    """A code as typed (spaces and dashes allowed between digit groups) → its digits."""
    text = "".join(str(raw or "").split()).replace("-", "")
    if not (text.isascii() and text.isdigit() and len(text) in CODE_LENGTHS):
        raise errors.CodeInvalid("type the 10 to 12 digits of the voucher code", field="receipt_code")
    return text


def masked(code: str) -> str:
    """A code as lists show it: the last four digits."""
    return "*" * (len(code) - 4) + code[-4:]


# ---------------------------------------------------------------------- browsing

def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


CATEGORIES: dict[str, str] = {
    "food": "美食", "hotel": "酒店", "leisure": "休闲娱乐", "beauty": "丽人", "life": "生活服务",
    "travel": "周边游", "fitness": "运动健身", "kids": "亲子",
}
