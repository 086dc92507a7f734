"""Tourism enforcement (旅游通): a county bureau's officers, its directory, complaint work
orders by the 2010 rules, route replay from the operator's location platform, refunds paid by
the agency through the wallet, penalties, and evidence with its chain of custody. One method
per use case, one transaction each.

Who sees what: an officer (signed in on the terminal issued to them) sees their own county's
work orders and evidence only; another county's order is answered as not found, so a number
tells nothing. The platform's console staff (``Viewer(county=None)``) see every county.

Money: each agency has an account (``liability:tourism:agency:<id>``, never below zero) that
it pays into from its bank (``fund_agency``). A refund the mediation decided moves from it to
the tourist's wallet in one ledger transfer; an agency that pays by bank instead has its
bank reference recorded, and no money moves here.

Evidence files are kept once under ``evidence_dir`` named by their SHA-256 (as handset
protection keeps claim photos): the upload is refused when the bytes do not hash to what the
phone recorded at capture, and ``verify_evidence`` re-reads the file, so a file changed on
disk afterwards is found out. Every look at a file is written to its chain of custody.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import structlog
from argon2 import PasswordHasher
from sqlalchemy import func, insert, or_, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.service import order_id as derived_id
from mobipay.platform.staff_sessions import SignIn, StaffSessions, check_account
from mobipay.tourism import errors
from mobipay.tourism.location import LocationPlatform
from mobipay.tourism.model import (
    FINAL,
    STAY_DISTANCE_M,
    STAY_DURATION,
    Custody,
    Deadlines,
    Fix,
    GroupCandidate,
    HolidayCalendar,
    OrderState,
    Outcome,
    RefusalGround,
    Spot,
    Stop,
    Verdict,
    accept_deadline,
    after_acceptance,
    check_cause,
    check_sha256,
    check_step,
    distance_m,
    evidence_type,
    group_id,
    group_members,
    holiday_calendar,
    overdue_step,
    refusal_grounds,
    stay_points,
    verdicts,
)
from mobipay.tourism.tables import (
    agencies,
    agency_accounts,
    agency_sessions,
    agency_writes,
    checkins,
    contracts,
    custody,
    evidence,
    news,
    officer_sessions,
    officers,
    ops_log,
    order_steps,
    outlets,
    penalties,
    places,
    refunds,
    replays,
    staff,
    work_orders,
)
from mobipay.wallet.service import WalletService

log = structlog.get_logger(__name__)

AGENCY_PREFIX = "liability:tourism:agency:"
WRONG_DEVICE = "wrong-device"  # the sign-in's answer: the password is right, the phone is not
PLACE_KINDS = ("spot", "hotel", "bureau", "contact", "brigade")
STAFF_ROLES = ("guide", "driver", "sales")
#: An agency account's roles: the manager (changes the sales network and staff), office staff
#: (files contracts, reads everything), a guide (the guide assistant only).
ACCOUNT_ROLES = ("manager", "staff", "guide")
#: How late a check-in queued on a guide's phone may arrive, and how far its clock may run ahead.
CHECK_IN_LATE, CHECK_IN_AHEAD = timedelta(hours=24), timedelta(minutes=2)
#: A guide's licence number (导游证号) as the shipped directory has them: D-<area>-<number>.
GUIDE_LICENCE = re.compile(r"D-\d{4}-\d{6}")
#: A landline or mobile number as an outlet's phone: digits, at most one dash.
LANDLINE = re.compile(r"\d{3,4}-?\d{5,8}|1\d{10}")


def agency_account(agency_id: str) -> str:
    return AGENCY_PREFIX + agency_id


@dataclass(frozen=True, slots=True)
class County:
    code: str
    name: str
    prefecture: str
    province: str
    lat: float
    lon: float


@cache
def counties() -> dict[str, County]:
    """The counties using the terminal (tourism/data/counties.csv), read once."""
    out = {}
    for line in files("mobipay.tourism").joinpath("data/counties.csv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("code,"):
            continue
        code, name, prefecture, province, lat, lon = line.split(",")
        out[code] = County(code, name, prefecture, province, float(lat), float(lon))
    return out


def base_layer(county: str) -> str:
    """The county's offline map (GeoJSON of its roads and spots) shipped as data."""
    if county not in counties():
        raise errors.CountyUnknown(f"no county {county}")
    path = files("mobipay.tourism").joinpath(f"data/{county}.geojson")
    if not path.is_file():
        return json.dumps({"type": "FeatureCollection", "features": []})
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks: an officer (their county only) or the platform's console staff (``county``
    None: every county)."""

    actor: str
    county: str | None


@dataclass(frozen=True, slots=True)
class Officer:
    id: str
    county: str
    badge: str
    name: str
    phone: str
    device_id: str
    disabled: bool = False

    @property
    def viewer(self) -> Viewer:
        return Viewer(f"officer:{self.badge}", self.county)


def _officer(row: Any) -> Officer:
    return Officer(row.id, row.county, row.badge, row.name, row.phone, row.device_id, bool(row.disabled))


@dataclass(frozen=True, slots=True)
class AgencyAccount:
    """Someone of an agency signed in: its manager, office staff or a guide (``staff_id``: the
    guide's entry in the agency's staff). Sees the agency's own data only."""

    id: str
    agency_id: str
    agency: str
    county: str
    login: str
    name: str
    role: str
    staff_id: str | None
    disabled: bool = False

    @property
    def actor(self) -> str:
        return f"{'guide' if self.role == 'guide' else 'agency'}:{self.login}"

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.actor, self.county)


def _account(row: Any, agency: Any) -> AgencyAccount:
    return AgencyAccount(row.id, row.agency_id, agency.name, agency.county, row.login, row.name, row.role,
                         row.staff_id, bool(row.disabled))


def _agency_text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise errors.AgencyInputInvalid(f"{name} is required", field=name)
    if len(text) > limit:
        raise errors.AgencyInputInvalid(f"{name} is at most {limit} characters", field=name)
    return text


def _landline(value: object) -> str:
    text = str(value or "").strip().replace(" ", "")
    if not LANDLINE.fullmatch(text):
        raise errors.AgencyInputInvalid("phone is a number like 0739-7625667 or a mobile number", field="phone")
    return text


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the directory: an agency, a guide or driver, or a place or contact."""

    kind: str
    id: str
    name: str
    phone: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Complaint:
    """What the officer enters on site. With ``contract_id`` the respondent, tour hours and
    promised itinerary come from the agency's filed contract."""

    complainant_name: str
    complainant_phone: str
    cause: str
    facts: str
    demands: str
    location_consent: bool
    contract_id: str | None = None
    agency_id: str | None = None
    guide_id: str | None = None
    driver_id: str | None = None
    tour_date: date | None = None
    itinerary: tuple[str, ...] = ()
    complainants: int = 1
    before_court: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    actor: str
    step: str
    detail: str


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: str
    county: str
    officer_id: str
    state: OrderState
    complainant_name: str
    complainant_phone: str
    complainants: int
    agency_id: str
    guide_id: str | None
    driver_id: str | None
    contract_id: str | None
    tour_date: date
    tour_starts_at: datetime
    tour_ends_at: datetime
    itinerary: tuple[str, ...]
    cause: str
    facts: str
    demands: str
    location_consent: bool
    group_id: str | None
    received_at: datetime
    deadlines: Deadlines
    outcome: str | None
    record: str | None
    reply: str | None
    refusal: dict[str, Any] | None
    escalation: int
    steps: tuple[Step, ...] = ()
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Replay:
    id: str
    order_id: str
    subject: str
    phone: str
    track: tuple[Fix, ...]
    stops: tuple[Stop, ...]
    verdicts: tuple[Verdict, ...]
    stay_distance_m: int
    stay_minutes: int

    @property
    def not_visited(self) -> list[str]:
        return [v.spot.name for v in self.verdicts if not v.visited]


@dataclass(frozen=True, slots=True)
class RefundDone:
    id: str
    order_id: str
    amount: int
    method: str
    transfer_id: str | None
    bank_reference: str | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    id: str
    order_id: str
    officer_id: str
    device_id: str
    kind: str
    content_type: str
    sha256: str
    size: int
    captured_at: datetime
    lat: float | None
    lon: float | None
    note: str
    uploaded_at: datetime
    replayed: bool = False

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.content_type.split('/')[1].replace('mpeg', 'mp3').replace('jpeg', 'jpg')}"


@dataclass(frozen=True, slots=True)
class CustodyLine:
    at: datetime
    action: str
    actor: str
    device: str
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    evidence_id: str
    intact: bool
    recorded_sha256: str
    file_sha256: str | None  # None: the file is gone


@dataclass(frozen=True, slots=True)
class Penalty:
    id: str
    target_kind: str
    target_id: str
    kind: str
    amount: int
    points: int
    reason: str
    created_at: datetime


def _e6(value: float | None) -> int | None:
    return None if value is None else round(value * 1e6)


def _de6(value: int | None) -> float | None:
    return None if value is None else value / 1e6


