"""Lottery refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class UnknownGame(MobipayError):
    code = "UNKNOWN_GAME"
    status = 404
    title = "No such lottery game"


class InvalidNumbers(MobipayError):
    code = "INVALID_NUMBERS"
    status = 400
    title = "The numbers do not fit the game"


class SalesClosed(MobipayError):
    code = "SALES_CLOSED"
    status = 422
    title = "Sales for this draw have closed"


class TicketRejected(MobipayError):
    code = "TICKET_REJECTED"
    status = 422
    title = "The lottery centre did not accept the ticket; the money is back in the wallet"


class DrawNotFound(MobipayError):
    code = "DRAW_NOT_FOUND"
    status = 404
    title = "The lottery centre has not published this draw"
