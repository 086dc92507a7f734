"""Handset protection over HTTP (SQLite and PostgreSQL), the maker's warranty service as its
SIMULATOR in process: the programme, the IMEI check, enrolment with its Idempotency-Key
(replayed, duplicate, refusals as problem+json), a claim refused in Hong Kong, a loss claim
worked by staff to an approved fee, the fee refused for an empty wallet (nothing moves),
then paid once, and the claim followed to hand-over; a claim photo uploaded as the raw
image (kept once, checked by its content and size) and a damage claim naming it, another
subscriber's photo refused with no claim made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from stdnum import luhn

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.protection.gateway_http import HttpWarrantyService
from mobipay.protection.model import HANDLING_INCOME
from mobipay.simulators.maker_warranty import create_maker_app
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up
from tests.integration.test_protection import ALICE
from tests.support.images import jpeg, png

NUMBER = "13800138000"


def imei(serial: int) -> str:
    body = f"35328111{serial:06d}"
    return body + luhn.calc_check_digit(body)


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        protection_photo_dir=tmp_path / "photos")
    clock = ManualClock(datetime(2026, 9, 5, 10, 0, tzinfo=SHANGHAI))
    container = build(settings, clock=clock)
    container.protection.warranty = HttpWarrantyService(
        "http://maker", b"demo-maker-secret", transport=httpx.ASGITransport(app=create_maker_app()))
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text


def test_enrol_claim_and_pay_over_http(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, container, clock = live
    signed_up(client, db_url, NUMBER)
    me = login_by_sms(client, db_url, NUMBER, "a")
    fund(client, NUMBER, 1_500)

    [programme] = client.get("/v1/protection/programmes").json()
    assert programme["cities"] == ["changde", "changsha", "hengyang", "zhuzhou"]
    assert (programme["starts"], programme["ends"], programme["waiting_days"]) == ("2026-09-01", "2026-12-31", 30)
    phone = imei(1)
    assert client.get(f"/v1/protection/imei/{phone}", headers=bearer(me)).json() == {
        "imei": phone, "brand": "Apple", "model": "iPhone 15", "blocklisted": False}
    problem(client.get(f"/v1/protection/imei/{phone[:-1]}0", headers=bearer(me)), 400, "IMEI_INVALID")

    body: dict[str, Any] = {"imei": phone, "price": {"amount": 250_000}, "purchased_on": "2026-09-01",
                            "receipt": "FP-1", "city": "长沙"}
    problem(client.post("/v1/protection/enrolments", headers=bearer(me), json=body), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "x"},
                        json={**body, "city": "北京"}), 422, "PROTECTION_CITY_NOT_IN_PILOT")
    problem(client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "x"},
                        json={**body, "price": {"amount": 2500.5}}), 400, "INVALID_AMOUNT")
    r = client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "e1"}, json=body)
    assert r.status_code == 201, r.text
    enrolment = r.json()
    assert (enrolment["monthly_fee"], enrolment["covered_from"], enrolment["state"]) == (
        {"amount": 1_200, "currency": "CNY"}, "2026-10-05", "active")
    again = client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "e1"}, json=body)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == enrolment["id"]
    problem(client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "e2"}, json=body),
            409, "IMEI_ALREADY_ENROLLED")
    assert balance(client, me) == 1_500 - 1_200

    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    me = login_by_sms(client, db_url, NUMBER, "a")
    claim = {"enrolment_id": enrolment["id"], "kind": "loss", "occurred_on": "2026-11-19", "region": "CN-HK",
             "description": "lost on the ferry"}
    problem(client.post("/v1/protection/claims", headers={**bearer(me), "Idempotency-Key": "c0"}, json=claim),
            422, "PROTECTION_OUTSIDE_MAINLAND")
    r = client.post("/v1/protection/claims", headers={**bearer(me), "Idempotency-Key": "c1"},
                    json={**claim, "region": "CN-HN"})
    assert r.status_code == 201, r.text
    claim_id = r.json()["id"]
    assert (r.json()["state"], r.json()["fee"]["amount"]) == ("submitted", 34_900)
    assert r.json()["due_by"].startswith("2026-11-22")
    portal = client.portal
    assert portal is not None
    service = container.protection
    portal.call(lambda: service.approve(ALICE, claim_id))
    assert client.get(f"/v1/protection/claims/{claim_id}", headers=bearer(me)).json()["state"] == "approved"

    problem(client.post(f"/v1/protection/claims/{claim_id}/fee", headers={**bearer(me), "Idempotency-Key": "f1"},
                        json={}), 422, "PIN_REQUIRED")
    portal.call(lambda: container.wallet.set_pin(NUMBER, "135790"))
    problem(client.post(f"/v1/protection/claims/{claim_id}/fee", headers={**bearer(me), "Idempotency-Key": "f1"},
                        json={"pin": "135790"}), 422, "INSUFFICIENT_FUNDS")
    assert balance(client, me) == 300
    assert portal.call(lambda: container.ledger.account(HANDLING_INCOME)).balance == 0
    assert client.get(f"/v1/protection/claims/{claim_id}", headers=bearer(me)).json()["state"] == "approved"
    fund_more(client, 50_000)
    r = client.post(f"/v1/protection/claims/{claim_id}/fee", headers={**bearer(me), "Idempotency-Key": "f1"},
                    json={"pin": "135790"})
    assert r.status_code == 200 and r.json()["state"] == "fee_paid", r.text
    r = client.post(f"/v1/protection/claims/{claim_id}/fee", headers={**bearer(me), "Idempotency-Key": "f2"},
                    json={"pin": "135790"})
    assert r.headers["Idempotent-Replayed"] == "true"
    assert balance(client, me) == 300 + 50_000 - 34_900
    portal.call(lambda: service.add_stock(ALICE, "CS01", imei(9)))
    portal.call(lambda: service.allocate(ALICE, claim_id))
    portal.call(lambda: service.ready(ALICE, claim_id, delivery=True))
    portal.call(lambda: service.hand_over(ALICE, claim_id))
    [mine] = client.get("/v1/protection/claims", headers=bearer(me)).json()
    assert (mine["state"], mine["replacement_imei"], mine["hall"]) == ("handed_over", imei(9), "CS01")
    assert client.get(f"/v1/protection/imei/{phone}", headers=bearer(me)).json()["blocklisted"] is True
    [e] = client.get("/v1/protection/enrolments", headers=bearer(me)).json()
    assert e["imei"] == imei(9)
    problem(client.get("/v1/protection/claims/pc_nope", headers=bearer(me)), 404, "PROTECTION_CLAIM_NOT_FOUND")


def fund_more(client: TestClient, amount: int) -> None:
    from tests.e2e.test_wallet_api import ADMIN

    r = client.post("/v1/ledger/transfers", headers={**ADMIN, "Idempotency-Key": "fund-more"}, json={
        "code": "cash_in", "legs": [
            {"account": "asset:bank:settlement", "side": "debit", "amount": {"amount": amount}},
            {"account": f"wallet:+86{NUMBER}", "side": "credit", "amount": {"amount": amount}}]})
    assert r.status_code == 201, r.text


def test_photos_uploaded_and_claimed_with(live: tuple[TestClient, Container, ManualClock], db_url: str,
                                          tmp_path: Path) -> None:
    client, container, clock = live
    other_number = "13900139000"
    signed_up(client, db_url, NUMBER)
    signed_up(client, db_url, other_number)
    me = login_by_sms(client, db_url, NUMBER, "a")
    other = login_by_sms(client, db_url, other_number, "b")
    fund(client, NUMBER, 1_500)
    body = {"imei": imei(40), "price": {"amount": 250_000}, "purchased_on": "2026-09-01", "receipt": "FP-4",
            "city": "changsha"}
    r = client.post("/v1/protection/enrolments", headers={**bearer(me), "Idempotency-Key": "e"}, json=body)
    assert r.status_code == 201, r.text
    enrolment_id = r.json()["id"]

    jpg = {"Content-Type": "image/jpeg"}
    assert client.post("/v1/protection/photos", content=png(1), headers=jpg).status_code == 401
    r = client.post("/v1/protection/photos", content=png(1), headers={**bearer(me), "Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["size"], photo["content_type"], len(photo["sha256"])) == (len(png(1)), "image/png", 64)
    assert (tmp_path / "photos" / f"{photo['sha256']}.png").read_bytes() == png(1)
    again = client.post("/v1/protection/photos", content=png(1), headers={**bearer(me), "Content-Type": "image/png"})
    assert again.status_code == 200 and again.json() == photo  # the same bytes: the same photo
    shot = client.post("/v1/protection/photos", content=jpeg(2), headers={**bearer(me), **jpg})
    assert shot.status_code == 201 and shot.json()["content_type"] == "image/jpeg"
    theirs = client.post("/v1/protection/photos", content=png(3), headers={**bearer(other), **jpg}).json()

    # a text file sent as a JPEG, a declared type that is no photo, 5 MB and a byte, far too large
    problem(client.post("/v1/protection/photos", content=b"notes.txt renamed to photo.jpg\n",
                        headers={**bearer(me), **jpg}), 415, "PROTECTION_PHOTO_NOT_IMAGE")
    problem(client.post("/v1/protection/photos", content=b"a photo", headers={**bearer(me),
                                                                              "Content-Type": "text/plain"}),
            415, "PROTECTION_PHOTO_NOT_IMAGE")
    big = b"\xff\xd8\xff\xe0" + b"\x00" * (5 * 1024 * 1024 - 3)
    problem(client.post("/v1/protection/photos", content=big, headers={**bearer(me), **jpg}), 413,
            "PROTECTION_PHOTO_TOO_LARGE")
    problem(client.post("/v1/protection/photos", content=big * 2, headers={**bearer(me), **jpg}), 413,
            "PAYLOAD_TOO_LARGE")
    assert len(list((tmp_path / "photos").iterdir())) == 3

    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    me = login_by_sms(client, db_url, NUMBER, "a")
    claim = {"enrolment_id": enrolment_id, "kind": "damage", "occurred_on": "2026-11-19", "region": "CN-HN",
             "description": "dropped it, the screen cracked"}
    problem(client.post("/v1/protection/claims", headers={**bearer(me), "Idempotency-Key": "c1"}, json=claim),
            400, "PROTECTION_EVIDENCE_MISSING")
    problem(client.post("/v1/protection/claims", headers={**bearer(me), "Idempotency-Key": "c1"},
                        json={**claim, "photos": [photo["photo_id"], theirs["photo_id"]]}),
            422, "PROTECTION_PHOTO_UNKNOWN")
    assert client.get("/v1/protection/claims", headers=bearer(me)).json() == []  # nothing made
    r = client.post("/v1/protection/claims", headers={**bearer(me), "Idempotency-Key": "c1"},
                    json={**claim, "photos": [photo["photo_id"], shot.json()["photo_id"]]})
    assert r.status_code == 201, r.text
    portal = client.portal
    assert portal is not None
    c, _ = portal.call(lambda: container.protection.claim_for_staff(r.json()["id"]))
    assert c.photos == [photo["photo_id"], shot.json()["photo_id"]]
    portal.call(lambda: container.protection.ask_info(ALICE, c.id, question="the IMEI on the box, please"))
    problem(client.post(f"/v1/protection/claims/{c.id}/information", headers=bearer(me),
                        json={"note": "here", "photos": [theirs["photo_id"]]}), 422, "PROTECTION_PHOTO_UNKNOWN")
    box = client.post("/v1/protection/photos", content=png(5), headers={**bearer(me), **jpg}).json()
    r = client.post(f"/v1/protection/claims/{c.id}/information", headers=bearer(me),
                    json={"note": "here", "photos": [box["photo_id"]]})
    assert r.status_code == 200 and r.json()["state"] == "submitted", r.text
    c, _ = portal.call(lambda: container.protection.claim_for_staff(c.id))
    assert c.photos[-1] == box["photo_id"] and len(c.photos) == 3