def _keep(target: Path, data: bytes) -> None:
    """Write a file named by its hash once, whole or not at all (a rename of a finished file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise errors.ComplaintInvalid(f"{name} is required", field=name)
    if len(text) > limit:
        raise errors.ComplaintInvalid(f"{name} is at most {limit} characters", field=name)
    return text


def _phone(value: object, name: str, error: type[MobipayError] = errors.ComplaintInvalid) -> str:
    """A mainland mobile number as E.164 (the complainant's number is how the tourist is paid)."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) != 11 or not digits.startswith("1"):
        raise error(f"{name} is an 11-digit mainland mobile number", field=name)
    return "+86" + digits


class TourismService:
    """The county bureaus' use cases (see the module docstring)."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, location: LocationPlatform, *,
                 evidence_dir: Path = Path("var/tourism/evidence"), hasher: PasswordHasher | None = None,
                 calendar: HolidayCalendar | None = None) -> None:
        self.uow = uow
        self.wallet = wallet
        self.location = location
        self.evidence_dir = evidence_dir
        self.calendar = calendar or holiday_calendar()
        self.staff = StaffSessions(officers, officer_sessions, audit_prefix="tourism_officer", hasher=hasher,
                                   enabled=lambda a: a.c.disabled.is_(False))
        self.accounts = StaffSessions(agency_accounts, agency_sessions, audit_prefix="tourism_agency", hasher=hasher,
                                      enabled=lambda a: a.c.disabled.is_(False))

    # ------------------------------------------------------------------ officers

    async def add_officer(self, county: str, badge: str, name: str, phone: str, device_id: str, password: str, *,
                          actor: str) -> Officer:
        """Issue a terminal to an officer: the account is bound to that device (audited)."""
        if county not in counties():
            raise errors.CountyUnknown(f"no county {county}; known: {', '.join(counties())}")
        badge = badge.strip()
        if not (4 <= len(badge) <= 16 and badge.isalnum()):
            raise errors.OfficerInvalid("an officer number (执法证号) is 4-16 letters or digits", field="badge")
        if not device_id.strip() or len(device_id) > 64:
            raise errors.OfficerInvalid("the terminal's device id is required (at most 64 characters)",
                                        field="device_id")
        if len(password) < 10:
            raise errors.OfficerInvalid("a password has at least 10 characters", field="password")
        mobile = _phone(phone, "phone")
        hashed = await self.staff.hash_password(password)

        async def work(uow: UnitOfWork) -> Officer:
            if (await uow.conn.execute(select(officers.c.id).where(officers.c.badge == badge))).first():
                raise errors.OfficerInvalid(f"officer {badge} exists", field="badge")
            oid = new_id("tof")
            await uow.conn.execute(insert(officers).values(
                id=oid, county=county, badge=badge, name=name.strip()[:40], phone=mobile, device_id=device_id.strip(),
                password_hash=hashed, disabled=False, created_at=uow.now))
            await uow.audit(actor=actor, action="tourism.officer_add", target=badge,
                            reason=f"terminal issued in {county}", after={"device_id": device_id.strip()})
            return Officer(oid, county, badge, name.strip()[:40], mobile, device_id.strip())

        return await self.uow.run("tourism_officer_add", work)

    async def sign_in(self, badge: str, password: str, device_id: str, *, client: str = "") -> tuple[Officer, str]:
        """Sign an officer in on their own terminal: the right password from another device is
        refused (``OFFICER_DEVICE_NOT_BOUND``, audited) and opens nothing."""
        async def find(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(officers).where(officers.c.badge == badge.strip()))).first()

        row = await self.uow.run("tourism_sign_in_find", find)
        ok = await self.staff.check_password(row.password_hash if row is not None else None, password)
        if row is None:
            raise errors.OfficerSignInFailed()

        async def work(uow: UnitOfWork) -> str | None:
            if ok and row.device_id != device_id:
                await uow.audit(actor=f"officer:{row.badge}", action="tourism_officer.wrong_device", target=row.badge,
                                reason="sign-in from a device that is not the officer's terminal",
                                after={"device_id": device_id[:64]})
                return WRONG_DEVICE
            outcome, token = await self.staff.start(uow.conn, uow.now, row.id, ok, who=f"officer:{row.badge}",
                                                    client=client, reason="signed in on the terminal",
                                                    may_sign_in=lambda r: not r.disabled)
            return token if outcome is SignIn.OK else None

        token = await self.uow.run("tourism_sign_in", work)
        if token == WRONG_DEVICE:
            raise errors.OfficerDeviceNotBound()
        if token is None:
            raise errors.OfficerSignInFailed()
        return _officer(row), token

    async def officer(self, token: str) -> Officer:
        """The officer a live session token belongs to."""
        async def work(uow: UnitOfWork) -> Any:
            return await self.staff.holder(uow.conn, uow.now, token)

        row = await self.uow.run("tourism_officer", work)
        if row is None:
            raise errors.OfficerSessionInvalid()
        return _officer(row)

    async def sign_out(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self.staff.end(uow.conn, uow.now, token)

        await self.uow.run("tourism_sign_out", work)

    async def officers_of(self, county: str) -> list[Officer]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(officers).where(officers.c.county == county)
                                               .order_by(officers.c.badge)))

        return [_officer(r) for r in await self.uow.run("tourism_officers", work)]

    # ------------------------------------------------------------------ directory

    async def add_agency(self, county: str, name: str, licence: str, manager: str, manager_phone: str, phone: str,
                         address: str, *, actor: str) -> str:
        """Register a travel agency and open its account (what it refunds tourists from)."""
        if county not in counties():
            raise errors.CountyUnknown(f"no county {county}")
        mobile = _phone(manager_phone, "manager_phone")

        async def work(uow: UnitOfWork) -> str:
            known = (await uow.conn.execute(select(agencies.c.id).where(agencies.c.licence == licence))).first()
            if known:
                return str(known.id)
            aid = "tag_" + hashlib.sha256(licence.encode()).hexdigest()[:20]
            await uow.open_account(AccountSpec(agency_account(aid), AccountKind.LIABILITY, name=f"Agency {name}"[:80],
                                               owner=aid, debits_must_not_exceed_credits=True))
            await uow.conn.execute(insert(agencies).values(
                id=aid, county=county, name=name, licence=licence, manager=manager, manager_phone=mobile, phone=phone,
                address=address, penalty_points=0, created_at=uow.now))
            await uow.audit(actor=actor, action="tourism.agency_add", target=aid, reason=f"{name} ({licence})")
            return aid

        return await self.uow.run("tourism_agency_add", work)

    async def fund_agency(self, agency_id: str, amount: object, *, idempotency_key: str, actor: str) -> int:
        """The agency pays into its account from its bank (the money then backs refunds)."""
        fen = check_amount(amount)
        key = check_idempotency_key(idempotency_key)

        async def work(uow: UnitOfWork) -> int:
            await self._agency_row(uow, agency_id)
            [result] = await uow.post([Transfer(f"tourism:fund:{agency_id}:{key}",
                                                (Leg.debit(BANK_SETTLEMENT, fen), Leg.credit(agency_account(agency_id),
                                                                                             fen)),
                                                "tourism.agency_funding", reference=agency_id)])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await uow.audit(actor=actor, action="tourism.agency_fund", target=agency_id,
                                reason=f"paid in from its bank: {fen} fen")
            return fen

        return await self.uow.run("tourism_agency_fund", work)

    async def add_staff(self, agency_id: str, role: str, name: str, phone: str, licence: str = "") -> str:
        if role not in STAFF_ROLES:
            raise ValidationFailed(f"a role is one of {', '.join(STAFF_ROLES)}", field="role")
        mobile = _phone(phone, "phone")

        async def work(uow: UnitOfWork) -> str:
            agency = await self._agency_row(uow, agency_id)
            sid = "tst_" + hashlib.sha256(f"{agency_id}:{role}:{mobile}".encode()).hexdigest()[:20]
            if not (await uow.conn.execute(select(staff.c.id).where(staff.c.id == sid))).first():
                await uow.conn.execute(insert(staff).values(
                    id=sid, agency_id=agency_id, county=agency.county, role=role, name=name, phone=mobile,
                    licence=licence, penalty_points=0, active=True, created_at=uow.now))
            return sid

        return await self.uow.run("tourism_staff_add", work)

    async def add_place(self, county: str, kind: str, name: str, *, phone: str = "", address: str = "",
                        person: str = "", unit: str = "", lat: float | None = None, lon: float | None = None,
                        radius_m: int | None = None, place_id: str | None = None) -> str:
        if kind not in PLACE_KINDS:
            raise ValidationFailed(f"a place is one of {', '.join(PLACE_KINDS)}", field="kind")
        if kind == "spot" and (lat is None or lon is None):
            raise ValidationFailed("a scenic spot has coordinates", field="lat")
        pid = place_id or "tpl_" + hashlib.sha256(f"{county}:{kind}:{name}:{person}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> str:
            if not (await uow.conn.execute(select(places.c.id).where(places.c.id == pid))).first():
                await uow.conn.execute(insert(places).values(
                    id=pid, county=county, kind=kind, name=name, phone=phone, address=address, person=person, unit=unit,
                    lat_e6=_e6(lat), lon_e6=_e6(lon), radius_m=radius_m if kind == "spot" else None))
            return pid

        return await self.uow.run("tourism_place_add", work)

    async def add_news(self, county: str, kind: str, title: str, body: str, published_at: datetime) -> str:
        if kind not in ("news", "policy"):
            raise ValidationFailed("news or policy", field="kind")
        nid = "tnw_" + hashlib.sha256(f"{county}:{kind}:{title}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> str:
            if not (await uow.conn.execute(select(news.c.id).where(news.c.id == nid))).first():
                await uow.conn.execute(insert(news).values(id=nid, county=county, kind=kind, title=title, body=body,
                                                           published_at=published_at.astimezone(UTC)))
            return nid

        return await self.uow.run("tourism_news_add", work)

    async def load_directory(self, county: str, *, actor: str = "system") -> dict[str, int]:
        """Load a county's shipped directory (tourism/data/<county>.json and the spots of its
        GeoJSON): places, contacts, agencies with their staff, news and policies. Loading it
        again adds nothing."""
        path = files("mobipay.tourism").joinpath(f"data/{county}.json")
        if county not in counties() or not path.is_file():
            raise errors.CountyUnknown(f"no shipped directory for county {county}")
        doc = json.loads(path.read_text(encoding="utf-8"))
        n = {"places": 0, "spots": 0, "agencies": 0, "staff": 0, "news": 0}
        for p in doc.get("places", []):
            await self.add_place(county, p["kind"], p["name"], phone=p.get("phone", ""), address=p.get("address", ""),
                                 person=p.get("person", ""), unit=p.get("unit", ""))
            n["places"] += 1
        for f in json.loads(base_layer(county))["features"]:
            if f["properties"].get("kind") == "spot":
                lon, lat = f["geometry"]["coordinates"]
                await self.add_place(county, "spot", f["properties"]["name"], lat=lat, lon=lon,
                                     radius_m=int(f["properties"].get("radius_m", 300)), place_id=f["properties"]["id"])
                n["spots"] += 1
        for a in doc.get("agencies", []):
            aid = await self.add_agency(county, a["name"], a["licence"], a["manager"], a["manager_phone"], a["phone"],
                                        a["address"], actor=actor)
            n["agencies"] += 1
            for s in a.get("staff", []):
                await self.add_staff(aid, s["role"], s["name"], s["phone"], s.get("licence", ""))
                n["staff"] += 1
            for o in a.get("outlets", []):
                await self.add_outlet(aid, o["kind"], o["name"], o["address"], o.get("phone", ""), o.get("manager", ""))
        for item in doc.get("news", []):
            await self.add_news(county, item["kind"], item["title"], item["body"],
                                datetime.fromisoformat(item["published_at"]))
            n["news"] += 1
        return n

    async def news(self, viewer: Viewer, kind: str = "news", limit: int = 50) -> list[dict[str, Any]]:
        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(news).where(news.c.kind == kind)
            if viewer.county is not None:
                q = q.where(news.c.county == viewer.county)
            return list(await uow.conn.execute(q.order_by(news.c.published_at.desc()).limit(limit)))

        return [{"id": r.id, "kind": r.kind, "title": r.title, "body": r.body,
                 "published_at": as_utc(r.published_at).isoformat()} for r in await self.uow.run("tourism_news", work)]

    async def directory(self, viewer: Viewer, q: str = "", kind: str = "", limit: int = 100) -> list[Entry]:
        """Search the county's directory by name, phone, licence or unit (empty: everything)."""
        like = f"%{q.strip()}%"

        async def work(uow: UnitOfWork) -> list[Entry]:
            out: list[Entry] = []
            county = viewer.county
            if kind in ("", "agency"):
                qa = select(agencies)
                if county:
                    qa = qa.where(agencies.c.county == county)
                if q.strip():
                    qa = qa.where(or_(agencies.c.name.like(like), agencies.c.licence.like(like),
                                      agencies.c.manager.like(like), agencies.c.phone.like(like)))
                for r in await uow.conn.execute(qa.order_by(agencies.c.name).limit(limit)):
                    out.append(_agency_entry(r))
            if kind in ("", "guide", "driver", "sales"):
                qs = select(staff, agencies.c.name.label("agency")).join(agencies, agencies.c.id == staff.c.agency_id)
                if county:
                    qs = qs.where(staff.c.county == county)
                if kind:
                    qs = qs.where(staff.c.role == kind)
                if q.strip():
                    qs = qs.where(or_(staff.c.name.like(like), staff.c.licence.like(like), staff.c.phone.like(like)))
                for r in await uow.conn.execute(qs.order_by(staff.c.name).limit(limit)):
                    out.append(Entry(r.role, r.id, r.name, r.phone, {
                        "licence": r.licence, "agency_id": r.agency_id, "agency": r.agency,
                        "penalty_points": r.penalty_points}))
            if kind in ("", *PLACE_KINDS):
                qp = select(places)
                if county:
                    qp = qp.where(places.c.county == county)
                if kind:
                    qp = qp.where(places.c.kind == kind)
                if q.strip():
                    qp = qp.where(or_(places.c.name.like(like), places.c.person.like(like),
                                      places.c.unit.like(like), places.c.phone.like(like)))
                for r in await uow.conn.execute(qp.order_by(places.c.kind, places.c.name).limit(limit)):
                    out.append(Entry(r.kind, r.id, r.name, r.phone, {
                        "address": r.address, "person": r.person, "unit": r.unit, "lat": _de6(r.lat_e6),
                        "lon": _de6(r.lon_e6), "radius_m": r.radius_m}))
            return out[:limit]

        return await self.uow.run("tourism_directory", work)

    async def agency(self, viewer: Viewer, agency_id: str) -> Entry:
        """An agency with its manager and phone (the officer calls the manager about a refund)."""
        async def work(uow: UnitOfWork) -> Any:
            return await self._agency_row(uow, agency_id)

        row = await self.uow.run("tourism_agency", work)
        if viewer.county is not None and row.county != viewer.county:
            raise errors.DirectoryEntryNotFound(f"no agency {agency_id} in your county")
        balance = (await self.uow.ledger.account(agency_account(agency_id))).balance
        entry = _agency_entry(row)
        entry.detail["balance"] = balance
        return entry

    async def _agency_row(self, uow: UnitOfWork, agency_id: str) -> Any:
        row = (await uow.conn.execute(select(agencies).where(agencies.c.id == agency_id))).first()
        if row is None:
            raise errors.DirectoryEntryNotFound(f"no agency {agency_id}")
        return row

    async def spots(self, county: str) -> dict[str, Spot]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(places).where(places.c.county == county,
                                                                    places.c.kind == "spot")))

        return {r.id: Spot(r.id, r.name, r.lat_e6 / 1e6, r.lon_e6 / 1e6, float(r.radius_m or 300))
                for r in await self.uow.run("tourism_spots", work)}

    # ------------------------------------------------------------------ contracts

    async def file_contract(self, agency_id: str, tourist_name: str, tourist_phone: str, starts_at: datetime,
                            ends_at: datetime, itinerary: Sequence[str], *, guide_id: str | None = None,
                            driver_id: str | None = None, price: int = 0, people: int = 1) -> str:
        """The agency files a tour contract with the bureau: who, which day, the promised spots."""
        mobile = _phone(tourist_phone, "tourist_phone")
        if ends_at <= starts_at:
            raise ValidationFailed("a tour ends after it starts", field="ends_at")

        async def work(uow: UnitOfWork) -> str:
            agency = await self._agency_row(uow, agency_id)
            known = {r[0] for r in await uow.conn.execute(select(places.c.id).where(
                places.c.id.in_(list(itinerary)), places.c.kind == "spot"))}
            missing = [s for s in itinerary if s not in known]
            if missing or not itinerary:
                raise ValidationFailed(f"unknown scenic spots: {', '.join(missing) or '(none given)'}",
                                       field="itinerary")
            cid = "tct_" + hashlib.sha256(f"{agency_id}:{mobile}:{starts_at.isoformat()}".encode()).hexdigest()[:20]
            if not (await uow.conn.execute(select(contracts.c.id).where(contracts.c.id == cid))).first():
                await uow.conn.execute(insert(contracts).values(
                    id=cid, agency_id=agency_id, county=agency.county, tourist_name=tourist_name, tourist_phone=mobile,
                    tour_date=starts_at.astimezone(SHANGHAI).date().isoformat(), starts_at=starts_at.astimezone(UTC),
                    ends_at=ends_at.astimezone(UTC),
                    itinerary=json.dumps(list(itinerary)), guide_id=guide_id, driver_id=driver_id, price=price,
                    people=people, filed_at=uow.now))
                await self._log(uow, agency_id, None, "contract_filed",
                                f"{cid}: {tourist_name}, {len(itinerary)} spots, {starts_at:%Y-%m-%d}")
            return cid

        return await self.uow.run("tourism_contract_file", work)

    async def contracts_of(self, viewer: Viewer, tourist_phone: str) -> list[dict[str, Any]]:
        """The filed contracts a tourist's number is on (the officer picks the complained one)."""
        mobile = _phone(tourist_phone, "tourist_phone")

        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(contracts, agencies.c.name.label("agency")).join(agencies, agencies.c.id == contracts.c.agency_id
                                                                        ).where(contracts.c.tourist_phone == mobile)
            if viewer.county:
                q = q.where(contracts.c.county == viewer.county)
            return list(await uow.conn.execute(q.order_by(contracts.c.starts_at.desc()).limit(20)))

        return [{"id": r.id, "agency_id": r.agency_id, "agency": r.agency, "tour_date": r.tour_date,
                 "starts_at": as_utc(r.starts_at).isoformat(), "ends_at": as_utc(r.ends_at).isoformat(),
                 "itinerary": json.loads(r.itinerary), "guide_id": r.guide_id, "driver_id": r.driver_id,
                 "price": r.price, "people": r.people} for r in await self.uow.run("tourism_contracts", work)]

    # ------------------------------------------------------------------ the agencies' back office

    async def _log(self, uow: UnitOfWork, agency_id: str, staff_id: str | None, action: str, detail: str,
                   actor: str = "") -> None:
        """A line of the agency's operations log (the bureau supervises it)."""
        await uow.conn.execute(insert(ops_log).values(agency_id=agency_id, staff_id=staff_id, at=uow.now,
                                                      action=action, detail=detail[:1000], actor=actor[:80]))

    async def add_outlet(self, agency_id: str, kind: str, name: str, address: str, phone: str, manager: str) -> str:
        """A branch (分社) or outlet (门市部) of the agency's sales network."""
        if kind not in ("branch", "outlet"):
            raise ValidationFailed("an outlet is a branch or an outlet", field="kind")
        if not name.strip() or not address.strip():
            raise ValidationFailed("an outlet has a name and an address", field="name")
        oid = "tou_" + hashlib.sha256(f"{agency_id}:{kind}:{name}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> str:
            await self._agency_row(uow, agency_id)
            if not (await uow.conn.execute(select(outlets.c.id).where(outlets.c.id == oid))).first():
                await uow.conn.execute(insert(outlets).values(id=oid, agency_id=agency_id, kind=kind, name=name.strip(),
                                                              address=address.strip(), phone=phone, manager=manager,
                                                              created_at=uow.now))
                await self._log(uow, agency_id, None, "outlet_added", f"{kind} {name.strip()}, {address.strip()}")
            return oid

        return await self.uow.run("tourism_outlet_add", work)

    async def _visible_agency(self, viewer: Viewer, agency_id: str) -> None:
        async def work(uow: UnitOfWork) -> Any:
            return await self._agency_row(uow, agency_id)

        row = await self.uow.run("tourism_agency_visible", work)
        if viewer.county is not None and row.county != viewer.county:
            raise errors.DirectoryEntryNotFound(f"no agency {agency_id} in your county")

    async def network(self, viewer: Viewer, agency_id: str) -> dict[str, Any]:
        """The agency's sales network and staff (guides with licences, drivers, sales)."""
        await self._visible_agency(viewer, agency_id)

        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
            o = list(await uow.conn.execute(select(outlets).where(outlets.c.agency_id == agency_id)
                                            .order_by(outlets.c.kind, outlets.c.name)))
            p = list(await uow.conn.execute(select(staff).where(staff.c.agency_id == agency_id)
                                            .order_by(staff.c.role, staff.c.name)))
            return o, p

        o, p = await self.uow.run("tourism_network", work)
        return {"outlets": [{"id": r.id, "kind": r.kind, "name": r.name, "address": r.address, "phone": r.phone,
                             "manager": r.manager} for r in o],
                "staff": [{"id": r.id, "role": r.role, "name": r.name, "phone": r.phone, "licence": r.licence,
                           "penalty_points": r.penalty_points, "active": r.active} for r in p]}

    async def operations(self, viewer: Viewer, agency_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The agency's operations log, newest first (the bureau's supervision)."""
        await self._visible_agency(viewer, agency_id)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(ops_log).where(ops_log.c.agency_id == agency_id)
                                               .order_by(ops_log.c.id.desc()).limit(limit)))

        return [{"at": as_utc(r.at).isoformat(), "staff_id": r.staff_id, "action": r.action, "detail": r.detail,
                 "actor": r.actor} for r in await self.uow.run("tourism_ops_log", work)]

    async def customers(self, viewer: Viewer, agency_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The agency's customer database: each tourist with their tours (filed contracts)."""
        await self._visible_agency(viewer, agency_id)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(contracts).where(contracts.c.agency_id == agency_id)
                                               .order_by(contracts.c.tourist_phone, contracts.c.starts_at)
                                               .limit(limit)))

        out: dict[str, dict[str, Any]] = {}
        for r in await self.uow.run("tourism_customers", work):
            c = out.setdefault(r.tourist_phone, {"phone": r.tourist_phone, "name": r.tourist_name, "tours": []})
            c["tours"].append({"contract_id": r.id, "tour_date": r.tour_date, "people": r.people, "price": r.price,
                               "itinerary": json.loads(r.itinerary)})
        return list(out.values())

    async def todays_tour(self, guide_id: str, day: date) -> list[dict[str, Any]]:
        """The guide assistant: the guide's tours of a day with their itineraries and check-ins."""
        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
            tours = list(await uow.conn.execute(select(contracts).where(
                contracts.c.guide_id == guide_id, contracts.c.tour_date == day.isoformat())
                .order_by(contracts.c.starts_at)))
            done = list(await uow.conn.execute(select(checkins).where(
                checkins.c.contract_id.in_([t.id for t in tours])).order_by(checkins.c.at))) if tours else []
            return tours, done

        tours, done = await self.uow.run("tourism_todays_tour", work)
        return [{"contract_id": t.id, "tourist": t.tourist_name, "starts_at": as_utc(t.starts_at).isoformat(),
                 "itinerary": json.loads(t.itinerary),
                 "checked_in": [{"spot_id": c.spot_id, "at": as_utc(c.at).isoformat(), "at_spot": c.at_spot,
                                 "distance_m": c.distance_m} for c in done if c.contract_id == t.id]}
                for t in tours]

    async def check_in(self, guide_id: str, contract_id: str, spot_id: str, lat: float, lon: float, *,
                       idempotency_key: str | None = None, actor: str = "",
                       taken_at: datetime | None = None) -> dict[str, Any]:
        """The guide checks in at a promised spot of the tour: where the phone says it is, and
        whether that is within the spot's radius (a check-in far from it is kept, marked so).
        With an Idempotency-Key (the guide's phone) the same key again is the same check-in.
        ``taken_at`` is when the phone took the position: a check-in queued on the phone at a
        spot without signal arrives later, and keeps its own time (the last 24 hours, at most
        2 minutes ahead of the platform's clock; it must carry its offset)."""
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise errors.CheckInInvalid("latitude -90..90, longitude -180..180", field="lat")
        if taken_at is not None and taken_at.tzinfo is None:
            raise errors.CheckInInvalid("taken_at carries its offset, e.g. 2026-10-03T10:30:00+08:00",
                                        field="taken_at")
        key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            at = uow.now if taken_at is None else taken_at.astimezone(UTC)
            if not uow.now - CHECK_IN_LATE <= at <= uow.now + CHECK_IN_AHEAD:
                raise errors.CheckInInvalid("taken_at is within the last 24 hours (and not ahead of now)",
                                            field="taken_at")
            if key is not None:
                known = (await uow.conn.execute(select(checkins, places.c.name).join(
                    places, places.c.id == checkins.c.spot_id).where(
                    checkins.c.id == derived_id("tci_", guide_id, key)))).first()
                if known is not None:
                    if known.contract_id != contract_id or known.spot_id != spot_id:
                        raise IdempotencyConflict("this Idempotency-Key was used for another check-in")
                    return {"id": known.id, "spot": known.name, "distance_m": known.distance_m,
                            "at_spot": known.at_spot, "replayed": True}
            ct = (await uow.conn.execute(select(contracts).where(contracts.c.id == contract_id))).first()
            if ct is None or ct.guide_id != guide_id:
                raise errors.ContractNotFound(f"no tour {contract_id} of this guide")
            if spot_id not in json.loads(ct.itinerary):
                raise ValidationFailed("the spot is not in the tour's itinerary", field="spot_id")
            spot = (await uow.conn.execute(select(places).where(places.c.id == spot_id))).one()
            far = distance_m(lat, lon, spot.lat_e6 / 1e6, spot.lon_e6 / 1e6)
            at_spot = far <= float(spot.radius_m or 300)
            cid = derived_id("tci_", guide_id, key) if key is not None else new_id("tci")
            await uow.conn.execute(insert(checkins).values(
                id=cid, contract_id=contract_id, guide_id=guide_id, spot_id=spot_id, at=at, lat_e6=_e6(lat),
                lon_e6=_e6(lon), distance_m=round(far), at_spot=at_spot))
            await self._log(uow, ct.agency_id, guide_id, "checked_in",
                            f"{spot.name}: {round(far)} m from it" + ("" if at_spot else " (NOT at the spot)"), actor)
            if actor:
                await uow.audit(actor=actor, action="tourism.guide_check_in", target=cid,
                                reason=f"{contract_id} {spot_id}: {round(far)} m")
            return {"id": cid, "spot": spot.name, "distance_m": round(far), "at_spot": at_spot, "replayed": False}

        return await self.uow.run("tourism_check_in", work)

    # ------------------------------------------------------------------ the agencies' own accounts

    async def add_agency_account(self, agency_id: str, login: str, name: str, role: str, password: str, *,
                                 staff_id: str | None = None, actor: str) -> AgencyAccount:
        """An agency's own sign-in: its manager, office staff, or a guide (bound to the guide's
        entry of the agency's staff: the guide assistant shows that guide's tours). Audited and
        written to the agency's operations log."""
        if role not in ACCOUNT_ROLES:
            raise errors.AgencyAccountInvalid(f"a role is one of {', '.join(ACCOUNT_ROLES)}", field="role")
        try:
            login = check_account(login, password)
        except ValidationFailed as exc:
            raise errors.AgencyAccountInvalid(exc.detail, field=exc.field or "login") from exc
        person = name.strip()
        if not 1 <= len(person) <= 40:
            raise errors.AgencyAccountInvalid("a name is 1-40 characters", field="name")
        if role == "guide" and not staff_id:
            raise errors.AgencyAccountInvalid("a guide's account names the guide (--staff tst_…)", field="staff_id")
        hashed = await self.accounts.hash_password(password)

        async def work(uow: UnitOfWork) -> AgencyAccount:
            agency = await self._agency_row(uow, agency_id)
            if staff_id:
                member = (await uow.conn.execute(select(staff).where(staff.c.id == staff_id))).first()
                if member is None or member.agency_id != agency_id:
                    raise errors.AgencyAccountInvalid(f"no staff member {staff_id} of this agency", field="staff_id")
                if role == "guide" and member.role != "guide":
                    raise errors.AgencyAccountInvalid(f"{staff_id} is not a guide", field="staff_id")
            if (await uow.conn.execute(select(agency_accounts.c.id).where(agency_accounts.c.login == login))).first():
                raise errors.AgencyAccountInvalid(f"the account {login} exists", field="login")
            aid = new_id("tac")
            await uow.conn.execute(insert(agency_accounts).values(
                id=aid, agency_id=agency_id, login=login, name=person, role=role, staff_id=staff_id,
                password_hash=hashed, disabled=False, created_at=uow.now))
            await uow.audit(actor=actor, action="tourism.agency_account_add", target=login,
                            reason=f"{role} account of {agency_id}", after={"staff_id": staff_id})
            await self._log(uow, agency_id, staff_id, "account_added", f"{role} account {login} ({person})", actor)
            return AgencyAccount(aid, agency_id, agency.name, agency.county, login, person, role, staff_id)

        return await self.uow.run("tourism_agency_account_add", work)

    async def _new_hash(self, sessions: StaffSessions, name: str, password: str | None, reason: str,
                        error: type[MobipayError]) -> str | None:
        """A change of a sign-in account is audited with its reason; a new password is checked
        as every staff password (and hashed before the transaction)."""
        if not reason.strip():
            raise error("give the reason for the audit trail", field="reason")
        if password is None:
            return None
        try:
            check_account(name, password)
        except ValidationFailed as exc:
            raise error(exc.detail, field=exc.field or "password") from exc
        return await sessions.hash_password(password)

    @staticmethod
    async def _change_sign_in(uow: UnitOfWork, table: Any, sessions: StaffSessions, row: Any, *,
                              disabled: bool | None, hashed: str | None, **more: Any) -> list[str]:
        """Disable or enable the account, or set its new password (and end any lock after
        wrong passwords); either ends its live sessions. What changed, for the logs."""
        values, done = dict(more), [f"{k} {v}" for k, v in more.items()]
        if disabled is not None:
            values["disabled"] = disabled
            done.append("disabled" if disabled else "enabled")
        if hashed is not None:
            values["password_hash"] = hashed
            done.append("new password")
            await sessions.unlock(uow.conn, row.id)
        await uow.conn.execute(update(table).where(table.c.id == row.id).values(**values))
        if disabled or hashed is not None or more:
            await sessions.end_all(uow.conn, uow.now, row.id)
        return done

    async def change_officer(self, badge: str, *, actor: str, reason: str, disabled: bool | None = None,
                             password: str | None = None, device_id: str | None = None) -> Officer:
        """An officer's terminal lost or replaced, the officer gone or back, a password
        forgotten: disable (or enable) the account, bind it to a new terminal, or set a new
        password. Any of them ends the officer's live sessions; audited with the reason."""
        if disabled is None and password is None and device_id is None:
            raise errors.OfficerInvalid("say what changes: disable, enable, a new terminal or a new password",
                                        field="badge")
        if device_id is not None and not (device_id.strip() and len(device_id) <= 64):
            raise errors.OfficerInvalid("the terminal's device id is required (at most 64 characters)",
                                        field="device_id")
        hashed = await self._new_hash(self.staff, badge, password, reason, errors.OfficerInvalid)

        async def work(uow: UnitOfWork) -> Officer:
            row = (await uow.conn.execute(select(officers).where(officers.c.badge == badge.strip())
                                          .with_for_update())).first()
            if row is None:
                raise errors.OfficerInvalid(f"no officer {badge!r}: see mobipay tourism officers COUNTY", field="badge")
            more = {"device_id": device_id.strip()} if device_id is not None else {}
            await self._change_sign_in(uow, officers, self.staff, row, disabled=disabled, hashed=hashed, **more)
            await uow.audit(actor=actor, action="tourism.officer_change", target=row.badge, reason=reason,
                            before={"disabled": bool(row.disabled), "device_id": row.device_id},
                            after={"disabled": bool(row.disabled if disabled is None else disabled),
                                   "device_id": device_id.strip() if device_id is not None else row.device_id,
                                   "new_password": hashed is not None})
            return _officer((await uow.conn.execute(select(officers).where(officers.c.id == row.id))).one())

        return await self.uow.run("tourism_officer_change", work)

    async def change_agency_account(self, login: str, *, actor: str, reason: str, disabled: bool | None = None,
                                    password: str | None = None, agency_id: str | None = None) -> AgencyAccount:
        """The bureau's hand on an agency's accounts: disable one (a guide who left, a lost
        phone) or enable it again, or set a new password (the person forgot it; the lock after
        wrong passwords ends too). Disabling or a new password ends the account's live
        sessions. Audited with the reason and written to the agency's operations log. With
        ``agency_id`` (the console's agency page) an account of another agency is refused."""
        if disabled is None and password is None:
            raise errors.AgencyAccountInvalid("say what changes: disable, enable or a new password", field="login")
        hashed = await self._new_hash(self.accounts, login, password, reason, errors.AgencyAccountInvalid)

        async def work(uow: UnitOfWork) -> AgencyAccount:
            row = (await uow.conn.execute(select(agency_accounts).where(
                agency_accounts.c.login == login.strip()).with_for_update())).first()
            if agency_id is not None and (row is None or row.agency_id != agency_id):
                raise ValidationFailed(f"no account {login[:64]!r} of this agency", field="login")
            if row is None:
                raise errors.AgencyAccountInvalid(f"no agency account {login!r}: see mobipay tourism agency-accounts",
                                                  field="login")
            done = await self._change_sign_in(uow, agency_accounts, self.accounts, row, disabled=disabled,
                                              hashed=hashed)
            await uow.audit(actor=actor, action="tourism.agency_account_change", target=row.login, reason=reason,
                            before={"disabled": bool(row.disabled)},
                            after={"disabled": bool(row.disabled if disabled is None else disabled),
                                   "new_password": hashed is not None})
            await self._log(uow, row.agency_id, row.staff_id, "account_changed",
                            f"account {row.login}: {', '.join(done)} ({reason.strip()[:200]})", actor)
            agency = await self._agency_row(uow, row.agency_id)
            return _account((await uow.conn.execute(select(agency_accounts).where(
                agency_accounts.c.id == row.id))).one(), agency)

        return await self.uow.run("tourism_agency_account_change", work)

    async def agency_accounts_of(self, agency_id: str) -> list[AgencyAccount]:
        async def work(uow: UnitOfWork) -> tuple[Any, list[Any]]:
            agency = await self._agency_row(uow, agency_id)
            return agency, list(await uow.conn.execute(select(agency_accounts).where(
                agency_accounts.c.agency_id == agency_id).order_by(agency_accounts.c.login)))

        agency, rows = await self.uow.run("tourism_agency_accounts", work)
        return [_account(r, agency) for r in rows]

    async def account_sign_in(self, login: str, password: str, *, guide: bool, client: str = "") -> tuple[
            AgencyAccount, str]:
        """Sign in to the agency's pages (``guide=False``: manager or staff) or to the guide
        assistant (``guide=True``: a guide's account): the platform's staff sign-in, with its
        lockout after wrong passwords; an account of the other kind opens nothing."""
        roles = ("guide",) if guide else ("manager", "staff")

        async def find(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(agency_accounts).where(
                agency_accounts.c.login == login.strip()))).first()

        row = await self.uow.run("tourism_account_find", find)
        ok = await self.accounts.check_password(row.password_hash if row is not None else None, password)
        if row is None:
            raise errors.AgencySignInFailed()

        async def work(uow: UnitOfWork) -> tuple[Any, str | None]:
            outcome, token = await self.accounts.start(
                uow.conn, uow.now, row.id, ok, who=f"{'guide' if guide else 'agency'}:{row.login}", client=client,
                reason="signed in to the guide assistant" if guide else "signed in to the agency's pages",
                may_sign_in=lambda r: not r.disabled and r.role in roles)
            return await self._agency_row(uow, row.agency_id), token if outcome is SignIn.OK else None

        agency, token = await self.uow.run("tourism_account_sign_in", work)
        if token is None:
            raise errors.AgencySignInFailed()
        return _account(row, agency), token

    async def account(self, token: str, *, guide: bool) -> AgencyAccount:
        """The agency account (or, ``guide=True``, the guide) a live session token belongs to."""
        roles = ("guide",) if guide else ("manager", "staff")

        async def work(uow: UnitOfWork) -> tuple[Any, Any]:
            row = await self.accounts.holder(uow.conn, uow.now, token)
            if row is None or row.role not in roles:
                return None, None
            return row, await self._agency_row(uow, row.agency_id)

        row, agency = await self.uow.run("tourism_account", work)
        if row is None:
            raise errors.AgencySessionInvalid()
        return _account(row, agency)

    async def account_sign_out(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self.accounts.end(uow.conn, uow.now, token)

        await self.uow.run("tourism_account_sign_out", work)

    async def _once(self, uow: UnitOfWork, me: AgencyAccount, kind: str, key: str, body: dict[str, Any]
                    ) -> tuple[str, str | None]:
        """An agency write's Idempotency-Key: its row id and what it made the first time (None:
        new); the key used before for another request is refused."""
        # the agency's writes one after another: two sends of one key in flight make one row
        await uow.conn.execute(select(agencies.c.id).where(agencies.c.id == me.agency_id).with_for_update())
        wid = derived_id("taw_", me.agency_id, key)[:40]
        fingerprint = hashlib.sha256(json.dumps([kind, body], sort_keys=True, ensure_ascii=False,
                                                default=str).encode()).hexdigest()
        row = (await uow.conn.execute(select(agency_writes).where(agency_writes.c.id == wid))).first()
        if row is not None and row.fingerprint != fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was used for another request")
        return fingerprint, row.result_id if row is not None else None

    async def _wrote(self, uow: UnitOfWork, me: AgencyAccount, kind: str, key: str, fingerprint: str,
                     result_id: str) -> None:
        await uow.conn.execute(insert(agency_writes).values(
            id=derived_id("taw_", me.agency_id, key)[:40], agency_id=me.agency_id, kind=kind, fingerprint=fingerprint,
            result_id=result_id, created_at=uow.now))

    def _manager(self, me: AgencyAccount) -> None:
        if me.role != "manager":
            raise errors.AgencyManagerOnly(f"{me.login} is {me.role}; ask the agency's manager")

    async def my_agency(self, me: AgencyAccount) -> Entry:
        """The agency as the bureau has it registered, with its account's balance."""
        return await self.agency(me.viewer, me.agency_id)

    async def my_outlet_add(self, me: AgencyAccount, kind: str, name: str, address: str, phone: str, manager: str, *,
                            idempotency_key: str) -> tuple[dict[str, Any], bool]:
        """The manager adds a branch (分社) or outlet (门市部): in the operations log."""
        self._manager(me)
        key = check_idempotency_key(idempotency_key)
        if kind not in ("branch", "outlet"):
            raise errors.AgencyInputInvalid("kind is branch (分社) or outlet (门市部)", field="kind")
        body = {"kind": kind, "name": _agency_text(name, "name", 80), "address": _agency_text(address, "address", 120),
                "phone": _landline(phone), "manager": _agency_text(manager, "manager", 40)}
        oid = "tou_" + hashlib.sha256(f"{me.agency_id}:{kind}:{body['name']}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> bool:
            fingerprint, done = await self._once(uow, me, "outlet", key, body)
            if done is not None:
                return True
            if (await uow.conn.execute(select(outlets.c.id).where(outlets.c.id == oid))).first():
                raise errors.AgencyDuplicate(f"the agency has a {kind} named {body['name']}", field="name")
            await uow.conn.execute(insert(outlets).values(id=oid, agency_id=me.agency_id, created_at=uow.now, **body))
            await self._log(uow, me.agency_id, me.staff_id, "outlet_added",
                            f"{kind} {body['name']}, {body['address']}", me.actor)
            await uow.audit(actor=me.actor, action="tourism.agency_outlet_add", target=oid, reason=body["name"])
            await self._wrote(uow, me, "outlet", key, fingerprint, oid)
            return False

        replayed = await self.uow.run("tourism_my_outlet_add", work)
        return {"id": oid, **body}, replayed

    async def my_staff_add(self, me: AgencyAccount, role: str, name: str, phone: str, licence: str, *,
                           idempotency_key: str) -> tuple[dict[str, Any], bool]:
        """The manager adds a guide (with the 导游证 number), a coach driver (with the plate) or
        sales staff: in the directory the bureau searches, and in the operations log."""
        self._manager(me)
        key = check_idempotency_key(idempotency_key)
        if role not in STAFF_ROLES:
            raise errors.AgencyInputInvalid(f"role is one of {', '.join(STAFF_ROLES)}", field="role")
        body = {"role": role, "name": _agency_text(name, "name", 40),
                "phone": _phone(phone, "phone", errors.AgencyInputInvalid),
                "licence": _agency_text(licence, "licence", 32, required=role != "sales")}
        if role == "guide" and not GUIDE_LICENCE.fullmatch(body["licence"]):
            raise errors.AgencyInputInvalid("a guide's licence (导游证号) is like D-4305-001234", field="licence")
        sid = "tst_" + hashlib.sha256(f"{me.agency_id}:{role}:{body['phone']}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> bool:
            fingerprint, done = await self._once(uow, me, "staff", key, body)
            if done is not None:
                return True
            if (await uow.conn.execute(select(staff.c.id).where(staff.c.id == sid))).first():
                raise errors.AgencyDuplicate(f"the agency has a {role} with the phone {body['phone']}", field="phone")
            await uow.conn.execute(insert(staff).values(id=sid, agency_id=me.agency_id, county=me.county,
                                                        penalty_points=0, active=True, created_at=uow.now, **body))
            await self._log(uow, me.agency_id, me.staff_id, "staff_added",
                            f"{role} {body['name']} {body['licence']}".strip(), me.actor)
            await uow.audit(actor=me.actor, action="tourism.agency_staff_add", target=sid, reason=body["name"])
            await self._wrote(uow, me, "staff", key, fingerprint, sid)
            return False

        replayed = await self.uow.run("tourism_my_staff_add", work)
        return {"id": sid, "penalty_points": 0, "active": True, **body}, replayed

    async def my_staff_member(self, me: AgencyAccount, staff_id: str) -> dict[str, Any]:
        """One of the agency's people; another agency's is not found."""
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(staff).where(staff.c.id == staff_id))).first()

        r = await self.uow.run("tourism_my_staff", work)
        if r is None or r.agency_id != me.agency_id:
            raise errors.DirectoryEntryNotFound(f"no staff member {staff_id} of your agency")
        return {"id": r.id, "role": r.role, "name": r.name, "phone": r.phone, "licence": r.licence,
                "penalty_points": r.penalty_points, "active": r.active}

    async def my_contract_file(self, me: AgencyAccount, tourist_name: str, tourist_phone: str, starts_at: datetime,
                               ends_at: datetime, itinerary: Sequence[str], *, guide_id: str | None,
                               driver_id: str | None, price: int, people: int, idempotency_key: str
                               ) -> tuple[dict[str, Any], bool]:
        """File a tour contract with the bureau (a customer and their tour): the promised spots
        of the county, the agency's own guide and driver. In the operations log."""
        key = check_idempotency_key(idempotency_key)
        name = _agency_text(tourist_name, "tourist_name", 40)
        mobile = _phone(tourist_phone, "tourist_phone", errors.AgencyInputInvalid)
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise errors.AgencyInputInvalid("the tour's times carry their offset (+08:00)", field="starts_at")
        if not (2000 <= starts_at.year <= 2100 and 2000 <= ends_at.year <= 2100):
            raise errors.AgencyInputInvalid("the tour's dates are between 2000 and 2100", field="starts_at")
        if not timedelta(0) < ends_at - starts_at <= timedelta(days=15):
            raise errors.AgencyInputInvalid("a tour ends after it starts, within 15 days", field="ends_at")
        spots_wanted = [str(s) for s in itinerary]
        if not 1 <= len(spots_wanted) <= 20 or len(set(spots_wanted)) != len(spots_wanted):
            raise errors.AgencyInputInvalid("the itinerary is 1-20 different scenic spots", field="itinerary")
        if not 0 <= price <= 100_000_000 or not 1 <= people <= 500:
            raise errors.AgencyInputInvalid("price is 0-1,000,000.00 CNY (fen) and people 1-500", field="price")
        body = {"tourist_name": name, "tourist_phone": mobile, "starts_at": as_utc(starts_at).isoformat(),
                "ends_at": as_utc(ends_at).isoformat(), "itinerary": spots_wanted, "guide_id": guide_id,
                "driver_id": driver_id, "price": price, "people": people}
        cid = "tct_" + hashlib.sha256(f"{me.agency_id}:{mobile}:{starts_at.isoformat()}".encode()).hexdigest()[:20]

        async def work(uow: UnitOfWork) -> tuple[str, bool]:
            fingerprint, done = await self._once(uow, me, "contract", key, body)
            if done is not None:
                return done, True
            for person, role in ((guide_id, "guide"), (driver_id, "driver")):
                if person is None:
                    continue
                row = (await uow.conn.execute(select(staff).where(staff.c.id == person))).first()
                if row is None or row.agency_id != me.agency_id or row.role != role:
                    raise errors.DirectoryEntryNotFound(f"no {role} {person} of your agency")
            known = {r[0] for r in await uow.conn.execute(select(places.c.id).where(
                places.c.id.in_(spots_wanted), places.c.kind == "spot", places.c.county == me.county))}
            missing = [s for s in spots_wanted if s not in known]
            if missing:
                raise errors.AgencyInputInvalid(f"not scenic spots of the county: {', '.join(missing)}",
                                                field="itinerary")
            if (await uow.conn.execute(select(contracts.c.id).where(contracts.c.id == cid))).first():
                raise errors.AgencyDuplicate(f"a contract of {mobile} starting then is filed", field="starts_at")
            await uow.conn.execute(insert(contracts).values(
                id=cid, agency_id=me.agency_id, county=me.county, tourist_name=name, tourist_phone=mobile,
                tour_date=starts_at.astimezone(SHANGHAI).date().isoformat(), starts_at=starts_at.astimezone(UTC),
                ends_at=ends_at.astimezone(UTC), itinerary=json.dumps(spots_wanted), guide_id=guide_id,
                driver_id=driver_id, price=price, people=people, filed_at=uow.now))
            await self._log(uow, me.agency_id, me.staff_id, "contract_filed",
                            f"{cid}: {name}, {len(spots_wanted)} spots, {starts_at.astimezone(SHANGHAI):%Y-%m-%d}",
                            me.actor)
            await uow.audit(actor=me.actor, action="tourism.agency_contract_file", target=cid,
                            reason=f"{name} {starts_at.astimezone(SHANGHAI):%Y-%m-%d}")
            await self._wrote(uow, me, "contract", key, fingerprint, cid)
            return cid, False

        made, replayed = await self.uow.run("tourism_my_contract_file", work)
        return await self.my_contract(me, made), replayed

    async def my_contract(self, me: AgencyAccount, contract_id: str) -> dict[str, Any]:
        """One filed contract of the agency with its check-ins; another agency's is not found."""
        async def work(uow: UnitOfWork) -> tuple[Any, list[Any]]:
            r = (await uow.conn.execute(select(contracts).where(contracts.c.id == contract_id))).first()
            if r is None or r.agency_id != me.agency_id:
                return None, []
            return r, list(await uow.conn.execute(select(checkins).where(checkins.c.contract_id == contract_id)
                                                  .order_by(checkins.c.at)))

        r, done = await self.uow.run("tourism_my_contract", work)
        if r is None:
            raise errors.ContractNotFound(f"no contract {contract_id} of your agency")
        return {"id": r.id, "tourist_name": r.tourist_name, "tourist_phone": r.tourist_phone,
                "tour_date": r.tour_date, "starts_at": as_utc(r.starts_at).isoformat(),
                "ends_at": as_utc(r.ends_at).isoformat(), "itinerary": json.loads(r.itinerary),
                "guide_id": r.guide_id, "driver_id": r.driver_id, "price": r.price, "people": r.people,
                "filed_at": as_utc(r.filed_at).isoformat(),
                "checked_in": [{"spot_id": c.spot_id, "at": as_utc(c.at).isoformat(), "at_spot": c.at_spot,
                                "distance_m": c.distance_m} for c in done]}

    async def county_spots(self, county: str) -> list[dict[str, Any]]:
        """The county's scenic spots (what an itinerary is made of), by name."""
        return [{"id": s.id, "name": s.name, "lat": s.lat, "lon": s.lon, "radius_m": s.radius_m}
                for s in sorted((await self.spots(county)).values(), key=lambda s: s.name)]

    # ------------------------------------------------------------------ the guide assistant

    async def guide_today(self, me: AgencyAccount, day: date) -> list[dict[str, Any]]:
        """The guide's tours of a day: each promised spot with its place and the check-ins there."""
        if me.staff_id is None:
            raise errors.AgencySessionInvalid("this account is not a guide's")
        spots = await self.spots(me.county)
        tours = await self.todays_tour(me.staff_id, day)
        for t in tours:
            ct = await self.my_contract(me, t["contract_id"])
            t.update(ends_at=ct["ends_at"], people=ct["people"], tour_date=ct["tour_date"])
            t["spots"] = [{"id": s, "name": spots[s].name if s in spots else s,
                           "lat": spots[s].lat if s in spots else None, "lon": spots[s].lon if s in spots else None,
                           "radius_m": spots[s].radius_m if s in spots else None,
                           "checked_in": [c for c in t["checked_in"] if c["spot_id"] == s]}
                          for s in t["itinerary"]]
        return tours

    async def guide_check_in(self, me: AgencyAccount, contract_id: str, spot_id: str, lat: float, lon: float, *,
                             idempotency_key: str, taken_at: datetime | None = None) -> dict[str, Any]:
        """The guide checks in at a promised spot with the phone's position (see ``check_in``)."""
        if me.staff_id is None:
            raise errors.AgencySessionInvalid("this account is not a guide's")
        return await self.check_in(me.staff_id, contract_id, spot_id, lat, lon, taken_at=taken_at,
                                   idempotency_key=check_idempotency_key(idempotency_key), actor=me.actor)

    # ------------------------------------------------------------------ work orders

    async def complain(self, officer: Officer, c: Complaint, *, idempotency_key: str) -> WorkOrder:
        """A complaint entered on site: the work order is created at once, deadlines set by the
        rules; the same key again (the phone's queue sending it twice) is the same order."""
        key = check_idempotency_key(idempotency_key)
        oid = derived_id("two_", officer.id, key)
        name = _text(c.complainant_name, "complainant_name", 40)
        phone = _phone(c.complainant_phone, "complainant_phone")
        cause = check_cause(c.cause)
        facts = _text(c.facts, "facts", 4000)
        demands = _text(c.demands, "demands", 1000)
        if not 1 <= c.complainants <= 500:
            raise errors.ComplaintInvalid("complainants is 1-500", field="complainants")

        async def work(uow: UnitOfWork) -> tuple[str, bool]:
            known = (await uow.conn.execute(select(work_orders).where(work_orders.c.id == oid))).first()
            if known is not None:
                if known.complainant_phone != phone or known.cause != cause or known.facts != facts:
                    raise IdempotencyConflict("this Idempotency-Key was used for another complaint")
                return oid, True
            if c.contract_id:
                ct = (await uow.conn.execute(select(contracts).where(contracts.c.id == c.contract_id))).first()
                if ct is None:
                    raise errors.ContractNotFound(f"no filed contract {c.contract_id}")
                agency_id, guide, driver = ct.agency_id, ct.guide_id, ct.driver_id
                starts, ends = as_utc(ct.starts_at), as_utc(ct.ends_at)
                itinerary = tuple(json.loads(ct.itinerary))
                day = date.fromisoformat(ct.tour_date)
                contract_county = ct.county
            else:
                if not c.agency_id or c.tour_date is None:
                    raise errors.ComplaintInvalid("name the agency and the tour date, or the filed contract",
                                                  field="contract_id")
                agency_id, guide, driver, day = c.agency_id, c.guide_id, c.driver_id, c.tour_date
                starts = datetime.combine(day, datetime.min.time(), SHANGHAI).replace(hour=7).astimezone(UTC)
                ends = starts + timedelta(hours=12)
                itinerary, contract_county = tuple(c.itinerary), None
            agency = await self._agency_row(uow, agency_id)
            in_jurisdiction = officer.county in (agency.county, contract_county)
            accept_by = accept_deadline(uow.now, self.calendar)
            await uow.conn.execute(insert(work_orders).values(
                id=oid, county=officer.county, officer_id=officer.id, state=OrderState.RECEIVED.value,
                complainant_name=name, complainant_phone=phone, complainants=c.complainants, agency_id=agency_id,
                guide_id=guide, driver_id=driver, contract_id=c.contract_id, tour_date=day.isoformat(),
                tour_starts_at=starts, tour_ends_at=ends, itinerary=json.dumps(list(itinerary)), cause=cause,
                facts=facts, demands=demands, location_consent=bool(c.location_consent), before_court=c.before_court,
                received_at=uow.now, accept_by=accept_by, escalation=0, updated_at=uow.now))
            detail = f"received; accept or refuse by {accept_by.astimezone(SHANGHAI):%Y-%m-%d}"
            if not in_jurisdiction:
                detail += "; the respondent and the contract are outside this county"
            if c.location_consent:
                detail += "; the complainant consents to a location query"
            await self._step(uow, oid, officer.viewer.actor, "received", detail)
            await self._regroup(uow, agency_id, cause, day)
            return oid, False

        oid2, replayed = await self.uow.run("tourism_complain", work)
        order = await self._order(oid2)
        if replayed:
            order = _replace(order, replayed=True)
        return order

    async def _regroup(self, uow: UnitOfWork, agency_id: str, cause: str, day: date) -> None:
        """Four or more complainants with the same cause against the same agency on the same
        tour day: their open orders become one group complaint."""
        rows = list(await uow.conn.execute(select(work_orders.c.id, work_orders.c.complainants, work_orders.c.state,
                                                  work_orders.c.group_id).where(
            work_orders.c.agency_id == agency_id, work_orders.c.cause == cause,
            work_orders.c.tour_date == day.isoformat())))
        open_rows = [r for r in rows if OrderState(r.state) not in FINAL]
        members = group_members(GroupCandidate(r.id, agency_id, cause, r.complainants) for r in open_rows)
        ids = members.get((agency_id, cause), [])
        if not ids:
            return
        gid = group_id(agency_id, cause, day)
        for r in open_rows:
            if r.group_id != gid:
                await uow.conn.execute(update(work_orders).where(work_orders.c.id == r.id).values(group_id=gid))
                await self._step(uow, r.id, "system", "grouped",
                                 f"group complaint {gid}: {sum(x.complainants for x in open_rows)} complainants")

    async def _step(self, uow: UnitOfWork, order_id: str, actor: str, step: str, detail: str) -> None:
        """A step of the order: in its own history and in the platform's audit."""
        await uow.conn.execute(insert(order_steps).values(order_id=order_id, at=uow.now, actor=actor, step=step,
                                                          detail=detail))
        await uow.audit(actor=actor, action=f"tourism.order_{step}", target=order_id, reason=detail[:500])

    async def _order(self, order_id: str) -> WorkOrder:
        async def work(uow: UnitOfWork) -> tuple[Any, list[Any]]:
            row = (await uow.conn.execute(select(work_orders).where(work_orders.c.id == order_id))).first()
            if row is None:
                raise errors.WorkOrderNotFound(f"no work order {order_id}")
            steps = list(await uow.conn.execute(select(order_steps).where(order_steps.c.order_id == order_id)
                                                .order_by(order_steps.c.id)))
            return row, steps

        row, steps = await self.uow.run("tourism_order", work)
        return _work_order(row, steps)

    async def work_order(self, viewer: Viewer, order_id: str) -> WorkOrder:
        """One work order; another county's is answered as not found."""
        order = await self._order(order_id)
        if viewer.county is not None and order.county != viewer.county:
            raise errors.OtherCounty(f"no work order {order_id} in your county")
        return order

    async def work_orders(self, viewer: Viewer, state: str = "", limit: int = 100) -> list[WorkOrder]:
        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(work_orders)
            if viewer.county is not None:
                q = q.where(work_orders.c.county == viewer.county)
            if state:
                q = q.where(work_orders.c.state == state)
            return list(await uow.conn.execute(q.order_by(work_orders.c.received_at.desc()).limit(limit)))

        return [_work_order(r, []) for r in await self.uow.run("tourism_orders", work)]

    async def _change(self, viewer: Viewer, order_id: str, to: OrderState, step: str, detail: str,
                      values: dict[str, Any], check: Any = None, after: Any = None) -> WorkOrder:
        async def work(uow: UnitOfWork) -> None:
            row = (await uow.conn.execute(select(work_orders).where(work_orders.c.id == order_id)
                                          .with_for_update())).first()
            if row is None or (viewer.county is not None and row.county != viewer.county):
                raise errors.OtherCounty(f"no work order {order_id} in your county")
            check_step(OrderState(row.state), to)
            if check is not None:
                check(row, uow.now)
            extra = values(row, uow.now) if callable(values) else values
            await uow.conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(
                state=to.value, updated_at=uow.now, **extra))
            await self._step(uow, order_id, viewer.actor, step, detail)
            if after is not None:
                await after(uow, row)

        await self.uow.run(f"tourism_order_{step}", work)
        return await self._order(order_id)

    async def accept(self, viewer: Viewer, order_id: str) -> WorkOrder:
        """Accept the complaint: the respondent is notified now, its written reply is due in 10
        days and mediation must conclude in 60. A complaint the rules say must be refused (time
        barred, before a court or another mediator) cannot be accepted."""
        def check(row: Any, now: datetime) -> None:
            grounds = refusal_grounds(tour_ended=as_utc(row.tour_ends_at).astimezone(SHANGHAI).date(),
                                      received_on=as_utc(row.received_at).astimezone(SHANGHAI).date(),
                                      before_court=row.before_court, already_handled=False, in_jurisdiction=True)
            if grounds:
                raise errors.OrderStateConflict(
                    "the rules say this complaint is not accepted: " + ", ".join(g.value for g in grounds),
                    grounds=[g.value for g in grounds])

        def values(row: Any, now: datetime) -> dict[str, Any]:
            reply_by, mediate_by = after_acceptance(now)
            return {"decided_at": now, "reply_by": reply_by, "mediate_by": mediate_by}

        async def notify(uow: UnitOfWork, row: Any) -> None:  # the respondent's notice, by SMS to its manager
            agency = await self._agency_row(uow, row.agency_id)
            reply_by, _ = after_acceptance(uow.now)
            county = counties().get(row.county)
            await uow.emit(SmsRequested(key=f"{row.id}:notice", to=agency.manager_phone, template="tourism.notice",
                                        params={"bureau": f"{county.name if county else row.county}旅游投诉受理机构",
                                                "date": row.tour_date, "order": row.id[-8:],
                                                "until": f"{reply_by.astimezone(SHANGHAI):%Y-%m-%d}"}))

        return await self._change(viewer, order_id, OrderState.ACCEPTED, "accepted",
                                  "accepted; the respondent is notified to reply in writing within 10 days",
                                  values, check, after=notify)  # type: ignore[arg-type]

    async def refuse(self, viewer: Viewer, order_id: str, grounds: Sequence[str], words: str) -> WorkOrder:
        """Refuse with reasons; outside jurisdiction the complaint is transferred instead."""
        try:
            wanted = [RefusalGround(g) for g in grounds]
        except ValueError as exc:
            raise errors.RefusalReasonRequired(f"grounds are {', '.join(g.value for g in RefusalGround)}") from exc
        if not wanted or not words.strip():
            raise errors.RefusalReasonRequired("a refusal names its grounds and explains them")
        to = OrderState.TRANSFERRED if wanted == [RefusalGround.NO_JURISDICTION] else OrderState.REFUSED
        body = {"grounds": [g.value for g in wanted], "words": words.strip()[:2000]}
        return await self._change(viewer, order_id, to, to.value, f"{to.value}: {', '.join(body['grounds'])}: "
                                  f"{body['words']}", lambda r, now: {"decided_at": now,  # type: ignore[arg-type]
                                                                       "refusal": json.dumps(body, ensure_ascii=False)})

    async def record_reply(self, viewer: Viewer, order_id: str, text: str) -> WorkOrder:
        reply = _text(text, "reply", 4000)
        return await self._change(viewer, order_id, OrderState.REPLIED, "replied", "the respondent's written reply",
                                  {"reply": reply})

    async def mediate(self, viewer: Viewer, order_id: str, outcome: str, record: str) -> WorkOrder:
        """Mediation agreed: the mediation record (旅游投诉调解书) and its outcome."""
        try:
            result = Outcome(outcome)
        except ValueError as exc:
            raise ValidationFailed(f"an outcome is one of {', '.join(o.value for o in Outcome)}",
                                   field="outcome") from exc
        text = _text(record, "record", 4000)
        return await self._change(viewer, order_id, OrderState.MEDIATED, "mediated", f"{result.value}: {text}",
                                  {"outcome": result.value, "record": text})

    async def terminate(self, viewer: Viewer, order_id: str, reasons: str) -> WorkOrder:
        """No agreement: mediation terminated (终止调解书); the tourist may go to arbitration or court."""
        text = _text(reasons, "reasons", 4000)
        return await self._change(viewer, order_id, OrderState.TERMINATED, "terminated", text, {"record": text})

    async def escalate_overdue(self, limit: int = 200) -> int:
        """The worker's job: each open work order past a deadline is escalated once per missed
        step (to the bureau's head: a step and an audit entry, and the level it reached)."""
        now = self.uow.clock.now()

        async def work(uow: UnitOfWork) -> int:
            rows = list(await uow.conn.execute(select(work_orders).where(
                work_orders.c.state.in_([OrderState.RECEIVED.value, OrderState.ACCEPTED.value,
                                         OrderState.REPLIED.value]),
                or_(work_orders.c.accept_by < now, work_orders.c.reply_by < now, work_orders.c.mediate_by < now))
                .order_by(work_orders.c.received_at).limit(limit).with_for_update()))
            n = 0
            for r in rows:
                step = overdue_step(OrderState(r.state), now, _deadlines(r))
                if step is None or step == r.escalated_step:
                    continue
                await uow.conn.execute(update(work_orders).where(work_orders.c.id == r.id).values(
                    escalation=r.escalation + 1, escalated_step=step, updated_at=uow.now))
                await self._step(uow, r.id, "system", "escalated",
                                 f"overdue: the {step} deadline passed; escalated to level {r.escalation + 1}")
                n += 1
            return n

        n = await self.uow.run("tourism_escalate", work)
        if n:
            log.info("tourism.escalated", orders=n)
        return n

    # ------------------------------------------------------------------ route replay

    async def replay_route(self, viewer: Viewer, order_id: str, *, subject: str = "guide",
                           stay_distance_m: float = STAY_DISTANCE_M,
                           stay_duration: timedelta = STAY_DURATION) -> Replay:
        """Ask the location platform for the guide's (or coach driver's) phone over the tour's
        hours, with the consent recorded in the work order; find the stops and give each promised
        spot its verdict. Coarse fixes (worse than the stay distance) are left out."""
        order = await self.work_order(viewer, order_id)
        if not order.location_consent:
            raise errors.ConsentRequired("the complainant did not consent to a location query in this work order")
        person = order.guide_id if subject == "guide" else order.driver_id if subject == "driver" else None
        if person is None:
            raise ValidationFailed(f"the work order names no {subject}", field="subject")
        if not (50 <= stay_distance_m <= 1000 and timedelta(minutes=5) <= stay_duration <= timedelta(hours=3)):
            raise ValidationFailed("stay distance is 50-1000 m and duration 5-180 min", field="stay")

        async def who(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(staff).where(staff.c.id == person))).first()

        row = await self.uow.run("tourism_replay_who", who)
        if row is None:
            raise errors.DirectoryEntryNotFound(f"no {subject} {person}")
        fixes = await self.location.track(row.phone, order.tour_starts_at, order.tour_ends_at,
                                          consent_ref=f"{order.id}:consent")
        if not fixes:
            raise errors.NoTrack(f"no positions of {subject} {row.name}'s phone over the tour's hours")
        usable = sorted((f for f in fixes if f.accuracy_m <= stay_distance_m), key=lambda f: f.at)
        stops = stay_points(usable, distance_m_=stay_distance_m, duration=stay_duration)
        spots = await self.spots(order.county)
        promised = [spots[s] for s in order.itinerary if s in spots]
        found = verdicts(promised, usable, stops)
        rid = new_id("trr")

        async def save(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(replays).values(
                id=rid, order_id=order.id, subject=subject, phone=row.phone, officer_id=viewer.actor,
                from_at=order.tour_starts_at, to_at=order.tour_ends_at,
                track=json.dumps([[f.at.isoformat(), f.lat, f.lon, f.accuracy_m] for f in usable]),
                stops=json.dumps([_stop_json(s) for s in stops]), verdicts=json.dumps([_verdict_json(v) for v in found],
                                                                                      ensure_ascii=False),
                stay_distance_m=round(stay_distance_m), stay_minutes=round(stay_duration.total_seconds() / 60),
                created_at=uow.now))
            missed = [v.spot.name for v in found if not v.visited]
            await self._step(uow, order.id, viewer.actor, "route_replayed",
                             f"{subject}'s phone: {len(usable)} fixes, {len(stops)} stops; "
                             + (f"not visited: {', '.join(missed)}" if missed else "every promised spot visited"))

        await self.uow.run("tourism_replay_save", save)
        return Replay(rid, order.id, subject, row.phone, tuple(usable), tuple(stops), tuple(found),
                      round(stay_distance_m), round(stay_duration.total_seconds() / 60))

    async def replays_of(self, viewer: Viewer, order_id: str) -> list[dict[str, Any]]:
        """The order's route replays as saved (what the map draws)."""
        await self.work_order(viewer, order_id)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(replays).where(replays.c.order_id == order_id)
                                               .order_by(replays.c.created_at)))

        return [{"id": r.id, "subject": r.subject, "phone": r.phone, "track": json.loads(r.track),
                 "stops": json.loads(r.stops), "verdicts": json.loads(r.verdicts),
                 "stay_distance_m": r.stay_distance_m, "stay_minutes": r.stay_minutes,
                 "created_at": as_utc(r.created_at).isoformat()} for r in await self.uow.run("tourism_replays", work)]

    # ------------------------------------------------------------------ outcome

    async def refund(self, viewer: Viewer, order_id: str, amount: object, *, method: str = "wallet",
                     bank_reference: str = "", idempotency_key: str) -> RefundDone:
        """The agency refunds the tourist as mediated: from its account to the complainant's
        wallet (one ledger transfer), or by bank with its reference recorded."""
        fen = check_amount(amount)
        key = check_idempotency_key(idempotency_key)
        if method not in ("wallet", "bank"):
            raise errors.RefundInvalid("a refund is paid to the wallet or by bank", field="method")
        if method == "bank" and not bank_reference.strip():
            raise errors.RefundInvalid("a bank refund names the bank's reference", field="bank_reference")
        order = await self.work_order(viewer, order_id)
        rid = derived_id("trf_", order_id, key)
        recipients = await self._recipient(order.complainant_phone) if method == "wallet" else None

        async def work(uow: UnitOfWork) -> RefundDone:
            known = (await uow.conn.execute(select(refunds).where(refunds.c.id == rid))).first()
            if known is not None:
                if known.amount != fen or known.method != method:
                    raise IdempotencyConflict("this Idempotency-Key was used for another refund")
                return RefundDone(rid, order_id, fen, method, known.transfer_id, known.bank_reference, True)
            row = (await uow.conn.execute(select(work_orders).where(work_orders.c.id == order_id)
                                          .with_for_update())).one()
            if row.state != OrderState.MEDIATED.value or row.outcome not in (Outcome.UPHELD.value,
                                                                             Outcome.PARTLY.value):
                raise errors.OrderStateConflict("a refund follows a mediation that upheld the complaint",
                                                state=row.state)
            tid = None
            if method == "wallet":
                if recipients is None:
                    raise errors.TouristHasNoWallet(f"{order.complainant_phone} has no wallet; the agency pays by bank")
                tid = f"tourism:{rid}"
                [result] = await uow.post([Transfer(tid, (Leg.debit(agency_account(row.agency_id), fen),
                                                          Leg.credit(recipients, fen)),
                                                    "tourism.refund", reference=order_id,
                                                    metadata={"work_order": order_id})])
                if result.error is not None:
                    if result.error.code == "INSUFFICIENT_FUNDS":
                        raise errors.AgencyFundsShort("the agency's account does not hold the refund; it pays by bank")
                    raise result.error
            await uow.conn.execute(insert(refunds).values(
                id=rid, order_id=order_id, agency_id=row.agency_id, amount=fen, method=method,
                tourist_phone=order.complainant_phone, transfer_id=tid, bank_reference=bank_reference.strip() or None,
                officer_id=viewer.actor, created_at=uow.now))
            await self._step(uow, order_id, viewer.actor, "refunded",
                             f"{fen} fen to the tourist {'in the wallet' if tid else 'by bank ' + bank_reference}")
            agency = await self._agency_row(uow, row.agency_id)
            await uow.emit(SmsRequested(key=f"{rid}:refunded", to=order.complainant_phone, template="tourism.refunded",
                                        params={"agency": agency.name, "amount_fen": fen, "order": order_id[-8:]}))
            return RefundDone(rid, order_id, fen, method, tid, bank_reference.strip() or None)

        return await self.uow.run("tourism_refund", work)

    async def _recipient(self, msisdn: str) -> str | None:
        async def work(uow: UnitOfWork) -> str | None:
            found = (await self.wallet.recipients_in(uow, [msisdn])).get(msisdn)
            return found.account_code if found is not None and found.status == "active" else None

        return await self.uow.run("tourism_recipient", work)

    async def penalise(self, viewer: Viewer, order_id: str, target_kind: str, kind: str, reason: str, *,
                       amount: int = 0, points: int = 0) -> Penalty:
        """A penalty record on the respondent agency or the order's guide or driver."""
        if target_kind not in ("agency", "guide", "driver") or kind not in ("warning", "fine", "points"):
            raise ValidationFailed("target agency|guide|driver, kind warning|fine|points", field="kind")
        if amount < 0 or points < 0 or (kind == "fine" and amount <= 0) or (kind == "points" and points <= 0):
            raise ValidationFailed("a fine has an amount, points a number of points", field="amount")
        text = _text(reason, "reason", 1000)
        order = await self.work_order(viewer, order_id)
        target = {"agency": order.agency_id, "guide": order.guide_id, "driver": order.driver_id}[target_kind]
        if target is None:
            raise ValidationFailed(f"the work order names no {target_kind}", field="target_kind")
        pid = new_id("tpn")

        async def work(uow: UnitOfWork) -> Penalty:
            await uow.conn.execute(insert(penalties).values(
                id=pid, order_id=order_id, target_kind=target_kind, target_id=target, kind=kind, amount=amount,
                points=points, reason=text, officer_id=viewer.actor, created_at=uow.now))
            table = agencies if target_kind == "agency" else staff
            if points:
                await uow.conn.execute(update(table).where(table.c.id == target).values(
                    penalty_points=table.c.penalty_points + points))
            await self._step(uow, order_id, viewer.actor, "penalised", f"{kind} on {target_kind} {target}: {text}")
            return Penalty(pid, target_kind, target, kind, amount, points, text, uow.now)

        return await self.uow.run("tourism_penalise", work)

    async def penalties_of(self, target_id: str) -> list[Penalty]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(penalties).where(penalties.c.target_id == target_id)
                                               .order_by(penalties.c.created_at)))

        return [Penalty(r.id, r.target_kind, r.target_id, r.kind, r.amount, r.points, r.reason, as_utc(r.created_at))
                for r in await self.uow.run("tourism_penalties", work)]

    # ------------------------------------------------------------------ evidence

    async def upload_evidence(self, officer: Officer, order_id: str, data: bytes, *, sha256: str,
                              captured_at: datetime, device_id: str, client_id: str, lat: float | None = None,
                              lon: float | None = None, note: str = "") -> Evidence:
        """A photo or recording from the officer's terminal: the bytes must hash to what the
        phone recorded at capture; kept once by hash; captured and uploaded in its custody. The
        same capture sent again (the queue retrying) is the same evidence."""
        if device_id != officer.device_id:
            raise errors.OfficerDeviceNotBound("evidence comes from the officer's own terminal")
        check_idempotency_key(client_id)
        kind, content_type, suffix = evidence_type(data)
        sha = check_sha256(data, sha256)
        if (lat is not None and not -90 <= lat <= 90) or (lon is not None and not -180 <= lon <= 180):
            raise errors.EvidenceInvalid("latitude -90..90, longitude -180..180", field="lat")
        order = await self.work_order(officer.viewer, order_id)
        eid = derived_id("tev_", officer.id, client_id)
        captured = as_utc(captured_at).astimezone(UTC)

        async def known(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(evidence).where(evidence.c.id == eid))).first()

        row = await self.uow.run("tourism_evidence_known", known)
        if row is not None:
            if row.sha256 != sha:
                raise IdempotencyConflict("this capture id was used for another file")
            return _evidence(row, replayed=True)
        if captured > self.uow.clock.now() + timedelta(minutes=5):
            raise errors.EvidenceInvalid("the capture time is in the future", field="captured_at")
        await asyncio.to_thread(_keep, self.evidence_dir / f"{sha}.{suffix}", data)

        async def work(uow: UnitOfWork) -> Any:
            again = (await uow.conn.execute(select(evidence).where(evidence.c.id == eid))).first()
            if again is not None:
                return again
            values = dict(id=eid, order_id=order.id, county=order.county, officer_id=officer.id, device_id=device_id,
                          kind=kind, content_type=content_type, sha256=sha, size=len(data), captured_at=captured,
                          lat_e6=_e6(lat), lon_e6=_e6(lon), note=note.strip()[:200], uploaded_at=uow.now)
            await uow.conn.execute(insert(evidence).values(**values))
            actor = officer.viewer.actor
            await uow.conn.execute(insert(custody), [
                {"evidence_id": eid, "action": Custody.CAPTURED.value, "actor": actor, "device": device_id,
                 "at": captured, "detail": f"sha256 {sha} at {lat},{lon}"},
                {"evidence_id": eid, "action": Custody.UPLOADED.value, "actor": actor, "device": device_id,
                 "at": uow.now, "detail": f"{len(data)} bytes, hash checked"}])
            await self._step(uow, order.id, actor, "evidence", f"{kind} {eid} sha256 {sha}")
            return (await uow.conn.execute(select(evidence).where(evidence.c.id == eid))).one()

        return _evidence(await self.uow.run("tourism_evidence_upload", work))

    async def evidence_of(self, viewer: Viewer, order_id: str) -> list[Evidence]:
        await self.work_order(viewer, order_id)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(evidence).where(evidence.c.order_id == order_id)
                                               .order_by(evidence.c.captured_at)))

        return [_evidence(r) for r in await self.uow.run("tourism_evidence_list", work)]

    async def _evidence_row(self, viewer: Viewer, evidence_id: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(evidence).where(evidence.c.id == evidence_id))).first()

        row = await self.uow.run("tourism_evidence_one", work)
        if row is None or (viewer.county is not None and row.county != viewer.county):
            raise errors.EvidenceNotFound(f"no evidence {evidence_id}")
        return row

    async def _custody(self, evidence_id: str, action: Custody, actor: str, detail: str = "") -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(insert(custody).values(evidence_id=evidence_id, action=action.value, actor=actor,
                                                          device="", at=uow.now, detail=detail))
            await uow.audit(actor=actor, action=f"tourism.evidence_{action.value}", target=evidence_id,
                            reason=detail or action.value)

        await self.uow.run(f"tourism_custody_{action.value}", work)

    async def open_evidence(self, viewer: Viewer, evidence_id: str, *, export: bool = False) -> tuple[Evidence, bytes]:
        """The file, as kept; viewed (or exported) in its custody."""
        row = await self._evidence_row(viewer, evidence_id)
        ev = _evidence(row)
        path = self.evidence_dir / ev.filename
        data = await asyncio.to_thread(path.read_bytes) if path.exists() else b""
        await self._custody(evidence_id, Custody.EXPORTED if export else Custody.VIEWED, viewer.actor,
                            f"{len(data)} bytes")
        return ev, data

    async def verify_evidence(self, viewer: Viewer, evidence_id: str) -> Verification:
        """Re-hash the kept file against the hash recorded at capture: a file changed on disk
        (or gone) is not intact. The check is in the custody, with its result."""
        row = await self._evidence_row(viewer, evidence_id)
        ev = _evidence(row)
        path = self.evidence_dir / ev.filename
        got = hashlib.sha256(await asyncio.to_thread(path.read_bytes)).hexdigest() if path.exists() else None
        result = Verification(evidence_id, got == ev.sha256, ev.sha256, got)
        await self._custody(evidence_id, Custody.VERIFIED, viewer.actor,
                            "intact" if result.intact else f"NOT INTACT: file hashes to {got or '(missing)'}")
        return result

    async def custody_of(self, viewer: Viewer, evidence_id: str) -> list[CustodyLine]:
        await self._evidence_row(viewer, evidence_id)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(custody).where(custody.c.evidence_id == evidence_id)
                                               .order_by(custody.c.id)))

        return [CustodyLine(as_utc(r.at), r.action, r.actor, r.device, r.detail)
                for r in await self.uow.run("tourism_custody", work)]

    async def evidence_since(self, county: str | None, since: datetime) -> list[Evidence]:
        """Evidence uploaded since a moment (the back office's list; the benchmark's probe)."""
        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(evidence).where(evidence.c.uploaded_at >= since)
            if county:
                q = q.where(evidence.c.county == county)
            return list(await uow.conn.execute(q.order_by(evidence.c.uploaded_at).limit(5000)))

        return [_evidence(r) for r in await self.uow.run("tourism_evidence_since", work)]

    async def counts(self, county: str | None = None) -> dict[str, int]:
        """Work orders by state (the console's tile)."""
        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(work_orders.c.state, func.count()).group_by(work_orders.c.state)
            if county:
                q = q.where(work_orders.c.county == county)
            return list(await uow.conn.execute(q))

        return {r[0]: int(r[1]) for r in await self.uow.run("tourism_counts", work)}


