"""Back-office refusals (console sign-in, operator accounts, maker-checker reversals),
each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class SignInFailed(MobipayError):
    code = "SIGN_IN_FAILED"
    status = 401
    title = "Wrong name or password, or the account is disabled"


class SignInLocked(MobipayError):
    code = "SIGN_IN_LOCKED"
    status = 423
    title = "Too many wrong passwords: this account is locked for a while"


class OperatorSessionExpired(MobipayError):
    code = "OPERATOR_SESSION_EXPIRED"
    status = 401
    title = "Sign in to the console (again)"


class OperatorExists(MobipayError):
    code = "OPERATOR_EXISTS"
    status = 409
    title = "An operator with this name already exists"


class SameOperator(MobipayError):
    code = "MAKER_CHECKER"
    status = 403
    title = "A second operator must decide a request: not the one who made it"


class ReversalPending(MobipayError):
    code = "REVERSAL_ALREADY_REQUESTED"
    status = 409
    title = "A reversal of this transfer is already waiting for approval"


class ReversalDecided(MobipayError):
    code = "REVERSAL_ALREADY_DECIDED"
    status = 409
    title = "This reversal request was already approved or rejected"
