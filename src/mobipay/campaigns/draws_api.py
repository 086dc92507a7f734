"""Prize draws over HTTP: what is public and what a subscriber asks about themselves.

Public (no authentication: anyone may audit a draw): ``GET /v1/prize-draws`` (keyset
pages), ``GET /v1/prize-draws/{id}`` and its published files ``…/files/entries.txt``,
``…/files/commitment.json`` and, once drawn, ``…/files/reveal.json``: byte for byte what
``mobipay campaigns verify-draw`` checks. The entry list names nobody (entry codes are
pseudonyms); a subscriber finds their own code with ``GET /v1/prize-draws/{id}/my-entry``
and their prizes and delivery with ``GET /v1/prizes/mine`` (bearer token, as every wallet
route).

Operators' back-office systems (``Authorization: Bearer <MOBIPAY_ADMIN_TOKEN>``, as the
ledger's internal API, and ``X-Operator: NAME``, who must hold the ``operations`` role in
``MOBIPAY_OPERATORS``, as ``--actor`` on the command line) save and count segments, send a
segment an SMS and commit and reveal draws; committing takes an ``Idempotency-Key``. The
console and ``mobipay campaigns`` do the same and the delivery to the door.
"""

from __future__ import annotations

import json
from datetime import date as date_type
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from mobipay.campaigns import draw_model, errors
from mobipay.campaigns.delivery import MAX_PROOF_BYTES, Award, Prizes, Run, Stop
from mobipay.campaigns.draw_service import Draw, Draws
from mobipay.campaigns.prize_model import AwardState
from mobipay.campaigns.segments import Segment, Segments
from mobipay.platform.api_common import IdemKey, OperatorDep, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["campaigns"])

DrawsDep = Annotated[Draws, from_container("draws")]
PrizesDep = Annotated[Prizes, from_container("prizes")]
SegmentsDep = Annotated[Segments, from_container("segments")]


class RandomnessOut(BaseModel):
    source: Literal["lottery"] = "lottery"
    game: str = Field(description="The lottery game whose draw gives the randomness: ssq, dlt, fc3d")
    issue: str = Field(description="Its issue, e.g. 2026141: a draw still to come when the commitment was made")
    draw_at: datetime


class DrawOut(BaseModel):
    id: str
    name: str
    state: Literal["committed", "drawn"]
    entry_count: int
    list_hash: str = Field(description="SHA-256 (hex) of entries.txt")
    seed_hash: str = Field(description="SHA-256 (hex) of the 32-byte seed, revealed in reveal.json")
    randomness: RandomnessOut
    prizes: list[str] = Field(description="Item codes, prize 1 first")
    created_at: datetime
    drawn_at: datetime | None
    procedure: str = Field(description="The derivation procedure (docs/campaigns.md)")


class DrawPage(BaseModel):
    items: list[DrawOut]
    next: str | None


class EntryOut(BaseModel):
    draw_id: str
    position: int = Field(description="0-based line of entries.txt")
    entry: str


class PrizeWonOut(BaseModel):
    id: str
    draw_id: str
    prize_number: int
    item: str
    state: Literal["won", "scheduled", "out_for_delivery", "delivered", "failed", "unclaimed"]
    claim_by: datetime = Field(description="Delivered by then, or the prize lapses")
    address: str


def _out(d: Draw) -> DrawOut:
    return DrawOut(id=d.id, name=d.name, state="drawn" if d.state == "drawn" else "committed",
                   entry_count=d.entry_count, list_hash=d.list_hash, seed_hash=d.seed_hash,
                   randomness=RandomnessOut(game=d.game, issue=d.issue, draw_at=d.draw_at), prizes=list(d.prizes),
                   created_at=d.created_at, drawn_at=d.drawn_at, procedure=draw_model.PROCEDURE)


def _award(a: Award) -> PrizeWonOut:
    return PrizeWonOut(id=a.id, draw_id=a.draw_id, prize_number=a.prize_number, item=a.item, state=a.state.value,
                       claim_by=a.claim_by, address=a.address)


