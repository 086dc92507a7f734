"""One sign-in and session mechanism for staff who sign in with a name and a password: the
operator console's operators and the merchant portal's staff.

Each keeps its own two tables (accounts and sessions, of the same columns) and its own
wording; what they share is here, written once: the password check (``platform.credentials``,
the same work whether the account exists or not), the per-account lockout after wrong
passwords (:data:`~mobipay.kernel.lockout.SIGN_IN_LOCKOUT`, counted under the account's
row lock so concurrent tries count one after another), the audit of every failure, lock
and sign-in, and sessions as random tokens kept only as SHA-256 that expire after
:attr:`StaffSessions.ttl` or when signed out.

An account table has ``id``, ``password_hash``, ``sign_in_failures``, ``sign_in_failed_at``
and ``sign_in_locked_until``; a session table ``token_hash``, ``operator_id``,
``created_at``, ``expires_at`` and ``ended_at``.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Table, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.lockout import SIGN_IN_LOCKOUT, LockoutPolicy
from mobipay.platform import audit
from mobipay.platform.credentials import hash_secret, new_token, password_hasher, token_hash, verify_secret

#: The shortest password a staff account may have.
MIN_PASSWORD = 10


def check_account(name: str, password: str) -> str:
    """A new staff account's name (stripped) and password, as every sign-in by name expects
    them: a name of 2-64 letters, digits, ``._-``; a password of at least :data:`MIN_PASSWORD`."""
    name = name.strip()
    if not (2 <= len(name) <= 64 and all(ch.isalnum() or ch in "._-" for ch in name)):
        raise ValidationFailed("a name is 2-64 letters, digits, '.', '_' or '-'", field="name")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"a password has at least {MIN_PASSWORD} characters", field="password")
    return name


#: How long a staff session lasts (the cookie's lifetime too).
SESSION_TTL = timedelta(hours=8)


class SignIn(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"  # wrong password, or an account that may not sign in
    LOCKED = "locked"  # locked before this try, or by it


class StaffSessions:
    """Sign-in, lockout and sessions over one pair of tables (see the module docstring)."""

    def __init__(self, accounts: Table, sessions: Table, *, audit_prefix: str, hasher: PasswordHasher | None = None,
                 ttl: timedelta = SESSION_TTL, lockout: LockoutPolicy = SIGN_IN_LOCKOUT,
                 enabled: Callable[[Table], Any] | None = None) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.prefix = audit_prefix
        self.hasher = hasher or password_hasher()
        self.ttl = ttl
        self.lockout = lockout
        #: The accounts that may hold a session (e.g. not disabled), as a WHERE clause.
        self.enabled = enabled or (lambda _: true())
        self._dummy_hash: str | None = None

    async def hash_password(self, password: str) -> str:
        return await hash_secret(self.hasher, password)

    async def check_password(self, stored: str | None, password: str) -> bool:
        """The password check; a missing account costs the same work (a dummy hash), so the
        time taken does not tell which names exist."""
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = await hash_secret(self.hasher, secrets.token_hex(16))
            stored = self._dummy_hash
        return await verify_secret(self.hasher, stored, password)

    async def start(self, conn: AsyncConnection, now: datetime, account_id: str, password_ok: bool, *, who: str,
                    client: str, reason: str, may_sign_in: Callable[[Any], bool] = lambda _: True
                    ) -> tuple[SignIn, str | None]:
        """In the caller's transaction: count a wrong password (locking at the limit), refuse
        a locked account, or open a session; every outcome audited. Returns the outcome and,
        when it is OK, the new session's token (shown once)."""
        a = self.accounts
        where = f" from {client}" if client else ""
        row = (await conn.execute(select(a).where(a.c.id == account_id).with_for_update())).one()
        until = as_utc(row.sign_in_locked_until) if row.sign_in_locked_until else None
        if self.lockout.is_locked(until, now):
            await audit.record(conn, at=now, actor=f"sign-in{where}", action=f"{self.prefix}.sign_in_locked",
                               target=who, reason=f"sign-in refused: the account is locked{where}",
                               after={"locked_until": until})
            return SignIn.LOCKED, None
        if not password_ok:
            failures, locked = self.lockout.after_failure(
                row.sign_in_failures, as_utc(row.sign_in_failed_at) if row.sign_in_failed_at else None, now)
            await conn.execute(update(a).where(a.c.id == account_id).values(
                sign_in_failures=failures, sign_in_failed_at=now, sign_in_locked_until=locked))
            await audit.record(conn, at=now, actor=f"sign-in{where}",
                               action=f"{self.prefix}.locked" if locked else f"{self.prefix}.sign_in_failed",
                               target=who, reason=f"wrong password{where}",
                               after={"locked_until": locked} if locked else {"failures": failures})
            return (SignIn.LOCKED if locked else SignIn.FAILED), None
        if not may_sign_in(row):
            return SignIn.FAILED, None
        await self.unlock(conn, account_id)
        token = new_token()
        await conn.execute(insert(self.sessions).values(token_hash=token_hash(token), operator_id=account_id,
                                                        created_at=now, expires_at=now + self.ttl))
        await audit.record(conn, at=now, actor=who, action=f"{self.prefix}.sign_in", target=who,
                           reason=f"{reason}{where}")
        return SignIn.OK, token

    async def unlock(self, conn: AsyncConnection, account_id: str) -> None:
        """Forget an account's wrong passwords and end its lock (in the caller's transaction)."""
        await conn.execute(update(self.accounts).where(self.accounts.c.id == account_id).values(
            sign_in_failures=0, sign_in_failed_at=None, sign_in_locked_until=None))

    async def holder(self, conn: AsyncConnection, now: datetime, token: str) -> Any:
        """The account row a live session token belongs to (None: unknown, ended, expired, or
        an account that may not hold a session)."""
        if not token:
            return None
        a, s = self.accounts, self.sessions
        return (await conn.execute(
            select(a).join(s, s.c.operator_id == a.c.id)
            .where(s.c.token_hash == token_hash(token), s.c.ended_at.is_(None), s.c.expires_at > now,
                   self.enabled(a)))).first()

    async def end(self, conn: AsyncConnection, now: datetime, token: str) -> None:
        """Sign out: end the session of ``token``."""
        s = self.sessions
        await conn.execute(update(s).where(s.c.token_hash == token_hash(token), s.c.ended_at.is_(None))
                           .values(ended_at=now))

    async def end_all(self, conn: AsyncConnection, now: datetime, account_id: str) -> None:
        """End every session of an account (it was disabled)."""
        s = self.sessions
        await conn.execute(update(s).where(s.c.operator_id == account_id, s.c.ended_at.is_(None))
                           .values(ended_at=now))
