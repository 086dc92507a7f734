"""Alliances over HTTP, for the subscriber's app (bearer token, as every wallet route).

``GET /v1/instore/alliances`` is the directory of member stores with their privileges (by
city, category and brand; the subscriber's own brand and level unless ``brand`` says
otherwise), ``GET /v1/instore/alliances/filters`` its cities and categories. The scan and
payment answers of ``instore/api.py`` carry the privilege through :func:`scan_preview` and
:func:`receipt` here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mobipay.instore.alliance_service import AllianceService
from mobipay.instore.alliances import BRAND_NAMES, Brand, Privilege, Rule, describe, parse_brand
from mobipay.instore.service import Scan
from mobipay.merchants.service import Trade
from mobipay.platform.api_common import MoneyOut, from_container
from mobipay.wallet.api_deps import Me
from mobipay.wallet.service import Principal

router = APIRouter(prefix="/v1", tags=["in-store"])

AlliancesDep = Annotated[AllianceService, from_container("alliances")]


class RuleOut(BaseModel):
    brand: Literal["gotone", "mzone", "easyown"]
    min_level: int = Field(description="Least GoTone VIP level (0 standard, 1 silver … 4 diamond)")
    kind: Literal["percent", "fixed", "points"]
    value: int = Field(description="percent: basis points off; fixed: fen off; points: multiplier in tenths")
    min_spend: int = Field(description="Fen the amount must reach")
    cap: int = Field(description="percent: at most this many fen off (0: no cap)")
    text: str = Field(description="The rule in words (Chinese)")


class PrivilegeOut(BaseModel):
    """A privilege applied (payment) or that would apply (scan preview)."""

    programme_id: str
    programme: str
    brand: Literal["gotone", "mzone", "easyown"]
    brand_name: str
    level: int = Field(description="Your GoTone VIP level (0 standard, 1 silver … 4 diamond)")
    kind: Literal["percent", "fixed", "points"]
    value: int = Field(description="percent: basis points off; fixed: fen off; points: multiplier in tenths")
    text: str = Field(description="The privilege in words (Chinese)")
    amount: MoneyOut = Field(description="The price, before the privilege")
    discount: MoneyOut = Field(description="Given off by the merchant (it is settled that much less)")
    pay: MoneyOut = Field(description="What the wallet pays: amount less discount")
    points: int = Field(description="Alliance points earned (multiplier × 1 point per whole yuan paid)")


class OfferOut(BaseModel):
    programme_id: str
    programme: str
    rule: RuleOut


class DirectoryStoreOut(BaseModel):
    store_id: str
    store_name: str
    merchant_id: str
    merchant_name: str
    city: str
    mcc: str
    category: str
    programme_id: str
    programme: str
    privileges: list[RuleOut]


class MineOut(BaseModel):
    brand: Literal["gotone", "mzone", "easyown"] | None
    brand_name: str | None
    level: int
    points: int


class DirectoryOut(BaseModel):
    me: MineOut
    brand: str = Field(description="The brand listed: yours unless asked, or 'all'")
    stores: list[DirectoryStoreOut]
    more: bool = Field(description="More stores follow: ask again with offset + limit")


class FiltersOut(BaseModel):
    cities: list[str]
    categories: list[dict[str, str]]


def rule_out(r: Rule) -> RuleOut:
    return RuleOut(brand=r.brand.value, min_level=r.min_level, kind=r.kind.value, value=r.value,
                   min_spend=r.min_spend, cap=r.cap, text=describe(r))


def privilege_out(p: Privilege) -> PrivilegeOut:
    return PrivilegeOut(programme_id=p.programme_id, programme=p.programme_name, brand=p.brand.value,
                        brand_name=BRAND_NAMES[p.brand][0], level=p.level, kind=p.rule.kind.value,
                        value=p.rule.value, text=describe(p.rule),
                        amount=MoneyOut(amount=p.amount, currency="CNY"),
                        discount=MoneyOut(amount=p.discount, currency="CNY"),
                        pay=MoneyOut(amount=p.paid, currency="CNY"), points=p.points)


async def scan_preview(alliances: AllianceService, me: Principal, seen: Scan, amount: int | None) -> dict[str, Any]:
    """The scan answer's ``privilege`` (what paying ``amount`` would get: a dynamic code's, or
    the amount a static code's payer typed) and ``offers`` (the rules for this payer here)."""
    store_id = seen.store.id if seen.store else (seen.trade.store_id if seen.trade else None)
    fen = seen.amount if seen.amount is not None else amount
    quoted = await alliances.quote(me.msisdn, seen.merchant.id, store_id, fen) if fen else None
    offers = await alliances.offers(me.msisdn, seen.merchant.id, store_id)
    return {"privilege": privilege_out(quoted) if quoted else None,
            "offers": [OfferOut(programme_id=p.id, programme=p.name, rule=rule_out(r)) for p, r in offers]}


