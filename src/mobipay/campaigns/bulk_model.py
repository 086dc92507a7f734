"""Bulk disbursements' pure rules: the batch file and its checks, the states, the ids, the
result file and the funders' request signature. No I/O (the service does that).

A funder uploads a CSV file with its SHA-256 (M-Pesa B2C, Mojaloop bulk transfers and the
Payment Hub's batch files are the models). The header names the columns and the unit of
the amounts, so no amount is ever guessed: ``row_id,msisdn,name,amount_fen,note`` (integer
fen) or ``row_id,msisdn,name,amount_yuan,note`` (yuan with at most two decimals, converted
exactly by :func:`~mobipay.kernel.money.parse_yuan`). Every row is checked on its own and
answered with a stable code; the file as a whole is rejected only when it cannot be read
or when more than ``max_invalid_pct`` of its rows are invalid (the Payment Hub's success
threshold), so a file with a few bad rows pays the others (**partial success**).

Ids: a row's ledger transfer is ``bulk:<batch id>:<row id>``, so the same row can never be
paid twice, whatever runs it again (a resumed run, a second worker).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mobipay.campaigns import errors
from mobipay.kernel.errors import InvalidAmount, MobipayError
from mobipay.kernel.money import parse_fen, parse_yuan
from mobipay.kernel.msisdn import normalize_msisdn

MAX_ROWS = 1_000_000  # rows a file may hold
SUB_BATCH = 5_000  # rows a sub-batch runs in one transaction (one ledger batch, one commit)
MAX_INVALID_PCT_DEFAULT = 5  # a file with more invalid rows than this is rejected as a whole
CLAIM_DAYS_DEFAULT = 7  # money for a number without a wallet waits this long, then returns
NAME_MAX = 64
NOTE_MAX = 64
ROW_ID = re.compile(r"[A-Za-z0-9_.:-]{1,40}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
COLUMNS = ("row_id", "msisdn", "name", "amount", "note")

# Batch states
REJECTED = "rejected"  # the file was refused: nothing will be paid (per-row errors in the results)
AWAITING_APPROVAL = "awaiting_approval"  # accepted; a second person (a checker) must approve it
APPROVED = "approved"  # approved, waiting for its run
RUNNING = "running"  # sub-batches being paid
COMPLETED = "completed"  # every sub-batch done (rows paid, waiting for registration or failed)

# Row states
INVALID = "invalid"  # refused at upload, with its code: never paid
PENDING = "pending"  # valid, not paid yet
PAID = "paid"  # credited to the recipient's wallet
WAITING = "waiting_for_registration"  # no wallet yet: in suspense until the number registers
FAILED = "failed"  # refused when paid, with its code (a closed wallet, the campaign ran dry)
# What a waiting row became later (the wallet's claim): read, never stored on the row
CLAIMED = "claimed"
RETURNED = "returned"


@dataclass(slots=True)
class FileRow:
    """One row of a batch file, checked: its error code is None when it is valid."""

    seq: int
    row_id: str
    msisdn: str
    name: str
    amount: int
    note: str
    error_code: str | None = None
    error_detail: str = ""

    @property
    def valid(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a checked file is accepted, and why not."""

    accepted: bool
    reason: str = ""


@dataclass(slots=True)
class Summary:
    """A batch's figures (Payment Hub's ``{total, successful, failed}``, with the amounts)."""

    rows_total: int = 0
    rows_valid: int = 0
    rows_invalid: int = 0
    amount_valid: int = 0
    paid_rows: int = 0
    paid_amount: int = 0
    waiting_rows: int = 0
    waiting_amount: int = 0
    failed_rows: int = 0
    failed_amount: int = 0
    claimed_rows: int = 0
    returned_rows: int = 0

    @property
    def pending_rows(self) -> int:
        return self.rows_valid - self.paid_rows - self.waiting_rows - self.failed_rows


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_hash(data: bytes, claimed: str) -> None:
    """The file is the one the funder hashed (a changed or truncated upload is refused whole)."""
    got = file_sha256(data)
    if not hmac.compare_digest(got, claimed.strip().lower()):
        raise errors.BulkFileHashMismatch(f"the file's SHA-256 is {got}, the request names {claimed[:64]!r}: "
                                          "send the file you hashed", field="file_sha256")


