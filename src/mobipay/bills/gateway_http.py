"""``HttpBillerGateway``: the signed biller protocol (``orders/signed_http.py``), the
adapter named ``biller_http`` in the biller registry."""

from __future__ import annotations

import json
from datetime import date

from mobipay.bills.model import Bill
from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import StatementLine
from mobipay.orders.signed_http import SignedClient


class HttpBillerGateway:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        self.http = SignedClient("billers", base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, biller: str, customer_id: str) -> Bill | None:
        body = await self.http.fetch("POST", f"/v1/billers/{biller}/bills/fetch", {"customer_id": customer_id})
        if body is None:
            return None
        d = json.loads(body)
        return Bill(biller, customer_id, d["bill_number"], int(d["amount_due"]), d["customer_name"],
                    date.fromisoformat(d["due_date"]), d["period"])

    async def pay(self, order_id: str, biller: str, customer_id: str, amount: int, bill_number: str
                  ) -> PartnerAnswer:
        return await self.http.order("POST", f"/v1/billers/{biller}/payments", order_id, {
            "order_id": order_id, "customer_id": customer_id, "amount": amount, "bill_number": bill_number})

    async def query(self, order_id: str, biller: str) -> PartnerAnswer:
        return await self.http.order("GET", f"/v1/billers/{biller}/payments/{order_id}", order_id)

    async def statement(self, biller: str, day: date) -> list[StatementLine]:
        return await self.http.statement(f"/v1/billers/{biller}/statements/{day.isoformat()}")