@router.get("/prize-draws", response_model=DrawPage, summary="Prize draws, oldest first (public)")
async def list_draws(draws: DrawsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, after: str = "") -> DrawPage:
    found, nxt = await draws.page(after=after, limit=limit)
    return DrawPage(items=[_out(d) for d in found], next=nxt)


@router.get("/prize-draws/{draw_id}", response_model=DrawOut, summary="A prize draw's commitment (public)")
async def get_draw(draw_id: str, draws: DrawsDep) -> DrawOut:
    return _out(await draws.get(draw_id))


@router.get("/prize-draws/{draw_id}/files/{name}", summary="A published file: entries.txt, commitment.json, "
            "reveal.json (public; verify with mobipay campaigns verify-draw)",
            responses={200: {"content": {"text/plain": {}, "application/json": {}}}})
async def draw_file(draw_id: str, name: Literal["entries.txt", "commitment.json", "reveal.json"],
                    draws: DrawsDep) -> Response:
    p = await draws.published(draw_id)
    if name == draw_model.ENTRIES_FILE:
        return Response(draw_model.entries_bytes(p.entries), media_type="text/plain; charset=utf-8")
    doc = p.commitment if name == draw_model.COMMITMENT_FILE else p.reveal
    if doc is None:
        raise errors.DrawRandomnessPending("the draw has not been drawn yet: no reveal", field="name")
    return Response((json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode(),
                    media_type="application/json")


@router.get("/prize-draws/{draw_id}/my-entry", response_model=EntryOut,
            summary="Your entry code and position in a draw (bearer token)")
async def my_entry(draw_id: str, me: Me, draws: DrawsDep) -> EntryOut:
    await draws.get(draw_id)  # CAMPAIGN_DRAW_NOT_FOUND first
    found = await draws.entry_of(draw_id, me.msisdn)
    if found is None:
        raise errors.DrawNotFound("you are not an entrant of this draw", field="draw_id")
    return EntryOut(draw_id=draw_id, position=found[0], entry=found[1])


@router.get("/prizes/mine", response_model=list[PrizeWonOut],
            summary="The prizes you won and where their delivery is (bearer token)")
async def my_prizes(me: Me, prizes: PrizesDep) -> list[PrizeWonOut]:
    return [_award(a) for a in await prizes.awards(msisdn=me.msisdn, limit=200)]


# ---------------------------------------------------------------------- back office


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64, examples=["M-Zone Shaoyang paid this month"])
    criteria: dict[str, Any] = Field(default_factory=dict, examples=[
        {"brands": ["mzone"], "cities": ["邵阳"], "active": "this_month"}],
        description="brands, cities, tiers, min_level, alliance, active (docs/campaigns.md)")


class SegmentOut(BaseModel):
    id: str
    name: str
    criteria: dict[str, Any]
    description: str
    count: int | None
    counted_at: datetime | None
    created_at: datetime


class SegmentPage(BaseModel):
    items: list[SegmentOut]
    next: str | None


class SmsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=300)


class SmsOut(BaseModel):
    segment_id: str
    recipients: int
    batches: int = Field(description="Batches written to the outbox by this call (0 for a replay)")


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    segment_id: str = Field(description="The segment's id or name")
    game: str = Field(examples=["ssq"])
    issue: str = Field(examples=["2026141"], description="A draw of the game still to come")
    prizes: list[str] = Field(max_length=1000, examples=[["ipad", "phone3g", "phone3g"]],
                              description="Item codes of the inventory, prize 1 first")
    claim_days: int = 30


def _segment(s: Segment) -> SegmentOut:
    return SegmentOut(id=s.id, name=s.name, criteria=s.criteria.to_dict(), description=s.criteria.describe(),
                      count=s.last_count, counted_at=s.counted_at, created_at=s.created_at)


