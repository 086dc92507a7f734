"""Secondary-confirmation rules without I/O: a random 6-digit code per request, valid for
5 minutes, usable once, and void after a few wrong replies (so it cannot be guessed)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from mobipay.confirmations.errors import ConfirmationRefused


@dataclass(frozen=True, slots=True)
class ConfirmationPolicy:
    ttl_s: int = 300
    max_wrong: int = 5


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    code_hash: str
    expires_at: datetime
    wrong: int
    state: str  # pending | used | void


def judge(pending: Pending | None, code_hash: str, now: datetime, policy: ConfirmationPolicy) -> None:
    """Whether ``code_hash`` confirms ``pending`` now; the caller records a wrong try."""
    if pending is None or pending.state != "pending":
        raise ConfirmationRefused("没有等待确认的请求。Nothing is waiting for a code.")
    if now >= pending.expires_at:
        raise ConfirmationRefused("验证码已过期，请重新发起。The code has expired; send the command again.")
    if pending.wrong >= policy.max_wrong:
        raise ConfirmationRefused("错误次数过多，请重新发起。Too many wrong codes; send the command again.")
    if not hmac.compare_digest(pending.code_hash, code_hash):
        raise ConfirmationRefused("验证码不正确。Wrong code.", wrong=True)
