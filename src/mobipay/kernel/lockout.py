"""Lockout after wrong secrets: one rule for every secret a person types, with three
settings of it.

- :data:`SIGN_IN_LOCKOUT`, the console's and the merchant portal's sign-in by name and
  password, on top of the per-address limits: a per-address limit alone lets a patient
  attacker guess one account's password from many addresses; a lock on the account stops
  that whatever the addresses. Wrong passwords within the window (15 minutes) count; the
  fifth locks the account for 15 minutes (even the right password is refused then).
- :data:`REFUND_PIN_LOCKOUT`, a merchant operator's refund PIN: five wrong PINs lock
  refunds for 15 minutes; wrong tries are forgotten only by a right one or a lock.
- :data:`PAYMENT_PIN_LOCKOUT`, a subscriber's payment PIN: five wrong PINs lock payments
  for 15 minutes, and each further lock lasts twice as long as the one before, up to a day
  (someone trying PINs on a stolen phone gets slower and slower).

A right secret outside a lock starts the count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    tries: int = 5
    #: Wrong tries further apart than this are forgotten (None: only a right one or a lock forgets them).
    window: timedelta | None = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    #: None: every lock lasts ``lock``; else each lock doubles the one before, up to this.
    max_lock: timedelta | None = None

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        return locked_until is not None and locked_until > now

    def lock_for(self, previous_locks: int = 0) -> timedelta:
        """How long the next lock lasts, after ``previous_locks`` locks."""
        if self.max_lock is None:
            return self.lock
        return min(self.max_lock, self.lock * (1 << min(previous_locks, 30)))

    def after_failure(self, failures: int, last_failed_at: datetime | None, now: datetime, *,
                      previous_locks: int = 0) -> tuple[int, datetime | None]:
        """(failures counted now, locked until or None) after one more wrong secret."""
        if self.window is not None and (last_failed_at is None or now - last_failed_at > self.window):
            failures = 0
        failures += 1
        if failures >= self.tries:
            return 0, now + self.lock_for(previous_locks)  # the lock starts the count again when it ends
        return failures, None


#: The console's and the merchant portal's sign-in.
SIGN_IN_LOCKOUT = LockoutPolicy()
#: A merchant operator's refund PIN.
REFUND_PIN_LOCKOUT = LockoutPolicy(window=None)
#: A subscriber's payment PIN (growing locks).
PAYMENT_PIN_LOCKOUT = LockoutPolicy(window=None, max_lock=timedelta(hours=24))
