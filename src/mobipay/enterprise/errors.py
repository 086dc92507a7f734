"""Enterprise refusals, each with a stable code (see docs/errors.md).

An employee paying at a shop the employer did not name is ``ALLOWANCE_NOT_ACCEPTED``: the
allowance pays only at the employer's closed-loop merchants, and nothing moves.
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class EmployerNotFound(MobipayError):
    code = "EMPLOYER_NOT_FOUND"
    status = 404
    title = "No such employer"


class EmployerInvalid(MobipayError):
    code = "EMPLOYER_INVALID"
    status = 400
    title = "The employer cannot be set up so"


class RulesInvalid(MobipayError):
    code = "ALLOWANCE_RULES_INVALID"
    status = 400
    title = "The allowance rules are not valid"


class MonthInvalid(MobipayError):
    code = "MONTH_INVALID"
    status = 400
    title = "Not a month (YYYY-MM)"


class CsvInvalid(MobipayError):
    code = "ENROLMENT_FILE_INVALID"
    status = 400
    title = "The enrolment file cannot be read"


class EmployeeNotFound(MobipayError):
    code = "EMPLOYEE_NOT_FOUND"
    status = 404
    title = "No such employee"


class EmployeeInvalid(MobipayError):
    code = "EMPLOYEE_INVALID"
    status = 422
    title = "This number cannot be enrolled"


class NotAnEmployee(MobipayError):
    code = "NOT_AN_EMPLOYEE"
    status = 403
    title = "This wallet is not enrolled with an employer"


class FundingInvalid(MobipayError):
    code = "ALLOWANCE_FUNDING_INVALID"
    status = 400
    title = "The allowance funding is not valid"


class EmployerFundsInsufficient(MobipayError):
    code = "EMPLOYER_FUNDS_INSUFFICIENT"
    status = 422
    title = "The employer's account does not cover this funding"


class AllowanceNotAccepted(MobipayError):
    code = "ALLOWANCE_NOT_ACCEPTED"
    status = 422
    title = "The allowance is not accepted at this merchant"


class ClosedLoopInvalid(MobipayError):
    code = "CLOSED_LOOP_MERCHANT_INVALID"
    status = 422
    title = "This merchant cannot be named for the allowance"


class ClosedLoopNotFound(MobipayError):
    code = "CLOSED_LOOP_MERCHANT_NOT_FOUND"
    status = 404
    title = "This merchant is not one of the employer's closed-loop merchants"


class EmployeeStateInvalid(MobipayError):
    code = "EMPLOYEE_STATE_INVALID"
    status = 409
    title = "The employee's state does not allow this"


class ReportInvalid(MobipayError):
    code = "ENTERPRISE_REPORT_INVALID"
    status = 400
    title = "No such report or format"


class PaymentChanged(MobipayError):
    code = "ALLOWANCE_CHANGED"
    status = 409
    title = "The allowance changed while paying: send the payment again"


class ReaderNotFound(MobipayError):
    code = "READER_NOT_FOUND"
    status = 404
    title = "No such reader"


class ReaderKeyInvalid(MobipayError):
    code = "READER_KEY_INVALID"
    status = 400
    title = "A reader's public key is 32 bytes of Ed25519 in base64"


class ReaderSignatureInvalid(MobipayError):
    code = "READER_SIGNATURE_INVALID"
    status = 401
    title = "The reader's signature, timestamp or nonce is not valid"


class TapsInvalid(MobipayError):
    code = "READER_TAPS_INVALID"
    status = 400
    title = "The reader's upload is not valid"


class ReaderConflict(MobipayError):
    code = "READER_CONFLICT"
    status = 409
    title = "The employer has a reader of this label with another kind or key: choose another label"


class TerminalPaycodeMismatch(MobipayError):
    code = "ENTERPRISE_PAYCODE_MISMATCH"
    status = 409
    title = "This out_trade_no was paid by another payer's code: a retry sends the same code and amount"
