"""Handset protection HTTP API for the subscriber (app): the programmes, an IMEI check,
enrol a phone (Idempotency-Key required; the first month's fee is paid now), my
enrolments, claim for damage, loss or theft (Idempotency-Key required), answer staff's
question, pay an approved claim's handling fee (Idempotency-Key required; paid once per
claim). A claim's photos are uploaded first (``POST /v1/protection/photos``, the raw JPEG or
PNG) and named by their ``photo_id``. Staff work claims in the console (``/console/protection``) and the CLI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.platform.api_common import LOOKUP_LIMIT, IdemKey, MoneyIn, MoneyOut, from_container, require_key, sent_as
from mobipay.protection import errors
from mobipay.protection.model import MAX_PHOTO_BYTES, check_imei, handset_for
from mobipay.protection.service import Claim, Enrolment, ProtectionService
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/protection", tags=["handset protection"])
ProtectionDep = Annotated[ProtectionService, from_container("protection")]
Id = Annotated[str, Path(max_length=64)]
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "A replay of the same Idempotency-Key: the first answer again (Idempotent-Replayed: true)"}}


def _money(amount: int) -> MoneyOut:
    return MoneyOut(amount=amount, currency="CNY")


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"


class TierOut(BaseModel):
    max_price: MoneyOut = Field(description="Phones priced up to this")
    monthly_fee: MoneyOut
    damage_fee: MoneyOut = Field(description="The handling fee of a damage claim")
    loss_fee: MoneyOut = Field(description="The handling fee of a loss or theft claim")


class ProgrammeOut(BaseModel):
    code: str
    name: str
    cities: list[str] = Field(description="Latin names; 长沙 is changsha")
    starts: date = Field(description="First day to enrol (Asia/Shanghai)")
    ends: date = Field(description="Last day to enrol (Asia/Shanghai)")
    enrol_window_days: int = Field(description="A phone enrols within this many days of its purchase")
    waiting_days: int = Field(description="Incidents are covered from this many days after enrolment")
    claims_per_year: int = Field(description="Claims (not rejected) in any 12 months")
    claim_within_days: int = Field(description="An incident is claimed within this many days")
    tiers: list[TierOut]


class ImeiOut(BaseModel):
    imei: str
    brand: str
    model: str
    blocklisted: bool


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    imei: str = Field(max_length=24, description="15 digits, dashes and spaces allowed; *#06# shows it",
                      examples=["353281110000011"])
    price: MoneyIn = Field(description="The price on the proof of purchase")
    purchased_on: date = Field(description="The purchase date on the proof of purchase")
    receipt: str = Field(max_length=64, description="The proof of purchase's number (发票号)")
    city: str = Field(max_length=32, description="Where the subscriber lives: changsha, zhuzhou, hengyang, changde "
                      "(or 长沙…)")
    payment: Literal["wallet", "phone_bill"] = Field(default="wallet", description="How the monthly fee is paid")
    pin: str | None = Field(default=None, max_length=12, description="Above the password-free amount")
    programme: str | None = Field(default=None, max_length=32)


class EnrolmentOut(BaseModel):
    id: str
    programme: str
    imei: str
    brand: str
    model: str
    price: MoneyOut
    purchased_on: date
    city: str
    channel: str
    state: Literal["active", "lapsed", "ended"]
    payment: str
    monthly_fee: MoneyOut
    damage_fee: MoneyOut
    loss_fee: MoneyOut
    enrolled_at: datetime
    covered_from: date = Field(description="Incidents from this day are covered (after the waiting period)")
    paid_until: date = Field(description="The first day not yet paid for; the worker collects the next month then")


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enrolment_id: str = Field(max_length=64)
    kind: Literal["damage", "loss", "theft"]
    occurred_on: date
    region: str = Field(max_length=8, description="Where it happened: ISO 3166-2 (CN-HN for Hunan) or CN; Hong "
                        "Kong, Macau, Taiwan and abroad are not covered", examples=["CN-HN"])
    description: str = Field(max_length=1000)
    photos: list[Annotated[str, Field(max_length=64)]] = Field(
        default=[], max_length=6, description="Photo ids from POST /v1/protection/photos, my own uploads "
        "(at least one for damage)")
    police_report: str | None = Field(default=None, max_length=32, description="Required for theft")


class InfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(max_length=1000)
    photos: list[Annotated[str, Field(max_length=64)]] = Field(
        default=[], max_length=6, description="More photo ids of my own uploads (POST /v1/protection/photos)")


class PhotoOut(BaseModel):
    photo_id: str = Field(description="Name it in a claim's photos")
    sha256: str = Field(description="The SHA-256 of the bytes (hex)")
    size: int = Field(description="Bytes")
    content_type: Literal["image/jpeg", "image/png"] = Field(description="By the content's magic bytes")


class FeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str | None = Field(default=None, max_length=12)


class ClaimOut(BaseModel):
    id: str
    enrolment_id: str
    kind: str
    state: Literal["submitted", "more_info", "second_review", "approved", "rejected", "fee_paid", "allocated",
                   "ready_for_pickup", "out_for_delivery", "handed_over"] = Field(
        description="submitted → more_info (answer it) → approved / rejected (reason) → fee_paid → allocated → "
        "ready_for_pickup or out_for_delivery → handed_over; second_review: a second reviewer decides")
    occurred_on: date
    region: str
    model: str
    fee: MoneyOut = Field(description="The handling fee, paid once the claim is approved")
    reason: str | None = Field(description="Why it was rejected, or what more information is asked for")
    hall: str | None = Field(description="The business hall with the replacement")
    replacement_imei: str | None
    submitted_at: datetime
    due_by: datetime | None = Field(description="When the current step is due")


def _enrolment(e: Enrolment) -> EnrolmentOut:
    return EnrolmentOut(id=e.id, programme=e.programme, imei=e.imei, brand=e.brand, model=e.model,
                        price=_money(e.price), purchased_on=e.purchased_on, city=e.city, channel=e.channel,
                        state=e.state.value, payment=e.payment, monthly_fee=_money(e.monthly_fee),
                        damage_fee=_money(e.damage_fee), loss_fee=_money(e.loss_fee), enrolled_at=e.enrolled_at,
                        covered_from=e.covered_from, paid_until=e.paid_until)


def _claim(c: Claim) -> ClaimOut:
    return ClaimOut(id=c.id, enrolment_id=c.enrolment_id, kind=c.kind.value, state=c.state.value,
                    occurred_on=c.occurred_on, region=c.region, model=c.model, fee=_money(c.fee), reason=c.reason,
                    hall=c.hall, replacement_imei=c.replacement_imei, submitted_at=c.submitted_at, due_by=c.due_by)


@router.get("/programmes", response_model=list[ProgrammeOut], summary="The programmes: cities, period, fees")
async def programmes(service: ProtectionDep) -> list[ProgrammeOut]:
    return [ProgrammeOut(code=p.code, name=p.name, cities=sorted(p.cities), starts=p.starts, ends=p.ends,
                         enrol_window_days=p.enrol_window_days, waiting_days=p.waiting_days,
                         claims_per_year=p.claims_per_year, claim_within_days=p.claim_within_days,
                         tiers=[TierOut(max_price=_money(t.max_price), monthly_fee=_money(t.monthly_fee),
                                        damage_fee=_money(t.damage_fee), loss_fee=_money(t.loss_fee))
                                for t in p.tiers])
            for p in service.programmes.values()]


@router.get("/imei/{imei}", response_model=ImeiOut, summary="Check an IMEI: check digit, model, blocklist",
            dependencies=LOOKUP_LIMIT,
            responses={400: {"description": "Not a valid IMEI"}, 422: {"description": "A model not covered"}})
async def imei_check(imei: Annotated[str, Path(max_length=24)], me: Me, service: ProtectionDep) -> ImeiOut:
    number = check_imei(imei)
    handset = handset_for(number, service.handsets)
    return ImeiOut(imei=number, brand=handset.brand, model=handset.model, blocklisted=await service.blocked(number))


@router.post("/enrolments", response_model=EnrolmentOut, status_code=201, responses=REPLAY,
             summary="Enrol my phone and pay the first month (Idempotency-Key required)")
@sent_as(price="price.amount")
async def enrol(body: EnrolIn, response: Response, me: Me, service: ProtectionDep,
                idempotency_key: IdemKey = None) -> EnrolmentOut:
    e = await service.enrol(me, imei=body.imei, price=body.price.amount, purchased_on=body.purchased_on,
                            receipt=body.receipt, city=body.city, idempotency_key=require_key(idempotency_key),
                            programme=body.programme, payment=body.payment, pin=body.pin)
    _replayed(response, e.replayed)
    return _enrolment(e)


@router.get("/enrolments", response_model=list[EnrolmentOut], summary="My enrolments, newest first")
async def enrolments(me: Me, service: ProtectionDep) -> list[EnrolmentOut]:
    return [_enrolment(e) for e in await service.enrolments(me)]


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentOut, summary="One of my enrolments",
            responses={404: {"description": "No such enrolment of yours"}})
async def enrolment(enrolment_id: Id, me: Me, service: ProtectionDep) -> EnrolmentOut:
    return _enrolment(await service.enrolment(me, enrolment_id))


@router.post("/photos", response_model=PhotoOut, status_code=201, summary="Upload a claim photo (raw JPEG or PNG)",
             responses={200: {"description": "The same bytes uploaded before: the same photo"},
                        413: {"description": "Larger than 5 MB"},
                        415: {"description": "Not a JPEG or PNG by its content"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                 "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_photo(request: Request, response: Response, me: Me, service: ProtectionDep) -> PhotoOut:
    """The body is the photo itself (Content-Type image/jpeg or image/png). Its content
    decides: a renamed text file is PROTECTION_PHOTO_NOT_IMAGE whatever its type says. The
    same bytes from me again are the same photo (200), so a retry needs no key."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared not in {"image/jpeg", "image/png"}:
        raise errors.PhotoNotImage("send the photo itself as the body, Content-Type image/jpeg or image/png",
                                   field="Content-Type")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PHOTO_BYTES:
            raise errors.PhotoTooLarge(f"a photo is at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB", field="photo")
    photo = await service.upload_photo(me, bytes(data))
    if photo.replayed:
        response.status_code = 200
    return PhotoOut(photo_id=photo.id, sha256=photo.sha256, size=photo.size,
                    content_type=photo.content_type)


