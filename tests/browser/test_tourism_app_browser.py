"""旅游通's field app in Chromium on a phone: the officer signs in on their terminal, the
service worker (Workbox) takes the app; offline, a complaint goes into the IndexedDB queue;
the app is reloaded still offline (the worker serves it) and the queue is still there; when
the network returns the queue is flushed and the work order is on the server, once. The app
refuses a complaint with the 2010 rules' grounds, mediates in part and records a bank
refund; the agency's pages and the guide assistant on a 390 px phone."""

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
    ready = phone.evaluate(
        "() => Promise.race([navigator.serviceWorker.ready.then(() => true), "
        "new Promise((ok) => setTimeout(() => ok(false), 10000))])"
    )
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
        phone.get_by_test_id("e-photo").set_input_files(
            files=[{"name": "scene.png", "mimeType": "image/png", "buffer": PHOTO}]
        )
        phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '2'")
        assert hashlib.sha256(PHOTO).hexdigest()[:12] in phone.get_by_test_id("e-done").inner_text()

        phone.reload()  # offline: the service worker serves the app, IndexedDB still has the queue
        phone.wait_for_function("() => document.querySelector('[data-testid=queued]').dataset.count === '2'")
        assert phone.get_by_test_id("c-name").is_visible()
    finally:
        phone.context.set_offline(False)

    # back online: the queue is flushed by itself and the work order is on the server, once
    phone.wait_for_function(
        "() => document.querySelector('[data-testid=queued]').dataset.count === '0'", timeout=20_000
    )
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
        c.tourism.location = HttpLocationPlatform(
            "http://location", b"demo-location-secret", transport=httpx.ASGITransport(app=create_location_app())
        )
        officer = (await c.tourism.officers_of("430527"))[0]
        [contract] = await c.tourism.contracts_of(officer.viewer, "13800138000")
        order = await c.tourism.complain(
            officer,
            Complaint(
                "张伟", "13800138000", "itinerary_skipped", "未去上堡侗寨", "退款", True, contract_id=contract["id"]
            ),
            idempotency_key="b-1",
        )
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


def _officer_signs_in(live: Live, phone: Any) -> None:
    phone.goto(f"{live.url}/tourism/app")
    phone.get_by_test_id("badge").fill("SN0001")
    phone.get_by_test_id("password").fill("tourism-demo-1")
    phone.get_by_test_id("device").fill("SN-TERM-01")
    phone.get_by_test_id("signin").click()
    phone.wait_for_function("() => document.querySelector('[data-testid=who]').textContent.includes('SN0001')")


