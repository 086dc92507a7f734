"""Bill-zone refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class BillerNotFound(MobipayError):
    code = "BILLER_NOT_FOUND"
    status = 404
    title = "No such biller"


class BillerClosed(MobipayError):
    code = "BILLER_CLOSED"
    status = 422
    title = "The biller takes payments only in its opening hours"


class InvalidCustomerId(MobipayError):
    code = "INVALID_CUSTOMER_ID"
    status = 400
    title = "Not a customer number of this biller"


class BillNotFound(MobipayError):
    code = "BILL_NOT_FOUND"
    status = 404
    title = "The biller has no open bill for this customer"


class BillFetchRequired(MobipayError):
    code = "BILL_FETCH_REQUIRED"
    status = 422
    title = "This biller needs the bill fetched first; pay that bill"


class AmountNotAllowed(MobipayError):
    code = "AMOUNT_NOT_ALLOWED"
    status = 422
    title = "The amount does not fit the biller's rules for this bill"


class DuplicatePayment(MobipayError):
    code = "DUPLICATE_BILL_PAYMENT"
    status = 409
    title = "This bill was already paid this period; confirm to pay it again"


class BillAlreadyPaid(MobipayError):
    code = "BILL_ALREADY_PAID"
    status = 409
    title = "This bill is paid (or being paid) already: it is never paid twice"


class BillPaymentFailed(MobipayError):
    code = "BILL_PAYMENT_FAILED"
    status = 422
    title = "The biller refused the payment; the money is back in the wallet"


class ComplaintStateInvalid(MobipayError):
    code = "COMPLAINT_STATE_INVALID"
    status = 409
    title = "The complaint cannot move to that state"


class ComplaintExists(MobipayError):
    code = "COMPLAINT_EXISTS"
    status = 409
    title = "This payment already has an open complaint"


class SavedBillNotFound(MobipayError):
    code = "SAVED_BILL_NOT_FOUND"
    status = 404
    title = "No such saved bill"
