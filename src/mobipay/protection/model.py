"""Handset protection rules without I/O: the programme as data (cities, period, enrolment
window, fee tiers by the phone's price, waiting period, claim limit, fraud rules), the
IMEI and its TAC, where an incident may happen, and the claim's state machine with a
deadline for each state a person works.

The programme is configuration (``data/programmes.json``), not code, so a second city or
a next year's pilot is a new record; everything a decision depends on is an argument here,
so every rule is tested without a database.
"""

from __future__ import annotations

import calendar
import csv
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from stdnum import imei as stdnum_imei
from stdnum.exceptions import ValidationError

from mobipay.kernel.clock import SHANGHAI
from mobipay.protection import errors

# ------------------------------------------------------------------ the ledger's accounts

#: The monthly fees collected (the programme's revenue).
FEE_INCOME = "income:protection:fees"
#: The handling fees paid at a claim.
HANDLING_INCOME = "income:protection:handling"
#: Fees charged to the phone bill: owed by the subscriber through the billing system.
PHONE_BILL_RECEIVABLE = "asset:receivable:phone_bill"


# ------------------------------------------------------------------ cities and regions

#: The pilot's cities by their Latin name; the Chinese name is accepted too.
CITY_NAMES: dict[str, str] = {"changsha": "长沙", "zhuzhou": "株洲", "hengyang": "衡阳", "changde": "常德",
                              "yueyang": "岳阳", "xiangtan": "湘潭", "beijing": "北京", "shanghai": "上海"}

#: ISO 3166-2:CN codes of mainland China's 31 province-level divisions.
MAINLAND = frozenset({
    "CN-AH", "CN-BJ", "CN-CQ", "CN-FJ", "CN-GD", "CN-GS", "CN-GX", "CN-GZ", "CN-HA", "CN-HB", "CN-HE",
    "CN-HI", "CN-HL", "CN-HN", "CN-JL", "CN-JS", "CN-JX", "CN-LN", "CN-NM", "CN-NX", "CN-QH", "CN-SC",
    "CN-SD", "CN-SH", "CN-SN", "CN-SX", "CN-TJ", "CN-XJ", "CN-XZ", "CN-YN", "CN-ZJ"})
#: Hong Kong, Macau and Taiwan: China's codes for them, and their own country codes.
NOT_COVERED = {"CN-HK": "Hong Kong", "CN-MO": "Macau", "CN-TW": "Taiwan", "HK": "Hong Kong", "MO": "Macau",
               "TW": "Taiwan"}


def city_code(raw: object) -> str:
    """A city as its lowercase Latin name (``长沙`` and ``Changsha`` are ``changsha``)."""
    text = str(raw or "").strip()
    for code, chinese in CITY_NAMES.items():
        if text.lower() == code or text in (chinese, chinese + "市"):
            return code
    return text.lower()


def check_region(raw: object) -> str:
    """Where an incident happened, refused unless mainland China: a province's ISO 3166-2
    code (``CN-HN``), ``CN`` for somewhere on the mainland, or a country code abroad."""
    code = str(raw or "").strip().upper()
    if code in NOT_COVERED:
        raise errors.OutsideMainland(f"incidents in {NOT_COVERED[code]} are not covered: only mainland China",
                                     field="region")
    if code == "CN" or code in MAINLAND:
        return code
    if re.fullmatch(r"[A-Z]{2}", code):
        raise errors.OutsideMainland(f"incidents abroad ({code}) are not covered: only mainland China",
                                     field="region")
    raise errors.RegionUnknown(f"{code or 'nothing'} is not a region code: give e.g. CN-HN (Hunan) or CN",
                               field="region")


# ------------------------------------------------------------------ IMEI and handsets

def check_imei(raw: object) -> str:
    """The 15-digit IMEI, its Luhn check digit verified by python-stdnum (spaces and dashes
    allowed, as it is printed on the box); anything else is ``IMEI_INVALID``."""
    text = re.sub(r"[\s-]", "", str(raw or ""))
    if not re.fullmatch(r"\d{15}", text):
        raise errors.ImeiInvalid("an IMEI is 15 digits (dial *#06# to see it)", field="imei")
    try:
        return str(stdnum_imei.validate(text))
    except ValidationError:
        raise errors.ImeiInvalid("the IMEI's last digit does not match its check digit: check for a typing "
                                 "mistake", field="imei") from None


def tac_of(imei: str) -> str:
    """The type allocation code: the first 8 digits, which name the handset model."""
    return imei[:8]


@dataclass(frozen=True, slots=True)
class Handset:
    tac: str
    brand: str
    model: str  # the model code stock is kept by: a replacement is the same model

    @property
    def name(self) -> str:
        return f"{self.brand} {self.model}"


