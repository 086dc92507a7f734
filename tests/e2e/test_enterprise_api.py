"""The enterprise one-card over HTTP (SQLite and PostgreSQL): an employee pays the canteen's
counter code with the allowance first and the wallet the rest on one receipt (replayed with
the same key), an outside shop's code is refused the allowance with nothing moved; a company
reader uploads signed taps made by the phone's in-store NFC token (duplicates once, unknown
tokens refused, a replayed nonce and a forged signature refused); the attendance report on
the employer page and its CSV; the demo employer loaded twice."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_enterprise import EMPLOYEES, OWNER, PASSWORD, load_demo_enterprise
from mobipay.app.http import create_app
from mobipay.enterprise.model import new_reader_key, reader_sign, reader_signing_string, rules_from
from mobipay.enterprise.service import allowance_account
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Settings
from tests.e2e.test_merchant_portal import csrf
from tests.e2e.test_merchant_portal import sign_in as owner_sign_in
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # Monday 12:00 Beijing
NUMBER = "13700137000"
STAFF_PASSWORD = "correct horse battery"


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)
    clock = ManualClock(NOW)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def _code(n: int) -> str:
    body = f"91440300MA5E{n:05d}"
    return body + credit_code_check_char(body)


async def _setup(c: Container, public_key: str) -> dict[str, str]:
    await c.ensure_system_accounts()
    rules = rules_from({"windows": [{"name": "lunch", "start": "11:00", "end": "13:30"}], "per_meal": 2_500,
                        "per_day": 4_000})
    boss = await c.enterprise.onboard(name="深圳示范电子", credit_code=_code(1), legal_person="周总",
                                      contact="13700000001", settlement_account="6222021000000000001", rules=rules)
    await c.enterprise.deposit(boss.id, 100_000, bank_reference="B1", actor="ops")
    canteen = await c.merchants.apply(name="电子厂食堂", credit_code=_code(2), legal_person="赵经理",
                                      contact="13700000002", mcc="5812", website="",
                                      settlement_account="6222021000000000002")
    store = await c.merchants.add_store(canteen, "一号食堂", "工业园 1 号", "深圳")
    await c.enterprise.name_merchant(boss.id, canteen.id)
    outside = await c.merchants.apply(name="园外奶茶", credit_code=_code(3), legal_person="钱老板",
                                      contact="13700000003", mcc="5812", website="",
                                      settlement_account="6222021000000000003")
    outside_store = await c.merchants.add_store(outside, "奶茶一店", "园外街 3 号", "深圳")
    employee = await c.enterprise.enrol(boss.id, NUMBER, name="张三")
    await c.enterprise.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
    reader, seed = await c.enterprise.register_reader(boss.id, "南门闸机", kind="door", public_key=public_key)
    assert seed is None
    await c.merchant_operators.create(boss.id, "owner", STAFF_PASSWORD, "135792", role="owner")
    return {"boss": boss.id, "canteen": canteen.id, "canteen_account": canteen.account_code,
            "canteen_qr": await c.instore.store_payload(canteen, store),
            "outside_qr": await c.instore.store_payload(outside, outside_store), "reader": reader.id,
            "employee": employee.id}


def upload(client: TestClient, reader_id: str, seed: str, clock: ManualClock, taps: list[dict[str, str]], *,
           nonce: str | None = None, signature: str | None = None) -> Any:
    body = json.dumps({"taps": taps}).encode()
    ts, nonce = str(int(clock.now().timestamp())), nonce or secrets.token_hex(8)
    sig = signature or reader_sign(seed, reader_signing_string(reader_id, ts, nonce, body))
    return client.post("/v1/enterprise/reader/taps", content=body, headers={
        "Reader-Id": reader_id, "Timestamp": ts, "Nonce": nonce, "Signature": sig,
        "Content-Type": "application/json"})


def bj(day: int, h: int, m: int) -> str:
    return datetime(2026, 12, day, h, m, tzinfo=SHANGHAI).isoformat()


def test_pay_the_canteen_and_attendance_over_http(live: tuple[TestClient, Container, ManualClock],
                                                  db_url: str) -> None:
    client, c, clock = live
    signed_up(client, db_url, NUMBER)
    me = login_by_sms(client, db_url, NUMBER, "phone-1")
    fund(client, NUMBER, 10_000)
    r = client.post("/v1/me/nfc/tokens", headers={**bearer(me), "Idempotency-Key": "prov-1"}, json={"kind": "hce"})
    assert r.status_code == 201, r.text
    token_id = r.json()["token_id"]
    seed, public = new_reader_key()
    w = client.portal.call(_setup, c, public)  # type: ignore[union-attr]

    info = client.get("/v1/enterprise/me", headers=bearer(me))
    assert info.status_code == 200, info.text
    assert info.json()["allowance"]["amount"] == 30_000 and info.json()["closed_loop"] == ["电子厂食堂"]
    preview = client.post("/v1/enterprise/previews", headers=bearer(me), json={"merchant_id": w["canteen"],
                                                                            "amount": 3_000})
    assert (preview.json()["allowance"]["amount"], preview.json()["wallet"]["amount"]) == (2_500, 500)

    headers = {**bearer(me), "Idempotency-Key": "lunch-1"}
    problem(client.post("/v1/enterprise/payments", headers=bearer(me), json={"payload": w["canteen_qr"],
                                                                          "amount": 3_000}),
            400, "IDEMPOTENCY_KEY_REQUIRED")
    paid = client.post("/v1/enterprise/payments", headers=headers, json={"payload": w["canteen_qr"], "amount": 3_000})
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["amount"]["amount"], body["allowance"]["amount"], body["wallet"]["amount"], body["window"]) == (
        3_000, 2_500, 500, "lunch")
    assert body["allowance_left"]["amount"] == 27_500 and body["merchant"] == "电子厂食堂"
    again = client.post("/v1/enterprise/payments", headers=headers, json={"payload": w["canteen_qr"],
                                                                        "amount": 3_000})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["trade_id"] == body["trade_id"]
    assert balance(client, me) == 9_500

    problem(client.post("/v1/enterprise/payments", headers={**bearer(me), "Idempotency-Key": "tea"},
                        json={"payload": w["outside_qr"], "amount": 1_000}), 422, "ALLOWANCE_NOT_ACCEPTED")
    assert balance(client, me) == 9_500

    async def books(c: Container) -> tuple[int, int, bool]:
        accounts = await c.ledger.accounts([allowance_account(w["employee"]), w["canteen_account"]])
        return (accounts[allowance_account(w["employee"])].balance, accounts[w["canteen_account"]].balance,
                (await c.ledger.verify()).ok)

    assert client.portal.call(books, c) == (27_500, 3_000, True)  # type: ignore[union-attr]

    # the company's door reader: the phone's NFC token, taps uploaded the next morning, some twice
    clock.set(datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    taps = [{"token_id": token_id, "at": bj(7, 8, 55)}, {"token_id": token_id, "at": bj(7, 18, 5)},
            {"token_id": token_id, "at": bj(7, 8, 55)}, {"token_id": "nft_unknown", "at": bj(7, 9, 0)}]
    r = upload(client, w["reader"], seed, clock, taps)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 1, "rejected": [{"index": 3,
                                                                      "reason": "unknown or suspended token"}]}
    r = upload(client, w["reader"], seed, clock, [*taps[:3], {"token_id": token_id, "at": bj(8, 9, 20)}],
               nonce="n-replayed-1")
    assert r.json()["accepted"] == 1 and r.json()["duplicates"] == 3
    problem(upload(client, w["reader"], seed, clock, taps, nonce="n-replayed-1"), 401, "READER_SIGNATURE_INVALID")
    other_seed, _ = new_reader_key()
    problem(upload(client, w["reader"], other_seed, clock, taps), 401, "READER_SIGNATURE_INVALID")
    problem(upload(client, w["reader"], seed, clock, [{"token_id": token_id, "at": "2026-12-07T09:00:00"}]),
            400, "READER_TAPS_INVALID")

    # the door asks online: the employee passes (and is recorded), a stranger's token does not
    def ask(token: str) -> Any:
        body = json.dumps({"token_id": token}).encode()
        ts, nonce = str(int(clock.now().timestamp())), secrets.token_hex(8)
        sig = reader_sign(seed, reader_signing_string(w["reader"], ts, nonce, body))
        return client.post("/v1/enterprise/reader/access", content=body, headers={
            "Reader-Id": w["reader"], "Timestamp": ts, "Nonce": nonce, "Signature": sig})

    clock.set(datetime(2026, 12, 8, 10, 0, tzinfo=UTC))  # 18:00 Beijing: leaving
    assert ask(token_id).json() == {"allowed": True, "reason": ""}
    assert ask("nft_stranger").json() == {"allowed": False, "reason": "unknown or suspended token"}
    me = login_by_sms(client, db_url, NUMBER, "phone-1")  # a day later: signed in again
    lost = client.post(f"/v1/me/nfc/tokens/{token_id}/suspend", headers=bearer(me))  # the phone is reported lost
    assert lost.status_code == 200, lost.text
    assert ask(token_id).json() == {"allowed": False, "reason": "unknown or suspended token"}

    # the employer page and its attendance CSV, for the employer's own staff
    assert owner_sign_in(client, w["boss"], STAFF_PASSWORD).status_code == 303
    page = client.get("/merchant/enterprise")
    assert page.status_code == 200 and "张三" in page.text and 'id="chart-enterprise"' in page.text
    assert "¥275.00" in page.text  # the allowance left
    rows = list(csv.reader(io.StringIO(client.get("/merchant/enterprise/attendance.csv?month=2026-12")
                                       .text.lstrip("\ufeff"))))
    assert rows[0] == ["employee_id", "msisdn", "name", "days", "late_days", "hours"]
    assert rows[1][1:] == ["+8613700137000", "张三", "2", "1", f"{(550 + 520) / 60:.2f}"]  # 8th: 09:20 to 18:00
    spending = client.get("/merchant/enterprise/spending.csv").text
    assert "30000,2500,500,1,27500" in spending
    assert client.get("/merchant/enterprise/nothing.csv").status_code == 404

    # the owner enrols from a CSV file and funds a run on the page; a double submit does it once
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id, page.text
    form = {"csrf": csrf(page.text), "request_id": request_id.group(1)}
    upload_csv = {"file": ("staff.csv", "phone,name\n13700137000,张三\nabc,坏号码\n".encode(), "text/csv")}
    imported = client.post("/merchant/enterprise/import", data=form, files=upload_csv)
    assert imported.status_code == 200, imported.text
    refused = imported.text[imported.text.index('data-testid="refused-rows"'):]
    assert "ALREADY_ENROLLED" in refused and "PHONE_INVALID" in refused
    again = client.post("/merchant/enterprise/import", data=form, files=upload_csv)
    assert "重复提交" in again.text
    funded = client.post("/merchant/enterprise/funding", data={**form, "month": "2026-12", "amount": "10.00"})
    assert funded.status_code == 200 and 'data-testid="done"' in funded.text, funded.text
    client.post("/merchant/enterprise/funding", data={**form, "month": "2026-12", "amount": "10.00"})
    assert client.portal.call(books, c)[0] == 27_500 + 1_000  # type: ignore[union-attr]
    bad = client.post("/merchant/enterprise/funding", data={**form, "request_id": "r2", "month": "2026-12",
                                                            "amount": "100000.00"})
    assert bad.status_code == 422 and 'data-testid="error"' in bad.text


def test_demo_employer_and_its_page(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, c, _ = live

    async def demo(c: Container) -> tuple[str, str]:
        await c.ensure_system_accounts()
        for number, _, _ in EMPLOYEES:  # the demo subscribers it enrols (mobipay demo makes them first)
            await c.wallet.create_user(number, actor="test", reason="demo employees")
        first = await load_demo_enterprise(c)
        second = await load_demo_enterprise(c)
        assert second.skipped == "loaded before" and second.employer_id == first.employer_id
        return first.summary(), first.employer_id

    summary, employer_id = client.portal.call(demo, c)  # type: ignore[union-attr]
    assert "5 employees" in summary
    client.cookies.clear()
    token = csrf(client.get("/merchant/signin").text)
    r = client.post("/merchant/signin", data={"csrf": token, "merchant_id": employer_id, "name": OWNER,
                                              "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/merchant/enterprise")
    assert page.status_code == 200 and page.text.count('data-testid="employee"') == 5
    assert "示范科技员工食堂" in page.text
    employees = client.get("/merchant/enterprise/employees.csv").text
    assert employees.count("+86") == 5
    bad = client.get("/merchant/enterprise?month=2026-13")
    assert bad.status_code == 400 and 'data-testid="error"' in bad.text
