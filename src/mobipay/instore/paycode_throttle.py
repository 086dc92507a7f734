"""Refused payment codes counted per caller, across devices: guessing device numbers.

A payment code names its device by 8 digits and each device counts its own wrong codes (5 lock
it, ``instore/micropay.py``), but a till that tries a new device number each time never meets
that lock. So every refused code (unknown device, wrong code, revoked or locked device) is also
counted against the **caller**: a POS terminal (``trm_…``; micropay is reached only by signed
terminal requests, and an API app's id would be its key if one ever reaches it). At most
``refusals`` in a **fixed window** of ``window`` that starts at the caller's first refused code;
past them its charges are refused (``TERMINAL_PAYCODE_THROTTLED``, Retry-After) until the window
ends, before any code is read, so a payer's device counts nothing then.

One row per caller, moved by one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL and
SQLite alike): concurrent refusals each count (the second waits for the first one's row lock
and updates the row it committed), and the one that reaches the limit, exactly one, writes the
audit entry of the lockout in the same transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import case, literal, select

from mobipay.instore import errors
from mobipay.instore.tables import paycode_throttle
from mobipay.kernel.clock import as_utc
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform.db import dialect_insert

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many refused codes a caller may send in a window (settings
    ``MOBIPAY_INSTORE_TERMINAL_PAYCODE_REFUSALS`` and ``…_WINDOW_S``)."""

    refusals: int = 10
    window: timedelta = timedelta(minutes=10)


class PaycodeThrottle:
    """The per-caller count of refused payment codes, on the platform's clock."""

    def __init__(self, uow: UnitOfWorkRunner, policy: ThrottlePolicy | None = None) -> None:
        self.uow = uow
        self.policy = policy or ThrottlePolicy()

    async def check(self, caller: str) -> None:
        """Refuse (``TERMINAL_PAYCODE_THROTTLED``) while the caller's window is spent."""

        async def read(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(paycode_throttle).where(paycode_throttle.c.caller == caller))).first()

        row = await self.uow.run("paycode_throttle", read)
        if row is None or row.refusals < self.policy.refusals:
            return
        ends = as_utc(row.window_start) + self.policy.window
        left = (ends - self.uow.clock.now()).total_seconds()
        if left > 0:
            wait = max(1, math.ceil(left))
            raise errors.TerminalPaycodeThrottled(
                f"{row.refusals} refused payment codes from this terminal since "
                f"{as_utc(row.window_start).isoformat()}: it may charge payment codes again in {wait} s",
                field="auth_code",
                retry_after_s=wait,
                until=ends.isoformat(),
            )

    async def refused(self, caller: str, *, actor: str, code: str) -> int:
        """Count one refused code of ``caller`` (``code`` is the refusal's); the one that reaches
        the limit audits the lockout. Returns the refusals in the window now."""
        policy = self.policy
        t = paycode_throttle.c

        async def work(uow: UnitOfWork) -> tuple[int, datetime]:
            now, conn = uow.now, uow.conn
            over = t.window_start <= now - policy.window  # the stored window has ended: a new one starts now
            counted = case((over, 1), else_=t.refusals + 1)
            first = dialect_insert(conn.dialect.name, paycode_throttle).values(
                caller=caller, window_start=now, refusals=1, lockouts=int(policy.refusals == 1), last_refused_at=now
            )
            stmt = first.on_conflict_do_update(
                index_elements=[t.caller],
                set_={
                    "refusals": counted,
                    "window_start": case((over, literal(now, t.window_start.type)), else_=t.window_start),
                    "lockouts": case((counted == policy.refusals, t.lockouts + 1), else_=t.lockouts),
                    "last_refused_at": now,
                },
            ).returning(t.refusals, t.window_start)
            refusals, started = (await conn.execute(stmt)).one()
            if refusals == policy.refusals:  # exactly one request of the window sees the limit reached
                ends = as_utc(started) + policy.window
                await uow.audit(
                    actor=actor,
                    action="instore.paycode_guessing_throttled",
                    target=caller,
                    reason=f"{refusals} refused payment codes within "
                    f"{int(policy.window.total_seconds())} s (last: {code})",
                    after={"window_start": as_utc(started).isoformat(), "until": ends.isoformat()},
                )
            return int(refusals), as_utc(started)

        refusals, started = await self.uow.run("paycode_refused", work)
        if refusals == policy.refusals:
            log.warning(
                "instore.paycode_guessing",
                alert=True,
                caller=caller,
                actor=actor,
                refusals=refusals,
                until=(started + policy.window).isoformat(),
            )
        return refusals