def _agency_entry(r: Any) -> Entry:
    return Entry("agency", r.id, r.name, r.phone, {
        "licence": r.licence, "manager": r.manager, "manager_phone": r.manager_phone, "address": r.address,
        "county": r.county, "penalty_points": r.penalty_points})


def _deadlines(r: Any) -> Deadlines:
    return Deadlines(as_utc(r.accept_by), as_utc(r.reply_by) if r.reply_by else None,
                     as_utc(r.mediate_by) if r.mediate_by else None)


def _work_order(r: Any, steps: Sequence[Any]) -> WorkOrder:
    return WorkOrder(
        r.id, r.county, r.officer_id, OrderState(r.state), r.complainant_name, r.complainant_phone, r.complainants,
        r.agency_id, r.guide_id, r.driver_id, r.contract_id, date.fromisoformat(r.tour_date), as_utc(r.tour_starts_at),
        as_utc(r.tour_ends_at), tuple(json.loads(r.itinerary)), r.cause, r.facts, r.demands, bool(r.location_consent),
        r.group_id, as_utc(r.received_at), _deadlines(r), r.outcome, r.record, r.reply,
        json.loads(r.refusal) if r.refusal else None, r.escalation,
        tuple(Step(as_utc(s.at), s.actor, s.step, s.detail) for s in steps))


def _replace(order: WorkOrder, **changes: Any) -> WorkOrder:
    return replace(order, **changes)


def _evidence(r: Any, replayed: bool = False) -> Evidence:
    return Evidence(r.id, r.order_id, r.officer_id, r.device_id, r.kind, r.content_type, r.sha256, r.size,
                    as_utc(r.captured_at), _de6(r.lat_e6), _de6(r.lon_e6), r.note, as_utc(r.uploaded_at), replayed)


def _stop_json(s: Stop) -> dict[str, Any]:
    return {"lat": round(s.lat, 6), "lon": round(s.lon, 6), "arrived": s.arrived.isoformat(),
            "left": s.left.isoformat(), "minutes": round(s.minutes), "fixes": s.fixes}


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {"spot_id": v.spot.id, "spot": v.spot.name, "lat": v.spot.lat, "lon": v.spot.lon,
            "radius_m": v.spot.radius_m, "visited": v.visited,
            "arrived": v.arrived.isoformat() if v.arrived else None, "left": v.left.isoformat() if v.left else None,
            "minutes": round(v.minutes), "closest_m": v.closest_m if v.closest_m != float("inf") else None,
            "closest_at": v.closest_at.isoformat() if v.closest_at else None}

