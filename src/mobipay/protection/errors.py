"""Handset protection refusals, each with a stable code (see docs/errors.md).

Codes carry a ``PROTECTION_`` or ``IMEI_`` prefix where a plain word (claim, stock) would
collide with another context's: the catalogue is one namespace."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class ImeiInvalid(MobipayError):
    code = "IMEI_INVALID"
    status = 400
    title = "Not a valid IMEI (15 digits whose last is the Luhn check digit)"


class HandsetUnknown(MobipayError):
    code = "HANDSET_UNKNOWN"
    status = 422
    title = "The IMEI's type allocation code (TAC) is not a handset model the programme covers"


class ImeiBlocklisted(MobipayError):
    code = "IMEI_BLOCKLISTED"
    status = 422
    title = "This IMEI is on the blocklist (reported lost or stolen, or barred)"


class AlreadyEnrolled(MobipayError):
    code = "IMEI_ALREADY_ENROLLED"
    status = 409
    title = "This IMEI is already enrolled in handset protection"


class ProgrammeUnknown(MobipayError):
    code = "PROTECTION_PROGRAMME_UNKNOWN"
    status = 404
    title = "No such handset protection programme"


class NotInPilotCity(MobipayError):
    code = "PROTECTION_CITY_NOT_IN_PILOT"
    status = 422
    title = "Handset protection is offered only in the programme's cities"


class OutsidePeriod(MobipayError):
    code = "PROTECTION_OUTSIDE_PERIOD"
    status = 422
    title = "Handset protection enrols only within the programme's period"


class EnrolmentWindowPassed(MobipayError):
    code = "PROTECTION_ENROLMENT_WINDOW_PASSED"
    status = 422
    title = "The phone was bought too long ago to enrol (the window after purchase has passed)"


class PurchaseInvalid(MobipayError):
    code = "PROTECTION_PURCHASE_INVALID"
    status = 400
    title = "The proof of purchase is not valid (date in the future, receipt number missing)"


class PriceOutOfRange(MobipayError):
    code = "PROTECTION_PRICE_OUT_OF_RANGE"
    status = 422
    title = "The phone's price is outside every fee tier of the programme"


class EnrolmentNotFound(MobipayError):
    code = "ENROLMENT_NOT_FOUND"
    status = 404
    title = "No such handset protection enrolment"


class EnrolmentNotActive(MobipayError):
    code = "ENROLMENT_NOT_ACTIVE"
    status = 409
    title = "The enrolment is not active (lapsed for an unpaid fee, or ended)"


class InWaitingPeriod(MobipayError):
    code = "PROTECTION_IN_WAITING_PERIOD"
    status = 422
    title = "The incident happened before the cover started (the waiting period after enrolment)"


class OutsideMainland(MobipayError):
    code = "PROTECTION_OUTSIDE_MAINLAND"
    status = 422
    title = "Only incidents in mainland China are covered (not Hong Kong, Macau, Taiwan or abroad)"


class RegionUnknown(MobipayError):
    code = "PROTECTION_REGION_UNKNOWN"
    status = 400
    title = "Give where it happened as an ISO 3166-2 code (CN-HN for Hunan) or a country code"


class IncidentDateInvalid(MobipayError):
    code = "PROTECTION_INCIDENT_DATE_INVALID"
    status = 422
    title = "The incident date is in the future or too long ago to claim"


class EvidenceMissing(MobipayError):
    code = "PROTECTION_EVIDENCE_MISSING"
    status = 400
    title = "The claim lacks its evidence (photos for damage, the police report number for theft)"


class ClaimLimitReached(MobipayError):
    code = "PROTECTION_CLAIM_LIMIT_REACHED"
    status = 422
    title = "The programme's claim limit for the last 12 months is reached"


class ClaimAlreadyOpen(MobipayError):
    code = "PROTECTION_CLAIM_OPEN"
    status = 409
    title = "This enrolment already has a claim in progress"


class UnderWarranty(MobipayError):
    code = "PROTECTION_UNDER_WARRANTY"
    status = 422
    title = "The maker repairs this damage free under the three guarantees (三包): take it to the maker's service"


class WarrantyUnavailable(MobipayError):
    code = "WARRANTY_SERVICE_UNAVAILABLE"
    status = 503
    title = "The maker's warranty service did not answer; try again"


class ClaimNotFound(MobipayError):
    code = "PROTECTION_CLAIM_NOT_FOUND"
    status = 404
    title = "No such handset protection claim"


class ClaimStateInvalid(MobipayError):
    code = "PROTECTION_CLAIM_STATE"
    status = 409
    title = "The claim is not in a state that allows this step"


class SecondReviewerRequired(MobipayError):
    code = "PROTECTION_SECOND_REVIEWER"
    status = 403
    title = "A flagged claim needs a second reviewer other than the one who first approved it"


class NoStock(MobipayError):
    code = "PROTECTION_NO_STOCK"
    status = 409
    title = "No phone of this model is in stock at the business hall"


class HallUnknown(MobipayError):
    code = "PROTECTION_HALL_UNKNOWN"
    status = 404
    title = "No such business hall"


class OldPhoneRequired(MobipayError):
    code = "PROTECTION_OLD_PHONE_REQUIRED"
    status = 422
    title = "A damage claim is handed over only against the damaged phone"


class StockImeiTaken(MobipayError):
    code = "PROTECTION_STOCK_IMEI_TAKEN"
    status = 409
    title = "This IMEI is already in stock or enrolled"


class PhotoTooLarge(MobipayError):
    code = "PROTECTION_PHOTO_TOO_LARGE"
    status = 413
    title = "The photo is larger than the upload limit (5 MB)"


class PhotoNotImage(MobipayError):
    code = "PROTECTION_PHOTO_NOT_IMAGE"
    status = 415
    title = "The upload is not a JPEG or PNG image (checked by its content, not its name or Content-Type)"


class PhotoUnknown(MobipayError):
    code = "PROTECTION_PHOTO_UNKNOWN"
    status = 422
    title = "No such photo of yours: upload it first (POST /v1/protection/photos) and send its photo_id"
