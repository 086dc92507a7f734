"""旅游通's agencies and guides over HTTP on both databases: an agency's manager signs in
(lockout after wrong passwords), manages its own sales network, staff and customers (a filed
contract), every write in its operations log (and the platform audit) and replayed once under
its Idempotency-Key; another agency's ids are 404; bad input is a specific problem+json and
changes nothing; office staff may not change the network; a guide signs in to the guide
assistant, sees the day's tour and checks in with the phone's position; the bureau's officer
reads the same operations log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock, as_utc
from mobipay.platform.audit import audit_log
from mobipay.tourism.tables import checkins, contracts, ops_log, outlets, staff
from tests.e2e.test_console import csrf, operator, run, sign_in, trail
from tests.e2e.test_protection_api import problem
from tests.e2e.test_tourism_api import QINGSHAN, _setup, live, officer

__all__ = ["live"]
HUANGSANG_MANAGER = "huangsang"
PASSWORD = "tourism-demo-1"


def signed_in(client: TestClient, login: str, *, guide: bool = False) -> dict[str, str]:
    r = client.post(
        f"/v1/tourism/{'guide' if guide else 'agency'}/sessions", json={"login": login, "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def counts(client: TestClient) -> dict[str, int]:
    async def work(c: Container) -> dict[str, int]:
        async def q(uow: Any) -> dict[str, int]:
            out = {}
            for name, table in (("outlets", outlets), ("staff", staff), ("contracts", contracts), ("log", ops_log)):
                out[name] = (await uow.conn.execute(select(func.count()).select_from(table))).scalar_one()
            out["audit"] = (
                await uow.conn.execute(
                    select(func.count()).select_from(audit_log).where(audit_log.c.action.like("tourism.agency_%"))
                )
            ).scalar_one()
            return out

        return await c.uow.run("t", q)

    return run(client, work)


def test_an_agency_manages_its_own_network_staff_and_customers(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, _c, _ = live
    run(client, _setup)
    problem(client.get("/v1/tourism/agency/network"), 401, "TOURISM_AGENCY_SESSION_INVALID")
    problem(
        client.post("/v1/tourism/agency/sessions", json={"login": "qingshan", "password": "wrong-password"}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )
    problem(
        client.post("/v1/tourism/agency/sessions", json={"login": "lifang", "password": PASSWORD}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )  # a guide's account opens no agency pages
    me = signed_in(client, "qingshan")
    other = signed_in(client, HUANGSANG_MANAGER)
    guide_token = signed_in(client, "lifang", guide=True)
    problem(client.get("/v1/tourism/agency/network", headers=guide_token), 401, "TOURISM_AGENCY_SESSION_INVALID")

    mine = client.get("/v1/tourism/agency/me", headers=me).json()
    assert mine["agency"]["id"] == QINGSHAN and mine["agency"]["balance"] == 500_000
    assert mine["account"]["role"] == "manager"
    network = client.get("/v1/tourism/agency/network", headers=me).json()
    assert {o["name"] for o in network["outlets"]} == {"青山国旅 黄桑分社", "青山国旅 长铺门市部"}
    their = client.get("/v1/tourism/agency/network", headers=other).json()
    assert {o["name"] for o in their["outlets"]} == {"黄桑旅游 县城门市部"}  # each its own

    before = counts(client)
    outlet = {
        "kind": "outlet",
        "name": "青山国旅 寨市门市部",
        "address": "寨市苗族侗族乡 8 号",
        "phone": "0739-7761234",
        "manager": "赵敏",
    }
    r = client.post("/v1/tourism/agency/outlets", json=outlet, headers={**me, "Idempotency-Key": "o-1"})
    assert r.status_code == 201, r.text
    again = client.post("/v1/tourism/agency/outlets", json=outlet, headers={**me, "Idempotency-Key": "o-1"})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    problem(
        client.post(
            "/v1/tourism/agency/outlets", json={**outlet, "name": "别的"}, headers={**me, "Idempotency-Key": "o-1"}
        ),
        409,
        "IDEMPOTENCY_CONFLICT",
    )
    problem(
        client.post("/v1/tourism/agency/outlets", json=outlet, headers={**me, "Idempotency-Key": "o-2"}),
        409,
        "TOURISM_AGENCY_DUPLICATE",
    )
    problem(client.post("/v1/tourism/agency/outlets", json=outlet, headers=me), 400, "IDEMPOTENCY_KEY_REQUIRED")
    after = counts(client)
    assert after == {
        **before,
        "outlets": before["outlets"] + 1,
        "log": before["log"] + 1,
        "audit": before["audit"] + 1,
    }  # one outlet, one log line, one audit entry

    guide = {"role": "guide", "name": "蒋小红", "phone": "13907390021", "licence": "D-4305-003456"}
    made = client.post("/v1/tourism/agency/staff", json=guide, headers={**me, "Idempotency-Key": "s-1"})
    assert made.status_code == 201, made.text
    new_guide = made.json()["id"]
    assert client.get(f"/v1/tourism/agency/staff/{new_guide}", headers=me).json()["licence"] == "D-4305-003456"
    problem(client.get(f"/v1/tourism/agency/staff/{new_guide}", headers=other), 404, "TOURISM_DIRECTORY_NOT_FOUND")

    # bad input: a specific problem and nothing changed
    before = counts(client)
    for body, code, field in (
        ({**outlet, "kind": "kiosk", "name": "x"}, "TOURISM_AGENCY_INPUT_INVALID", "kind"),
        ({**outlet, "name": "新", "phone": "call me"}, "TOURISM_AGENCY_INPUT_INVALID", "phone"),
        ({**outlet, "name": "  "}, "TOURISM_AGENCY_INPUT_INVALID", "name"),
    ):
        r = client.post("/v1/tourism/agency/outlets", json=body, headers={**me, "Idempotency-Key": f"bad-{field}"})
        problem(r, 400, code)
        assert r.json()["errors"][0]["field"] == field
    for body, field in (
        ({**guide, "phone": "12345"}, "phone"),
        ({**guide, "phone": "13907390099", "licence": "guide"}, "licence"),
        ({**guide, "role": "boss"}, "role"),
    ):
        r = client.post("/v1/tourism/agency/staff", json=body, headers={**me, "Idempotency-Key": f"bad-s-{field}"})
        problem(r, 400, "TOURISM_AGENCY_INPUT_INVALID")
        assert r.json()["errors"][0]["field"] == field
    assert counts(client) == before

    # a filed contract: the customer database; another agency's guide or spot refused
    spots = [s["id"] for s in client.get("/v1/tourism/agency/spots", headers=me).json()]
    assert "spot_huangsang" in spots
    contract = {
        "tourist_name": "王芳",
        "tourist_phone": "13800138011",
        "starts_at": "2026-10-05T08:00:00+08:00",
        "ends_at": "2026-10-05T17:00:00+08:00",
        "itinerary": ["spot_huangsang"],
        "guide_id": new_guide,
        "price": 28_000,
        "people": 3,
    }
    their_guide = next(p["id"] for p in their["staff"] if p["role"] == "guide")
    before = counts(client)
    problem(
        client.post(
            "/v1/tourism/agency/contracts",
            json={**contract, "guide_id": their_guide},
            headers={**me, "Idempotency-Key": "k-0"},
        ),
        404,
        "TOURISM_DIRECTORY_NOT_FOUND",
    )
    problem(
        client.post(
            "/v1/tourism/agency/contracts",
            json={**contract, "itinerary": ["spot_nowhere"]},
            headers={**me, "Idempotency-Key": "k-0b"},
        ),
        400,
        "TOURISM_AGENCY_INPUT_INVALID",
    )
    problem(
        client.post(
            "/v1/tourism/agency/contracts",
            json={**contract, "ends_at": "2026-10-05T07:00:00+08:00"},
            headers={**me, "Idempotency-Key": "k-0c"},
        ),
        400,
        "TOURISM_AGENCY_INPUT_INVALID",
    )
    assert counts(client) == before
    filed = client.post("/v1/tourism/agency/contracts", json=contract, headers={**me, "Idempotency-Key": "k-1"})
    assert filed.status_code == 201, filed.text
    cid = filed.json()["id"]
    assert filed.json()["itinerary"] == ["spot_huangsang"] and filed.json()["people"] == 3
    assert (
        client.post("/v1/tourism/agency/contracts", json=contract, headers={**me, "Idempotency-Key": "k-1"}).status_code
        == 200
    )
    customers = {x["phone"]: x for x in client.get("/v1/tourism/agency/customers", headers=me).json()}
    assert customers["+8613800138011"]["tours"][0]["contract_id"] == cid
    problem(client.get(f"/v1/tourism/agency/contracts/{cid}", headers=other), 404, "TOURISM_CONTRACT_NOT_FOUND")
    assert client.get("/v1/tourism/agency/customers", headers=other).json() == []

    log = client.get("/v1/tourism/agency/operations", headers=me).json()
    assert [(e["action"], e["actor"]) for e in log[:3]] == [
        ("contract_filed", "agency:qingshan"),
        ("staff_added", "agency:qingshan"),
        ("outlet_added", "agency:qingshan"),
    ]
    assert not any(
        e["action"] in ("outlet_added", "contract_filed") and e["actor"] == "agency:qingshan"
        for e in client.get("/v1/tourism/agency/operations", headers=other).json()
    )
    bureau = officer(client, "SN0001", "SN-TERM-01")  # the bureau supervises the same log
    assert client.get(f"/v1/tourism/agencies/{QINGSHAN}/operations", headers=bureau).json()[:3] == log[:3]

    # office staff file contracts but do not change the network
    run(
        client,
        lambda c: c.tourism.add_agency_account(
            QINGSHAN, "qingshan.zhao", "赵敏", "staff", "staff-password-1", actor="test"
        ),
    )
    clerk = client.post("/v1/tourism/agency/sessions", json={"login": "qingshan.zhao", "password": "staff-password-1"})
    clerk_h = {"Authorization": f"Bearer {clerk.json()['token']}"}
    problem(
        client.post(
            "/v1/tourism/agency/outlets",
            json={**outlet, "name": "再一个"},
            headers={**clerk_h, "Idempotency-Key": "c-1"},
        ),
        403,
        "TOURISM_AGENCY_MANAGER_ONLY",
    )

    assert client.delete("/v1/tourism/agency/sessions", headers=me).status_code == 204
    problem(client.get("/v1/tourism/agency/network", headers=me), 401, "TOURISM_AGENCY_SESSION_INVALID")


def test_wrong_passwords_lock_the_agency_account(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, _c, _ = live
    run(client, _setup)
    for _ in range(5):
        problem(
            client.post("/v1/tourism/agency/sessions", json={"login": "qingshan", "password": "not-it-at-all"}),
            401,
            "TOURISM_AGENCY_SIGN_IN_FAILED",
        )
    problem(
        client.post("/v1/tourism/agency/sessions", json={"login": "qingshan", "password": PASSWORD}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )  # locked: the right password opens nothing now

    async def locked(c: Container) -> list[str]:
        async def q(uow: Any) -> list[str]:
            return [
                r[0]
                for r in await uow.conn.execute(
                    select(audit_log.c.action).where(audit_log.c.target == "agency:qingshan")
                )
            ]

        return await c.uow.run("t", q)

    assert "tourism_agency.locked" in run(client, locked)


def test_the_guide_sees_todays_tour_and_checks_in(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, _c, _ = live
    run(client, _setup)
    me = signed_in(client, "lifang", guide=True)
    other_guide = signed_in(client, "longxiuying", guide=True)
    problem(
        client.post("/v1/tourism/guide/sessions", json={"login": "qingshan", "password": PASSWORD}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )  # the manager is no guide
    [tour] = client.get("/v1/tourism/guide/tours", headers=me).json()  # the clock's day: 3 October 2026
    assert [s["name"] for s in tour["spots"]] == ["黄桑国家级自然保护区", "上堡侗寨"] and tour["checked_in"] == []
    assert client.get("/v1/tourism/guide/tours", params={"day": "2026-10-04"}, headers=me).json() == []
    assert client.get("/v1/tourism/guide/tours", headers=other_guide).json() == []

    here = {"contract_id": tour["contract_id"], "spot_id": "spot_huangsang", "lat": 26.3953, "lon": 110.0349}
    r = client.post("/v1/tourism/guide/check-ins", json=here, headers={**me, "Idempotency-Key": "ci-1"})
    assert r.status_code == 201, r.text
    assert r.json()["at_spot"] and r.json()["distance_m"] < 50
    again = client.post("/v1/tourism/guide/check-ins", json=here, headers={**me, "Idempotency-Key": "ci-1"})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    before = counts(client)
    problem(
        client.post(
            "/v1/tourism/guide/check-ins", json={**here, "lat": 126.0}, headers={**me, "Idempotency-Key": "ci-2"}
        ),
        400,
        "TOURISM_CHECK_IN_INVALID",
    )
    problem(
        client.post("/v1/tourism/guide/check-ins", json=here, headers={**other_guide, "Idempotency-Key": "ci-3"}),
        404,
        "TOURISM_CONTRACT_NOT_FOUND",
    )  # another guide's tour
    problem(
        client.post(
            "/v1/tourism/guide/check-ins",
            json={**here, "spot_id": "spot_dayuan"},
            headers={**me, "Idempotency-Key": "ci-4"},
        ),
        400,
        "VALIDATION_FAILED",
    )
    assert counts(client) == before
    away = client.post(
        "/v1/tourism/guide/check-ins",
        headers={**me, "Idempotency-Key": "ci-5"},
        json={**here, "spot_id": "spot_shangbao", "lat": 26.5690, "lon": 110.1395},
    ).json()
    assert not away["at_spot"]
    [tour] = client.get("/v1/tourism/guide/tours", headers=me).json()
    assert [[x["at_spot"] for x in s["checked_in"]] for s in tour["spots"]] == [[True], [False]]
    manager = signed_in(client, "qingshan")
    log = client.get("/v1/tourism/agency/operations", headers=manager).json()
    assert [(e["action"], e["actor"]) for e in log[:2]] == [
        ("checked_in", "guide:lifang"),
        ("checked_in", "guide:lifang"),
    ]
    assert "NOT at the spot" in log[0]["detail"]


def test_a_check_in_queued_offline_keeps_the_time_its_position_was_taken(
    live: tuple[TestClient, Container, ManualClock],
) -> None:
    client, _c, clock = live
    run(client, _setup)
    me = signed_in(client, "lifang", guide=True)
    [tour] = client.get("/v1/tourism/guide/tours", headers=me).json()
    here = {"contract_id": tour["contract_id"], "spot_id": "spot_huangsang", "lat": 26.3953, "lon": 110.0349}
    before = counts(client)
    now = clock.now()
    for taken, why in (
        ((now - timedelta(hours=25)).isoformat(), "older than a day"),
        ((now + timedelta(minutes=10)).isoformat(), "ahead of the platform's clock"),
        ((now - timedelta(hours=1)).replace(tzinfo=None).isoformat(), "without its offset"),
    ):
        r = client.post(
            "/v1/tourism/guide/check-ins", json={**here, "taken_at": taken}, headers={**me, "Idempotency-Key": why}
        )
        problem(r, 400, "TOURISM_CHECK_IN_INVALID")
        assert "taken_at" in r.text, why
    assert counts(client) == before
    taken = now - timedelta(hours=2, minutes=7)  # at the spot without signal, sent when back in town
    r = client.post(
        "/v1/tourism/guide/check-ins",
        json={**here, "taken_at": taken.isoformat()},
        headers={**me, "Idempotency-Key": "queued-1"},
    )
    assert r.status_code == 201, r.text

    async def kept(c: Container) -> Any:
        async def q(uow: Any) -> Any:
            return (await uow.conn.execute(select(checkins.c.at).where(checkins.c.id == r.json()["id"]))).scalar_one()

        return await c.uow.run("t", q)

    assert as_utc(run(client, kept)) == taken  # the same instant (SQLite keeps UTC without its offset)


def test_the_bureau_disables_an_agency_account_and_sets_a_new_password(
    live: tuple[TestClient, Container, ManualClock],
) -> None:
    client, _c, _ = live
    run(client, _setup)
    guide = signed_in(client, "lifang", guide=True)
    manager = signed_in(client, "qingshan")
    operator(client, "ops1", "operations")
    operator(client, "fin1", "finance")
    sign_in(client, "fin1")
    assert client.get(f"/console/tourism/agencies/{QINGSHAN}").status_code == 403
    sign_in(client, "ops1")
    listing = client.get("/console/tourism/agencies?county=430527")
    assert listing.status_code == 200 and "青山国际旅行社" in listing.text
    page = client.get(f"/console/tourism/agencies/{QINGSHAN}")
    assert page.status_code == 200 and 'data-testid="account-lifang"' in page.text and "陈志强" in page.text
    token = csrf(page.text)
    url = f"/console/tourism/agencies/{QINGSHAN}/accounts"
    # refusals change nothing: no reason, another agency's account, an unknown change, a short password
    for data, words in (
        ({"login": "lifang", "change": "disable", "reason": " "}, "reason"),
        ({"login": HUANGSANG_MANAGER, "change": "disable", "reason": "x"}, "no account"),
        ({"login": "lifang", "change": "delete", "reason": "x"}, "choose disable"),
        ({"login": "qingshan", "change": "password", "password": "short", "reason": "x"}, "password"),
    ):
        bad = client.post(url, data={"csrf": token, **data})
        assert bad.status_code == 400 and words in bad.text, (data, bad.text[-400:])
    forged = client.post(url, data={"login": "lifang", "change": "disable", "reason": "x"})  # no CSRF token
    assert forged.status_code == 400 and "reload it" in forged.text
    assert client.get("/v1/tourism/guide/me", headers=guide).status_code == 200
    assert client.get("/v1/tourism/agency/me", headers=manager).status_code == 200

    done = client.post(url, data={"csrf": token, "login": "lifang", "change": "disable", "reason": "left the agency"})
    assert done.status_code == 200 and "已停用" in done.text
    problem(client.get("/v1/tourism/guide/me", headers=guide), 401, "TOURISM_AGENCY_SESSION_INVALID")
    problem(
        client.post("/v1/tourism/guide/sessions", json={"login": "lifang", "password": PASSWORD}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )
    client.post(url, data={"csrf": token, "login": "lifang", "change": "enable", "reason": "came back"})
    signed_in(client, "lifang", guide=True)

    new = "a-new-password-7"
    client.post(
        url, data={"csrf": token, "login": "qingshan", "change": "password", "password": new, "reason": "forgot"}
    )
    problem(client.get("/v1/tourism/agency/me", headers=manager), 401, "TOURISM_AGENCY_SESSION_INVALID")
    problem(
        client.post("/v1/tourism/agency/sessions", json={"login": "qingshan", "password": PASSWORD}),
        401,
        "TOURISM_AGENCY_SIGN_IN_FAILED",
    )
    assert client.post("/v1/tourism/agency/sessions", json={"login": "qingshan", "password": new}).status_code == 201
    log = client.get(f"/console/tourism/agencies/{QINGSHAN}").text
    assert "account_changed" in log and "console:ops1" in log
    audit = [e["action"] for e in trail(client, "lifang")]
    assert audit.count("tourism.agency_account_change") == 2
