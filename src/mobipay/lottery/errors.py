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
    title = "The lottery centre did not accept the ticket; its cost is back in the wallet"


class DrawNotFound(MobipayError):
    code = "DRAW_NOT_FOUND"
    status = 404
    title = "The lottery centre has not published this draw"


class UnknownIssue(MobipayError):
    code = "UNKNOWN_ISSUE"
    status = 404
    title = "The game has no draw with this issue number"


class DrawNotDue(MobipayError):
    code = "DRAW_NOT_DUE"
    status = 409
    title = "The draw has not been held yet; it can be imported after its draw time"


class TicketNotFound(MobipayError):
    code = "TICKET_NOT_FOUND"
    status = 404
    title = "No such ticket in your wallet"


class NothingToClaim(MobipayError):
    code = "NOTHING_TO_CLAIM"
    status = 409
    title = "This ticket has no prize waiting for a claim"


class ClaimExpired(MobipayError):
    code = "CLAIM_EXPIRED"
    status = 422
    title = "The prize was not claimed within 60 days of its draw and is forfeit"