def parse_file(data: bytes) -> list[FileRow]:
    """Every row of a batch file, each checked on its own (shape, number, amount, duplicates).
    Refuses a file that is no batch at all (``BULK_FILE_INVALID``): not UTF-8, an unknown
    header, no rows, too many rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.BulkFileInvalid(f"the file is not UTF-8 text (byte {exc.start})", field="file") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise errors.BulkFileInvalid("the file is empty: the first line is the header "
                                     "row_id,msisdn,name,amount_yuan,note", field="file") from None
    except csv.Error as exc:
        raise errors.BulkFileInvalid(f"the file is not CSV: {exc}", field="file") from exc
    if header[:2] == ["row_id", "phone"]:
        header[1] = "msisdn"
    if header not in (["row_id", "msisdn", "name", "amount_fen", "note"],
                      ["row_id", "msisdn", "name", "amount_yuan", "note"]):
        raise errors.BulkFileInvalid("the header is row_id,msisdn,name,amount_yuan,note (yuan, at most 2 decimals) "
                                     f"or …,amount_fen,… (integer fen), got {','.join(header)[:120]!r}",
                                     field="file")
    yuan = header[3] == "amount_yuan"
    rows: list[FileRow] = []
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line (often the last)
            if len(rows) >= MAX_ROWS:
                raise errors.BulkFileInvalid(f"a file holds at most {MAX_ROWS:,} rows: split it", field="file")
            rows.append(check_row(len(rows) + 1, fields, yuan))
    except csv.Error as exc:
        raise errors.BulkFileInvalid(f"line {reader.line_num} is not CSV: {exc}", field="file") from exc
    if not rows:
        raise errors.BulkFileInvalid("the file has a header and no rows", field="file")
    mark_duplicates(rows)
    return rows


def check_row(seq: int, fields: list[str], yuan: bool) -> FileRow:
    """One row's fields checked; the first fault found is its error."""
    if len(fields) != 5:
        shown = [f[:40] for f in fields[:5]] + [""] * (5 - len(fields))
        row = FileRow(seq, shown[0].strip(), shown[1].strip(), shown[2].strip(), 0, "")
        return _refused(row, errors.BulkFileInvalid(f"row {seq} has {len(fields)} fields, not 5"))
    row_id, raw_msisdn, name, raw_amount, note = (f.strip() for f in fields)
    row = FileRow(seq, row_id[:64], raw_msisdn[:32], name[:NAME_MAX], 0, note[:NOTE_MAX])
    try:
        if ROW_ID.fullmatch(row_id) is None:
            raise errors.BulkRowIdInvalid(f"row id {row_id[:40]!r} is not 1-40 letters, digits, - _ . or :")
        row.msisdn = normalize_msisdn(raw_msisdn)
        row.amount = parse_yuan(raw_amount, example="500 or 500.00") if yuan else parse_fen(raw_amount)
        if not name or len(name) > NAME_MAX or _CONTROL.search(name):
            raise errors.BulkNameInvalid(f"the name is 1 to {NAME_MAX} characters of plain text")
        if len(note) > NOTE_MAX or _CONTROL.search(note):
            raise errors.BulkNoteInvalid(f"the note is at most {NOTE_MAX} characters of plain text")
    except MobipayError as exc:
        return _refused(row, exc)
    return row


def _refused(row: FileRow, exc: MobipayError) -> FileRow:
    row.error_code, row.error_detail = exc.code, exc.detail
    if isinstance(exc, InvalidAmount):
        row.amount = 0
    return row


def mark_duplicates(rows: Iterable[FileRow]) -> None:
    """A row id used by an earlier row, or an earlier row paying the same number the same
    amount with the same note (a line copied twice), is an error of the later row."""
    ids: set[str] = set()
    payments: set[tuple[str, int, str]] = set()
    for row in rows:
        if row.error_code == errors.BulkRowIdInvalid.code:
            continue
        used = row.row_id in ids
        ids.add(row.row_id)
        if row.error_code is not None:  # invalid already, for another reason
            continue
        if used:
            _refused(row, errors.BulkDuplicateRowId(f"row id {row.row_id} is used by an earlier row"))
            continue
        key = (row.msisdn, row.amount, row.note)
        if key in payments:
            _refused(row, errors.BulkDuplicateRow("an earlier row pays this number this amount with this note"))
            continue
        payments.add(key)


