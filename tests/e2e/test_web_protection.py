"""The mobile web wallet's handset protection page (/m/protection) on both databases: the
programme's rules shown, enrolment with a bad IMEI refused in words (nothing charged), a
double submit enrolling once, a claim in Hong Kong refused, a loss claim approved by staff
and its handling fee paid from the page; a damage claim with photos picked in the form
(multipart, no JavaScript), a text file refused, the photos kept across a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from stdnum import luhn

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.protection.gateway_http import HttpWarrantyService
from mobipay.protection.service import Enrolment
from mobipay.simulators.maker_warranty import create_maker_app
from tests.e2e.test_wallet_api import fund, signed_up
from tests.e2e.test_web_wallet import balance, hidden, sign_in
from tests.integration.test_protection import ALICE
from tests.support.images import png

NUMBER = "13800138000"
IMEI = "35328111000077" + luhn.calc_check_digit("35328111000077")


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", protection_photo_dir=tmp_path / "photos")
    clock = ManualClock(datetime(2026, 9, 10, 10, 0, tzinfo=SHANGHAI))
    container = build(settings, clock=clock)
    container.protection.warranty = HttpWarrantyService(
        "http://maker", b"demo-maker-secret", transport=httpx.ASGITransport(app=create_maker_app()))
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def test_enrol_claim_and_pay_on_the_page(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, container, clock = live
    signed_up(client, db_url, NUMBER)
    fund(client, NUMBER, 60_000)
    token = sign_in(client, db_url, NUMBER)
    assert 'data-testid="protection-link"' in client.get("/m").text
    page = client.get("/m/protection")
    assert page.status_code == 200 and "长沙" in page.text and "¥12.00" in page.text, page.text
    wrong = IMEI[:-1] + str((int(IMEI[-1]) + 1) % 10)
    form = {"csrf": token, "key": hidden(page.text, "key"), "imei": wrong, "price": "2999",
            "purchased_on": "2026-09-08", "receipt": "FP-9", "city": "changsha",
            "payment": "wallet"}
    bad = client.post("/m/protection/enrol", data=form)
    assert bad.status_code == 400 and "IMEI_INVALID" in bad.text and 'value="2999"' in bad.text
    assert balance(client, NUMBER) == 60_000
    form["imei"] = IMEI
    first = client.post("/m/protection/enrol", data=form, follow_redirects=False)
    assert first.status_code == 303, first.text
    again = client.post("/m/protection/enrol", data=form, follow_redirects=False)  # a double submit
    assert again.status_code == 303
    assert balance(client, NUMBER) == 60_000 - 1_200
    page = client.get("/m/protection?done=enrolled")
    assert "iPhone 15" in page.text and "2026-10-10" in page.text and 'data-testid="done"' in page.text

    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    token = sign_in(client, db_url, NUMBER)
    page = client.get("/m/protection")

    async def mine() -> list[Enrolment]:
        return await container.protection.enrolments(await container.channel_actions.subscriber(NUMBER))

    [e] = client.portal.call(mine)  # type: ignore[union-attr]
    claim = {"csrf": token, "key": hidden(page.text, "key"), "enrolment_id": e.id, "kind": "loss",
             "occurred_on": "2026-11-19", "region": "CN-HK", "description": "lost on the ferry"}
    hk = client.post("/m/protection/claims", data=claim)
    assert hk.status_code == 422 and "PROTECTION_OUTSIDE_MAINLAND" in hk.text
    claim["region"] = "CN-HN"
    assert client.post("/m/protection/claims", data=claim, follow_redirects=False).status_code == 303
    [c] = client.portal.call(lambda: container.protection.queue())  # type: ignore[union-attr]
    client.portal.call(lambda: container.protection.approve(ALICE, c.id))  # type: ignore[union-attr]
    page = client.get("/m/protection")
    assert 'data-state="approved"' in page.text and "¥349.00" in page.text
    client.portal.call(lambda: container.wallet.set_pin(NUMBER, "135790"))  # type: ignore[union-attr]
    paid = client.post(f"/m/protection/claims/{c.id}/fee", data={"csrf": token, "key": hidden(page.text, "key"),
                                                                "pin": "135790"}, follow_redirects=False)
    assert paid.status_code == 303, paid.text
    assert balance(client, NUMBER) == 60_000 - 1_200 - 34_900
    assert 'data-state="fee_paid"' in client.get("/m/protection").text


def test_damage_claim_with_photos_from_the_form(live: tuple[TestClient, Container, ManualClock], db_url: str,
                                                tmp_path: Path) -> None:
    client, container, clock = live
    signed_up(client, db_url, NUMBER)
    fund(client, NUMBER, 60_000)
    token = sign_in(client, db_url, NUMBER)
    page = client.get("/m/protection")
    enrolled = client.post("/m/protection/enrol", follow_redirects=False, data={
        "csrf": token, "key": hidden(page.text, "key"), "imei": IMEI, "price": "2999", "purchased_on": "2026-09-08",
        "receipt": "FP-9", "city": "changsha", "payment": "wallet"})
    assert enrolled.status_code == 303, enrolled.text
    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    token = sign_in(client, db_url, NUMBER)
    page = client.get("/m/protection")
    assert 'enctype="multipart/form-data" data-testid="claim"' in page.text
    assert 'type="file" accept="image/*" capture' in page.text

    async def mine() -> list[Enrolment]:
        return await container.protection.enrolments(await container.channel_actions.subscriber(NUMBER))

    [e] = client.portal.call(mine)  # type: ignore[union-attr]
    claim = {"csrf": token, "key": hidden(page.text, "key"), "enrolment_id": e.id, "kind": "damage",
             "occurred_on": "2026-11-19", "region": "CN-HN", "description": "screen cracked in a fall"}
    text = client.post("/m/protection/claims", data=claim, files=[("photos", ("crack.jpg", b"not a photo\n",
                                                                              "image/jpeg"))])
    assert text.status_code == 400 and "PROTECTION_PHOTO_NOT_IMAGE" in text.text
    none = client.post("/m/protection/claims", data=claim, files=[("photos", ("", b"", "application/octet-stream"))])
    assert none.status_code == 400 and "PROTECTION_EVIDENCE_MISSING" in none.text  # nothing picked
    # a refusal after the photos were kept: the form carries them, the subscriber does not pick them again
    hk = client.post("/m/protection/claims", data={**claim, "region": "CN-HK"},
                     files=[("photos", ("a.png", png(1), "image/png")), ("photos", ("b.png", png(2), "image/png"))])
    assert hk.status_code == 422 and "PROTECTION_OUTSIDE_MAINLAND" in hk.text
    kept = hidden(hk.text, "photo_ids")
    assert len(kept.split(",")) == 2 and 'data-testid="photos-kept"' in hk.text
    assert client.portal.call(lambda: container.protection.queue()) == []  # type: ignore[union-attr]
    # the edge does not parse multipart: the route holds its text to the control-character rule
    nul = client.post("/m/protection/claims", data={**claim, "description": "cracked\x00"},
                      files=[("photos", ("c.png", png(9), "image/png"))])
    assert nul.status_code == 400 and "CONTROL_CHARACTER" in nul.text
    done = client.post("/m/protection/claims", data={**claim, "photo_ids": kept},
                       files=[("photos", ("a.png", png(1), "image/png"))], follow_redirects=False)
    assert done.status_code == 303, done.text
    [c] = client.portal.call(lambda: container.protection.queue())  # type: ignore[union-attr]
    assert (c.kind.value, c.photos) == ("damage", kept.split(","))
    assert len(list((tmp_path / "photos").iterdir())) == 2
    client.portal.call(lambda: container.protection.ask_info(ALICE, c.id, question="the back, please"))  # type: ignore[union-attr]
    page = client.get("/m/protection")
    answered = client.post(f"/m/protection/claims/{c.id}/info", data={"csrf": token, "note": "here"},
                           files=[("photos", ("back.png", png(3), "image/png"))], follow_redirects=False)
    assert answered.status_code == 303, answered.text
    [c] = client.portal.call(lambda: container.protection.queue())  # type: ignore[union-attr]
    assert c.state.value == "submitted" and len(c.photos) == 3
