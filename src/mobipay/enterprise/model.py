"""The enterprise one-card's rules, without I/O: spending rules as data (where, when, how
much), the split of a payment between the allowance and the employee's own wallet, the
month-end rule (rollover or expiry back to the employer), CSV enrolment rows, attendance
days and the monthly report, and the signature of a company's reader.

Why pure: every rule here is decided the same way by the API, the CLI, the worker and the
tests, and the edges (a meal window's first and last second, a cap reached inside one
payment) are tested without a database.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mobipay.enterprise import errors
from mobipay.kernel.clock import SHANGHAI

MAX_CSV_ROWS = 5_000
READER_WINDOW_S = 300  # a reader's signed upload is good for 5 minutes either side of now


class MonthEnd(StrEnum):
    """What happens to an allowance left at the end of a Beijing month."""

    ROLLOVER = "rollover"  # it stays for next month (up to ``rollover_cap`` when set)
    EXPIRE = "expire"  # it goes back to the employer's account


@dataclass(frozen=True, slots=True)
class MealWindow:
    """A meal window in Beijing time: ``start`` included, ``end`` excluded (11:00 to 13:30
    means 11:00:00 is lunch and 13:30:00 is not)."""

    name: str
    start: time
    end: time

    def holds(self, at: time) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class SpendingRules:
    """An employer's rules for its allowance, kept as data (JSON on the employer's row).

    ``windows`` empty: any time; ``weekdays`` (1 Monday … 7 Sunday) empty: any day;
    ``per_meal`` and ``per_day`` in fen, 0: no cap. The *where* rule is the employer's list
    of closed-loop merchants (outside it the allowance is refused)."""

    windows: tuple[MealWindow, ...] = ()
    weekdays: tuple[int, ...] = ()
    per_meal: int = 0
    per_day: int = 0
    month_end: MonthEnd = MonthEnd.EXPIRE
    rollover_cap: int = 0  # fen kept at most on rollover (0: all of it)
    work_start: time = time(9, 0)  # attendance: a first tap after this is late

    def window_at(self, local: datetime) -> MealWindow | None:
        """The meal window ``local`` (Beijing time) falls in; a pseudo window "any" when the
        employer set none; None outside every window or on a day without allowance."""
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return None
        if not self.windows:
            return MealWindow("any", time(0, 0), time(23, 59, 59, 999999))
        at = local.timetz().replace(tzinfo=None)
        return next((w for w in self.windows if w.holds(at)), None)

    def to_json(self) -> dict[str, Any]:
        return {"windows": [{"name": w.name, "start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M")}
                            for w in self.windows],
                "weekdays": list(self.weekdays), "per_meal": self.per_meal, "per_day": self.per_day,
                "month_end": self.month_end.value, "rollover_cap": self.rollover_cap,
                "work_start": self.work_start.strftime("%H:%M")}


def _clock_time(text: object, what: str) -> time:
    try:
        hh, mm = str(text).split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise errors.RulesInvalid(f"{what} is a time of day HH:MM, not {text!r}", field="rules") from None


def _fen(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.RulesInvalid(f"{what} is whole fen, 0 or more (0: no cap)", field="rules")
    return value


def rules_from(data: Mapping[str, Any] | str) -> SpendingRules:
    """Rules from their JSON (the CLI's ``--rules`` file, the employer's stored row), checked:
    windows of a start before their end that do not overlap, weekdays 1 to 7, caps in fen."""
    if isinstance(data, str):
        try:
            loaded = json.loads(data)
        except json.JSONDecodeError as exc:
            raise errors.RulesInvalid(f"the rules are not JSON: {exc.msg}", field="rules") from None
        if not isinstance(loaded, dict):
            raise errors.RulesInvalid("the rules are a JSON object", field="rules")
        data = loaded
    unknown = set(data) - {"windows", "weekdays", "per_meal", "per_day", "month_end", "rollover_cap", "work_start"}
    if unknown:
        raise errors.RulesInvalid(f"unknown rule {sorted(unknown)[0]!r}", field="rules")
    windows = []
    if not isinstance(data.get("windows") or (), list | tuple):  # the employer API's JSON: 5 is no list
        raise errors.RulesInvalid("windows is a list of {name, start, end}", field="rules")
    for n, raw in enumerate(data.get("windows") or ()):
        if not isinstance(raw, Mapping) or not str(raw.get("name", "")).strip():
            raise errors.RulesInvalid(f"window {n + 1} needs a name, a start and an end", field="rules")
        w = MealWindow(str(raw["name"]).strip()[:16], _clock_time(raw.get("start"), "a window's start"),
                       _clock_time(raw.get("end"), "a window's end"))
        if w.start >= w.end:
            raise errors.RulesInvalid(f"the {w.name} window ends before it starts", field="rules")
        windows.append(w)
    windows.sort(key=lambda w: w.start)
    for a, b in itertools.pairwise(windows):
        if b.start < a.end:
            raise errors.RulesInvalid(f"the {a.name} and {b.name} windows overlap", field="rules")
    if len({w.name for w in windows}) != len(windows):
        raise errors.RulesInvalid("two windows have the same name", field="rules")
    days = data.get("weekdays") or ()
    if not isinstance(days, list | tuple) or any(
            isinstance(d, bool) or not isinstance(d, int) or d not in range(1, 8) for d in days):
        raise errors.RulesInvalid("weekdays are 1 (Monday) to 7 (Sunday)", field="rules")
    try:
        month_end = MonthEnd(data.get("month_end", MonthEnd.EXPIRE.value))
    except ValueError:
        raise errors.RulesInvalid("month_end is rollover or expire", field="rules") from None
    per_meal, per_day = _fen(data.get("per_meal", 0), "per_meal"), _fen(data.get("per_day", 0), "per_day")
    if per_meal and per_day and per_meal > per_day:
        raise errors.RulesInvalid("per_meal is more than per_day", field="rules")
    return SpendingRules(tuple(windows), tuple(sorted(set(days))), per_meal, per_day, month_end,
                         _fen(data.get("rollover_cap", 0), "rollover_cap"),
                         _clock_time(data.get("work_start", "09:00"), "work_start"))


#: What an employer gets when it gives no rules: three meals, 30 CNY a meal, 60 a day, expiry.
DEFAULT_RULES = rules_from({
    "windows": [{"name": "breakfast", "start": "07:00", "end": "09:00"},
                {"name": "lunch", "start": "11:00", "end": "13:30"},
                {"name": "dinner", "start": "17:00", "end": "19:30"}],
    "per_meal": 3_000, "per_day": 6_000, "month_end": "expire"})


# ---------------------------------------------------------------------- a payment's split


@dataclass(frozen=True, slots=True)
class Split:
    """What the allowance and the wallet pay of one payment (allowance first), and why the
    allowance paid less than it could (``reason``: "" when it paid all it was asked)."""

    allowance: int
    wallet: int
    window: str  # the meal window's name ("" outside every window)
    reason: str = ""


def split_payment(rules: SpendingRules, amount: int, local: datetime, *, balance: int, spent_today: int,
                  spent_this_meal: int) -> Split:
    """The allowance pays first, as far as the balance, the meal's cap and the day's cap let
    it; the wallet pays the rest. ``local`` is the payment's Beijing time; ``spent_*`` the
    allowance already paid today and in this meal window today."""
    if amount <= 0:
        raise ValueError("a payment is at least 1 fen")
    window = rules.window_at(local)
    if window is None:
        return Split(0, amount, "", "outside the meal windows")
    room: list[tuple[int, str]] = [(amount, ""), (max(0, balance), "the allowance is used up")]
    if rules.per_meal:
        room.append((max(0, rules.per_meal - spent_this_meal), f"the {window.name} cap is reached"))
    if rules.per_day:
        room.append((max(0, rules.per_day - spent_today), "the day's cap is reached"))
    allowance, why = min(room, key=lambda r: r[0])
    return Split(allowance, amount - allowance, window.name if rules.windows else "", why if allowance < amount
                 else "")


def month_end_split(rules: SpendingRules, left: int) -> tuple[int, int]:
    """(kept for next month, returned to the employer) of what is left of a month."""
    left = max(0, left)
    if rules.month_end is MonthEnd.EXPIRE:
        return 0, left
    kept = min(left, rules.rollover_cap) if rules.rollover_cap else left
    return kept, left - kept


def old_money_left(balance: int, funded_since: int) -> int:
    """What is left of the allowance a month ended with, now: spending takes the oldest money
    first, so it is the balance less what was funded after the month ended (never negative).
    This lets the month close run late (after next month's funding) and still be right."""
    return max(0, balance - funded_since)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """A Beijing month ``YYYY-MM`` as [start, end) instants."""
    try:
        digits = month[:4] + month[5:]
        if len(month) != 7 or month[4] != "-" or not (digits.isascii() and digits.isdigit()):
            raise ValueError(month)
        year, mon = int(month[:4]), int(month[5:])
        start = datetime(year, mon, 1, tzinfo=SHANGHAI)
    except ValueError:
        raise errors.MonthInvalid(f"a month is YYYY-MM, not {month!r}", field="month") from None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=SHANGHAI)
    return start, end


