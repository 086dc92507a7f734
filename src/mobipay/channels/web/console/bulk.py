"""The console's bulk disbursement pages (批量代发): the latest batches of every funder with
their state and summary, and one batch with its figures, its rows' states and the rows that
were not paid (invalid or failed, with their codes), for the operator who answers a funder's
call. Read-only: funders upload and approve through their signed API (maker-checker is
theirs); the operator's actions are the CLI's (``mobipay campaigns bulk …``, audited).

Role: ``operations`` (or ``finance``: the money of a batch)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import container, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import mask_msisdn

router = APIRouter(prefix="/console/bulk")
ROLES = ("operations", "finance")


@router.get("", response_class=HTMLResponse)
async def batches(request: Request) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    c = container(request)
    funders = {f.id: f for f in await c.bulk.funders()}
    return page(request, "console/bulk.html", {"me": me, "role_names": ROLE_NAMES, "funders": funders,
                                                "batches": await c.bulk.batches(limit=100)})


@router.get("/{batch_id}", response_class=HTMLResponse)
async def batch(request: Request, batch_id: str) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    c = container(request)
    try:
        b = await c.bulk.batch(batch_id, claims=True)
    except MobipayError:
        return page(request, "console/bulk_batch.html", {"me": me, "role_names": ROLE_NAMES, "b": None,
                                                         "batch_id": batch_id}, status=404)
    funder = await c.bulk.funder(b.funder_id)
    campaign = await c.bulk.campaign(b.campaign_id)
    unpaid = [r for r in await c.bulk.rows(batch_id, limit=5000) if r[6] in ("invalid", "failed")][:200]
    return page(request, "console/bulk_batch.html", {
        "me": me, "role_names": ROLE_NAMES, "b": b, "funder": funder, "campaign": campaign,
        "balance": (await c.ledger.account(campaign.account_code)).balance,
        "counts": await c.bulk.counts(batch_id), "unpaid": [(r, mask_msisdn(r[2]) if r[2].startswith("+86") else r[2])
                                                            for r in unpaid]})
