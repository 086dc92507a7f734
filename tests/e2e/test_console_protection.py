"""The console's handset protection pages on both databases: the counter enrols a phone the
hall sold and puts phones into stock, the queue shows claims with deadlines (overdue marked),
a flagged claim approved by a handler goes to a risk checker who is someone else, the claim
is worked to hand-over from its page, the blocklist is the risk role's, and the report
(table, chart data, CSV) counts it by city. Refusals change nothing. A damage claim's photos
are shown to staff on its page (served under /console to a claims role only) and listed by
``mobipay protection show``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
from mobipay.simulators.maker_warranty import create_maker_app
from mobipay.wallet.service import Principal
from tests.e2e.test_console import csrf, operator, run, sign_in
from tests.e2e.test_wallet_api import fund, signed_up
from tests.support.images import png

NUMBER = "13800138000"


def imei(serial: int) -> str:
    body = f"86753005{serial:06d}"  # Huawei Mate 60
    return body + luhn.calc_check_digit(body)


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports",
                        protection_photo_dir=tmp_path / "photos")
    clock = ManualClock(datetime(2026, 9, 20, 10, 0, tzinfo=SHANGHAI))
    container = build(settings, clock=clock)
    container.protection.warranty = HttpWarrantyService(
        "http://maker", b"demo-maker-secret", transport=httpx.ASGITransport(app=create_maker_app()))
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def test_counter_claim_queue_and_report(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, _, clock = live
    signed_up(client, db_url, NUMBER)
    fund(client, NUMBER, 100_000)
    operator(client, "li", "support")
    operator(client, "wang", "risk")
    operator(client, "zhao", "finance")
    assert sign_in(client, "zhao").status_code == 303
    assert client.get("/console/protection").status_code == 403  # not a protection role
    assert sign_in(client, "li").status_code == 303
    counter = client.get("/console/protection/counter")
    assert counter.status_code == 200 and "CS01" in counter.text
    key = re.search(r'name="key" value="([^"]+)"', counter.text)
    assert key
    enrol = {"csrf": csrf(counter.text), "key": key.group(1), "hall": "HY01", "msisdn": NUMBER, "imei": imei(1),
             "price": "5499", "purchased_on": "2026-09-19", "receipt": "HY-0001", "payment": "phone_bill"}
    bad = client.post("/console/protection/counter/enrol", data={**enrol, "imei": imei(1)[:-1] + "x"})
    assert bad.status_code == 400 and "IMEI_INVALID" in bad.text
    done = client.post("/console/protection/counter/enrol", data=enrol)
    assert done.status_code == 200 and 'data-testid="notice"' in done.text and "Mate 60" in done.text
    again = client.post("/console/protection/counter/enrol", data=enrol)  # a double submit: one enrolment
    assert again.status_code == 200 and 'data-testid="notice"' in again.text
    stocked = client.post("/console/protection/counter/stock", data={"csrf": csrf(again.text), "hall": "HY01",
                                                                     "imeis": f"{imei(8)} {imei(9)}"})
    assert stocked.status_code == 200 and "+2" in stocked.text
    blocked = client.post("/console/protection/counter/block", data={"csrf": csrf(stocked.text), "imei": imei(7),
                                                                     "reason": "police notice"})
    assert blocked.status_code == 403 and "ROLE_REQUIRED" in blocked.text  # the blocklist is the risk role's

    async def me(c: Container) -> Principal:
        return await c.channel_actions.subscriber(NUMBER)

    principal = run(client, me)
    [e] = run(client, lambda c: c.protection.enrolments(principal))
    assert (e.channel, e.hall, e.city, e.payment) == ("hall", "HY01", "hengyang", "phone_bill")
    clock.set(datetime(2026, 10, 25, 10, 0, tzinfo=SHANGHAI))  # day 35: enrolled just before, right after waiting
    claim = run(client, lambda c: c.protection.submit_claim(principal, e.id, kind="loss", occurred_on="2026-10-24",
                                                            region="CN-HN", description="lost",
                                                            idempotency_key="k1"))
    assert set(claim.flags) == {"enrolled_just_before", "right_after_waiting"}
    assert sign_in(client, "li").status_code == 303  # the clock moved: a new console session
    clock.set(datetime(2026, 10, 28, 10, 0, tzinfo=SHANGHAI))  # past the 2-day deadline
    assert sign_in(client, "li").status_code == 303
    queue = client.get("/console/protection")
    assert f'data-testid="claim-{claim.id}" class="overdue"' in queue.text and "enrolled_just_before" in queue.text
    page = client.get(f"/console/protection/claims/{claim.id}")
    assert 'data-testid="step-approve"' in page.text
    first = client.post(f"/console/protection/claims/{claim.id}/approve", data={"csrf": csrf(page.text)})
    assert first.status_code == 200 and 'data-testid="state">second_review' in first.text
    again = client.post(f"/console/protection/claims/{claim.id}/approve", data={"csrf": csrf(page.text)})
    assert again.status_code == 403  # li is no checker
    assert sign_in(client, "wang").status_code == 303
    page = client.get(f"/console/protection/claims/{claim.id}")
    ok = client.post(f"/console/protection/claims/{claim.id}/approve", data={"csrf": csrf(page.text), "text": "ok"})
    assert ok.status_code == 200 and 'data-testid="state">approved' in ok.text
    run(client, lambda c: c.protection.pay_fee(principal, claim.id, idempotency_key="f", consent=True))
    assert sign_in(client, "li").status_code == 303
    page = client.get(f"/console/protection/claims/{claim.id}")
    token = csrf(page.text)
    for step, data in (("allocate", {"hall": "HY01"}), ("ready", {"delivery": "1"}), ("hand_over", {})):
        r = client.post(f"/console/protection/claims/{claim.id}/{step}", data={"csrf": token, **data})
        assert r.status_code == 200 and 'data-testid="notice"' in r.text, r.text
    assert 'data-testid="state">handed_over' in r.text and imei(8) in r.text
    assert run(client, lambda c: c.protection.blocked(imei(1)))
    report = client.get("/console/protection/report")
    assert report.status_code == 200 and "衡阳" in report.text
    data = json.loads(re.search(r'id="protection-data">([^<]+)</script>', report.text).group(1))  # type: ignore[union-attr]
    assert (data["cities"], data["enrolments"], data["claims"], data["approval"]) == (["衡阳"], [1], [1], [100.0])
    csv = client.get("/console/protection/report.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[1].startswith("hengyang,1,1,1,1,1.000,1,")
    assert client.get("/console/protection/report?since=nope").status_code == 400


def test_staff_see_a_claims_photos(live: tuple[TestClient, Container, ManualClock], db_url: str,
                                   tmp_path: Path) -> None:
    client, _, clock = live
    signed_up(client, db_url, NUMBER)
    operator(client, "li", "support")
    operator(client, "zhao", "finance")

    async def me(c: Container) -> Principal:
        return await c.channel_actions.subscriber(NUMBER)

    principal = run(client, me)
    e = run(client, lambda c: c.protection.enrol(principal, imei=imei(20), price=549_900, purchased_on="2026-09-19",
                                                  receipt="R-20", city="changsha", idempotency_key="e",
                                                  payment="phone_bill"))
    first = run(client, lambda c: c.protection.upload_photo(principal, png(1)))
    second = run(client, lambda c: c.protection.upload_photo(principal, png(2)))
    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    claim = run(client, lambda c: c.protection.submit_claim(principal, e.id, kind="damage", occurred_on="2026-11-19",
                                                            region="CN-HN", description="screen cracked",
                                                            photos=[first.id, second.id], idempotency_key="k"))
    url = f"/console/protection/photos/{first.id}"

    client.cookies.clear()  # no console session: the sign-in page, not the photo
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/signin")
    assert sign_in(client, "zhao").status_code == 303
    assert client.get(url).status_code == 403  # finance does not work claims
    assert sign_in(client, "li").status_code == 303
    page = client.get(f"/console/protection/claims/{claim.id}")
    assert page.status_code == 200
    assert f'<img src="{url}"' in page.text and f'<img src="/console/protection/photos/{second.id}"' in page.text
    shown = client.get(url)
    assert shown.status_code == 200 and shown.content == png(1)
    assert shown.headers["content-type"] == "image/png" and "no-store" in shown.headers["cache-control"]
    assert client.get("/console/protection/photos/pph_nope").status_code == 404

    env = {**os.environ, "MOBIPAY_DATABASE_URL": db_url, "MOBIPAY_LOG_LEVEL": "WARNING",
           "MOBIPAY_PROTECTION_PHOTO_DIR": str(tmp_path / "photos")}
    shown_cli = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "protection", "show", claim.id],
                               capture_output=True, text=True, env=env, timeout=120)
    assert shown_cli.returncode == 0, shown_cli.stderr
    assert f"photo {first.id} image/png {len(png(1))} bytes" in shown_cli.stdout
    assert f"photo {second.id} image/png {len(png(2))} bytes" in shown_cli.stdout
