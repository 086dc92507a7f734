"""The ``ProviderGateway`` port: a provider that delivers what was bought (the operator's
product platform subscribes the number; an insurer issues the policy) and takes back a
cancellation; and its adapter to the partner-order engine. An order's ``details`` carry
what the provider needs (product, number, the insured person)."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder, StatementLine


class ProviderGateway(Protocol):
    async def order(self, order_id: str, action: str, amount: int, details: dict[str, Any]) -> PartnerAnswer:
        """``action``: deliver (subscribe, issue) or cancel (with ``details['policy']``)."""
        ...

    async def query(self, order_id: str) -> PartnerAnswer: ...

    async def statement(self, day: date) -> list[StatementLine]: ...


class ProviderPartner:
    def __init__(self, gateway: ProviderGateway) -> None:
        self.gateway = gateway

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        action = "cancel" if order.kind.endswith("_cancel") else "deliver"
        return await self.gateway.order(order.id, action, order.amount, order.details)

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.gateway.query(order.id)