def parse_handsets(text: str) -> dict[str, Handset]:
    """``data/tac.csv``: tac,brand,model (lines starting with # are comments)."""
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {r["tac"].strip(): Handset(r["tac"].strip(), r["brand"].strip(), r["model"].strip()) for r in rows}


def handset_for(imei: str, handsets: Mapping[str, Handset]) -> Handset:
    found = handsets.get(tac_of(imei))
    if found is None:
        raise errors.HandsetUnknown(f"TAC {tac_of(imei)} is not a handset model the programme knows",
                                    field="imei")
    return found


@dataclass(frozen=True, slots=True)
class Hall:
    """A business hall (营业厅): where phones are enrolled and replacements are kept."""

    code: str
    city: str
    name: str
    address: str


def parse_halls(text: str) -> dict[str, Hall]:
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {r["code"].strip(): Hall(r["code"].strip(), city_code(r["city"]), r["name"].strip(), r["address"].strip())
            for r in rows}


# ------------------------------------------------------------------ the programme

class ClaimKind(enum.StrEnum):
    DAMAGE = "damage"  # the body damaged, outside the maker's 三包 warranty
    LOSS = "loss"
    THEFT = "theft"  # with the police report number


@dataclass(frozen=True, slots=True)
class FeeTier:
    """Phones priced up to ``max_price`` (fen): the monthly fee and the handling fees."""

    max_price: int
    monthly_fee: int
    damage_fee: int
    loss_fee: int  # loss and theft

    def handling_fee(self, kind: ClaimKind) -> int:
        return self.damage_fee if kind is ClaimKind.DAMAGE else self.loss_fee


@dataclass(frozen=True, slots=True)
class FraudRule:
    """One fraud check: its code and its number (days, or claims). A claim it flags goes to
    a second reviewer (maker-checker)."""

    code: str
    value: int
    description: str


FRAUD_CODES = ("enrolled_just_before", "right_after_waiting", "repeated_on_number", "imei_claimed_before")


@dataclass(frozen=True, slots=True)
class Programme:
    code: str
    name: str
    cities: frozenset[str]
    starts: date  # first day of enrolment and cover (Shanghai)
    ends: date  # last day
    enrol_window_days: int  # after purchase
    waiting_days: int  # after enrolment, before an incident is covered
    claims_per_year: int  # claims (not rejected) in any 12 months
    claim_within_days: int  # an incident must be claimed within this many days
    tiers: tuple[FeeTier, ...]
    fraud_rules: tuple[FraudRule, ...] = field(default=())

    def tier_for(self, price: int) -> FeeTier:
        """The cheapest tier covering ``price`` (fen)."""
        if price <= 0:
            raise errors.PriceOutOfRange("give the phone's price in fen, above zero", field="price")
        for tier in sorted(self.tiers, key=lambda t: t.max_price):
            if price <= tier.max_price:
                return tier
        top = max(t.max_price for t in self.tiers)
        raise errors.PriceOutOfRange(f"phones up to {top / 100:.2f} CNY are covered; this one costs "
                                     f"{price / 100:.2f} CNY", field="price")

    def check_enrolment(self, *, city: str, today: date, purchased_on: date) -> None:
        """The programme's own conditions for a phone to enrol today (IMEI checks apart)."""
        if city_code(city) not in self.cities:
            names = "、".join(CITY_NAMES.get(c, c) for c in sorted(self.cities))
            raise errors.NotInPilotCity(f"{self.name} is offered in {names} only", field="city")
        if not self.starts <= today <= self.ends:
            raise errors.OutsidePeriod(f"{self.name} enrols from {self.starts:%Y-%m-%d} to {self.ends:%Y-%m-%d}",
                                       field="programme")
        if purchased_on > today:
            raise errors.PurchaseInvalid("the purchase date is in the future", field="purchased_on")
        if (today - purchased_on).days > self.enrol_window_days:
            raise errors.EnrolmentWindowPassed(f"phones enrol within {self.enrol_window_days} days of purchase; "
                                               f"this one was bought on {purchased_on:%Y-%m-%d}",
                                               field="purchased_on")

    def covered_from(self, enrolled_on: date) -> date:
        """The first day an incident is covered: after the waiting period."""
        return enrolled_on + timedelta(days=self.waiting_days)

    def rule(self, code: str) -> FraudRule | None:
        return next((r for r in self.fraud_rules if r.code == code), None)