@router.post("/segments", response_model=SegmentOut, status_code=201,
             summary="Save a segment, counted at once (admin token, X-Operator)")
async def create_segment(body: SegmentIn, segments: SegmentsDep, actor: OperatorDep) -> SegmentOut:
    return _segment(await segments.create(body.name, body.criteria, actor=actor))


@router.get("/segments", response_model=SegmentPage, summary="Segments (admin token, X-Operator)")
async def list_segments(segments: SegmentsDep, actor: OperatorDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        after: str = "") -> SegmentPage:
    found, nxt = await segments.page(after=after, limit=limit)
    return SegmentPage(items=[_segment(s) for s in found], next=nxt)


@router.post("/segments/{segment_id}/count", response_model=SegmentOut,
             summary="Count a segment now (admin token, X-Operator)")
async def count_segment(segment_id: str, segments: SegmentsDep, actor: OperatorDep) -> SegmentOut:
    return _segment(await segments.count(segment_id))


@router.post("/segments/{segment_id}/sms", response_model=SmsOut, status_code=202,
             summary="An SMS to every member, through the outbox in batches (Idempotency-Key required)")
async def segment_sms(segment_id: str, body: SmsIn, segments: SegmentsDep, actor: OperatorDep,
                      idempotency_key: IdemKey = None) -> SmsOut:
    sent = await segments.send_sms(segment_id, body.text, idempotency_key=require_key(idempotency_key), actor=actor)
    return SmsOut(segment_id=sent.segment_id, recipients=sent.recipients, batches=sent.batches)


@router.post("/prize-draws", response_model=DrawOut, status_code=201,
             summary="Commit a prize draw: the entry list frozen, prizes reserved, seed and lottery draw "
             "committed (Idempotency-Key required; admin token, X-Operator)")
async def create_draw(body: DrawIn, draws: DrawsDep, actor: OperatorDep, idempotency_key: IdemKey = None) -> DrawOut:
    d = await draws.create(name=body.name, segment_id=body.segment_id, game=body.game, issue=body.issue,
                           prizes=body.prizes, claim_days=body.claim_days,
                           idempotency_key=require_key(idempotency_key), actor=actor)
    return _out(d)


@router.post("/prize-draws/{draw_id}/reveal", response_model=DrawOut,
             summary="Reveal the seed and derive the winners once the named lottery draw is imported "
             "(again: the same answer; admin token, X-Operator)")
async def reveal_draw(draw_id: str, draws: DrawsDep, actor: OperatorDep) -> DrawOut:
    return _out(await draws.draw(draw_id, actor=actor))


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vehicle: str = Field(max_length=32, examples=["湘E·12345"])
    driver: str = Field(max_length=64)
    day: date_type = Field(description="YYYY-MM-DD, Beijing")
    award_ids: list[str] = Field(max_length=200, description="Prizes won, in stop order")


class StopOut(BaseModel):
    id: str
    seq: int
    award_id: str
    state: Literal["pending", "delivered", "failed"]
    reason: str
    proof_kind: Literal["signature", "photo"] | None
    proof_sha256: str | None
    receiver: str
    done_at: datetime | None


class RunOut(BaseModel):
    id: str
    vehicle: str
    driver: str
    day: date_type
    state: Literal["planned", "out", "closed"]
    stops: list[StopOut]


class FailureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=200, examples=["nobody home"])


def _stop(s: Stop) -> StopOut:
    return StopOut(id=s.id, seq=s.seq, award_id=s.award_id, state=s.state.value, reason=s.reason,
                   proof_kind=s.proof_kind.value if s.proof_kind else None, proof_sha256=s.proof_sha256,
                   receiver=s.receiver, done_at=s.done_at)


def _run(r: Run) -> RunOut:
    return RunOut(id=r.id, vehicle=r.vehicle, driver=r.driver, day=r.day, state=r.state.value,
                  stops=[_stop(s) for s in r.stops])


