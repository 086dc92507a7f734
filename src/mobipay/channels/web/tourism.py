"""The officers' field app of 旅游通 (/tourism/app): a progressive web app served from the
package (no Node needed): its page, its manifest (installable on the phone's home screen) and
its service worker, which is served from /tourism/app/ so that its scope may be the app.

The page holds no data of its own: it talks to /v1/tourism with the officer's bearer token
and keeps what it has not sent yet in IndexedDB (see static/tourism-app.js)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobipay.channels.web.common import STATIC_DIR, harden

router = APIRouter(prefix="/tourism/app", include_in_schema=False)

PAGE = STATIC_DIR / "tourism-app.html"
SERVICE_WORKER = STATIC_DIR / "tourism-sw.js"
MANIFEST = {
    "name": "旅游通 · 旅游执法终端", "short_name": "旅游通", "lang": "zh-CN",
    "description": "County tourism bureau officers' terminal: complaints, route replay, evidence",
    "start_url": "/tourism/app", "scope": "/tourism/app", "display": "standalone",
    "background_color": "#ffffff", "theme_color": "#0b6e4f",
    "icons": [{"src": "/static/tourism-icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any"}],
}


@router.get("")
def app_page(request: Request) -> Response:
    """The app's one page (a plain function: the file is read in the thread pool). It may be
    cached by the service worker: it holds no personal data, only the app."""
    response = harden(Response(PAGE.read_bytes(), media_type="text/html; charset=utf-8"), request)
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/sw.js")
def service_worker() -> Response:
    """The worker; ``Service-Worker-Allowed`` lets its scope be ``/tourism/app`` itself (the page),
    one level above the folder it is served from."""
    return Response(SERVICE_WORKER.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                             "Service-Worker-Allowed": "/tourism/app"})


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    return Response(json.dumps(MANIFEST, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})