def parse_programmes(text: str) -> dict[str, Programme]:
    """``data/programmes.json``: a list of programmes; money in fen, dates ``YYYY-MM-DD``."""
    out = {}
    for p in json.loads(text):
        rules = tuple(FraudRule(r["code"], int(r["value"]), r["description"]) for r in p.get("fraud_rules", ()))
        unknown = {r.code for r in rules} - set(FRAUD_CODES)
        if unknown:
            raise ValueError(f"programme {p['code']}: unknown fraud rule(s) {sorted(unknown)}")
        out[p["code"]] = Programme(
            p["code"], p["name"], frozenset(city_code(c) for c in p["cities"]), date.fromisoformat(p["starts"]),
            date.fromisoformat(p["ends"]), int(p["enrol_window_days"]), int(p["waiting_days"]),
            int(p["claims_per_year"]), int(p["claim_within_days"]),
            tuple(FeeTier(int(t["max_price"]), int(t["monthly_fee"]), int(t["damage_fee"]), int(t["loss_fee"]))
                  for t in p["tiers"]), rules)
    return out


def local_date(when: datetime) -> date:
    return when.astimezone(SHANGHAI).date()


def add_months(anchor: date, months: int) -> date:
    """``anchor`` plus whole calendar months, the day clamped to the month's last: a fee
    period counts from the enrolment day, so periods never drift."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1]))


def fee_transfer_id(enrolment_id: str, period: int) -> str:
    """The ledger id of one monthly fee: derived from the enrolment and the period, so a
    rerun of the collection (or two workers) never charges a month twice."""
    return "pf_" + hashlib.sha256(f"{enrolment_id}|{period}".encode()).hexdigest()[:32]


def handling_transfer_id(claim_id: str) -> str:
    """The ledger id of a claim's handling fee: one per claim, whatever key the payer sends."""
    return "ph_" + hashlib.sha256(claim_id.encode()).hexdigest()[:32]


# ------------------------------------------------------------------ enrolments

class EnrolmentState(enum.StrEnum):
    ACTIVE = "active"
    LAPSED = "lapsed"  # a monthly fee could not be collected: no cover, no claims
    ENDED = "ended"  # the programme ended or the enrolment was cancelled


class Channel(enum.StrEnum):
    APP = "app"
    WEB = "web"
    SMS = "sms"
    HALL = "hall"  # at a business hall, for a phone bought from the operator


class Payment(enum.StrEnum):
    WALLET = "wallet"
    PHONE_BILL = "phone_bill"


# ------------------------------------------------------------------ claims

class ClaimState(enum.StrEnum):
    SUBMITTED = "submitted"
    MORE_INFO = "more_info"  # staff asked the customer for more
    SECOND_REVIEW = "second_review"  # approved once, but flagged: a second reviewer decides
    APPROVED = "approved"  # the handling fee is due
    REJECTED = "rejected"  # with the reason
    FEE_PAID = "fee_paid"
    ALLOCATED = "allocated"  # a phone of the same model reserved at a business hall
    READY_FOR_PICKUP = "ready_for_pickup"
    OUT_FOR_DELIVERY = "out_for_delivery"
    HANDED_OVER = "handed_over"


S = ClaimState
MOVES: dict[ClaimState, frozenset[ClaimState]] = {
    S.SUBMITTED: frozenset({S.MORE_INFO, S.APPROVED, S.SECOND_REVIEW, S.REJECTED}),
    S.MORE_INFO: frozenset({S.SUBMITTED, S.REJECTED}),
    S.SECOND_REVIEW: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.FEE_PAID}),
    S.FEE_PAID: frozenset({S.ALLOCATED}),
    S.ALLOCATED: frozenset({S.READY_FOR_PICKUP, S.OUT_FOR_DELIVERY}),
    S.READY_FOR_PICKUP: frozenset({S.HANDED_OVER}),
    S.OUT_FOR_DELIVERY: frozenset({S.HANDED_OVER}),
    S.REJECTED: frozenset(),
    S.HANDED_OVER: frozenset(),
}
#: States still counting towards "one open claim at a time".
OPEN = frozenset(MOVES) - {S.REJECTED, S.HANDED_OVER}

#: How long a claim may stay in a state before it is overdue (the console's deadlines): who
#: is to act is staff, except ``more_info`` and ``approved`` (the customer) and pick-up.
DEADLINES: dict[ClaimState, timedelta] = {
    S.SUBMITTED: timedelta(days=2),
    S.MORE_INFO: timedelta(days=14),
    S.SECOND_REVIEW: timedelta(days=1),
    S.APPROVED: timedelta(days=14),
    S.FEE_PAID: timedelta(days=1),
    S.ALLOCATED: timedelta(days=2),
    S.READY_FOR_PICKUP: timedelta(days=14),
    S.OUT_FOR_DELIVERY: timedelta(days=3),
}
#: Staff roles: who works claims, and who is the checker of a flagged one.
HANDLER_ROLE, CHECKER_ROLE = "support", "risk"


def check_move(state: ClaimState, to: ClaimState) -> None:
    if to not in MOVES[state]:
        raise errors.ClaimStateInvalid(f"a claim that is {state.value} cannot become {to.value}", field="state",
                                       state=state.value)


