"""The mobile web wallet's alliance directory (``/m/alliances``): member stores by city,
category and brand with their privileges, the subscriber's own brand, VIP level and points.
A read-only page over ``AllianceService`` (the same directory as ``GET /v1/instore/alliances``),
signed in as every wallet page is."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import container, lang
from mobipay.channels.web.wallet import _signed_in, _view, _words
from mobipay.instore.alliances import BRAND_NAMES, LEVEL_NAMES, Brand, describe, parse_brand
from mobipay.kernel.errors import MobipayError

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE = 50


@router.get("/alliances", response_class=HTMLResponse)
async def alliances(request: Request, city: str = "", category: str = "", brand: str = "", page: int = 0) -> Response:
    """The directory: by default the stores whose privileges the subscriber's brand and level get."""
    me = await _signed_in(request)
    a = container(request).alliances
    english = lang(request) == "en"
    mine = await a.brand_of(me.msisdn)
    error, wanted, level = "", None, None
    try:
        if brand == "all":
            pass
        elif brand:
            wanted = parse_brand(brand)
            level = mine[1] if mine and mine[0] is wanted else None
        elif mine:
            wanted, level = mine
    except MobipayError as exc:
        error = _words(request, exc)
    page = max(0, min(page, 10_000))
    entries, more = ([], False) if error else await a.directory(
        city=city.strip()[:32], mcc=category.strip()[:4], brand=wanted, level=level, limit=PAGE, offset=page * PAGE)
    categories = await a.categories()
    names = dict(categories)
    stores = [{"e": e, "category": names.get(e.mcc, e.mcc),
               "privileges": [describe(r, english=english) for r in e.rules]} for e in entries]
    i = 1 if english else 0
    return _view(request, "alliances.html", {
        "cities": await a.cities(), "categories": categories, "brands": [(b.value, BRAND_NAMES[b][i]) for b in Brand],
        "city": city, "category": category, "brand": brand or (mine[0].value if mine else "all"), "stores": stores,
        "more": more, "page": page, "error": error, "points": await a.points(me.user_id),
        "mine": (BRAND_NAMES[mine[0]][i], LEVEL_NAMES[mine[1]][i] if mine[1] else "") if mine else None},
        status=400 if error else 200)