def test_the_app_refuses_by_the_rules_mediates_in_part_and_records_a_bank_refund(live: Live, phone: Any) -> None:
    """The steps the field app now does besides accept and upheld: a refusal with the 2010
    rules' grounds (none given: refused, the order unchanged), a partial outcome, a refund the
    agency pays by bank (its reference recorded, no money moves)."""
    from datetime import date

    from mobipay.tourism.service import Complaint, agency_account

    async def story(c: Any) -> tuple[str, str, str]:
        await _setup(c)
        officer = (await c.tourism.officers_of("430527"))[0]
        agency = (await c.tourism.directory(officer.viewer, kind="agency"))[0].id
        first = await c.tourism.complain(
            officer,
            Complaint(
                "张伟",
                "13800138000",
                "itinerary_skipped",
                "未去上堡侗寨",
                "退款",
                True,
                agency_id=agency,
                tour_date=date(2026, 10, 3),
                before_court=True,
            ),
            idempotency_key="r-1",
        )
        second = await c.tourism.complain(
            officer,
            Complaint(
                "李娜",
                "13800138001",
                "extra_charges",
                "另收车费",
                "退还车费",
                False,
                agency_id=agency,
                tour_date=date(2026, 10, 3),
            ),
            idempotency_key="r-2",
        )
        await c.tourism.accept(officer.viewer, second.id)
        return first.id, second.id, agency

    first, second, agency = live.call(story)
    funds = live.call(lambda c: c.ledger.account(agency_account(agency))).balance
    _officer_signs_in(live, phone)
    phone.get_by_role("button", name="工单 Orders").click()
    row = phone.get_by_test_id("order").filter(has_text="张伟")
    row.get_by_role("button", name="不予受理 Refuse").click()
    phone.get_by_test_id("act-words").fill("投诉人已向法院起诉。")
    phone.get_by_test_id("act-submit").click()  # no ground ticked: refused, the form stays
    phone.wait_for_function("() => document.getElementById('verdicts').textContent.includes('WORK_ORDER_REFUSAL')")
    assert live.call(lambda c: c.tourism.work_order(Viewer("t", "430527"), first)).state.value == "received"
    phone.get_by_test_id("grounds-before_court").check()
    phone.get_by_test_id("act-submit").click()
    phone.wait_for_function("() => document.getElementById('verdicts').textContent.includes('refuse')")
    order = live.call(lambda c: c.tourism.work_order(Viewer("t", "430527"), first))
    assert order.state.value == "refused" and order.refusal == {
        "grounds": ["before_court"],
        "words": "投诉人已向法院起诉。",
    }

    row = phone.get_by_test_id("order").filter(has_text="李娜")
    row.get_by_role("button", name="调解 Mediate").click()
    phone.get_by_test_id("act-outcome").select_option("partly_upheld")
    phone.get_by_test_id("act-record").fill("双方同意退还部分车费 50 元。")
    phone.get_by_test_id("act-submit").click()
    phone.wait_for_function("() => document.getElementById('verdicts').textContent.includes('mediate')")
    assert live.call(lambda c: c.tourism.work_order(Viewer("t", "430527"), second)).outcome == "partly_upheld"
    phone.get_by_test_id("order").filter(has_text="李娜").get_by_role("button", name="退款 Refund").click()
    phone.get_by_test_id("act-method").select_option("bank")
    phone.get_by_test_id("act-amount").fill("50")
    phone.get_by_test_id("act-bank_reference").fill("ICBC-20261004-0007")
    phone.get_by_test_id("act-submit").click()
    phone.wait_for_function("() => document.getElementById('verdicts').textContent.includes('refunds')")
    steps = live.call(lambda c: c.tourism.work_order(Viewer("t", "430527"), second)).steps
    assert steps[-1].step == "refunded" and "5000 fen" in steps[-1].detail and "ICBC-20261004-0007" in steps[-1].detail
    assert live.call(lambda c: c.ledger.account(agency_account(agency))).balance == funds  # paid by bank


def test_the_agency_pages_and_the_guide_assistant_on_a_phone(live: Live, phone: Any) -> None:
    """The agency's manager adds an outlet (in its operations log) and sees its customers; the
    guide checks in at a promised spot with the phone's position; each page fits 390 px."""
    from tests.browser.test_every_page_on_a_phone import check

    live.call(_setup)
    problems: list[str] = []
    phone.goto(f"{live.url}/tourism/agency")
    phone.get_by_test_id("login").fill("qingshan")
    phone.get_by_test_id("password").fill("wrong-password")
    phone.get_by_test_id("signin").click()
    phone.wait_for_function(
        "() => document.querySelector('[data-testid=signin-error]').textContent"
        ".includes('TOURISM_AGENCY_SIGN_IN_FAILED')"
    )
    check(phone, "", problems, go=False)
    phone.get_by_test_id("password").fill("tourism-demo-1")
    phone.get_by_test_id("signin").click()
    phone.get_by_test_id("outlet").first.wait_for()
    assert "青山国际旅行社" in phone.get_by_test_id("agency").inner_text()
    check(phone, "", problems, go=False)
    phone.get_by_test_id("o-name").fill("青山国旅 寨市门市部")
    phone.get_by_test_id("o-address").fill("寨市苗族侗族乡 8 号")
    phone.get_by_test_id("o-phone").fill("0739-7761234")
    phone.get_by_test_id("o-manager").fill("赵敏")
    phone.get_by_test_id("o-submit").click()
    phone.get_by_test_id("outlet").filter(has_text="寨市门市部").wait_for()
    for tab in ("员工 Staff", "客户 Customers", "日志 Log"):
        phone.get_by_role("button", name=tab).click()
        phone.wait_for_load_state()
        check(phone, "", problems, go=False)
    phone.get_by_test_id("log-line").filter(has_text="outlet_added").first.wait_for()
    assert "agency:qingshan" in phone.get_by_test_id("log").inner_text()
    assert "张伟" in (phone.get_by_test_id("customers").text_content() or "")

    phone.context.grant_permissions(["geolocation"], origin=live.url)
    phone.context.set_geolocation({"latitude": 26.3953, "longitude": 110.0349})  # at 黄桑
    phone.goto(f"{live.url}/tourism/guide")
    check(phone, "", problems, go=False)
    phone.get_by_test_id("login").fill("lifang")
    phone.get_by_test_id("password").fill("tourism-demo-1")
    phone.get_by_test_id("signin").click()
    phone.get_by_test_id("day").wait_for()
    phone.get_by_test_id("day").fill("2026-10-03")
    phone.get_by_test_id("day").dispatch_event("change")
    phone.get_by_test_id("check-in-spot_huangsang").click()
    phone.get_by_test_id("spot").filter(has_text="已签到").wait_for()
    check(phone, "", problems, go=False)
    qingshan = "tag_" + hashlib.sha256(b"L-HUN-CJ00527").hexdigest()[:20]
    log = live.call(lambda c: c.tourism.operations(Viewer("t", "430527"), qingshan))
    assert any(e["action"] == "checked_in" and e["actor"] == "guide:lifang" for e in log)
    assert not problems, "\n".join(problems)


