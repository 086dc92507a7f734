"""Operator accounts for the console: a name, an argon2id password hash, roles and a
disabled flag; sign-in sessions whose tokens are kept only as SHA-256 (a database leak
grants nothing) and expire after 8 hours. Wrong passwords are counted per account
(:data:`mobipay.kernel.lockout.SIGN_IN_LOCKOUT`: 5 within 15 minutes lock the account for
15 minutes, even against the right password); every failure, lock and unlock is audited.

Roles are those of :mod:`mobipay.kernel.roles`; ``admin`` holds every role. Creating,
changing and disabling accounts is audited like every other operator action.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table, Text, insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import MobipayError, NotFound, ValidationFailed
from mobipay.kernel.ids import new_id
from mobipay.kernel.lockout import SIGN_IN_LOCKOUT
from mobipay.kernel.roles import ROLES, RoleRequired
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform import audit
from mobipay.platform.db import metadata

SESSION_TTL = timedelta(hours=8)
MIN_PASSWORD = 10

operators = Table(
    "operators",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, with its parameters and salt
    Column("roles", Text, nullable=False),  # comma-separated, from ROLES
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sign_in_failures", Integer, nullable=False, server_default="0"),  # wrong passwords in the window
    Column("sign_in_failed_at", DateTime(timezone=True), nullable=True),
    Column("sign_in_locked_until", DateTime(timezone=True), nullable=True),
)

operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's random token
    Column("operator_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_operator_sessions_operator", "operator_id"),
)


class SignInFailed(MobipayError):
    code = "SIGN_IN_FAILED"
    status = 401
    title = "Wrong name or password, or the account is disabled"


class SignInLocked(MobipayError):
    code = "SIGN_IN_LOCKED"
    status = 423
    title = "Too many wrong passwords: this account is locked for a while"


class OperatorSessionExpired(MobipayError):
    code = "OPERATOR_SESSION_EXPIRED"
    status = 401
    title = "Sign in to the console (again)"


class OperatorExists(MobipayError):
    code = "OPERATOR_EXISTS"
    status = 409
    title = "An operator with this name already exists"


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    roles: frozenset[str]
    disabled: bool
    created_at: datetime

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def require(self, role: str) -> None:
        """Refuse (403, ``ROLE_REQUIRED``) unless this operator holds ``role`` (or admin)."""
        if not self.has(role):
            raise RoleRequired(f"{self.name!r} needs the {role} role", role=role)


def _operator(row: Any) -> Operator:
    return Operator(row.id, row.name, frozenset(filter(None, row.roles.split(","))), bool(row.disabled),
                    as_utc(row.created_at))


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(r.strip() for r in roles if r.strip())
    if not wanted:
        raise ValidationFailed(f"give at least one role: {', '.join(ROLES)}", field="roles")
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValidationFailed(f"unknown role(s) {', '.join(sorted(unknown))}; roles are {', '.join(ROLES)}",
                               field="roles")
    return wanted


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorAccounts:
    """Operator accounts and console sessions; each command one unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, hasher: PasswordHasher | None = None) -> None:
        self.uow = uow
        # argon2id as for PINs (OWASP minimum); hashing runs off the event loop.
        self.hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        self._dummy_hash: str | None = None

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(16))
        return self._dummy_hash

    async def create(self, name: str, password: str, roles: Iterable[str], *, actor: str, reason: str) -> Operator:
        """A new operator account (audited). Names are 2-64 letters, digits, ``._-``."""
        name = name.strip()
        if not (2 <= len(name) <= 64 and all(ch.isalnum() or ch in "._-" for ch in name)):
            raise ValidationFailed("a name is 2-64 letters, digits, '.', '_' or '-'", field="name")
        if len(password) < MIN_PASSWORD:
            raise ValidationFailed(f"a password has at least {MIN_PASSWORD} characters", field="password")
        wanted = check_roles(roles)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)

        async def work(uow: UnitOfWork) -> Operator:
            if (await uow.conn.execute(select(operators.c.id).where(operators.c.name == name))).first():
                raise OperatorExists(f"an operator named {name!r} already exists", field="name")
            operator_id = new_id("op")
            await uow.conn.execute(insert(operators).values(
                id=operator_id, name=name, password_hash=password_hash, roles=",".join(sorted(wanted)),
                disabled=False, created_at=uow.now, updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="operator.create", target=name,
                               reason=reason, after={"roles": sorted(wanted)})
            return Operator(operator_id, name, wanted, False, uow.now)

        return await self.uow.run("operator_create", work)

    async def list(self) -> list[Operator]:
        async def work(uow: UnitOfWork) -> list[Operator]:
            return [_operator(r) for r in await uow.conn.execute(select(operators).order_by(operators.c.name))]

        return await self.uow.run("operator_list", work)

    async def get(self, name: str) -> Operator:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(operators).where(operators.c.name == name))).first()

        row = await self.uow.run("operator_get", work)
        if row is None:
            raise NotFound(f"no operator named {name!r}", field="name")
        return _operator(row)

    async def set_disabled(self, name: str, disabled: bool, *, actor: str, reason: str) -> Operator:
        """Disable (or enable) an account; disabling also ends its sessions. Audited."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")

        async def work(uow: UnitOfWork) -> Operator:
            row = (await uow.conn.execute(select(operators).where(operators.c.name == name).with_for_update())
                   ).first()
            if row is None:
                raise NotFound(f"no operator named {name!r}", field="name")
            await uow.conn.execute(update(operators).where(operators.c.id == row.id).values(
                disabled=disabled, updated_at=uow.now))
            if disabled:
                await uow.conn.execute(update(operator_sessions).where(
                    operator_sessions.c.operator_id == row.id, operator_sessions.c.ended_at.is_(None))
                    .values(ended_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor,
                               action="operator.disable" if disabled else "operator.enable", target=name,
                               reason=reason, before={"disabled": bool(row.disabled)}, after={"disabled": disabled})
            return _operator((await uow.conn.execute(select(operators).where(operators.c.id == row.id))).one())

        return await self.uow.run("operator_disable", work)

    async def sign_in(self, name: str, password: str, *, client: str = "") -> tuple[str, Operator]:
        """A new session token (shown once, kept as SHA-256) for the right name and password.
        Every failure looks the same, so the page does not tell which names exist; wrong
        passwords are counted per account and lock it (``SIGN_IN_LOCKED``) as the lockout
        policy says. ``client`` (the address) goes into the audit trail."""

        async def load(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(operators).where(operators.c.name == name.strip()))).first()

        row = await self.uow.run("operator_sign_in", load)
        stored = row.password_hash if row is not None else await self._dummy()  # same work either way
        ok: bool
        try:
            ok = await asyncio.to_thread(self.hasher.verify, stored, password)
        except (VerifyMismatchError, InvalidHashError):
            ok = False
        if row is None:
            raise SignInFailed("wrong name or password, or the account is disabled", field="password")
        token = secrets.token_urlsafe(32)
        where = f" from {client}" if client else ""

        async def decide(uow: UnitOfWork) -> str:
            # Under the account's row lock, so concurrent tries are counted one after another
            # and a right password racing wrong ones cannot slip past a lock they set.
            r = (await uow.conn.execute(select(operators).where(operators.c.id == row.id).with_for_update())).one()
            until = as_utc(r.sign_in_locked_until) if r.sign_in_locked_until else None
            if SIGN_IN_LOCKOUT.is_locked(until, uow.now):
                await audit.record(uow.conn, at=uow.now, actor=f"sign-in{where}", action="operator.sign_in_locked",
                                   target=r.name, reason=f"sign-in refused: the account is locked{where}",
                                   after={"locked_until": until})
                return "locked"
            if not ok:
                failures, locked = SIGN_IN_LOCKOUT.after_failure(
                    r.sign_in_failures, as_utc(r.sign_in_failed_at) if r.sign_in_failed_at else None, uow.now)
                await uow.conn.execute(update(operators).where(operators.c.id == r.id).values(
                    sign_in_failures=failures, sign_in_failed_at=uow.now, sign_in_locked_until=locked))
                await audit.record(uow.conn, at=uow.now, actor=f"sign-in{where}",
                                   action="operator.locked" if locked else "operator.sign_in_failed", target=r.name,
                                   reason=f"wrong password{where}",
                                   after={"locked_until": locked} if locked else {"failures": failures})
                return "locked_now" if locked else "failed"
            if r.disabled:
                return "failed"
            await uow.conn.execute(update(operators).where(operators.c.id == r.id).values(
                sign_in_failures=0, sign_in_failed_at=None, sign_in_locked_until=None))
            await uow.conn.execute(insert(operator_sessions).values(
                token_hash=_sha(token), operator_id=r.id, created_at=uow.now, expires_at=uow.now + SESSION_TTL))
            await audit.record(uow.conn, at=uow.now, actor=r.name, action="operator.sign_in", target=r.name,
                               reason=f"console sign-in{where}")
            return "ok"

        outcome = await self.uow.run("operator_session_start", decide)
        if outcome in ("locked", "locked_now"):
            minutes = int(SIGN_IN_LOCKOUT.lock.total_seconds() // 60)
            raise SignInLocked(f"too many wrong passwords: the account is locked for up to {minutes} minutes; an "
                               "administrator can unlock it (mobipay operator unlock NAME)", field="password")
        if outcome != "ok":
            raise SignInFailed("wrong name or password, or the account is disabled", field="password")
        return token, _operator(row)

    async def unlock(self, name: str, *, actor: str, reason: str) -> Operator:
        """End an account's sign-in lock and forget its wrong passwords (audited)."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")

        async def work(uow: UnitOfWork) -> Operator:
            row = (await uow.conn.execute(select(operators).where(operators.c.name == name).with_for_update())
                   ).first()
            if row is None:
                raise NotFound(f"no operator named {name!r}", field="name")
            await uow.conn.execute(update(operators).where(operators.c.id == row.id).values(
                sign_in_failures=0, sign_in_failed_at=None, sign_in_locked_until=None, updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="operator.unlock", target=name,
                               reason=reason, before={"failures": row.sign_in_failures,
                                                      "locked_until": row.sign_in_locked_until})
            return _operator(row)

        return await self.uow.run("operator_unlock", work)

    async def session(self, token: str) -> Operator:
        """The operator a session token belongs to, if it is live and the account enabled."""

        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(
                select(operators).join(operator_sessions, operator_sessions.c.operator_id == operators.c.id)
                .where(operator_sessions.c.token_hash == _sha(token), operator_sessions.c.ended_at.is_(None),
                       operator_sessions.c.expires_at > uow.now, operators.c.disabled.is_(False)))).first()

        row = await self.uow.run("operator_session", work) if token else None
        if row is None:
            raise OperatorSessionExpired("sign in to the console")
        return _operator(row)

    async def sign_out(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(operator_sessions).where(
                operator_sessions.c.token_hash == _sha(token), operator_sessions.c.ended_at.is_(None))
                .values(ended_at=uow.now))

        await self.uow.run("operator_sign_out", work)

