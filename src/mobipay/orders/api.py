"""The HTTP status convention of every order sent to a partner, for the products' routes."""

from __future__ import annotations

from fastapi import Response

from mobipay.kernel.errors import MobipayError
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder


def answer_order(order: PartnerOrder, response: Response, refused: type[MobipayError], what: str) -> None:
    """One status convention for every order sent to a partner: 201 done, 202 outcome not
    known yet (poll it), 200 a replay of the same Idempotency-Key, and the product's own
    refusal (422, with ``order_id``) when the partner said no: then nothing was taken."""
    if order.state is OrderState.FAILED:
        raise refused(f"{what} refused it ({order.reason or 'no reason given'})", order_id=order.id)
    if order.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    elif order.state is OrderState.PENDING:
        response.status_code = 202