def test_the_guides_offline_check_in_survives_a_reload_and_keeps_its_time(live: Live, phone: Any) -> None:
    """At a spot without signal the guide's check-in waits on the phone; the assistant opens
    again offline (its service worker) with the queue; when the network is back it is sent once,
    with the time the position was taken, not the time it arrived."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from mobipay.tourism.tables import checkins

    live.call(_setup)
    phone.context.grant_permissions(["geolocation"], origin=live.url)
    phone.context.set_geolocation({"latitude": 26.3953, "longitude": 110.0349})  # at 黄桑
    phone.goto(f"{live.url}/tourism/guide")
    phone.get_by_test_id("login").fill("lifang")
    phone.get_by_test_id("password").fill("tourism-demo-1")
    phone.get_by_test_id("signin").click()
    phone.get_by_test_id("day").wait_for()
    phone.get_by_test_id("day").fill("2026-10-03")
    phone.get_by_test_id("day").dispatch_event("change")
    phone.get_by_test_id("check-in-spot_huangsang").wait_for()
    ready = phone.evaluate(
        "() => Promise.race([navigator.serviceWorker.ready.then(() => true), "
        "new Promise((ok) => setTimeout(() => ok(false), 10000))])"
    )
    assert ready, "the service worker is not ready"
    phone.reload()  # once under the worker's control: the page and the day's tours are cached
    phone.get_by_test_id("day").fill("2026-10-03")
    phone.get_by_test_id("day").dispatch_event("change")
    phone.get_by_test_id("check-in-spot_huangsang").wait_for()

    phone.context.set_offline(True)
    try:
        before = datetime.now(UTC)
        phone.get_by_test_id("check-in-spot_huangsang").click()
        phone.get_by_test_id("queue").filter(has_text="1 条签到待发送").wait_for()
        phone.reload()  # offline: the worker serves the assistant; the queue is still on the phone
        phone.get_by_test_id("queue").filter(has_text="1 条签到待发送").wait_for()
        assert live.call(lambda c: _checkins(c, checkins, select)) == []
    finally:
        phone.context.set_offline(False)

    phone.wait_for_function("() => document.querySelector('[data-testid=queue]').textContent === ''", timeout=20_000)
    [(spot, at, at_spot)] = live.call(lambda c: _checkins(c, checkins, select))
    assert spot == "spot_huangsang" and at_spot
    assert before.timestamp() - 5 <= at.timestamp() <= before.timestamp() + 60


async def _checkins(c: Any, checkins: Any, select: Any) -> list[tuple[str, Any, bool]]:
    from mobipay.kernel.clock import as_utc

    async def work(uow: Any) -> list[tuple[str, Any, bool]]:
        rows = await uow.conn.execute(select(checkins.c.spot_id, checkins.c.at, checkins.c.at_spot))
        return [(r.spot_id, as_utc(r.at), r.at_spot) for r in rows]

    result: list[tuple[str, Any, bool]] = await c.uow.run("t_checkins", work)
    return result
