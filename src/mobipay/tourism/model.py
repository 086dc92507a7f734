"""Tourism enforcement rules, pure: the 2010 complaint rules' deadlines counted in working
days over the holiday calendar, whether a complaint may be accepted, the work order's states,
group complaints, stay-point detection over a phone's track and each promised spot's verdict,
and evidence files known by their magic bytes.

Sources (paraphrased in docs/tourism.md): 《旅游投诉处理办法》 (国家旅游局令第32号, in force from
2010-07-01) for the deadlines and the grounds of refusal; Li, Zheng et al. 2008 for stay points
(points within a distance for at least a duration, reported as their mean with arrival and
departure).
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib.resources import files

from mobipay.kernel.clock import SHANGHAI
from mobipay.tourism import errors

#: The 2010 rules: accept or refuse within 5 working days of receiving the complaint.
ACCEPT_WORKING_DAYS = 5
#: The respondent's written reply within 10 days of the notice (calendar days).
REPLY_DAYS = 10
#: Mediation concluded within 60 days of acceptance (calendar days), or terminated.
MEDIATION_DAYS = 60
#: A complaint more than 90 days after the tour (its contract) ended is not accepted.
LIMITATION_DAYS = 90
#: Four or more complainants with the same cause against the same respondent: a group complaint.
GROUP_MIN = 4

#: Stay points (Li et al. 2008): within this distance of the first point ...
STAY_DISTANCE_M = 200.0
#: ... for at least this long. The paper's default is 30 min; 20 min is common; both configurable.
STAY_DURATION = timedelta(minutes=20)
#: A gap longer than this between two samples (the phone off, no signal) ends a stay: nothing
#: is known of the time in between, so it is not counted as stayed.
MAX_GAP = timedelta(minutes=15)


# ---------------------------------------------------------------------------- working days


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Days off and adjusted working days (调休) by date; other days follow the week."""

    off: frozenset[date]
    work: frozenset[date]
    names: Mapping[date, str]

    def is_working_day(self, day: date) -> bool:
        if day in self.work:
            return True
        if day in self.off:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> date:
        """The day on which the ``n``-th working day after ``start`` falls (``start`` itself is
        not counted: a complaint received on a Friday has Monday as its first day)."""
        if n < 0:
            raise ValueError("n >= 0")
        day, left = start, n
        while left:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


