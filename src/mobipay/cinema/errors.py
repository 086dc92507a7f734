"""Cinema refusals, each with a stable code (see docs/errors.md).

A code typed at a kiosk that matches no ticket of its cinema (unknown, another cinema's, a
mistyped one) is one answer, ``TICKET_CODE_UNKNOWN``, so the answer tells a guesser nothing;
every such answer counts towards the cinema's lock (``TICKET_GUESSING_LOCKED``).
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class CinemaInvalid(MobipayError):
    code = "CINEMA_INVALID"
    status = 400
    title = "The cinema's details are not valid"


class CinemaNotFound(MobipayError):
    code = "CINEMA_NOT_FOUND"
    status = 404
    title = "No such cinema"


class HallInvalid(MobipayError):
    code = "HALL_INVALID"
    status = 400
    title = "The hall's seat map is not valid"


class HallNotFound(MobipayError):
    code = "HALL_NOT_FOUND"
    status = 404
    title = "No such hall"


class FilmNotFound(MobipayError):
    code = "FILM_NOT_FOUND"
    status = 404
    title = "No such film"


class ShowInvalid(MobipayError):
    code = "SHOW_INVALID"
    status = 400
    title = "The show's details are not valid"


class ShowNotFound(MobipayError):
    code = "SHOW_NOT_FOUND"
    status = 404
    title = "No such show"


class ShowNotOnSale(MobipayError):
    code = "SHOW_NOT_ON_SALE"
    status = 422
    title = "Tickets of this show are not on sale"


class SeatsInvalid(MobipayError):
    code = "SEATS_INVALID"
    status = 400
    title = "The seats asked for are not seats that can be sold"


class SeatTaken(MobipayError):
    code = "SEAT_TAKEN"
    status = 409
    title = "A seat asked for is locked or sold to someone else"


class OrderNotFound(MobipayError):
    code = "CINEMA_ORDER_NOT_FOUND"
    status = 404
    title = "No such cinema order"


class LockExpired(MobipayError):
    code = "SEAT_LOCK_EXPIRED"
    status = 409
    title = "The seats' lock ran out before payment: choose seats again"


class OrderNotPayable(MobipayError):
    code = "CINEMA_ORDER_NOT_PAYABLE"
    status = 409
    title = "This order cannot be paid (released, expired or refunded)"


class ChangeNotAllowed(MobipayError):
    code = "TICKET_CHANGE_NOT_ALLOWED"
    status = 422
    title = "These tickets cannot be changed"


class RefundNotAllowed(MobipayError):
    code = "TICKET_REFUND_NOT_ALLOWED"
    status = 422
    title = "These tickets cannot be refunded"


class CodeInvalid(MobipayError):
    code = "TICKET_CODE_INVALID"
    status = 400
    title = "A ticket code is 12 digits"


class CodeUnknown(MobipayError):
    code = "TICKET_CODE_UNKNOWN"
    status = 404
    title = "No ticket of this cinema has this code"


class AlreadyCollected(MobipayError):
    code = "TICKETS_ALREADY_PRINTED"
    status = 409
    title = "The tickets of this code were printed already"


class TicketsNotValid(MobipayError):
    code = "TICKETS_NOT_VALID"
    status = 422
    title = "The tickets of this code cannot be printed"


class GuessingLocked(MobipayError):
    code = "TICKET_GUESSING_LOCKED"
    status = 429
    title = "Too many wrong ticket codes at this cinema: checks are locked for a while"


class KioskNotOfCinema(MobipayError):
    code = "KIOSK_NOT_OF_A_CINEMA"
    status = 403
    title = "This terminal is not a kiosk of a cinema"
