"""Prizes won and their delivery to the door, pure: the states and the moves between them,
so the service, the API, the CLI and the console refuse the same impossible steps.

An award (a prize won) is ``won`` (the winner told by SMS) → ``scheduled`` (a stop on a
delivery run) → ``out_for_delivery`` (the run left) → ``delivered`` (with the receiver's
signature or photo) or ``failed`` (nobody home, wrong address: the reason kept) →
``scheduled`` again on a later run (re-delivery) … A prize still ``won`` or ``failed`` at its
claim deadline is ``unclaimed``: it goes back to the inventory. A prize on its way at the
deadline is not taken off the van: the run decides it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from mobipay.campaigns import errors


class AwardState(StrEnum):
    WON = "won"
    SCHEDULED = "scheduled"
    OUT = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNCLAIMED = "unclaimed"


class RunState(StrEnum):
    PLANNED = "planned"
    OUT = "out"
    CLOSED = "closed"


class StopState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ProofKind(StrEnum):
    SIGNATURE = "signature"
    PHOTO = "photo"


MOVES: dict[AwardState, frozenset[AwardState]] = {
    AwardState.WON: frozenset({AwardState.SCHEDULED, AwardState.UNCLAIMED}),
    AwardState.SCHEDULED: frozenset({AwardState.OUT, AwardState.WON}),  # WON: taken off a run before it left
    AwardState.OUT: frozenset({AwardState.DELIVERED, AwardState.FAILED}),
    AwardState.FAILED: frozenset({AwardState.SCHEDULED, AwardState.UNCLAIMED}),
    AwardState.DELIVERED: frozenset(),
    AwardState.UNCLAIMED: frozenset(),
}
SCHEDULABLE = (AwardState.WON, AwardState.FAILED)
EXPIRABLE = (AwardState.WON, AwardState.FAILED)
CLAIM_DAYS_DEFAULT = 30
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ITEM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def move(state: AwardState, to: AwardState) -> AwardState:
    """The next state, or ``AWARD_STATE`` naming both."""
    if to not in MOVES[state]:
        raise errors.AwardState(f"a prize {state.value.replace('_', ' ')} cannot become {to.value.replace('_', ' ')}",
                                field="state")
    return to


def claim_by(drawn_at: datetime, days: int) -> datetime:
    return drawn_at + timedelta(days=days)


def check_claim_days(days: object) -> int:
    if type(days) is not int or not 1 <= days <= 365:
        raise errors.DrawInvalid("claim_days is a whole number of days, 1 to 365", field="claim_days")
    return days


def check_item_code(code: object) -> str:
    if not isinstance(code, str) or not _ITEM.match(code.strip().lower()):
        raise errors.PrizeItemInvalid("a prize code is 1 to 32 lower-case letters, digits, '-' or '_', e.g. ipad",
                                      field="code")
    return code.strip().lower()


def check_text(value: object, field: str, *, most: int, least: int = 1) -> str:
    if not isinstance(value, str) or not least <= len(value.strip()) <= most:
        raise errors.DeliveryInvalid(f"{field} is {least} to {most} characters", field=field)
    return value.strip()


def check_proof(kind: object, sha256: object) -> tuple[ProofKind, str]:
    """The receiver's proof of a delivery: a signature or a photo, named by its SHA-256."""
    try:
        k = ProofKind(str(kind))
    except ValueError:
        raise errors.DeliveryProofRequired("proof is a signature or a photo", field="proof_kind") from None
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise errors.DeliveryProofRequired("the proof's SHA-256 is 64 lower-case hex digits", field="proof_sha256")
    return k, sha256