def canonical_name(name: str) -> str:
    """A name as compared: NFKC (full-width letters), no spaces or middle dots (维吾尔族
    names are written with · or without), case-folded for Latin names."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", name) if not ch.isspace() and ch not in "·.・").casefold()


def name_matches(given: str, known: str | None) -> bool:
    """The file's name is the wallet's verified real name; an unverified wallet matches any."""
    return known is None or canonical_name(given) == canonical_name(known)


def verdict(rows: list[FileRow], max_invalid_pct: int) -> Verdict:
    """Accept the file unless more than ``max_invalid_pct`` percent of its rows are invalid
    (or none is valid)."""
    invalid = sum(1 for r in rows if r.error_code is not None)
    if invalid == len(rows):
        return Verdict(False, "no row of the file is valid")
    if invalid * 100 > max_invalid_pct * len(rows):
        return Verdict(False, f"{invalid} of {len(rows)} rows are invalid, more than the {max_invalid_pct}% "
                              "allowed: correct the file and upload it again")
    return Verdict(True)


def check_pct(value: object) -> int:
    if type(value) is not int or not 0 <= value <= 100:
        raise errors.BulkFileInvalid("max_invalid_pct is a whole percentage, 0 to 100", field="max_invalid_pct")
    return value


def check_claim_days(value: object) -> int:
    if type(value) is not int or not 1 <= value <= 30:
        raise errors.BulkFileInvalid("claim_days is 1 to 30", field="claim_days")
    return value


def transfer_id(batch_id: str, row_id: str) -> str:
    """The ledger id of a row's payment: the batch and the row, so it is paid once."""
    return f"bulk:{batch_id}:{row_id}"


def sub_batch_count(rows: int, size: int = SUB_BATCH) -> int:
    return -(-rows // size)


RESULT_HEADER = ("row_id", "msisdn", "name", "amount_fen", "note", "status", "error_code", "transfer_id")


def _csv_line(values: Iterable[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def result_header() -> str:
    """The first line of the result file."""
    return _csv_line(RESULT_HEADER)


def result_line(row: Iterable[object]) -> str:
    """One row of the result file: the row's fields as sent (the number as E.164), then its
    status, error code and transfer id."""
    return _csv_line(row)


# ---------------------------------------------------------------------- funders' signed requests

SIGNATURE_WINDOW_S = 300


def signing_string(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    """What a funder's member signs: ``timestamp \\n nonce \\n METHOD \\n path \\n body`` (the
    top-up partners' scheme, so a partner's code signs both)."""
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body


def sign(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_string(timestamp, nonce, method, path, body), hashlib.sha256).hexdigest()


def signature_valid(secret: str, signature: str, timestamp: str, nonce: str, method: str, path: str,
                    body: bytes) -> bool:
    expected = sign(secret, timestamp, nonce, method, path, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


ROLES = frozenset({"maker", "checker"})


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(sorted(set(roles)))
    if not chosen or not set(chosen) <= ROLES:
        raise errors.BulkRoleRequired("roles are maker (uploads batches) and/or checker (approves them)",
                                      field="roles")
    return chosen


# ---------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Funder:
    """An organisation that pays many people (a school, a charity, a branch)."""

    id: str
    name: str
    contact: str
    account_code: str
    status: str


@dataclass(frozen=True, slots=True)
class Member:
    """A person of a funder, with their own key: makers upload, checkers approve."""

    id: str
    funder_id: str
    name: str
    roles: tuple[str, ...]

    def may(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    funder_id: str
    name: str
    account_code: str


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    campaign_id: str
    funder_id: str
    file_name: str
    file_sha256: str
    state: str
    reason: str
    max_invalid_pct: int
    claim_days: int
    sub_batches: int
    created_by: str
    approved_by: str | None
    created_at: datetime
    approved_at: datetime | None
    completed_at: datetime | None
    summary: Summary
