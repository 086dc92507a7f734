"""The agencies' own API (``/v1/tourism/agency``) and the guide assistant's
(``/v1/tourism/guide``), for the pages at /tourism/agency and /tourism/guide.

An agency's manager or office staff signs in with the account the bureau set up
(``mobipay tourism agency-account-add``) and sends the bearer token: everything is the
agency's own (another agency's contract or staff member is a 404). The manager changes the
sales network and staff; staff file contracts. A guide signs in to the guide assistant with
their own account: today's tours and check-ins at the promised spots with the phone's
position. Every write takes an ``Idempotency-Key`` (the page's own id, kept until it is
answered) and is written to the agency's operations log, which the bureau supervises.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.clock import SHANGHAI
from mobipay.platform.api_common import IdemKey, from_container, require_key
from mobipay.tourism import errors
from mobipay.tourism.service import AgencyAccount, TourismService

#: Included by ``tourism.api.router`` (prefix /v1/tourism): the paths here are below it.
router = APIRouter(tags=["tourism agencies"])

TourismDep = Annotated[TourismService, from_container("tourism")]


agency_bearer = HTTPBearer(auto_error=False, scheme_name="tourism_agency")
guide_bearer = HTTPBearer(auto_error=False, scheme_name="tourism_guide")


async def _holder(request: Request, credentials: HTTPAuthorizationCredentials | None, *, guide: bool) -> AgencyAccount:
    """The agency account (``guide=True``: a guide's) the bearer token belongs to."""
    if credentials is None:
        path = "guide" if guide else "agency"
        raise errors.AgencySessionInvalid(f"send Authorization: Bearer <token> from POST /v1/tourism/{path}/sessions")
    me: AgencyAccount = await request.app.state.container.tourism.account(credentials.credentials, guide=guide)
    return me


async def agency_signed_in(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(agency_bearer)]
) -> AgencyAccount:
    return await _holder(request, credentials, guide=False)


async def guide_signed_in(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(guide_bearer)]
) -> AgencyAccount:
    return await _holder(request, credentials, guide=True)


Agency = Annotated[AgencyAccount, Depends(agency_signed_in)]
Guide = Annotated[AgencyAccount, Depends(guide_signed_in)]


class AccountSignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(max_length=64)
    password: str = Field(max_length=128)


class AccountOut(BaseModel):
    id: str
    agency_id: str
    agency: str
    county: str
    login: str
    name: str
    role: str
    staff_id: str | None


class AccountSessionOut(BaseModel):
    token: str
    account: AccountOut


def _account(a: AgencyAccount) -> AccountOut:
    return AccountOut.model_validate(a, from_attributes=True)


def _answer(response: Response, out: dict[str, Any], replayed: bool) -> dict[str, Any]:
    """A write's answer: 201 the first time, 200 for the same Idempotency-Key again."""
    if replayed:
        response.status_code = 200
    return out


async def _sign_in(
    body: AccountSignInIn, request: Request, service: TourismService, *, guide: bool
) -> AccountSessionOut:
    client = request.client.host if request.client else ""
    account, token = await service.account_sign_in(body.login, body.password, guide=guide, client=client)
    return AccountSessionOut(token=token, account=_account(account))


def _token(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


@router.post(
    "/agency/sessions",
    response_model=AccountSessionOut,
    status_code=201,
    summary="Sign in to the agency's pages (manager or staff)",
)
async def agency_sign_in(body: AccountSignInIn, request: Request, service: TourismDep) -> AccountSessionOut:
    return await _sign_in(body, request, service, guide=False)


@router.delete("/agency/sessions", status_code=204, summary="Sign out of the agency's pages")
async def agency_sign_out(me: Agency, request: Request, service: TourismDep) -> Response:
    await service.account_sign_out(_token(request))
    return Response(status_code=204)


@router.get("/agency/me", summary="The signed-in account and its agency (with its account's balance)")
async def agency_me(me: Agency, service: TourismDep) -> dict[str, Any]:
    e = await service.my_agency(me)
    return {"account": _account(me).model_dump(), "agency": {"id": e.id, "name": e.name, "phone": e.phone, **e.detail}}


@router.get("/agency/network", summary="The agency's sales network (branches, outlets) and staff")
async def agency_network(me: Agency, service: TourismDep) -> dict[str, Any]:
    return await service.network(me.viewer, me.agency_id)


class OutletIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=8, description="branch (分社) or outlet (门市部)")
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    phone: str = Field(max_length=40)
    manager: str = Field(max_length=100)


@router.post(
    "/agency/outlets",
    status_code=201,
    summary="Add a branch or outlet (manager; Idempotency-Key required)",
    responses={200: {"description": "The same key again: the outlet added the first time"}},
)
async def agency_outlet_add(
    body: OutletIn, response: Response, me: Agency, service: TourismDep, idempotency_key: IdemKey = None
) -> dict[str, Any]:
    return _answer(
        response,
        *await service.my_outlet_add(
            me,
            body.kind,
            body.name,
            body.address,
            body.phone,
            body.manager,
            idempotency_key=require_key(idempotency_key),
        ),
    )


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(max_length=8, description="guide, driver or sales")
    name: str = Field(max_length=100)
    phone: str = Field(max_length=20)
    licence: str = Field(default="", max_length=64, description="A guide's 导游证号, a driver's plate")


