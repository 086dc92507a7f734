"""Per-account lockout after wrong passwords: one policy for every sign-in by name and
password (operator console, merchant portal), on top of the per-address limits.

A per-address limit alone lets a patient attacker guess one account's password from many
addresses (or, before proxies were configured, from one address claiming to be many); a
lock on the account stops that whatever the addresses. The numbers are the refund PIN's
(5 tries, 15 minutes): wrong passwords within the window count, reaching the limit locks
the account for the lock time (even the right password is refused then), a right password
outside a lock starts the count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    tries: int = 5
    window: timedelta = timedelta(minutes=15)  # wrong passwords further apart than this are forgotten
    lock: timedelta = timedelta(minutes=15)

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        return locked_until is not None and locked_until > now

    def after_failure(self, failures: int, last_failed_at: datetime | None, now: datetime
                      ) -> tuple[int, datetime | None]:
        """(failures counted now, locked until or None) after one more wrong password."""
        if last_failed_at is None or now - last_failed_at > self.window:
            failures = 0
        failures += 1
        if failures >= self.tries:
            return 0, now + self.lock  # the lock starts the count again when it ends
        return failures, None


#: The console's and the merchant portal's sign-in.
SIGN_IN_LOCKOUT = LockoutPolicy()
