"""Campaign refusals, each with a stable code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError

# ---- bulk disbursements ----


class BulkFileHashMismatch(MobipayError):
    code = "BULK_FILE_HASH_MISMATCH"
    status = 422
    title = "The batch file is not the file its SHA-256 names"


class BulkFileInvalid(MobipayError):
    code = "BULK_FILE_INVALID"
    status = 400
    title = "The batch file cannot be read as a batch"


class BulkRowIdInvalid(MobipayError):
    code = "BULK_ROW_ID_INVALID"
    status = 400
    title = "A row id is 1 to 40 letters, digits, '-', '_', '.' or ':'"


class BulkDuplicateRowId(MobipayError):
    code = "BULK_DUPLICATE_ROW_ID"
    status = 400
    title = "The row id is used by an earlier row of the file"


class BulkDuplicateRow(MobipayError):
    code = "BULK_DUPLICATE_ROW"
    status = 400
    title = "An earlier row pays the same number the same amount with the same note"


class BulkNameInvalid(MobipayError):
    code = "BULK_NAME_INVALID"
    status = 400
    title = "The recipient's name is missing or too long"


class BulkNameMismatch(MobipayError):
    code = "BULK_NAME_MISMATCH"
    status = 422
    title = "The name is not the wallet's verified real name"


class BulkNoteInvalid(MobipayError):
    code = "BULK_NOTE_INVALID"
    status = 400
    title = "The note is at most 64 characters of plain text"


class BulkRecipientUnavailable(MobipayError):
    code = "BULK_RECIPIENT_UNAVAILABLE"
    status = 422
    title = "The recipient's wallet is frozen or closed and cannot receive money"


class BulkSameApprover(MobipayError):
    code = "BULK_SAME_APPROVER"
    status = 403
    title = "A batch is approved by a second person, not the one who uploaded it"


class BulkRoleRequired(MobipayError):
    code = "BULK_ROLE_REQUIRED"
    status = 403
    title = "This member may not do this (maker uploads, checker approves)"


class BulkBatchState(MobipayError):
    code = "BULK_BATCH_STATE"
    status = 409
    title = "The batch is not in a state that allows this"


class BulkDuplicateFile(MobipayError):
    code = "BULK_DUPLICATE_FILE"
    status = 409
    title = "This file was uploaded to this campaign already"


class BulkUnderfunded(MobipayError):
    code = "BULK_UNDERFUNDED"
    status = 422
    title = "The campaign account does not hold the batch's total"


# ---- segments, prize draws, prizes and delivery ----

class SegmentInvalid(MobipayError):
    code = "SEGMENT_INVALID"
    status = 400
    title = "The segment's criteria are not valid"


class SegmentNotFound(MobipayError):
    code = "SEGMENT_NOT_FOUND"
    status = 404
    title = "No such segment"


class SegmentNameTaken(MobipayError):
    code = "SEGMENT_NAME_TAKEN"
    status = 409
    title = "Another segment has this name"


class DrawInvalid(MobipayError):
    code = "CAMPAIGN_DRAW_INVALID"
    status = 400
    title = "The prize draw's request is not valid"


class DrawNotFound(MobipayError):
    code = "CAMPAIGN_DRAW_NOT_FOUND"
    status = 404
    title = "No such prize draw"


class DrawRandomnessNotFuture(MobipayError):
    code = "CAMPAIGN_DRAW_RANDOMNESS_NOT_FUTURE"
    status = 422
    title = "The named lottery draw must be held after the commitment is published"


class DrawTooFewEntries(MobipayError):
    code = "CAMPAIGN_DRAW_TOO_FEW_ENTRIES"
    status = 422
    title = "The segment has fewer subscribers than the draw has prizes"


class DrawRandomnessPending(MobipayError):
    code = "CAMPAIGN_DRAW_RANDOMNESS_PENDING"
    status = 409
    title = "The named lottery draw has not been held and imported yet"


class PrizeItemNotFound(MobipayError):
    code = "PRIZE_ITEM_NOT_FOUND"
    status = 404
    title = "No such prize in the inventory"


class PrizeOutOfStock(MobipayError):
    code = "PRIZE_OUT_OF_STOCK"
    status = 422
    title = "The inventory does not hold enough of this prize"


class PrizeItemInvalid(MobipayError):
    code = "PRIZE_ITEM_INVALID"
    status = 400
    title = "The prize item is not valid"


class AwardNotFound(MobipayError):
    code = "AWARD_NOT_FOUND"
    status = 404
    title = "No such prize won"


class AwardState(MobipayError):
    code = "AWARD_STATE"
    status = 409
    title = "The prize won is not in a state that allows this"


class DeliveryRunNotFound(MobipayError):
    code = "DELIVERY_RUN_NOT_FOUND"
    status = 404
    title = "No such delivery run"


class DeliveryRunState(MobipayError):
    code = "DELIVERY_RUN_STATE"
    status = 409
    title = "The delivery run is not in a state that allows this"


class DeliveryStopNotFound(MobipayError):
    code = "DELIVERY_STOP_NOT_FOUND"
    status = 404
    title = "No such stop on the delivery run"


class DeliveryInvalid(MobipayError):
    code = "DELIVERY_INVALID"
    status = 400
    title = "The delivery's details are not valid"


class DeliveryProofRequired(MobipayError):
    code = "DELIVERY_PROOF_REQUIRED"
    status = 400
    title = "A delivery needs the receiver's signature or photo"
