"""旅游通's field app in Chromium on a phone: the officer signs in on their terminal, the
service worker (Workbox) takes the app; offline, a complaint goes into the IndexedDB queue;
the app is reloaded still offline (the worker serves it) and the queue is still there; when
the network returns the queue is flushed and the work order is on the server, once."""

from __future__ import annotations

import hashlib
from typing import Any

from mobipay.tourism.service import Viewer
from tests.support.images import png
from tests.support.live import Live

PHOTO = png(11, size=64)


async def _setup(c: Any) -> None:
    from mobipay.app.demo_tourism import load_demo_tourism

    await load_demo_tourism(c)


def test_offline_complaint_survives_a_reload_and_is_sent_when_online(live: Live, phone: Any) -> None:
    live.call(_setup)
    agency = live.call(lambda c: c.tourism.directory(Viewer("t", "430527"), kind="agency"))[0].id
    phone.goto(f"{live.url}/tourism/app")
    phone.get_by_test_id("badge").fill("SN0001")
    phone.get_by_test_id("password").fill("tourism-demo-1")
    phone.get_by_test_id("device").fill("SN-TERM-01")
    phone.get_by_test_id("signin").click()
    phone.wait_for_function("() => document.querySelector('[data-testid=who]').textContent.includes('SN0001')")
    ready = phone.evaluate("() => Promise.race([navigator.serviceWorker.ready.then(() => true), "
                           "new Promise((ok) => setTimeout(() => ok(false), 10000))])")
    assert ready, "the service worker is not ready"
    phone.reload()  # once under the worker's control
    phone.get_by_test_id("c-name").wait_for()

    phone.context.set_offline(True)
    try:
        phone.get_by_test_id("c-name").fill("张伟")
        phone.get_by_test_id("c-phone").fill("13800138000")
        phone.get_by_test_id("c-agency").fill(agency)
        phone.get_by_test_id("c-date").fill("2026-10-03")
        phone.get_by_test_id("c-facts").fill("合同约定的上堡侗寨没有去。")
        phone.get_by_test_id("c-demands").fill("退款 300 元")
        phone.get_by_test_id("c-consent").check()
        phone.get_by_test_id("c-submit").click()
        phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '1'")
        assert "离线" in phone.get_by_test_id("net").inner_text()
        # a photo for the complaint still in the queue: hashed now, sent after its work order
        phone.get_by_role("button", name="取证 Evidence").click()
        phone.get_by_test_id("e-order").select_option(index=0)
        assert phone.get_by_test_id("e-order").input_value().startswith("local:")
        phone.get_by_test_id("e-photo").set_input_files(files=[{"name": "scene.png", "mimeType": "image/png",
                                                                "buffer": PHOTO}])
        phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '2'")
        assert hashlib.sha256(PHOTO).hexdigest()[:12] in phone.get_by_test_id("e-done").inner_text()

        phone.reload()  # offline: the service worker serves the app, IndexedDB still has the queue
        phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '2'")
        assert phone.get_by_test_id("c-name").is_visible()
    finally:
        phone.context.set_offline(False)

    # back online: the queue is flushed by itself and the work order is on the server, once
    phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '0'",
                            timeout=20_000)
    orders = live.call(lambda c: c.tourism.work_orders(Viewer("t", "430527")))
    assert [(o.complainant_name, o.agency_id, o.location_consent) for o in orders] == [("张伟", agency, True)]
    [photo] = live.call(lambda c: c.tourism.evidence_of(Viewer("t", "430527"), orders[0].id))
    assert photo.sha256 == hashlib.sha256(PHOTO).hexdigest() and photo.device_id == "SN-TERM-01"
    assert photo.captured_at < photo.uploaded_at  # captured offline, uploaded when the network came back

    phone.get_by_role("button", name="工单 Orders").click()
    phone.get_by_role("button", name="受理 Accept").click()  # the next step by the rules, from the phone
    phone.wait_for_function("() => document.getElementById('verdicts').textContent.includes('accept')")
    assert live.call(lambda c: c.tourism.work_order(Viewer("t", "430527"), orders[0].id)).state.value == "accepted"


def test_the_back_office_replays_the_route_on_the_offline_map(live: Live, desk: Any) -> None:
    """The console's work order: the route on Leaflet over the county's GeoJSON, the promised
    spots marked visited or not, with no request leaving the server (no tile server)."""
    import httpx

    from mobipay.simulators.location_platform import create_location_app
    from mobipay.tourism.location_http import HttpLocationPlatform
    from mobipay.tourism.service import Complaint
    from tests.browser.test_console_browser import operator, sign_in

    async def story(c: Any) -> str:
        await _setup(c)
        c.tourism.location = HttpLocationPlatform("http://location", b"demo-location-secret",
                                                  transport=httpx.ASGITransport(app=create_location_app()))
        officer = (await c.tourism.officers_of("430527"))[0]
        [contract] = await c.tourism.contracts_of(officer.viewer, "13800138000")
        order = await c.tourism.complain(officer, Complaint(
            "张伟", "13800138000", "itinerary_skipped", "未去上堡侗寨", "退款", True, contract_id=contract["id"]),
            idempotency_key="b-1")
        await c.tourism.replay_route(officer.viewer, order.id)
        return order.id

    order_id = live.call(story)
    operator(live, "ops1", "operations")
    outside: list[str] = []
    desk.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.url) else None)
    sign_in(desk, live, "ops1", f"/console/tourism/orders/{order_id}")
    desk.locator("#route-map .leaflet-pane").first.wait_for(state="attached")
    drawn = desk.evaluate("() => document.querySelectorAll('#route-map path').length")
    assert drawn >= 10  # roads, the outline, the track, stops and spots (SVG paths)
    desk.wait_for_function("() => document.querySelectorAll('#route-map .leaflet-tooltip').length === 2")
    tips = desk.locator("#route-map .leaflet-tooltip").all_inner_texts()
    assert any("上堡侗寨" in t and "NOT visited" in t for t in tips) and any("visited" in t for t in tips)
    assert outside == []
    desk.get_by_test_id("print").click()
    desk.locator("#route-map .leaflet-pane").first.wait_for(state="attached")
    assert "绥宁县" in desk.locator("h1").inner_text()
