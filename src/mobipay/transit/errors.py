"""Transit refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class FaresInvalid(MobipayError):
    code = "TRANSIT_FARES_INVALID"
    status = 500
    title = "The fare table cannot be applied"


class FaresNotDefined(MobipayError):
    code = "TRANSIT_FARES_NOT_DEFINED"
    status = 422
    title = "No fares are defined for this city on this day"


class NoRoute(MobipayError):
    code = "TRANSIT_NO_ROUTE"
    status = 422
    title = "No route joins these stations"


class OperatorNotFound(MobipayError):
    code = "TRANSIT_OPERATOR_NOT_FOUND"
    status = 404
    title = "No such transit operator"


class LineNotFound(MobipayError):
    code = "TRANSIT_LINE_NOT_FOUND"
    status = 404
    title = "No such line of this operator"


class StationNotFound(MobipayError):
    code = "TRANSIT_STATION_NOT_FOUND"
    status = 404
    title = "No such station of this line"


class ValidatorNotFound(MobipayError):
    code = "TRANSIT_VALIDATOR_NOT_FOUND"
    status = 404
    title = "No such validator"


class TransitInvalid(MobipayError):
    code = "TRANSIT_INVALID"
    status = 400
    title = "The transit data is not valid"


class ValidatorNotSigned(MobipayError):
    code = "VALIDATOR_NOT_SIGNED"
    status = 401
    title = "Sign the request with the validator's key"


class ValidatorClockSkew(MobipayError):
    code = "VALIDATOR_CLOCK_SKEW"
    status = 401
    title = "The request's Timestamp is too far from the platform's clock"


class ValidatorBadSignature(MobipayError):
    code = "VALIDATOR_BAD_SIGNATURE"
    status = 401
    title = "The signature does not verify with the validator's key"


class ValidatorDisabled(MobipayError):
    code = "VALIDATOR_DISABLED"
    status = 403
    title = "This validator is disabled"


class ValidatorNonceReplayed(MobipayError):
    code = "VALIDATOR_NONCE_REPLAYED"
    status = 401
    title = "This Nonce was used already"


class UploadTooLarge(MobipayError):
    code = "TRANSIT_UPLOAD_TOO_LARGE"
    status = 413
    title = "Too many taps in one upload"


class TapMalformed(MobipayError):
    code = "TRANSIT_TAP_MALFORMED"
    status = 400
    title = "A tap's fields are not what a validator reads"


class TapUnknownToken(MobipayError):
    code = "TRANSIT_TAP_UNKNOWN_TOKEN"
    status = 422
    title = "The tap's token is not a device token of this platform"


class TapCryptogramInvalid(MobipayError):
    code = "TRANSIT_TAP_CRYPTOGRAM_INVALID"
    status = 422
    title = "The tap's cryptogram does not verify"


class TapFuture(MobipayError):
    code = "TRANSIT_TAP_IN_FUTURE"
    status = 422
    title = "The tap is dated after the upload"


class ClearingNotFound(MobipayError):
    code = "TRANSIT_CLEARING_NOT_FOUND"
    status = 404
    title = "No clearing for this operator and day"


class ClearingNotDue(MobipayError):
    code = "TRANSIT_CLEARING_NOT_DUE"
    status = 422
    title = "This day cannot be cleared yet"


class TapNotFound(MobipayError):
    code = "TRANSIT_TAP_NOT_FOUND"
    status = 404
    title = "No such tap"


class DisputeInvalid(MobipayError):
    code = "TRANSIT_DISPUTE_INVALID"
    status = 422
    title = "This tap cannot be disputed so"
