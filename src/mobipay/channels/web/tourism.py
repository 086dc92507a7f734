"""The officers' field app of 旅游通 (/tourism/app): a progressive web app served from the
package (no Node needed): its page, its manifest (installable on the phone's home screen) and
its service worker, which is served from /tourism/app/ so that its scope may be the app; and
the agencies' own pages (/tourism/agency: sales network, staff, customers and contracts, the
operations log) and the guide assistant (/tourism/guide: today's tour and check-ins), which
talk to /v1/tourism/agency and /v1/tourism/guide the same way and open offline by the same
service worker.

The page holds no data of its own: it talks to /v1/tourism with the officer's bearer token
and keeps what it has not sent yet in IndexedDB (see static/tourism-app.js)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobipay.channels.web.common import STATIC_DIR, harden

router = APIRouter(prefix="/tourism", include_in_schema=False)

PAGE = STATIC_DIR / "tourism-app.html"
AGENCY_PAGE = STATIC_DIR / "tourism-agency.html"
GUIDE_PAGE = STATIC_DIR / "tourism-guide.html"
SERVICE_WORKER = STATIC_DIR / "tourism-sw.js"
MANIFEST = {
    "name": "旅游通 · 旅游执法终端", "short_name": "旅游通", "lang": "zh-CN",
    "description": "County tourism bureau officers' terminal: complaints, route replay, evidence",
    "start_url": "/tourism/app", "scope": "/tourism/app", "display": "standalone",
    "background_color": "#ffffff", "theme_color": "#0b6e4f",
    "icons": [{"src": "/static/tourism-icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any"}],
}


@router.get("/app")
def app_page(request: Request) -> Response:
    """The app's one page (a plain function: the file is read in the thread pool). It may be
    cached by the service worker: it holds no personal data, only the app."""
    response = harden(Response(PAGE.read_bytes(), media_type="text/html; charset=utf-8"), request)
    response.headers["Cache-Control"] = "no-cache"
    return response


def _worker(scope: str) -> Response:
    """The one worker (static/tourism-sw.js), served from the page's own folder;
    ``Service-Worker-Allowed`` lets its scope be the page itself (``/tourism/app``), one
    level above the folder it is served from."""
    return Response(SERVICE_WORKER.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                             "Service-Worker-Allowed": scope})


@router.get("/app/sw.js")
def service_worker() -> Response:
    return _worker("/tourism/app")


@router.get("/agency/sw.js")
def agency_worker() -> Response:
    """The agency's pages open offline with their last answers (contracts are filed online)."""
    return _worker("/tourism/agency")


@router.get("/guide/sw.js")
def guide_worker() -> Response:
    """The guide assistant opens offline with the day's tours; check-ins wait on the phone."""
    return _worker("/tourism/guide")


@router.get("/app/manifest.webmanifest")
def manifest() -> Response:
    return Response(json.dumps(MANIFEST, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})


def _static_page(path: Path, request: Request) -> Response:
    response = harden(Response(path.read_bytes(), media_type="text/html; charset=utf-8"), request)
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/agency")
def agency_page(request: Request) -> Response:
    """The agency's own pages (one page; its data comes from /v1/tourism/agency with the token)."""
    return _static_page(AGENCY_PAGE, request)


@router.get("/guide")
def guide_page(request: Request) -> Response:
    """The guide assistant (one page; /v1/tourism/guide with the guide's token)."""
    return _static_page(GUIDE_PAGE, request)
