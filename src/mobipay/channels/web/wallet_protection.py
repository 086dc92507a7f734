"""The mobile web wallet's handset protection (手机保障服务) at ``/m/protection``: the
programme's cities, fees and rules, my enrolled phones, enrol one (the first month's fee
from the wallet, or on the phone bill), my claims with their state and what is due next,
claim for damage, loss or theft, answer staff's question, and pay an approved claim's
handling fee. Over the same ``ProtectionService`` use cases as ``/v1/protection``.

Every POST carries the CSRF token and, when it moves money or makes a record, the
idempotency key the form was rendered with (a double submit enrols or claims once; the
handling fee's ledger id is the claim's, so it is paid once whatever the form sends).
Refusals are shown in words with their code, the form filled in again, nothing changed.

The claim form and the answer to staff's question are ``multipart/form-data``: the photos
picked (or taken: ``capture``) are uploaded with the form, no JavaScript needed, each kept
by ``upload_photo`` (checked by its magic bytes, at most 5 MB) and the claim names them by
id. Photos uploaded before a refusal are carried in the re-rendered form (``photo_ids``),
so the subscriber does not pick them again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from mobipay.channels.web.common import check_csrf, container, form_key, lang
from mobipay.channels.web.forms import parse_yuan
from mobipay.channels.web.wallet import _go, _signed_in, _view, _words
from mobipay.kernel.errors import MobipayError
from mobipay.platform.edge import form_fault
from mobipay.protection.model import CITY_NAMES, MAINLAND, MAX_PHOTO_BYTES, Channel, ClaimState
from mobipay.protection.service import DEFAULT_PROGRAMME, MAX_PHOTOS
from mobipay.wallet.service import Principal

router = APIRouter(prefix="/m", include_in_schema=False)
#: Regions offered in the claim form: the province of the pilot first, then the others, then
#: the three that are not covered (chosen, they are refused with the programme's words).
REGIONS = ["CN-HN", *sorted(MAINLAND - {"CN-HN"}), "CN-HK", "CN-MO", "CN-TW"]
KINDS = (("damage", "损坏（三包外）", "Damage (outside 三包)"), ("loss", "丢失", "Loss"), ("theft", "被盗", "Theft"))
STATES = {"submitted": ("审核中", "Under review"), "more_info": ("需补充资料", "More information needed"),
          "second_review": ("复核中", "Second review"), "approved": ("已通过，待付手续费", "Approved: pay the fee"),
          "rejected": ("未通过", "Rejected"), "fee_paid": ("已付费，调配中", "Fee paid, allocating"),
          "allocated": ("已预留新机", "Phone reserved"), "ready_for_pickup": ("待领取", "Ready for pick-up"),
          "out_for_delivery": ("配送中", "Out for delivery"), "handed_over": ("已交付", "Handed over")}


def _cities(cities: frozenset[str]) -> list[tuple[str, str]]:
    """The programme's cities in the pilot's own order (长沙, 株洲, 衡阳, 常德), then any other."""
    known = [c for c in CITY_NAMES if c in cities]
    return [(c, CITY_NAMES.get(c, c)) for c in known + sorted(cities - set(known))]


async def _page(request: Request, *, error: str = "", form: dict[str, str] | None = None, status: int = 200,
                done: str = "") -> Response:
    me = await _signed_in(request)
    svc = container(request).protection
    english = lang(request) == "en"
    return _view(request, "protection.html", {
        "programme": svc.programme(DEFAULT_PROGRAMME), "cities": _cities(svc.programme(DEFAULT_PROGRAMME).cities),
        "enrolments": await svc.enrolments(me), "claims": await svc.claims_of(me), "regions": REGIONS,
        "kinds": [(k, en if english else zh) for k, zh, en in KINDS],
        "kind_words": {k: en if english else zh for k, zh, en in KINDS},
        "state_words": {k: v[1 if english else 0] for k, v in STATES.items()},
        "error": error, "form": form or {}, "key": form_key(), "done": done}, status=status)


def _ids(raw: str) -> list[str]:
    return [p.strip()[:64] for p in raw.replace("，", ",").split(",") if p.strip()][:MAX_PHOTOS]


async def _uploaded(request: Request, me: Principal, field: str = "photos") -> list[str]:
    """Keep the photos a form carries (its file inputs named ``field``) and their ids, in
    order; an empty file input (nothing picked) is no photo. The form's text fields are held
    to the edge's control-character rule first (the edge does not parse multipart)."""
    form = await request.form()
    if fault := form_fault(form.multi_items()):
        raise fault
    found = []
    for item in form.getlist(field):
        if not isinstance(item, UploadFile) or not item.filename:
            continue
        data = await item.read(MAX_PHOTO_BYTES + 1)
        if data:
            found.append((await container(request).protection.upload_photo(me, data)).id)
    return found


