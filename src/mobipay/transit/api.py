"""The transit one-card over HTTP.

For validators (bus readers, metro gates), every request signed with the validator's
Ed25519 key as POS terminals sign theirs (headers ``Validator-Id``, ``Timestamp``,
``Nonce``, ``Signature``; docs/transit.md): upload a batch of offline taps (safe to send
again: a tap is its token, validator and time, counted once), and download the deny list
(all of it, or the changes since the version held).

For the rider's app (bearer access token): the trips of a month with their fares and
discounts, the monthly statement (CSV), a dispute on one tap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import ValidationFailed
from mobipay.platform.api_common import from_container
from mobipay.transit.service import TapIn, Transit, Trip, Validator
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/transit", tags=["transit"])
TransitDep = Annotated[Transit, from_container("transit")]


def _target(request: Request) -> str:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def validator(
    request: Request, transit: TransitDep,
    validator_id: Annotated[str, Header(alias="Validator-Id", description="The validator's id (tvl_…)")] = "",
    timestamp: Annotated[str, Header(alias="Timestamp", description="Unix seconds, within ±300 s")] = "",
    nonce: Annotated[str, Header(alias="Nonce", description="8-64 characters, once")] = "",
    signature: Annotated[str, Header(alias="Signature", description="base64 Ed25519 signature")] = "",
) -> Validator:
    """The verified validator behind this request (or its refusal, with nothing done)."""
    return await transit.verify(validator_id=validator_id, timestamp=timestamp, nonce=nonce, signature=signature,
                                method=request.method, path=_target(request), body=await request.body())


SignedValidator = Annotated[Validator, Depends(validator)]


class TapBody(BaseModel):
    token_id: str = Field(max_length=40)
    key_seq: int
    atc: int
    tapped_at: datetime = Field(description="The validator's clock, with its offset")
    unpredictable_number: str = Field(max_length=8)
    cvm: int = 1
    cryptogram: str = Field(max_length=16)


class UploadIn(BaseModel):
    taps: list[TapBody] = Field(max_length=200_000)


class TapOut(BaseModel):
    token_id: str
    tapped_at: datetime
    result: str = Field(description="accepted | duplicate | refused")
    tap_id: str
    code: str = Field(description="A refusal's code ('' otherwise)")


class UploadOut(BaseModel):
    accepted: int
    duplicates: int
    refused: int
    results: list[TapOut]


@router.post("/validator/uploads", response_model=UploadOut,
             summary="A validator's batch of offline taps (signed; safe to send again)")
async def upload(body: UploadIn, me: SignedValidator, transit: TransitDep) -> UploadOut:
    for t in body.taps:
        if t.tapped_at.tzinfo is None:
            raise ValidationFailed("tapped_at carries its offset (e.g. 2026-12-07T08:00:00+08:00)", field="tapped_at")
    results = await transit.upload(me, [TapIn(t.token_id, t.key_seq, t.atc, t.tapped_at, t.unpredictable_number,
                                              t.cvm, t.cryptogram) for t in body.taps])
    out = [TapOut(token_id=r.token_id, tapped_at=r.tapped_at, result=r.result, tap_id=r.tap_id, code=r.code)
           for r in results]
    return UploadOut(accepted=sum(r.result == "accepted" for r in results),
                     duplicates=sum(r.result == "duplicate" for r in results),
                     refused=sum(r.result == "refused" for r in results), results=out)


class DenyOut(BaseModel):
    token_id: str
    listed: bool = Field(description="false: take it off the list")
    reason: str = Field(description="suspended (a lost phone) | debt (a shop tap owed) | transit_debt (a fare owed)")


class DenyListOut(BaseModel):
    version: str = Field(description="Send it back as since= next time")
    entries: list[DenyOut]


@router.get("/validator/deny-list", response_model=DenyListOut,
            summary="The deny list (all of it, or the changes since a version): download at least daily")
async def download_deny_list(me: SignedValidator, transit: TransitDep,
                             since: Annotated[str, Query(max_length=40)] = "") -> DenyListOut:
    version, items = await transit.deny_list(since, validator=me)
    return DenyListOut(version=version, entries=[DenyOut(token_id=i.token_id, listed=i.listed, reason=i.reason)
                                                 for i in items])


class TripOut(BaseModel):
    id: str
    city: str
    mode: str
    start_at: datetime
    end_at: datetime
    entry_station_id: str | None
    exit_station_id: str | None
    meters: int
    base: int = Field(description="Fen before discounts")
    transfer_discount: int
    tier_discount: int
    cap_discount: int
    fare: int = Field(description="Fen paid")
    refunded: int
    state: str = Field(description="open | priced | paid | debt")
    missing: str = Field(description="exit | entry when charged the maximum fare")


def trip_out(t: Trip) -> TripOut:
    return TripOut(id=t.id, city=t.city, mode=t.mode, start_at=t.start_at, end_at=t.end_at,
                   entry_station_id=t.entry_station_id, exit_station_id=t.exit_station_id, meters=t.meters,
                   base=t.base, transfer_discount=t.transfer_discount, tier_discount=t.tier_discount,
                   cap_discount=t.cap_discount, fare=t.fare, refunded=t.refunded, state=t.state, missing=t.missing)


class TripsOut(BaseModel):
    month: str
    trips: list[TripOut]
    fares: int
    discounts: int
    owed: int


@router.get("/trips", response_model=TripsOut, summary="Your trips of a month with their fares and discounts")
async def my_trips(me: Me, transit: TransitDep,
                   month: Annotated[str | None, Query(pattern=r"^20\d\d-(0[1-9]|1[0-2])$")] = None) -> TripsOut:
    month = month or transit.uow.clock.now().astimezone(SHANGHAI).strftime("%Y-%m")
    trips = await transit.trips_of(me.user_id, month)
    done = [t for t in trips if t.state in ("paid", "debt")]
    return TripsOut(month=month, trips=[trip_out(t) for t in trips], fares=sum(t.fare for t in done),
                    discounts=sum(t.transfer_discount + t.tier_discount + t.cap_discount for t in done),
                    owed=sum(t.fare for t in done if t.state == "debt"))


@router.get("/statement", summary="Your monthly statement (CSV)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def my_statement(me: Me, transit: TransitDep,
                       month: Annotated[str, Query(pattern=r"^20\d\d-(0[1-9]|1[0-2])$")]) -> Response:
    text, _ = await transit.statement(me.user_id, month)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="transit-{month}.csv"'})


class DisputeIn(BaseModel):
    tap_id: str = Field(max_length=40)
    reason: str = Field(max_length=200)


class DisputeOut(BaseModel):
    id: str
    tap_id: str
    trip_id: str
    state: str
    refund: int


@router.post("/disputes", response_model=DisputeOut, status_code=201,
             summary="Dispute one tap (one dispute per tap: sending it again answers the same)")
async def dispute(body: DisputeIn, me: Me, transit: TransitDep) -> DisputeOut:
    d = await transit.dispute(me.user_id, body.tap_id, body.reason)
    return DisputeOut(id=d.id, tap_id=d.tap_id, trip_id=d.trip_id, state=d.state, refund=d.refund)


__all__ = ["router", "trip_out"]
