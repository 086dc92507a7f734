"""Operator roles (admin, operations, risk, finance, support, merchant_review, sp_governance): who may do
which operator action. For the command line the roster is configuration:
``MOBIPAY_OPERATORS="alice:merchant_review;bob:finance,support"``; ``admin`` holds every
role. Console operators have accounts (:mod:`mobipay.backoffice.operators`); the console
vouches for the roles of the operator it has just authenticated, so services that check
the roster (merchant review) accept them. An action by someone without the role is
refused and changes nothing.
"""

from __future__ import annotations

from mobipay.kernel.errors import RoleRequired

ROLES = ("admin", "operations", "risk", "finance", "support", "merchant_review", "sp_governance")


class Roster:
    def __init__(self, spec: str) -> None:
        self.roles: dict[str, frozenset[str]] = {}
        for entry in filter(None, (e.strip() for e in spec.split(";"))):
            name, _, roles = entry.partition(":")
            unknown = {r.strip() for r in roles.split(",")} - set(ROLES)
            if unknown:
                raise ValueError(f"MOBIPAY_OPERATORS: unknown role(s) {', '.join(sorted(unknown))} for {name}")
            self.roles[name.strip()] = frozenset(r.strip() for r in roles.split(","))
        self.vouched: dict[str, frozenset[str]] = {}

    def vouch(self, actor: str, roles: frozenset[str]) -> None:
        """The console authenticated ``actor`` with these roles (read from its account just
        now); they replace whatever the configuration says for that name."""
        self.vouched[actor] = roles

    def require(self, actor: str, role: str) -> None:
        held = self.vouched.get(actor, self.roles.get(actor, frozenset()))
        if role not in held and "admin" not in held:
            raise RoleRequired(f"{actor!r} needs the {role} role (MOBIPAY_OPERATORS)", role=role)