@router.get("/protection", response_class=HTMLResponse)
async def protection(request: Request, done: str = "") -> Response:
    return await _page(request, done=done[:32])


@router.post("/protection/enrol", response_class=HTMLResponse)
async def enrol(request: Request, csrf: str = Form(""), key: str = Form(""), imei: str = Form(""),
                price: str = Form(""), purchased_on: str = Form(""), receipt: str = Form(""),
                city: str = Form(""), payment: str = Form("wallet"), pin: str = Form("")) -> Response:
    me = await _signed_in(request)
    form = {"imei": imei[:24], "price": price[:12], "purchased_on": purchased_on[:10], "receipt": receipt[:64],
            "city": city[:32], "payment": payment[:16]}
    try:
        check_csrf(request, csrf)
        await container(request).protection.enrol(
            me, imei=imei, price=parse_yuan(price, field="price"), purchased_on=purchased_on, receipt=receipt,
            city=city, idempotency_key=key, payment=payment, pin=pin or None, channel=Channel.WEB)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), form=form, status=422 if exc.status == 422 else 400)
    return _go(request, "/m/protection?done=enrolled")


@router.post("/protection/claims", response_class=HTMLResponse)
async def claim(request: Request, csrf: str = Form(""), key: str = Form(""), enrolment_id: str = Form(""),
                kind: str = Form(""), occurred_on: str = Form(""), region: str = Form(""),
                description: str = Form(""), photo_ids: str = Form(""), police_report: str = Form("")) -> Response:
    me = await _signed_in(request)
    ids = _ids(photo_ids)
    form: dict[str, Any] = {"enrolment_id": enrolment_id[:64], "kind": kind[:8], "occurred_on": occurred_on[:10],
                            "region": region[:8], "description": description[:1000], "photo_ids": ",".join(ids),
                            "police_report": police_report[:32]}
    try:
        check_csrf(request, csrf)
        ids += [p for p in await _uploaded(request, me) if p not in ids]
        form["photo_ids"] = ",".join(ids)
        await container(request).protection.submit_claim(
            me, enrolment_id, kind=kind, occurred_on=occurred_on, region=region, description=description,
            photos=ids, police_report=police_report or None, idempotency_key=key)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), form=form, status=422 if exc.status == 422 else 400)
    return _go(request, "/m/protection?done=claimed")


@router.post("/protection/claims/{claim_id}/fee", response_class=HTMLResponse)
async def pay_fee(request: Request, claim_id: str, csrf: str = Form(""), key: str = Form(""),
                  pin: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        c = await container(request).protection.pay_fee(me, claim_id[:64], idempotency_key=key, pin=pin or None)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=422 if exc.status == 422 else 400)
    return _go(request, "/m/protection?done=" + ("paid" if c.state is not ClaimState.APPROVED else ""))


@router.post("/protection/claims/{claim_id}/info", response_class=HTMLResponse)
async def answer(request: Request, claim_id: str, csrf: str = Form(""), note: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).protection.answer_info(me, claim_id[:64], note=note,
                                                        photos=await _uploaded(request, me))
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=400)
    return _go(request, "/m/protection?done=answered")