def month_of(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


def previous_month(at: datetime) -> str:
    first = at.astimezone(SHANGHAI).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


# ---------------------------------------------------------------------- CSV enrolment


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # in the file, 1 = its first line
    phone: str
    name: str
    employee_no: str


def csv_rows(text: str) -> list[CsvRow]:
    """The rows of an enrolment file: ``phone,name,employee_no`` (name and number optional),
    with or without that header line; blank lines and ``#`` comments are skipped."""
    rows: list[CsvRow] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for n, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and cells[0].lower() in ("phone", "mobile", "msisdn", "手机号"):
            continue
        rows.append(CsvRow(n, cells[0], cells[1][:64] if len(cells) > 1 else "",
                           cells[2][:32] if len(cells) > 2 else ""))
        if len(rows) > MAX_CSV_ROWS:
            raise errors.CsvInvalid(f"at most {MAX_CSV_ROWS} employees a file", field="file")
    if not rows:
        raise errors.CsvInvalid("the file has no rows: one employee a line, phone,name,employee_no", field="file")
    return rows


# ---------------------------------------------------------------------- attendance


@dataclass(frozen=True, slots=True)
class AttendanceDay:
    day: date
    first: datetime  # Beijing time
    last: datetime
    taps: int
    late: bool

    @property
    def minutes(self) -> int:
        return int((self.last - self.first).total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class AttendanceLine:
    """One employee's month: days present, late days, minutes between first and last tap."""

    employee_id: str
    name: str
    msisdn: str
    days: int
    late: int
    minutes: int
    by_day: tuple[AttendanceDay, ...] = field(default=())


def attendance_days(taps: Iterable[datetime], rules: SpendingRules) -> list[AttendanceDay]:
    """An employee's taps grouped by Beijing day: the first and last tap (in and out), how
    many, and whether the first came after the employer's work start (late)."""
    by: dict[date, list[datetime]] = {}
    for at in taps:
        local = at.astimezone(SHANGHAI)
        by.setdefault(local.date(), []).append(local)
    out = []
    for day in sorted(by):
        ts = sorted(by[day])
        out.append(AttendanceDay(day, ts[0], ts[-1], len(ts), ts[0].timetz().replace(tzinfo=None) > rules.work_start))
    return out


def attendance_line(employee_id: str, name: str, msisdn: str, days: Sequence[AttendanceDay]) -> AttendanceLine:
    return AttendanceLine(employee_id, name, msisdn, len(days), sum(d.late for d in days),
                          sum(d.minutes for d in days), tuple(days))


# ---------------------------------------------------------------------- readers' signatures

READER_PREFIX = "MOBIPAY-READER-V1"


def reader_signing_string(reader_id: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What a company's reader signs (Ed25519, as a POS terminal does, with its own first
    line so a terminal's signature can never pass as a reader's)::

        MOBIPAY-READER-V1
        <reader id>
        <timestamp, Unix seconds>
        <nonce>
        <lower-case hex SHA-256 of the body>
    """
    return "\n".join((READER_PREFIX, reader_id, timestamp, nonce, hashlib.sha256(body).hexdigest()))


def new_reader_key() -> tuple[str, str]:
    """(private seed, public key), each base64 of 32 raw bytes."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed).decode(), base64.b64encode(public).decode()


def reader_sign(seed: str, text: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed, validate=True))
    return base64.b64encode(key.sign(text.encode())).decode()


def reader_verifies(public_key: str, text: str, signature: str) -> bool:
    """Whether ``signature`` is the reader key's signature of ``text``; unreadable input does not verify."""
    try:
        raw = base64.b64decode(signature, validate=True) if signature.isascii() else b""
        if len(raw) != 64:
            return False
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True)).verify(raw, text.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check_reader_key(text: str) -> str:
    """A reader's public key as kept (base64 of 32 raw bytes), or ``READER_KEY_INVALID``."""
    try:
        raw = base64.b64decode(text.strip(), validate=True) if text.strip().isascii() else b""
        Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise errors.ReaderKeyInvalid(field="public_key") from None
    return base64.b64encode(raw).decode()
