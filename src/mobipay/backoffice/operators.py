"""Operator accounts for the console: a name, an argon2id password hash, roles and a
disabled flag. Sign-in, the lockout after wrong passwords and sessions are the staff
mechanism the merchant portal shares (:mod:`mobipay.platform.staff_sessions`: tokens kept
only as SHA-256, 8 hours; 5 wrong passwords within 15 minutes lock the account for 15
minutes, even against the right password); every failure, lock and unlock is audited.

Roles are those of :mod:`mobipay.kernel.roles`; ``admin`` holds every role. Creating,
changing and disabling accounts is audited like every other operator action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import insert, select, update

from mobipay.backoffice.errors import OperatorExists, OperatorSessionExpired, SignInFailed, SignInLocked
from mobipay.backoffice.tables import operator_sessions, operators
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import NotFound, RoleRequired, ValidationFailed
from mobipay.kernel.ids import new_id
from mobipay.kernel.roles import ROLES
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform import audit
from mobipay.platform.staff_sessions import SignIn, StaffSessions, check_account


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


class OperatorAccounts:
    """Operator accounts and console sessions; each command one unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, hasher: PasswordHasher | None = None) -> None:
        self.uow = uow
        self.staff = StaffSessions(operators, operator_sessions, audit_prefix="operator", hasher=hasher,
                                   enabled=lambda a: a.c.disabled.is_(False))

    async def create(self, name: str, password: str, roles: Iterable[str], *, actor: str, reason: str) -> Operator:
        """A new operator account (audited). Names are 2-64 letters, digits, ``._-``."""
        name = check_account(name, password)
        wanted = check_roles(roles)
        password_hash = await self.staff.hash_password(password)

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
                await self.staff.end_all(uow.conn, uow.now, row.id)
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
        ok = await self.staff.check_password(row.password_hash if row is not None else None, password)
        if row is None:
            raise SignInFailed("wrong name or password, or the account is disabled", field="password")

        async def decide(uow: UnitOfWork) -> tuple[SignIn, str | None]:
            return await self.staff.start(uow.conn, uow.now, row.id, ok, who=row.name, client=client,
                                          reason="console sign-in", may_sign_in=lambda r: not r.disabled)

        outcome, token = await self.uow.run("operator_session_start", decide)
        if outcome is SignIn.LOCKED:
            minutes = int(self.staff.lockout.lock.total_seconds() // 60)
            raise SignInLocked(f"too many wrong passwords: the account is locked for up to {minutes} minutes; an "
                               "administrator can unlock it (mobipay operator unlock NAME)", field="password")
        if token is None:
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
            await self.staff.unlock(uow.conn, row.id)
            await uow.conn.execute(update(operators).where(operators.c.id == row.id).values(updated_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="operator.unlock", target=name,
                               reason=reason, before={"failures": row.sign_in_failures,
                                                      "locked_until": row.sign_in_locked_until})
            return _operator(row)

        return await self.uow.run("operator_unlock", work)

    async def session(self, token: str) -> Operator:
        """The operator a session token belongs to, if it is live and the account enabled."""

        async def work(uow: UnitOfWork) -> Any:
            return await self.staff.holder(uow.conn, uow.now, token)

        row = await self.uow.run("operator_session", work) if token else None
        if row is None:
            raise OperatorSessionExpired("sign in to the console")
        return _operator(row)

    async def sign_out(self, token: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self.staff.end(uow.conn, uow.now, token)

        await self.uow.run("operator_sign_out", work)

