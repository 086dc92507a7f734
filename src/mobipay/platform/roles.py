"""Operator roles (admin, operations, risk, finance, support, merchant_review): who may do
which operator action. Until the console brings operator accounts, the roster is
configuration: ``MOBIPAY_OPERATORS="alice:merchant_review;bob:finance,support"``; ``admin``
holds every role. An action by someone without the role is refused and changes nothing.
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError

ROLES = ("admin", "operations", "risk", "finance", "support", "merchant_review")


class RoleRequired(MobipayError):
    code = "ROLE_REQUIRED"
    status = 403
    title = "This action needs an operator role you do not have"


class Roster:
    def __init__(self, spec: str) -> None:
        self.roles: dict[str, frozenset[str]] = {}
        for entry in filter(None, (e.strip() for e in spec.split(";"))):
            name, _, roles = entry.partition(":")
            unknown = {r.strip() for r in roles.split(",")} - set(ROLES)
            if unknown:
                raise ValueError(f"MOBIPAY_OPERATORS: unknown role(s) {', '.join(sorted(unknown))} for {name}")
            self.roles[name.strip()] = frozenset(r.strip() for r in roles.split(","))

    def require(self, actor: str, role: str) -> None:
        held = self.roles.get(actor, frozenset())
        if role not in held and "admin" not in held:
            raise RoleRequired(f"{actor!r} needs the {role} role (MOBIPAY_OPERATORS)", role=role)
