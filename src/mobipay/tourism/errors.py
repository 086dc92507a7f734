"""Tourism refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class OfficerSignInFailed(MobipayError):
    code = "OFFICER_SIGN_IN_FAILED"
    status = 401
    title = "Wrong officer number or password, or the account is locked"


class OfficerDeviceNotBound(MobipayError):
    code = "OFFICER_DEVICE_NOT_BOUND"
    status = 403
    title = "This phone is not the terminal issued to the officer"


class OfficerSessionInvalid(MobipayError):
    code = "OFFICER_SESSION_INVALID"
    status = 401
    title = "Sign in again: the officer session is unknown, ended or expired"


class OfficerInvalid(MobipayError):
    code = "OFFICER_INVALID"
    status = 400
    title = "The officer's details are not valid"


class CountyUnknown(MobipayError):
    code = "TOURISM_COUNTY_UNKNOWN"
    status = 404
    title = "No such county bureau"


class OtherCounty(MobipayError):
    code = "TOURISM_OTHER_COUNTY"
    status = 404
    title = "No such work order in your county"


class ComplaintInvalid(MobipayError):
    code = "COMPLAINT_INVALID"
    status = 400
    title = "The complaint is incomplete or not valid"


class WorkOrderNotFound(MobipayError):
    code = "WORK_ORDER_NOT_FOUND"
    status = 404
    title = "No such work order"


class OrderStateConflict(MobipayError):
    code = "WORK_ORDER_STATE_CONFLICT"
    status = 409
    title = "The work order is not at a step where this can be done"


class RefusalReasonRequired(MobipayError):
    code = "WORK_ORDER_REFUSAL_REASON"
    status = 422
    title = "A refusal states its reasons"


class ConsentRequired(MobipayError):
    code = "LOCATION_CONSENT_REQUIRED"
    status = 403
    title = "The work order has no recorded consent to a location query"


class LocationUnavailable(MobipayError):
    code = "LOCATION_UNAVAILABLE"
    status = 503
    title = "The operator's location service did not answer; try again in a moment"


class NoTrack(MobipayError):
    code = "LOCATION_NO_TRACK"
    status = 404
    title = "The location service has no positions of that phone over the tour's hours"


class DirectoryEntryNotFound(MobipayError):
    code = "TOURISM_DIRECTORY_NOT_FOUND"
    status = 404
    title = "No such agency, guide or place in the directory"


class ContractNotFound(MobipayError):
    code = "TOURISM_CONTRACT_NOT_FOUND"
    status = 404
    title = "No such filed tour contract"


class RefundInvalid(MobipayError):
    code = "TOURISM_REFUND_INVALID"
    status = 422
    title = "The refund is not valid"


class TouristHasNoWallet(MobipayError):
    code = "TOURISM_TOURIST_NO_WALLET"
    status = 422
    title = "The tourist's number has no wallet; record a bank refund instead"


class AgencyFundsShort(MobipayError):
    code = "TOURISM_AGENCY_FUNDS_SHORT"
    status = 422
    title = "The agency's account does not hold the refund; it pays by bank"


class EvidenceTooLarge(MobipayError):
    code = "EVIDENCE_TOO_LARGE"
    status = 413
    title = "The evidence file is too large"


class EvidenceNotMedia(MobipayError):
    code = "EVIDENCE_NOT_MEDIA"
    status = 415
    title = "The evidence file is not a photo or an audio recording"


class EvidenceHashMismatch(MobipayError):
    code = "EVIDENCE_HASH_MISMATCH"
    status = 422
    title = "The evidence file's SHA-256 is not the one recorded at capture"


class EvidenceNotFound(MobipayError):
    code = "EVIDENCE_NOT_FOUND"
    status = 404
    title = "No such evidence"


class EvidenceInvalid(MobipayError):
    code = "EVIDENCE_INVALID"
    status = 400
    title = "The evidence's capture details are not valid"


class AgencySignInFailed(MobipayError):
    code = "TOURISM_AGENCY_SIGN_IN_FAILED"
    status = 401
    title = "Wrong account name or password, or the account is locked"


class AgencySessionInvalid(MobipayError):
    code = "TOURISM_AGENCY_SESSION_INVALID"
    status = 401
    title = "Sign in again: the agency or guide session is unknown, ended or expired"


class AgencyAccountInvalid(MobipayError):
    code = "TOURISM_AGENCY_ACCOUNT_INVALID"
    status = 400
    title = "The agency account's details are not valid"


class AgencyInputInvalid(MobipayError):
    code = "TOURISM_AGENCY_INPUT_INVALID"
    status = 400
    title = "The outlet, staff member or contract is incomplete or not valid"


class AgencyManagerOnly(MobipayError):
    code = "TOURISM_AGENCY_MANAGER_ONLY"
    status = 403
    title = "Only the agency's manager may change its sales network and staff"


class AgencyDuplicate(MobipayError):
    code = "TOURISM_AGENCY_DUPLICATE"
    status = 409
    title = "The agency already has this outlet, staff member or contract"


class CheckInInvalid(MobipayError):
    code = "TOURISM_CHECK_IN_INVALID"
    status = 400
    title = "The check-in's position is not valid"
