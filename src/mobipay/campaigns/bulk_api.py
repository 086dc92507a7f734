"""The funders' API for bulk disbursements: upload a batch file, approve it, follow it, fetch
its results.

Every request is signed by a member of the funder with their own key, as the top-up
partners sign theirs: ``X-Funder-Key`` (the member's key id), ``X-Timestamp`` (within 300 s),
``X-Nonce`` (never twice) and ``X-Signature`` = hex HMAC-SHA256 of ``timestamp \\n nonce \\n
METHOD \\n path \\n body``. The key says who acts, so the maker of a batch and its checker
are two people (the same one is ``BULK_SAME_APPROVER``).

The upload's body is the CSV file itself (``Content-Type: text/csv``, up to 16 MiB: the edge's
limit for this prefix) with its SHA-256 in ``X-File-SHA256`` and an ``Idempotency-Key``:
201 with the batch (``awaiting_approval``, or ``rejected`` with the rows' errors in the
results), 200 with ``Idempotent-Replayed: true`` for the same key and file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mobipay.campaigns.bulk_model import CLAIM_DAYS_DEFAULT, MAX_INVALID_PCT_DEFAULT, Batch, Member
from mobipay.campaigns.bulk_service import BulkDisbursements
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key

router = APIRouter(prefix="/v1/campaigns/bulk", tags=["bulk disbursements (funders)"])

BulkDep = Annotated[BulkDisbursements, from_container("bulk")]


async def signed(request: Request, x_funder_key: Annotated[str, Header(max_length=40)] = "",
                 x_timestamp: Annotated[str, Header(max_length=16)] = "",
                 x_nonce: Annotated[str, Header(max_length=64)] = "",
                 x_signature: Annotated[str, Header(max_length=128)] = "") -> Member:
    service: BulkDisbursements = request.app.state.container.bulk
    return await service.authenticate(x_funder_key, x_timestamp, x_nonce, x_signature, request.method,
                                      request.url.path, await request.body())


Signed = Annotated[Member, Depends(signed)]  # named so the API document lists 401 (platform.openapi)


class SummaryOut(BaseModel):
    rows_total: int
    rows_valid: int
    rows_invalid: int
    amount_valid: MoneyOut
    paid_rows: int
    paid: MoneyOut
    waiting_for_registration_rows: int = Field(description="Paid into suspense for a number without a wallet")
    waiting_for_registration: MoneyOut
    claimed_rows: int = Field(description="Waiting rows whose number registered since: paid in")
    returned_rows: int = Field(description="Waiting rows nobody claimed in time: back in the campaign account")
    failed_rows: int
    failed: MoneyOut
    pending_rows: int


class BatchOut(BaseModel):
    id: str
    campaign_id: str
    file_name: str
    file_sha256: str
    state: str = Field(description="rejected | awaiting_approval | approved | running | completed")
    reason: str = Field(description="Why the file was rejected (empty otherwise)")
    claim_days: int
    sub_batches: int
    created_by: str
    approved_by: str | None
    created_at: datetime
    approved_at: datetime | None
    completed_at: datetime | None
    summary: SummaryOut


class RowOut(BaseModel):
    seq: int
    row_id: str
    msisdn: str
    name: str
    amount: MoneyOut
    note: str
    status: str = Field(description="invalid | pending | paid | waiting_for_registration | claimed | returned | "
                                    "failed | not_paid (a valid row of a rejected file)")
    error_code: str | None
    transfer_id: str | None


class RowsOut(BaseModel):
    items: list[RowOut]
    next: str | None


def _cny(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


def batch_out(b: Batch) -> BatchOut:
    s = b.summary
    return BatchOut(
        id=b.id, campaign_id=b.campaign_id, file_name=b.file_name, file_sha256=b.file_sha256, state=b.state,
        reason=b.reason, claim_days=b.claim_days, sub_batches=b.sub_batches, created_by=b.created_by,
        approved_by=b.approved_by, created_at=b.created_at, approved_at=b.approved_at, completed_at=b.completed_at,
        summary=SummaryOut(rows_total=s.rows_total, rows_valid=s.rows_valid, rows_invalid=s.rows_invalid,
                           amount_valid=_cny(s.amount_valid), paid_rows=s.paid_rows, paid=_cny(s.paid_amount),
                           waiting_for_registration_rows=s.waiting_rows,
                           waiting_for_registration=_cny(s.waiting_amount), claimed_rows=s.claimed_rows,
                           returned_rows=s.returned_rows, failed_rows=s.failed_rows, failed=_cny(s.failed_amount),
                           pending_rows=s.pending_rows))


@router.post("/batches", response_model=BatchOut, status_code=201, summary="Upload a batch file (signed, CSV body)",
             responses={200: {"description": "A replay: the same Idempotency-Key and file (Idempotent-Replayed: "
                                             "true)"}},
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "example": "row_id,msisdn,name,amount_yuan,note\n"
                                              "S0001,13800138000,王小明,500.00,2026助学金\n"}}}}})
async def upload(request: Request, response: Response, caller: Signed, service: BulkDep,
                 campaign_id: Annotated[str, Query(max_length=40)],
                 x_file_sha256: Annotated[str, Header(max_length=64, description="SHA-256 of the body, hex")],
                 idempotency_key: IdemKey = None,
                 file_name: Annotated[str, Query(max_length=128)] = "",
                 max_invalid_pct: Annotated[int, Query(ge=0, le=100)] = MAX_INVALID_PCT_DEFAULT,
                 claim_days: Annotated[int, Query(ge=1, le=30)] = CLAIM_DAYS_DEFAULT) -> BatchOut:
    batch, replayed = await service.upload(caller, campaign_id, await request.body(), x_file_sha256,
                                           idempotency_key=require_key(idempotency_key), file_name=file_name,
                                           max_invalid_pct=max_invalid_pct, claim_days=claim_days)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return batch_out(batch)


@router.post("/batches/{batch_id}/approval", response_model=BatchOut, summary="Approve a batch (signed, a checker)")
async def approve(batch_id: str, caller: Signed, service: BulkDep) -> BatchOut:
    """The second person's approval; the worker then pays the batch. Approving twice is
    ``BULK_BATCH_STATE``: nothing is paid twice."""
    return batch_out(await service.approve(caller, batch_id))


@router.get("/batches/{batch_id}", response_model=BatchOut, summary="A batch and its summary (signed)")
async def status(batch_id: str, caller: Signed, service: BulkDep) -> BatchOut:
    return batch_out(await service.batch(batch_id, funder_id=caller.funder_id, claims=True))


@router.get("/batches/{batch_id}/rows", response_model=RowsOut, summary="A batch's rows in file order (signed)")
async def rows(batch_id: str, caller: Signed, service: BulkDep,
               after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 100,
               state: Annotated[str | None, Query(max_length=28)] = None) -> RowsOut:
    await service.batch(batch_id, funder_id=caller.funder_id)
    found = await service.rows(batch_id, after=after, limit=limit, state=state)
    items = [RowOut(seq=r[0], row_id=r[1], msisdn=r[2], name=r[3], amount=_cny(r[4]), note=r[5], status=r[6],
                    error_code=r[7], transfer_id=r[8]) for r in found]
    return RowsOut(items=items, next=str(found[-1][0]) if len(found) == limit else None)


@router.get("/batches/{batch_id}/results", summary="The result file (signed): CSV, a line per row",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def results(batch_id: str, caller: Signed, service: BulkDep) -> StreamingResponse:
    await service.batch(batch_id, funder_id=caller.funder_id)
    return StreamingResponse(service.results(batch_id, funder_id=caller.funder_id), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{batch_id}-results.csv"'})