def parse_calendar(text: str) -> HolidayCalendar:
    """The calendar from its CSV (``date,kind,name``; ``kind`` is ``off`` or ``work``)."""
    off: set[date] = set()
    work: set[date] = set()
    names: dict[date, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("date,"):
            continue
        parts = line.split(",")
        if len(parts) < 2 or parts[1] not in ("off", "work"):
            raise ValueError(f"holidays line {n}: date,off|work,name expected")
        day = date.fromisoformat(parts[0])
        (off if parts[1] == "off" else work).add(day)
        names[day] = parts[2] if len(parts) > 2 else ""
    return HolidayCalendar(frozenset(off), frozenset(work), names)


@cache
def holiday_calendar() -> HolidayCalendar:
    """The shipped calendar (tourism/data/holidays.csv), read once."""
    return parse_calendar(files("mobipay.tourism").joinpath("data/holidays.csv").read_text(encoding="utf-8"))


def end_of_day(day: date) -> datetime:
    """The last moment of a day in Beijing time (as UTC): a deadline "within N days" ends then."""
    return (datetime.combine(day + timedelta(days=1), time(0), SHANGHAI) - timedelta(microseconds=1)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Deadlines:
    accept_by: datetime
    reply_by: datetime | None = None
    mediate_by: datetime | None = None


def accept_deadline(received_at: datetime, calendar: HolidayCalendar) -> datetime:
    """5 working days after the day the complaint was received (Beijing days)."""
    return end_of_day(calendar.add_working_days(received_at.astimezone(SHANGHAI).date(), ACCEPT_WORKING_DAYS))


def after_acceptance(accepted_at: datetime) -> tuple[datetime, datetime]:
    """(reply by, mediation concluded by): 10 and 60 days after the day of acceptance."""
    day = accepted_at.astimezone(SHANGHAI).date()
    return end_of_day(day + timedelta(days=REPLY_DAYS)), end_of_day(day + timedelta(days=MEDIATION_DAYS))


# ---------------------------------------------------------------------------- admissibility


class RefusalGround(enum.StrEnum):
    TIME_BARRED = "time_barred"  # more than 90 days after the tour ended
    BEFORE_COURT = "before_court"  # already before a court, arbitration or another mediator
    ALREADY_HANDLED = "already_handled"  # handled before and no new facts
    NO_JURISDICTION = "no_jurisdiction"  # neither the contract's place nor the respondent's seat here
    NO_DIRECT_INTEREST = "no_direct_interest"  # the complainant was not on the tour


def refusal_grounds(*, tour_ended: date, received_on: date, before_court: bool, already_handled: bool,
                    in_jurisdiction: bool, direct_interest: bool = True) -> list[RefusalGround]:
    """Why the complaint may not be accepted (empty: it may)."""
    out = []
    if (received_on - tour_ended).days > LIMITATION_DAYS:
        out.append(RefusalGround.TIME_BARRED)
    if before_court:
        out.append(RefusalGround.BEFORE_COURT)
    if already_handled:
        out.append(RefusalGround.ALREADY_HANDLED)
    if not in_jurisdiction:
        out.append(RefusalGround.NO_JURISDICTION)
    if not direct_interest:
        out.append(RefusalGround.NO_DIRECT_INTEREST)
    return out


# ---------------------------------------------------------------------------- the work order


class OrderState(enum.StrEnum):
    RECEIVED = "received"  # entered by an officer; to be accepted or refused in 5 working days
    ACCEPTED = "accepted"  # the respondent notified, reply due in 10 days, mediation in 60
    REFUSED = "refused"  # not accepted, with reasons (final)
    TRANSFERRED = "transferred"  # outside jurisdiction: sent to the competent bureau (final)
    REPLIED = "replied"  # the respondent's written reply is in
    MEDIATED = "mediated"  # agreement reached: the mediation record (旅游投诉调解书) (final)
    TERMINATED = "terminated"  # no agreement: the termination record (终止调解书) (final)


FINAL = frozenset({OrderState.REFUSED, OrderState.TRANSFERRED, OrderState.MEDIATED, OrderState.TERMINATED})

#: Which step may follow which.
STEPS: Mapping[OrderState, frozenset[OrderState]] = {
    OrderState.RECEIVED: frozenset({OrderState.ACCEPTED, OrderState.REFUSED, OrderState.TRANSFERRED}),
    OrderState.ACCEPTED: frozenset({OrderState.REPLIED, OrderState.MEDIATED, OrderState.TERMINATED}),
    OrderState.REPLIED: frozenset({OrderState.MEDIATED, OrderState.TERMINATED}),
}


def check_step(now: OrderState, to: OrderState) -> None:
    if to not in STEPS.get(now, frozenset()):
        raise errors.OrderStateConflict(f"a work order that is {now.value} cannot become {to.value}",
                                        state=now.value, wanted=to.value)


class Outcome(enum.StrEnum):
    UPHELD = "upheld"  # the complaint is founded: refund and/or penalty
    PARTLY = "partly_upheld"
    DISMISSED = "dismissed"


def overdue_step(state: OrderState, now: datetime, d: Deadlines) -> str | None:
    """The deadline a work order has missed (``accept``, ``reply``, ``mediate``), None if none."""
    if state is OrderState.RECEIVED and now > d.accept_by:
        return "accept"
    if state is OrderState.ACCEPTED and d.reply_by is not None and now > d.reply_by:
        return "reply"
    if state in (OrderState.ACCEPTED, OrderState.REPLIED) and d.mediate_by is not None and now > d.mediate_by:
        return "mediate"
    return None


CAUSES = {
    "itinerary_skipped": "未按合同约定行程游览 (a promised spot not visited)",
    "forced_shopping": "强迫或变相强迫购物 (forced shopping)",
    "extra_charges": "另行付费项目 (charges beyond the contract)",
    "service_quality": "服务质量 (guide or coach service)",
    "safety": "安全 (safety)",
    "other": "其他 (other)",
}


def check_cause(cause: str) -> str:
    if cause not in CAUSES:
        raise errors.ComplaintInvalid(f"the cause is one of {', '.join(CAUSES)}", field="cause")
    return cause


@dataclass(frozen=True, slots=True)
class GroupCandidate:
    order_id: str
    agency_id: str
    cause: str
    complainants: int


def group_members(orders: Iterable[GroupCandidate]) -> dict[tuple[str, str], list[str]]:
    """The work orders that together form group complaints: by (respondent agency, cause), those
    whose complainants add up to :data:`GROUP_MIN` or more (one order signed by four counts)."""
    by: dict[tuple[str, str], list[GroupCandidate]] = {}
    for o in orders:
        by.setdefault((o.agency_id, o.cause), []).append(o)
    return {key: sorted(o.order_id for o in found) for key, found in by.items()
            if sum(o.complainants for o in found) >= GROUP_MIN}


def group_id(agency_id: str, cause: str, tour_date: date) -> str:
    """The group a complaint joins: one respondent, one cause, one tour day."""
    return "tgrp_" + hashlib.sha256(f"{agency_id}:{cause}:{tour_date.isoformat()}".encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------- geometry and stays


EARTH_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Fix:
    """One position of a phone: when, where, how precise."""

    at: datetime
    lat: float
    lon: float
    accuracy_m: float = 20.0


@dataclass(frozen=True, slots=True)
class Stop:
    """A stay point: the mean of its fixes, arrival (first fix) and departure (last fix)."""

    lat: float
    lon: float
    arrived: datetime
    left: datetime
    fixes: int

    @property
    def minutes(self) -> float:
        return (self.left - self.arrived).total_seconds() / 60


def stay_points(track: Sequence[Fix], *, distance_m_: float = STAY_DISTANCE_M,
                duration: timedelta = STAY_DURATION, max_gap: timedelta = MAX_GAP) -> list[Stop]:
    """Li et al. 2008: from each anchor fix, extend while the next fixes stay within
    ``distance_m_`` of the anchor; a run spanning at least ``duration`` is a stop, and the next
    anchor is the first fix after it; otherwise the next fix becomes the anchor. Fixes are taken
    in time order; a run also ends at a gap longer than ``max_gap`` (the time in it is unknown)
    and at the end of the track (a tour ending at a spot still has that stop)."""
    if distance_m_ <= 0 or duration <= timedelta(0):
        raise ValueError("the stay distance and duration are positive")
    fixes = sorted(track, key=lambda f: f.at)
    stops: list[Stop] = []
    i, n = 0, len(fixes)
    while i < n:
        anchor = fixes[i]
        j = i + 1
        while (j < n and distance_m(anchor.lat, anchor.lon, fixes[j].lat, fixes[j].lon) <= distance_m_
               and fixes[j].at - fixes[j - 1].at <= max_gap):
            j += 1
        run = fixes[i:j]  # i .. j-1 all within reach of the anchor
        if run[-1].at - anchor.at >= duration:
            stops.append(Stop(sum(f.lat for f in run) / len(run), sum(f.lon for f in run) / len(run),
                              anchor.at, run[-1].at, len(run)))
            i = j
        else:
            i += 1
    return stops


@dataclass(frozen=True, slots=True)
class Spot:
    """A scenic spot promised in the contract: where it is and how near counts as there."""

    id: str
    name: str
    lat: float
    lon: float
    radius_m: float = 300.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """A promised spot checked against the stops: visited (arrival, departure, minutes) or not
    (the closest the phone came, and when)."""

    spot: Spot
    visited: bool
    arrived: datetime | None
    left: datetime | None
    closest_m: float
    closest_at: datetime | None

    @property
    def minutes(self) -> float:
        return (self.left - self.arrived).total_seconds() / 60 if self.arrived and self.left else 0.0


def verdicts(spots: Sequence[Spot], track: Sequence[Fix], stops: Sequence[Stop]) -> list[Verdict]:
    """Each spot is visited when a stop's centre lies within the spot's radius (arrival and
    departure from its stops), else not visited, with the closest fix of the whole track."""
    out = []
    for spot in spots:
        near = [s for s in stops if distance_m(s.lat, s.lon, spot.lat, spot.lon) <= spot.radius_m]
        closest, at = math.inf, None
        for f in track:
            d = distance_m(f.lat, f.lon, spot.lat, spot.lon)
            if d < closest:
                closest, at = d, f.at
        if near:
            out.append(Verdict(spot, True, min(s.arrived for s in near), max(s.left for s in near),
                               round(closest, 1), at))
        else:
            out.append(Verdict(spot, False, None, None, round(closest, 1) if at else math.inf, at))
    return out


def upheld_by_route(found: Sequence[Verdict]) -> bool:
    """The route shows a promised spot was not visited."""
    return any(not v.visited for v in found)


# ---------------------------------------------------------------------------- evidence

#: The largest evidence file accepted (a phone's photo or a few minutes of audio).
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024

EVIDENCE_KINDS = ("photo", "audio")


def evidence_type(data: bytes) -> tuple[str, str, str]:
    """(kind, content type, file suffix) by the file's magic bytes; refused otherwise."""
    if len(data) > MAX_EVIDENCE_BYTES:
        raise errors.EvidenceTooLarge(f"an evidence file is at most {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB",
                                      field="file")
    if len(data) > 8:
        if data.startswith(b"\xff\xd8\xff"):
            return "photo", "image/jpeg", "jpg"
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "photo", "image/png", "png"
        if data[4:8] == b"ftyp":
            brand = data[8:12]
            if brand in (b"heic", b"heix", b"mif1"):
                return "photo", "image/heic", "heic"
            return "audio", "audio/mp4", "m4a"
        if data.startswith(b"\x1a\x45\xdf\xa3"):
            return "audio", "audio/webm", "webm"
        if data.startswith(b"OggS"):
            return "audio", "audio/ogg", "ogg"
        if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
            return "audio", "audio/wav", "wav"
        if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
            return "audio", "audio/mpeg", "mp3"
    raise errors.EvidenceNotMedia("the file is not a photo (JPEG, PNG, HEIC) or an audio recording "
                                  "(M4A, WebM, Ogg, WAV, MP3)", field="file")


def check_sha256(data: bytes, claimed: str) -> str:
    """The file's SHA-256; refused when it differs from the one the phone computed at capture
    (the file changed on the way or after)."""
    sha = hashlib.sha256(data).hexdigest()
    if claimed.lower() != sha:
        raise errors.EvidenceHashMismatch("the file's SHA-256 is not the one recorded at capture: it was "
                                          "changed after it was taken", field="sha256", computed=sha)
    return sha


class Custody(enum.StrEnum):
    CAPTURED = "captured"
    UPLOADED = "uploaded"
    VIEWED = "viewed"
    VERIFIED = "verified"
    EXPORTED = "exported"
