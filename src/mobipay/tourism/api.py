"""Tourism enforcement over HTTP, for the officers' field app (/tourism/app).

An officer signs in on the terminal issued to them (``POST /v1/tourism/sessions`` with the
badge, password and the phone's device id: another phone is refused) and sends the bearer
token. Everything is the officer's own county: another county's work order or evidence is a
404. A complaint (``POST /v1/tourism/work-orders``) and an evidence upload carry the phone's
own ids (``Idempotency-Key``, ``X-Capture-Id``), so the offline queue may send them again
after a lost answer and nothing is made twice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from mobipay.platform.api_common import IdemKey, from_container, require_key
from mobipay.tourism import errors
from mobipay.tourism.agency_api import router as agency_router
from mobipay.tourism.model import MAX_EVIDENCE_BYTES, STAY_DISTANCE_M
from mobipay.tourism.service import Complaint, Evidence, Officer, Replay, TourismService, WorkOrder, base_layer

router = APIRouter(prefix="/v1/tourism", tags=["tourism"])

TourismDep = Annotated[TourismService, from_container("tourism")]
bearer = HTTPBearer(auto_error=False, scheme_name="tourism_officer")


async def signed_in(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Officer:
    """The officer behind ``Authorization: Bearer <token>`` (POST /v1/tourism/sessions)."""
    if credentials is None:
        raise errors.OfficerSessionInvalid("send Authorization: Bearer <token> from POST /v1/tourism/sessions")
    officer: Officer = await request.app.state.container.tourism.officer(credentials.credentials)
    return officer


Me = Annotated[Officer, Depends(signed_in)]


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    badge: str = Field(max_length=16, description="执法证号, e.g. SN0001")
    password: str = Field(max_length=128)
    device_id: str = Field(max_length=64, description="The terminal's id, bound when it was issued")


class OfficerOut(BaseModel):
    id: str
    county: str
    badge: str
    name: str
    phone: str


class SessionOut(BaseModel):
    token: str
    officer: OfficerOut


def _officer(o: Officer) -> OfficerOut:
    return OfficerOut(id=o.id, county=o.county, badge=o.badge, name=o.name, phone=o.phone)


@router.post("/sessions", response_model=SessionOut, status_code=201, summary="Sign in on the officer's terminal")
async def sign_in(body: SignInIn, request: Request, service: TourismDep) -> SessionOut:
    client = request.client.host if request.client else ""
    officer, token = await service.sign_in(body.badge, body.password, body.device_id, client=client)
    return SessionOut(token=token, officer=_officer(officer))


@router.delete("/sessions", status_code=204, summary="Sign out")
async def sign_out(me: Me, request: Request, service: TourismDep) -> Response:
    await service.sign_out(request.headers.get("authorization", "").removeprefix("Bearer ").strip())
    return Response(status_code=204)


@router.get("/me", response_model=OfficerOut, summary="The signed-in officer")
async def whoami(me: Me) -> OfficerOut:
    return _officer(me)


class EntryOut(BaseModel):
    kind: str
    id: str
    name: str
    phone: str
    detail: dict[str, Any]


@router.get("/directory", response_model=list[EntryOut], summary="Search the county's directory")
async def directory(me: Me, service: TourismDep, q: Annotated[str, Query(max_length=40)] = "",
                    kind: Annotated[str, Query(max_length=8)] = "") -> list[EntryOut]:
    """Guides (licence, agency), drivers, agencies (manager, phone), hotels, scenic spots
    (coordinates), county bureaus, unit contacts, the brigade."""
    return [EntryOut(kind=e.kind, id=e.id, name=e.name, phone=e.phone, detail=e.detail)
            for e in await service.directory(me.viewer, q, kind)]


@router.get("/agencies/{agency_id}", response_model=EntryOut, summary="An agency with its manager and phone")
async def agency(agency_id: str, me: Me, service: TourismDep) -> EntryOut:
    e = await service.agency(me.viewer, agency_id)
    return EntryOut(kind=e.kind, id=e.id, name=e.name, phone=e.phone, detail=e.detail)


@router.get("/agencies/{agency_id}/network", summary="The agency's sales network and staff (supervision)")
async def agency_network(agency_id: str, me: Me, service: TourismDep) -> dict[str, Any]:
    return await service.network(me.viewer, agency_id)


@router.get("/agencies/{agency_id}/operations", summary="The agency's operations log, newest first (supervision)")
async def agency_operations(agency_id: str, me: Me, service: TourismDep) -> list[dict[str, Any]]:
    return await service.operations(me.viewer, agency_id)


@router.get("/agencies/{agency_id}/customers", summary="The agency's customers and their filed tours")
async def agency_customers(agency_id: str, me: Me, service: TourismDep) -> list[dict[str, Any]]:
    return await service.customers(me.viewer, agency_id)


@router.get("/news", summary="News or policies of the county")
async def news_list(me: Me, service: TourismDep,
                    kind: Annotated[str, Query(pattern="^(news|policy)$")] = "news") -> list[dict[str, Any]]:
    return await service.news(me.viewer, kind)


@router.get("/contracts", summary="Filed tour contracts of a tourist's number")
async def contracts(me: Me, service: TourismDep,
                    tourist_phone: Annotated[str, Query(max_length=20)]) -> list[dict[str, Any]]:
    return await service.contracts_of(me.viewer, tourist_phone)


@router.get("/map/{county}.geojson", summary="The county's offline base layer (roads, spots)")
async def county_map(county: str) -> Response:
    """Public data (roads and scenic spots), cached by the app for offline use."""
    return Response(base_layer(county), media_type="application/geo+json",
                    headers={"Cache-Control": "public, max-age=86400"})


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complainant_name: str = Field(max_length=40)
    complainant_phone: str = Field(max_length=20)
    cause: str = Field(max_length=20, description="itinerary_skipped, forced_shopping, extra_charges, ...")
    facts: str = Field(max_length=4000)
    demands: str = Field(max_length=1000)
    location_consent: bool = Field(description="The complainant consents to a location query of the tour")
    contract_id: str | None = Field(default=None, max_length=40, description="The agency's filed contract")
    agency_id: str | None = Field(default=None, max_length=40)
    guide_id: str | None = Field(default=None, max_length=40)
    driver_id: str | None = Field(default=None, max_length=40)
    tour_date: date | None = None
    itinerary: list[Annotated[str, Field(max_length=40)]] = Field(default=[], max_length=20)
    complainants: int = Field(default=1, ge=1, le=500)
    before_court: bool = False


class StepOut(BaseModel):
    at: datetime
    actor: str
    step: str
    detail: str


class WorkOrderOut(BaseModel):
    id: str
    county: str
    state: str
    complainant_name: str
    complainant_phone: str
    complainants: int
    agency_id: str
    guide_id: str | None
    driver_id: str | None
    contract_id: str | None
    tour_date: date
    tour_starts_at: datetime
    tour_ends_at: datetime
    itinerary: list[str]
    cause: str
    facts: str
    demands: str
    location_consent: bool
    group_id: str | None
    received_at: datetime
    accept_by: datetime
    reply_by: datetime | None
    mediate_by: datetime | None
    outcome: str | None
    record: str | None
    escalation: int
    steps: list[StepOut]


def order_out(o: WorkOrder) -> WorkOrderOut:
    d = o.deadlines
    return WorkOrderOut(
        id=o.id, county=o.county, state=o.state.value, complainant_name=o.complainant_name,
        complainant_phone=o.complainant_phone, complainants=o.complainants, agency_id=o.agency_id,
        guide_id=o.guide_id, driver_id=o.driver_id, contract_id=o.contract_id, tour_date=o.tour_date,
        tour_starts_at=o.tour_starts_at, tour_ends_at=o.tour_ends_at, itinerary=list(o.itinerary), cause=o.cause,
        facts=o.facts, demands=o.demands, location_consent=o.location_consent, group_id=o.group_id,
        received_at=o.received_at, accept_by=d.accept_by, reply_by=d.reply_by, mediate_by=d.mediate_by,
        outcome=o.outcome, record=o.record, escalation=o.escalation,
        steps=[StepOut(at=s.at, actor=s.actor, step=s.step, detail=s.detail) for s in o.steps])


@router.post("/work-orders", response_model=WorkOrderOut, status_code=201,
             summary="Enter a complaint: the work order (Idempotency-Key required)",
             responses={200: {"description": "The same key again: the work order made the first time"}})
async def complain(body: ComplaintIn, response: Response, me: Me, service: TourismDep,
                   idempotency_key: IdemKey = None) -> WorkOrderOut:
    key = require_key(idempotency_key)
    order = await service.complain(me, Complaint(
        complainant_name=body.complainant_name, complainant_phone=body.complainant_phone, cause=body.cause,
        facts=body.facts, demands=body.demands, location_consent=body.location_consent, contract_id=body.contract_id,
        agency_id=body.agency_id, guide_id=body.guide_id, driver_id=body.driver_id, tour_date=body.tour_date,
        itinerary=tuple(body.itinerary), complainants=body.complainants, before_court=body.before_court),
        idempotency_key=key)
    if order.replayed:
        response.status_code = 200
    return order_out(order)


@router.get("/work-orders", response_model=list[WorkOrderOut], summary="The county's work orders")
async def orders(me: Me, service: TourismDep, state: Annotated[str, Query(max_length=12)] = "") -> list[WorkOrderOut]:
    return [order_out(o) for o in await service.work_orders(me.viewer, state)]


@router.get("/work-orders/{order_id}", response_model=WorkOrderOut, summary="One work order with its steps")
async def one_order(order_id: str, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.work_order(me.viewer, order_id))


class RefuseIn(BaseModel):
    grounds: list[str] = Field(max_length=5)
    words: str = Field(max_length=2000)


class TextIn(BaseModel):
    text: str = Field(max_length=4000)


class MediateIn(BaseModel):
    outcome: str = Field(description="upheld, partly_upheld or dismissed")
    record: str = Field(max_length=4000)


@router.post("/work-orders/{order_id}/accept", response_model=WorkOrderOut, summary="Accept the complaint")
async def accept(order_id: str, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.accept(me.viewer, order_id))


@router.post("/work-orders/{order_id}/refuse", response_model=WorkOrderOut, summary="Refuse (or transfer) with reasons")
async def refuse(order_id: str, body: RefuseIn, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.refuse(me.viewer, order_id, body.grounds, body.words))


@router.post("/work-orders/{order_id}/reply", response_model=WorkOrderOut, summary="The respondent's written reply")
async def reply(order_id: str, body: TextIn, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.record_reply(me.viewer, order_id, body.text))


@router.post("/work-orders/{order_id}/mediate", response_model=WorkOrderOut, summary="Mediation agreed: its record")
async def mediate(order_id: str, body: MediateIn, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.mediate(me.viewer, order_id, body.outcome, body.record))


@router.post("/work-orders/{order_id}/terminate", response_model=WorkOrderOut, summary="Mediation terminated")
async def terminate(order_id: str, body: TextIn, me: Me, service: TourismDep) -> WorkOrderOut:
    return order_out(await service.terminate(me.viewer, order_id, body.text))


class ReplayIn(BaseModel):
    subject: str = Field(default="guide", pattern="^(guide|driver)$")
    stay_distance_m: float = Field(default=STAY_DISTANCE_M, ge=50, le=1000)
    stay_minutes: int = Field(default=20, ge=5, le=180)


def replay_out(r: Replay) -> dict[str, Any]:
    return {"id": r.id, "subject": r.subject, "phone": r.phone, "stay_distance_m": r.stay_distance_m,
            "stay_minutes": r.stay_minutes, "track": [[f.at.isoformat(), f.lat, f.lon] for f in r.track],
            "stops": [{"lat": s.lat, "lon": s.lon, "arrived": s.arrived.isoformat(), "left": s.left.isoformat(),
                       "minutes": round(s.minutes)} for s in r.stops],
            "verdicts": [{"spot_id": v.spot.id, "spot": v.spot.name, "lat": v.spot.lat, "lon": v.spot.lon,
                          "visited": v.visited, "arrived": v.arrived.isoformat() if v.arrived else None,
                          "left": v.left.isoformat() if v.left else None, "minutes": round(v.minutes),
                          "closest_m": v.closest_m if v.closest_m != float("inf") else None}
                         for v in r.verdicts]}


@router.post("/work-orders/{order_id}/route-replay", summary="Replay the guide's or coach's route (with consent)")
async def route_replay(order_id: str, body: ReplayIn, me: Me, service: TourismDep) -> dict[str, Any]:
    return replay_out(await service.replay_route(me.viewer, order_id, subject=body.subject,
                                                 stay_distance_m=body.stay_distance_m,
                                                 stay_duration=timedelta(minutes=body.stay_minutes)))


@router.get("/work-orders/{order_id}/route-replays", summary="The order's saved route replays")
async def route_replays(order_id: str, me: Me, service: TourismDep) -> list[dict[str, Any]]:
    return await service.replays_of(me.viewer, order_id)


class RefundIn(BaseModel):
    amount: int = Field(gt=0, description="fen")
    method: str = Field(default="wallet", pattern="^(wallet|bank)$")
    bank_reference: str = Field(default="", max_length=64)


@router.post("/work-orders/{order_id}/refunds", status_code=201, summary="The agency refunds the tourist "
             "(Idempotency-Key required)")
async def refund(order_id: str, body: RefundIn, response: Response, me: Me, service: TourismDep,
                 idempotency_key: IdemKey = None) -> dict[str, Any]:
    done = await service.refund(me.viewer, order_id, body.amount, method=body.method,
                                bank_reference=body.bank_reference, idempotency_key=require_key(idempotency_key))
    if done.replayed:
        response.status_code = 200
    return {"id": done.id, "amount": done.amount, "method": done.method, "transfer_id": done.transfer_id,
            "bank_reference": done.bank_reference}


class PenaltyIn(BaseModel):
    target_kind: str = Field(pattern="^(agency|guide|driver)$")
    kind: str = Field(pattern="^(warning|fine|points)$")
    reason: str = Field(max_length=1000)
    amount: int = Field(default=0, ge=0)
    points: int = Field(default=0, ge=0, le=12)


@router.post("/work-orders/{order_id}/penalties", status_code=201, summary="A penalty record on agency or guide")
async def penalise(order_id: str, body: PenaltyIn, me: Me, service: TourismDep) -> dict[str, Any]:
    p = await service.penalise(me.viewer, order_id, body.target_kind, body.kind, body.reason, amount=body.amount,
                               points=body.points)
    return {"id": p.id, "target_kind": p.target_kind, "target_id": p.target_id, "kind": p.kind}


class EvidenceOut(BaseModel):
    id: str
    order_id: str
    kind: str
    content_type: str
    sha256: str
    size: int
    captured_at: datetime
    uploaded_at: datetime
    device_id: str
    lat: float | None
    lon: float | None
    note: str


def evidence_out(e: Evidence) -> EvidenceOut:
    return EvidenceOut(id=e.id, order_id=e.order_id, kind=e.kind, content_type=e.content_type, sha256=e.sha256,
                       size=e.size, captured_at=e.captured_at, uploaded_at=e.uploaded_at, device_id=e.device_id,
                       lat=e.lat, lon=e.lon, note=e.note)


@router.post("/evidence/{order_id}", response_model=EvidenceOut, status_code=201,
             summary="Upload a photo or recording of a work order (the raw file as the body)",
             responses={200: {"description": "The same capture again: the evidence kept the first time"},
                        413: {"description": "Larger than 20 MB"},
                        415: {"description": "Not a photo or a recording by its content"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/*": {"schema": {"type": "string", "format": "binary"}},
                 "audio/*": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload(order_id: str, request: Request, response: Response, me: Me, service: TourismDep,
                 sha256: Annotated[str, Header(alias="X-Evidence-SHA256", min_length=64, max_length=64)],
                 captured_at: Annotated[datetime, Header(alias="X-Captured-At")],
                 device_id: Annotated[str, Header(alias="X-Device-Id", max_length=64)],
                 capture_id: Annotated[str, Header(alias="X-Capture-Id", max_length=64)],
                 lat: Annotated[float | None, Header(alias="X-Lat")] = None,
                 lon: Annotated[float | None, Header(alias="X-Lon")] = None) -> EvidenceOut:
    """The body is the file (Content-Type image/… or audio/…; its content decides); its SHA-256
    computed on the phone at capture, the capture time, device and place ride in headers. A
    file that does not hash to it is refused."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_EVIDENCE_BYTES:
            raise errors.EvidenceTooLarge(f"an evidence file is at most {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB")
    ev = await service.upload_evidence(me, order_id, bytes(data), sha256=sha256, captured_at=captured_at,
                                       device_id=device_id, client_id=capture_id, lat=lat, lon=lon)
    if ev.replayed:
        response.status_code = 200
    return evidence_out(ev)


@router.get("/work-orders/{order_id}/evidence", response_model=list[EvidenceOut], summary="The order's evidence")
async def evidence_list(order_id: str, me: Me, service: TourismDep) -> list[EvidenceOut]:
    return [evidence_out(e) for e in await service.evidence_of(me.viewer, order_id)]


# The agencies' own API and the guide assistant's (tourism/agency_api.py), under /v1/tourism too.
router.include_router(agency_router)