@router.post(
    "/agency/staff",
    status_code=201,
    summary="Add a guide, driver or sales staff (manager; Idempotency-Key required)",
    responses={200: {"description": "The same key again: the staff member added the first time"}},
)
async def agency_staff_add(
    body: StaffIn, response: Response, me: Agency, service: TourismDep, idempotency_key: IdemKey = None
) -> dict[str, Any]:
    return _answer(
        response,
        *await service.my_staff_add(
            me, body.role, body.name, body.phone, body.licence, idempotency_key=require_key(idempotency_key)
        ),
    )


@router.get("/agency/staff/{staff_id}", summary="One of the agency's people")
async def agency_staff_one(staff_id: str, me: Agency, service: TourismDep) -> dict[str, Any]:
    return await service.my_staff_member(me, staff_id)


@router.get("/agency/customers", summary="The customer database: tourists with their filed tours")
async def agency_customers(me: Agency, service: TourismDep) -> list[dict[str, Any]]:
    return await service.customers(me.viewer, me.agency_id)


@router.get("/agency/spots", summary="The county's scenic spots (an itinerary's choices)")
async def agency_spots(me: Agency, service: TourismDep) -> list[dict[str, Any]]:
    return await service.county_spots(me.county)


class ContractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tourist_name: str = Field(max_length=100)
    tourist_phone: str = Field(max_length=20)
    starts_at: datetime = Field(description="With its offset, e.g. 2026-10-03T07:30:00+08:00")
    ends_at: datetime
    itinerary: list[Annotated[str, Field(max_length=40)]] = Field(max_length=40, description="Spot ids, in order")
    guide_id: str | None = Field(default=None, max_length=40)
    driver_id: str | None = Field(default=None, max_length=40)
    price: int = Field(default=0, description="Fen per person")
    people: int = Field(default=1)


@router.post(
    "/agency/contracts",
    status_code=201,
    summary="File a tour contract with the bureau (Idempotency-Key required)",
    responses={200: {"description": "The same key again: the contract filed the first time"}},
)
async def agency_contract_file(
    body: ContractIn, response: Response, me: Agency, service: TourismDep, idempotency_key: IdemKey = None
) -> dict[str, Any]:
    return _answer(
        response,
        *await service.my_contract_file(
            me,
            body.tourist_name,
            body.tourist_phone,
            body.starts_at,
            body.ends_at,
            body.itinerary,
            guide_id=body.guide_id or None,
            driver_id=body.driver_id or None,
            price=body.price,
            people=body.people,
            idempotency_key=require_key(idempotency_key),
        ),
    )


@router.get("/agency/contracts/{contract_id}", summary="One filed contract with its check-ins")
async def agency_contract(contract_id: str, me: Agency, service: TourismDep) -> dict[str, Any]:
    return await service.my_contract(me, contract_id)


@router.get("/agency/operations", summary="The agency's operations log, newest first")
async def agency_operations(me: Agency, service: TourismDep) -> list[dict[str, Any]]:
    return await service.operations(me.viewer, me.agency_id)


@router.post(
    "/guide/sessions",
    response_model=AccountSessionOut,
    status_code=201,
    summary="Sign in to the guide assistant (a guide's account)",
)
async def guide_sign_in(body: AccountSignInIn, request: Request, service: TourismDep) -> AccountSessionOut:
    return await _sign_in(body, request, service, guide=True)


@router.delete("/guide/sessions", status_code=204, summary="Sign out of the guide assistant")
async def guide_sign_out(me: Guide, request: Request, service: TourismDep) -> Response:
    await service.account_sign_out(_token(request))
    return Response(status_code=204)


@router.get("/guide/me", response_model=AccountOut, summary="The signed-in guide")
async def guide_me(me: Guide) -> AccountOut:
    return _account(me)


@router.get("/guide/tours", summary="The guide's tours of a day (default: today in Beijing)")
async def guide_tours(
    me: Guide,
    request: Request,
    service: TourismDep,
    day: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
) -> list[dict[str, Any]]:
    today = request.app.state.container.clock.now().astimezone(SHANGHAI).date()
    return await service.guide_today(me, day or today)


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contract_id: str = Field(max_length=40)
    spot_id: str = Field(max_length=40)
    lat: float
    lon: float
    taken_at: datetime | None = Field(
        default=None,
        description="When the phone took the position, with its offset (a check-in queued offline keeps its time; "
        "the last 24 hours)",
    )


@router.post(
    "/guide/check-ins",
    status_code=201,
    summary="Check in at a promised spot with the phone's position (Idempotency-Key required)",
    responses={200: {"description": "The same key again: the check-in made the first time"}},
)
async def guide_check_in(
    body: CheckInIn, response: Response, me: Guide, service: TourismDep, idempotency_key: IdemKey = None
) -> dict[str, Any]:
    done = await service.guide_check_in(
        me,
        body.contract_id,
        body.spot_id,
        body.lat,
        body.lon,
        taken_at=body.taken_at,
        idempotency_key=require_key(idempotency_key),
    )
    return _answer(response, done, done.pop("replayed", False))