async def receipt(alliances: AllianceService, trade: Trade) -> PrivilegeOut | None:
    """The privilege recorded with a paid trade (the payment's answer, a retry's too)."""
    if trade.paid_at is None:
        return None
    r = await alliances.applied(trade.id)
    if r is None:
        return None
    return PrivilegeOut(programme_id=r.programme_id, programme=r.programme_name, brand=r.brand.value,
                        brand_name=BRAND_NAMES[r.brand][0], level=r.level, kind=r.kind.value, value=r.value,
                        text=r.text, amount=MoneyOut(amount=r.amount, currency="CNY"),
                        discount=MoneyOut(amount=r.discount, currency="CNY"),
                        pay=MoneyOut(amount=r.amount - r.discount, currency="CNY"), points=r.points)


@router.get("/instore/alliances", response_model=DirectoryOut,
            summary="The alliance directory: member stores and their brand privileges")
async def directory(me: Me, alliances: AlliancesDep, city: str = Query("", max_length=32),
                    category: str = Query("", max_length=4, description="MCC, e.g. 5411"),
                    brand: str = Query("", max_length=12, description="gotone, mzone, easyown or all; "
                                                                      "default: yours"),
                    limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000)
                    ) -> DirectoryOut:
    """Stores of the programmes valid now, by city (then merchant): your brand's privileges up
    to your VIP level by default; ``brand`` another brand's (any level) or ``all``. A bad
    brand is ALLIANCE_INVALID."""
    mine = await alliances.brand_of(me.msisdn)
    wanted: Brand | None
    level: int | None
    if brand == "all":
        wanted, level = None, None
    elif brand:
        wanted = parse_brand(brand)
        level = mine[1] if mine and mine[0] is wanted else None
    else:
        wanted, level = (mine[0], mine[1]) if mine else (None, None)
    entries, more = await alliances.directory(city=city.strip(), mcc=category.strip(), brand=wanted, level=level,
                                              limit=limit, offset=offset)
    names = dict(await alliances.categories()) if entries else {}
    return DirectoryOut(
        me=MineOut(brand=mine[0].value if mine else None, brand_name=BRAND_NAMES[mine[0]][0] if mine else None,
                   level=mine[1] if mine else 0, points=await alliances.points(me.user_id)),
        brand=wanted.value if wanted else "all",
        stores=[DirectoryStoreOut(store_id=e.store_id, store_name=e.store_name, merchant_id=e.merchant_id,
                                  merchant_name=e.merchant_name, city=e.city, mcc=e.mcc,
                                  category=names.get(e.mcc, e.mcc), programme_id=e.programme_id,
                                  programme=e.programme_name, privileges=[rule_out(r) for r in e.rules])
                for e in entries], more=more)


@router.get("/instore/alliances/filters", response_model=FiltersOut,
            summary="The alliance directory's cities and categories")
async def filters(me: Me, alliances: AlliancesDep) -> FiltersOut:
    return FiltersOut(cities=await alliances.cities(),
                      categories=[{"mcc": m, "name": n} for m, n in await alliances.categories()])