def deadline(state: ClaimState, since: datetime) -> datetime | None:
    span = DEADLINES.get(state)
    return since + span if span else None


@dataclass(frozen=True, slots=True)
class PastClaim:
    """What the claim rules need of an earlier claim."""

    enrolment_id: str
    msisdn: str
    imei: str
    state: ClaimState
    submitted_at: datetime


def check_claim(programme: Programme, *, kind: ClaimKind, occurred_on: date, today: date, enrolled_on: date,
                photos: Sequence[str], police_report: str | None, enrolment_id: str,
                past: Iterable[PastClaim], now: datetime) -> None:
    """Whether a claim may be submitted: the incident after the waiting period, not in the
    future, claimed in time, its evidence, one open claim at a time and the claim limit."""
    if occurred_on > today:
        raise errors.IncidentDateInvalid("the incident date is in the future", field="occurred_on")
    if occurred_on < enrolled_on or occurred_on < programme.covered_from(enrolled_on):
        raise errors.InWaitingPeriod(f"cover starts on {programme.covered_from(enrolled_on):%Y-%m-%d}, "
                                     f"{programme.waiting_days} days after enrolment", field="occurred_on")
    if (today - occurred_on).days > programme.claim_within_days:
        raise errors.IncidentDateInvalid(f"claims are made within {programme.claim_within_days} days of the "
                                         "incident", field="occurred_on")
    if kind is ClaimKind.DAMAGE and not photos:
        raise errors.EvidenceMissing("a damage claim needs at least one photo of the phone", field="photos")
    if kind is ClaimKind.THEFT and not re.fullmatch(r"[A-Za-z0-9-]{6,32}", (police_report or "").strip()):
        raise errors.EvidenceMissing("a theft claim needs the police report number (报案回执号)",
                                     field="police_report")
    mine = [c for c in past if c.enrolment_id == enrolment_id]
    if any(c.state in OPEN for c in mine):
        raise errors.ClaimAlreadyOpen("finish the claim in progress first", field="enrolment_id")
    year = [c for c in mine if c.state is not S.REJECTED and c.submitted_at > now - timedelta(days=365)]
    if len(year) >= programme.claims_per_year:
        first = min(c.submitted_at for c in year)
        raise errors.ClaimLimitReached(f"{programme.claims_per_year} claims in 12 months are covered; the next "
                                       f"from {local_date(first + timedelta(days=365)):%Y-%m-%d}",
                                       field="enrolment_id")


def fraud_flags(programme: Programme, *, occurred_on: date, enrolled_on: date, msisdn: str, imei: str,
                enrolment_id: str, past: Iterable[PastClaim], now: datetime) -> list[str]:
    """The programme's fraud rules that this claim trips (their codes, in rule order)."""
    past = list(past)
    flags = []
    for rule in programme.fraud_rules:
        if rule.code == "enrolled_just_before":
            hit = (occurred_on - enrolled_on).days < rule.value
        elif rule.code == "right_after_waiting":
            hit = (occurred_on - programme.covered_from(enrolled_on)).days < rule.value
        elif rule.code == "repeated_on_number":
            hit = sum(1 for c in past if c.msisdn == msisdn and c.state is not S.REJECTED
                      and c.submitted_at > now - timedelta(days=365)) >= rule.value
        else:  # imei_claimed_before: this phone was claimed for under another enrolment
            hit = any(c.imei == imei and c.enrolment_id != enrolment_id for c in past)
        if hit:
            flags.append(rule.code)
    return flags


def check_second_reviewer(first: str | None, second: str) -> None:
    if first is not None and first == second:
        raise errors.SecondReviewerRequired("the second review of a flagged claim is by another person than "
                                            f"{first}, who approved it first", field="actor")


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------ claim photos

MAX_PHOTO_BYTES = 5 * 1024 * 1024
#: The magic bytes a photo's content starts with, and its type: the content decides, never
#: a file name or a declared Content-Type (a renamed text file is not a photo).
PHOTO_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
PHOTO_SUFFIX = {"image/jpeg": "jpg", "image/png": "png"}


def photo_type(data: bytes) -> str:
    """A photo's content type by its magic bytes, its size within the limit; refused otherwise."""
    if len(data) > MAX_PHOTO_BYTES:
        raise errors.PhotoTooLarge(f"a photo is at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB", field="photo")
    for magic, kind in PHOTO_MAGIC:
        if data.startswith(magic) and len(data) > len(magic):
            return kind
    raise errors.PhotoNotImage("the file is not a JPEG or PNG photo", field="photo")


def photo_id(user_id: str, sha256: str) -> str:
    """A photo's id: the uploader and the content, so the same bytes from the same user are
    the same photo (an upload retried makes nothing new) and two users never share one."""
    return "pph_" + hashlib.sha256(f"{user_id}:{sha256}".encode()).hexdigest()[:32]