@router.post("/claims", response_model=ClaimOut, status_code=201, responses=REPLAY,
             summary="Claim for damage, loss or theft (Idempotency-Key required)")
async def submit(body: ClaimIn, response: Response, me: Me, service: ProtectionDep,
                 idempotency_key: IdemKey = None) -> ClaimOut:
    c = await service.submit_claim(me, body.enrolment_id, kind=body.kind, occurred_on=body.occurred_on,
                                   region=body.region, description=body.description, photos=body.photos,
                                   police_report=body.police_report, idempotency_key=require_key(idempotency_key))
    _replayed(response, c.replayed)
    return _claim(c)


@router.get("/claims", response_model=list[ClaimOut], summary="My claims, newest first")
async def my_claims(me: Me, service: ProtectionDep) -> list[ClaimOut]:
    return [_claim(c) for c in await service.claims_of(me)]


@router.get("/claims/{claim_id}", response_model=ClaimOut, summary="One of my claims",
            responses={404: {"description": "No such claim of yours"}})
async def one_claim(claim_id: Id, me: Me, service: ProtectionDep) -> ClaimOut:
    return _claim(await service.claim(me, claim_id))


@router.post("/claims/{claim_id}/information", response_model=ClaimOut,
             summary="Answer staff's request for more information (the claim goes back to review)")
async def information(claim_id: Id, body: InfoIn, me: Me, service: ProtectionDep) -> ClaimOut:
    return _claim(await service.answer_info(me, claim_id, note=body.note, photos=body.photos))


@router.post("/claims/{claim_id}/fee", response_model=ClaimOut, responses=REPLAY,
             summary="Pay an approved claim's handling fee from the wallet (Idempotency-Key required)")
async def pay_fee(claim_id: Id, body: FeeIn, response: Response, me: Me, service: ProtectionDep,
                  idempotency_key: IdemKey = None) -> ClaimOut:
    """Paid once per claim whatever key a retry sends; a wallet that cannot pay is
    INSUFFICIENT_FUNDS and the claim stays approved."""
    c = await service.pay_fee(me, claim_id, idempotency_key=require_key(idempotency_key), pin=body.pin)
    _replayed(response, c.replayed)
    return _claim(c)