@router.post("/delivery-runs", response_model=RunOut, status_code=201,
             summary="Plan a delivery run: a vehicle, a day, one stop per prize won (admin token, X-Operator)")
async def plan_run(body: RunIn, prizes: PrizesDep, actor: OperatorDep) -> RunOut:
    return _run(await prizes.plan_run(vehicle=body.vehicle, driver=body.driver, day=body.day,
                                      award_ids=body.award_ids, actor=actor))


@router.get("/delivery-runs/{run_id}", response_model=RunOut, summary="A delivery run and its stops")
async def get_run(run_id: str, prizes: PrizesDep, actor: OperatorDep) -> RunOut:
    return _run(await prizes.run(run_id))


@router.post("/delivery-runs/{run_id}/departure", response_model=RunOut,
             summary="The vehicle leaves: its prizes are out for delivery, the winners told by SMS")
async def depart(run_id: str, prizes: PrizesDep, actor: OperatorDep) -> RunOut:
    return _run(await prizes.depart(run_id, actor=actor))


@router.post("/delivery-runs/{run_id}/closing", response_model=RunOut,
             summary="The vehicle is back: stops not done count as failed")
async def close(run_id: str, prizes: PrizesDep, actor: OperatorDep) -> RunOut:
    return _run(await prizes.close_run(run_id, actor=actor))


@router.post("/delivery-stops/{stop_id}/delivery", response_model=StopOut,
             summary="A stop delivered, with the receiver's signature or photo: the file (multipart field "
             "proof, kept under its SHA-256) or only its SHA-256 (proof_sha256)")
async def delivered(stop_id: str, prizes: PrizesDep, actor: OperatorDep,
                    receiver: Annotated[str, Form(max_length=64)],
                    proof_kind: Annotated[Literal["signature", "photo"], Form()],
                    proof: Annotated[UploadFile | None, File(description="The signature or photo")] = None,
                    proof_sha256: Annotated[str | None, Form(max_length=64)] = None) -> StopOut:
    data = None
    if proof is not None:
        data = await proof.read(MAX_PROOF_BYTES + 1)
    return _stop(await prizes.delivered(stop_id, receiver=receiver, proof_kind=proof_kind, proof=data,
                                        proof_sha256=proof_sha256, actor=actor))


@router.post("/delivery-stops/{stop_id}/failure", response_model=StopOut,
             summary="A stop not delivered (nobody home, wrong address…): the prize waits for another run")
async def failed(stop_id: str, body: FailureIn, prizes: PrizesDep, actor: OperatorDep) -> StopOut:
    return _stop(await prizes.failed(stop_id, reason=body.reason, actor=actor))


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(max_length=200, examples=["邵阳学院 3栋 402"])
    receiver: str = Field(max_length=64, examples=["张三"])


class PrizeWonPage(BaseModel):
    items: list[PrizeWonOut]
    next: str | None


@router.get("/prizes", response_model=PrizeWonPage, summary="Prizes won, by draw and state (admin token, X-Operator)")
async def list_prizes(prizes: PrizesDep, actor: OperatorDep, draw_id: str | None = None,
                      state: Literal["won", "scheduled", "out_for_delivery", "delivered", "failed",
                                     "unclaimed"] | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100, after: str = "") -> PrizeWonPage:
    found = await prizes.awards(draw_id=draw_id, state=AwardState(state) if state else None, after=after,
                                limit=limit + 1)
    return PrizeWonPage(items=[_award(a) for a in found[:limit]], next=found[limit - 1].id if len(found) > limit
                        else None)


@router.put("/prizes/{award_id}/address", response_model=PrizeWonOut,
            summary="Where a prize goes: the address and receiver the winner gave (admin token, X-Operator)")
async def set_address(award_id: str, body: AddressIn, prizes: PrizesDep, actor: OperatorDep) -> PrizeWonOut:
    return _award(await prizes.set_address(award_id, address=body.address, receiver=body.receiver, actor=actor))
