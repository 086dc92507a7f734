"""The employer's administration API (SQLite and PostgreSQL): an employer's server, signed as
a merchant (HMAC app), enrols employees one by one (a retry with the same key answers the first)
and from a CSV file (each refused row with its code), funds their allowances (balances checked,
replayed once, refused whole when the funds do not cover it), replaces its spending rules,
names and removes closed-loop merchants, registers and disables readers, suspends and removes
employees, and reads its spending and attendance as JSON and CSV (signed). Another employer
sees none of it and changes nothing; every refusal changes nothing. The employer page's owner
changes the rules, names merchants and registers readers. The clock is a ManualClock."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.enterprise.model import new_reader_key
from mobipay.enterprise.service import allowance_account, funds_account
from mobipay.kernel.clock import ManualClock
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from tests.e2e.test_enterprise_api import bj, upload
from tests.e2e.test_merchant_portal import PASSWORD, REFUND_PIN, csrf, sign_in
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import bearer, fund, login_by_sms

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # Monday 12:00 Beijing: lunch
A, B, C, STRANGER = "13700137001", "13700137002", "13700137003", "13700137009"
RULES = {
    "windows": [{"name": "lunch", "start": "11:00", "end": "13:30"}],
    "per_meal": 2_500,
    "per_day": 4_000,
    "month_end": "rollover",
}


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)  # type: ignore[call-arg]
    clock = ManualClock(NOW)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def _code(n: int) -> str:
    body = f"91440300MA5F{n:05d}"
    return body + credit_code_check_char(body)


class Server:
    """An employer's (or any merchant's) server: HMAC-signed calls, every answer's signature checked."""

    def __init__(self, client: TestClient, clock: ManualClock, app_id: str, key: str) -> None:
        self.client, self.clock, self.app_id, self.key = client, clock, app_id, key

    def __call__(self, path: str, key: str | None = None, **params: object) -> Any:
        body: dict[str, object] = {
            "app_id": self.app_id,
            "timestamp": str(int(self.clock.now().timestamp())),
            "nonce": secrets.token_hex(8),
            "sign_type": "HMAC",
            **params,
        }
        body["sign"] = sign_hmac(body, self.key.encode())
        headers = {"Idempotency-Key": key} if key else {}
        r = self.client.post(f"/v1/merchant/enterprise{path}", json=body, headers=headers)
        if r.status_code < 300 and r.headers["content-type"].startswith("application/json"):
            answer = r.json()
            assert answer["sign"] == sign_hmac(answer, self.key.encode()), answer
        return r


async def _setup(c: Container) -> dict[str, Any]:
    await c.ensure_system_accounts()
    boss = await c.enterprise.onboard(
        name="深圳示范电子",
        credit_code=_code(1),
        legal_person="周总",
        contact="13700000001",
        settlement_account="6222021000000000001",
    )
    await c.enterprise.deposit(boss.id, 100_000, bank_reference="B1", actor="ops")
    other = await c.enterprise.onboard(
        name="隔壁机械",
        credit_code=_code(2),
        legal_person="吴总",
        contact="13700000002",
        settlement_account="6222021000000000002",
    )
    await c.enterprise.deposit(other.id, 50_000, bank_reference="B2", actor="ops")
    canteen = await c.merchants.apply(
        name="电子厂食堂",
        credit_code=_code(3),
        legal_person="赵经理",
        contact="13700000003",
        mcc="5812",
        website="",
        settlement_account="6222021000000000003",
    )
    store = await c.merchants.add_store(canteen, "一号食堂", "工业园 1 号", "深圳")
    shop = await c.merchants.apply(
        name="园外奶茶",
        credit_code=_code(4),
        legal_person="钱老板",
        contact="13700000004",
        mcc="5812",
        website="",
        settlement_account="6222021000000000004",
    )
    for number in (A, B, C):
        await c.wallet.create_user(number, actor="test", reason="employees")
    apps = {}
    for name, merchant_id in (("boss", boss.id), ("other", other.id), ("shop", shop.id)):
        app_id, key = await c.merchants.create_app(merchant_id, "HMAC")
        assert key is not None
        apps[name] = (app_id, key)
    return {
        "boss": boss.id,
        "other": other.id,
        "canteen": canteen.id,
        "shop": shop.id,
        "apps": apps,
        "canteen_account": canteen.account_code,
        "canteen_qr": await c.instore.store_payload(canteen, store),
    }


def _balances(client: TestClient, c: Container, codes: list[str]) -> list[int]:
    async def read() -> list[int]:
        found = await c.ledger.accounts(codes)
        return [found[code].balance for code in codes]

    return client.portal.call(read)  # type: ignore[union-attr,no-any-return]


def test_employer_administration_over_the_api(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, c, clock = live
    w = client.portal.call(_setup, c)  # type: ignore[union-attr]
    boss, other = Server(client, clock, *w["apps"]["boss"]), Server(client, clock, *w["apps"]["other"])
    shop = Server(client, clock, *w["apps"]["shop"])
    funds = funds_account(w["boss"])

    # who may call: a signed employer; a merchant that is no employer, or an unsigned call, may not
    problem(shop("/employees/query"), 404, "EMPLOYER_NOT_FOUND")
    problem(
        client.post("/v1/merchant/enterprise/employees/query", json={"app_id": w["apps"]["boss"][0]}),
        401,
        "UNAUTHORIZED",
    )

    # enrol one: the key is required, a retry answers the first, another number under it conflicts
    problem(boss("/employees", phone=A), 400, "IDEMPOTENCY_KEY_REQUIRED")
    r = boss("/employees", "enrol-a", phone=A, name="张三", employee_no="E001")
    assert r.status_code == 201, r.text
    emp_a = r.json()["employee_id"]
    assert (r.json()["msisdn"], r.json()["state"], r.json()["allowance"]) == ("+86" + A, "active", 0)
    again = boss("/employees", "enrol-a", phone=A, name="张三", employee_no="E001")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["employee_id"] == emp_a
    problem(boss("/employees", "enrol-a", phone=B), 409, "IDEMPOTENCY_CONFLICT")
    refused = boss("/employees", "enrol-x", phone=STRANGER)
    problem(refused, 422, "EMPLOYEE_INVALID")
    assert refused.json()["reason"] == "NOT_A_SUBSCRIBER"
    assert boss("/employees/query").json()["count"] == 1  # the refusal kept nothing, not even its key
    problem(other("/employees", "steal-a", phone=A), 422, "EMPLOYEE_INVALID")  # one employer at a time

    # a CSV file: the good rows enrolled, every other row with its line and code; replayed once
    text = f"phone,name,employee_no\n{B},李四,E002\n{C},王五,E003\nabc,坏号码,\n{B},again,\n{A},张三,\n"
    r = boss("/employees/import", "staff-1", text=text)
    assert r.status_code == 201, r.text
    rows = json.loads(r.json()["rows"])
    assert (r.json()["enrolled"], r.json()["failed"]) == (2, 3)
    assert [(row["line"], row["code"]) for row in rows if not row["ok"]] == [
        (4, "PHONE_INVALID"),
        (5, "DUPLICATE_IN_FILE"),
        (6, "ALREADY_ENROLLED"),
    ]
    emp_b, emp_c = (row["employee_id"] for row in rows[:2])
    replay = boss("/employees/import", "staff-1", text=text)
    assert replay.status_code == 200 and replay.json()["rows"] == r.json()["rows"]
    problem(boss("/employees/import", "staff-1", text=f"{C}\n"), 409, "IDEMPOTENCY_CONFLICT")
    problem(boss("/employees/import", "staff-2", text="# nobody\n"), 400, "ENROLMENT_FILE_INVALID")
    listed = boss("/employees/query")
    assert listed.json()["count"] == 3
    assert [e["name"] for e in json.loads(listed.json()["employees"])] == ["张三", "李四", "王五"]

    # spending rules: a bad set is refused naming what is wrong, and the rules stay as they were
    before = boss("/rules/query").json()["rules"]
    overlapping = {
        "windows": [{"name": "a", "start": "11:00", "end": "13:00"}, {"name": "b", "start": "12:00", "end": "14:00"}]
    }
    for bad, words in (
        (overlapping, "overlap"),
        ({"per_meal": 5_000, "per_day": 4_000}, "per_meal"),
        ({"per_meal": 12.5}, "per_meal"),
        ({"weekdays": [0]}, "weekdays"),
        ({"colour": 1}, "colour"),
        ({"windows": 5}, "windows"),
    ):
        refused = boss("/rules", rules=json.dumps(bad))
        problem(refused, 400, "ALLOWANCE_RULES_INVALID")
        assert words in refused.json()["detail"], refused.text
    problem(boss("/rules", rules="{not json"), 400, "ALLOWANCE_RULES_INVALID")
    assert boss("/rules/query").json()["rules"] == before
    r = boss("/rules", rules=json.dumps(RULES))
    assert r.status_code == 200, r.text
    got = json.loads(r.json()["rules"])
    assert (got["windows"], got["per_meal"], got["per_day"], got["month_end"]) == (
        [{"name": "lunch", "start": "11:00", "end": "13:30"}],
        2_500,
        4_000,
        "rollover",
    )
    assert json.loads(other("/rules/query").json()["rules"])["per_meal"] == 3_000  # the other's are its own

    # closed-loop merchants
    problem(boss("/merchants", merchant_id="mch_nobody"), 422, "CLOSED_LOOP_MERCHANT_INVALID")
    r = boss("/merchants", merchant_id=w["canteen"], label="canteen")
    assert r.status_code == 201 and json.loads(r.json()["merchants"]) == [
        {"merchant_id": w["canteen"], "name": "电子厂食堂", "label": "canteen"}
    ]
    again = boss("/merchants", merchant_id=w["canteen"])
    assert again.status_code == 200 and again.json()["count"] == 1  # again: the same
    assert boss("/merchants", merchant_id=w["shop"], label="shop").json()["count"] == 2
    problem(other("/merchants/remove", merchant_id=w["shop"]), 404, "CLOSED_LOOP_MERCHANT_NOT_FOUND")
    assert boss("/merchants/remove", merchant_id=w["shop"]).json()["count"] == 1
    problem(boss("/merchants/remove", merchant_id=w["shop"]), 404, "CLOSED_LOOP_MERCHANT_NOT_FOUND")
    assert other("/merchants/query").json()["count"] == 0

    # funding: balances after, a retry once, refusals change nothing
    allowances = [allowance_account(e) for e in (emp_a, emp_b, emp_c)]
    problem(boss("/funding-runs", amount=30_000, month="2026-12"), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(boss("/funding-runs", "f-bad", amount="300.00", month="2026-12"), 400, "INVALID_AMOUNT")
    problem(boss("/funding-runs", "f-bad", amount=30_000, month="2026-13"), 400, "MONTH_INVALID")
    problem(boss("/funding-runs", "f-bad", amount=30_000, employee_ids="emp_x"), 400, "ALLOWANCE_FUNDING_INVALID")
    problem(boss("/funding-runs", "f-bad", amount=50_000), 422, "EMPLOYER_FUNDS_INSUFFICIENT")
    assert _balances(client, c, [funds, *allowances]) == [100_000, 0, 0, 0]
    r = boss("/funding-runs", "meal-2026-12", amount=30_000, month="2026-12", purpose="meal")
    assert r.status_code == 201, r.text
    assert (r.json()["employees"], r.json()["total"], r.json()["funds"]) == (3, 90_000, 10_000)
    again = boss("/funding-runs", "meal-2026-12", amount=30_000, month="2026-12", purpose="meal")
    assert again.status_code == 200 and again.json()["run_id"] == r.json()["run_id"]
    problem(boss("/funding-runs", "meal-2026-12", amount=20_000, month="2026-12"), 409, "IDEMPOTENCY_CONFLICT")
    assert _balances(client, c, [funds, *allowances]) == [10_000, 30_000, 30_000, 30_000]
    runs = boss("/funding-runs/query", month="2026-12").json()
    assert runs["count"] == 1 and runs["funds"] == 10_000 and json.loads(runs["runs"])[0]["amount"] == 30_000
    assert other("/funding-runs/query").json()["count"] == 0

    # suspend and resume: a suspended employee is not funded; one who left cannot be suspended
    assert boss("/employees/suspend", employee_id=emp_c).json()["state"] == "paused"
    assert boss("/employees/suspend", employee_id=emp_c).json()["state"] == "paused"  # again: the same
    problem(
        boss("/funding-runs", "top-c", amount=1_000, employee_ids=json.dumps([emp_c])), 400, "ALLOWANCE_FUNDING_INVALID"
    )
    assert boss("/employees/query").json()["count"] == 2
    assert boss("/employees/query", state="all").json()["count"] == 3
    assert boss("/employees/resume", employee_id=emp_c).json()["state"] == "active"

    # another employer sees none of it and changes nothing
    assert other("/employees/query", state="all").json()["count"] == 0
    for path in ("/employees/leave", "/employees/suspend", "/employees/resume"):
        problem(other(path, employee_id=emp_a), 404, "EMPLOYEE_NOT_FOUND")
    problem(
        other("/funding-runs", "grab", amount=1_000, employee_ids=json.dumps([emp_a])), 400, "ALLOWANCE_FUNDING_INVALID"
    )
    assert _balances(client, c, [funds, *allowances, funds_account(w["other"])]) == [
        10_000,
        30_000,
        30_000,
        30_000,
        50_000,
    ]

    # removing an employee gives the allowance back to the employer; again answers the same
    r = boss("/employees/leave", employee_id=emp_b)
    assert r.status_code == 200 and r.json()["state"] == "left"
    assert boss("/employees/leave", employee_id=emp_b).json()["state"] == "left"
    problem(boss("/employees/suspend", employee_id=emp_b), 409, "EMPLOYEE_STATE_INVALID")
    assert _balances(client, c, [funds, allowances[1]]) == [40_000, 0]

    # readers: the reader's own key, a retry finds the first; a key made here is shown once
    seed, public = new_reader_key()
    problem(boss("/readers", label="南门闸机", kind="door", public_key=public), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(boss("/readers", "rdr-bad", label="南门闸机", kind="window"), 400, "VALIDATION_FAILED")
    problem(
        boss("/readers", "rdr-bad", label="南门闸机", kind="door", public_key="not-a-key"), 400, "READER_KEY_INVALID"
    )
    assert boss("/readers/query").json()["count"] == 0
    r = boss("/readers", "rdr-1", label="南门闸机", kind="door", public_key=public)
    assert r.status_code == 201 and r.json()["private_key"] == "", r.text
    door = r.json()["reader_id"]
    again = boss("/readers", "rdr-1", label="南门闸机", kind="door", public_key=public)
    assert again.status_code == 200 and again.json()["reader_id"] == door
    made = boss("/readers", "rdr-2", label="考勤机", kind="attendance")
    assert made.status_code == 201 and made.json()["private_key"]
    problem(other("/readers/disable", reader_id=made.json()["reader_id"]), 404, "READER_NOT_FOUND")
    assert boss("/readers/disable", reader_id=made.json()["reader_id"]).json()["state"] == "disabled"
    assert [r["state"] for r in json.loads(boss("/readers/query").json()["readers"])] == ["active", "disabled"]
    assert other("/readers/query").json()["count"] == 0

    # a lunch at the canteen (25.00 allowance + 5.00 wallet) and a tap at the door, then the reports
    me = login_by_sms(client, db_url, A, "phone-a")
    fund(client, A, 10_000)
    paid = client.post(
        "/v1/enterprise/payments",
        headers={**bearer(me), "Idempotency-Key": "lunch-1"},
        json={"payload": w["canteen_qr"], "amount": 3_000},
    )
    assert paid.status_code == 201 and paid.json()["allowance"]["amount"] == 2_500, paid.text
    token = client.post("/v1/me/nfc/tokens", headers={**bearer(me), "Idempotency-Key": "prov-a"}, json={"kind": "hce"})
    assert token.status_code == 201, token.text
    tapped = upload(client, door, seed, clock, [{"token_id": token.json()["token_id"], "at": bj(7, 8, 55)}])
    assert tapped.json()["accepted"] == 1, tapped.text

    problem(boss("/reports/spending", format="pdf"), 400, "ENTERPRISE_REPORT_INVALID")
    problem(boss("/reports/spending", month="2026-1"), 400, "MONTH_INVALID")
    spent = boss("/reports/spending", month="2026-12")
    assert spent.status_code == 200, spent.text
    assert (spent.json()["allowance_spent"], spent.json()["wallet_spent"], spent.json()["funds"]) == (
        2_500,
        500,
        40_000,
    )
    assert json.loads(spent.json()["days"]) == [{"day": "2026-12-07", "payments": 1, "allowance": 2_500, "wallet": 500}]
    line = next(e for e in json.loads(spent.json()["employees"]) if e["employee_id"] == emp_a)
    assert (line["funded_fen"], line["allowance_spent_fen"], line["balance_fen"]) == (30_000, 2_500, 27_500)
    sheet = boss("/reports/spending", month="2026-12", format="csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert sheet.headers["x-sha256"] == hashlib.sha256(sheet.content).hexdigest()
    digest = {"report": "spending", "month": "2026-12", "sha256": sheet.headers["x-sha256"]}
    assert sheet.headers["x-sign"] == sign_hmac(digest, w["apps"]["boss"][1].encode())
    rows = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["employee_id", "msisdn", "name", "funded_fen"]
    assert [emp_a, "+86" + A, "张三", "30000", "2500", "500", "1", "27500"] in rows
    present = boss("/reports/attendance", month="2026-12")
    lines = {a["employee_id"]: a for a in json.loads(present.json()["attendance"])}
    assert (lines[emp_a]["days"], lines[emp_a]["late_days"], lines[emp_a]["by_day"][0]["taps"]) == (1, 0, 1)
    sheet = boss("/reports/attendance", month="2026-12", format="csv")
    assert [emp_a, "+86" + A, "张三", "1", "0", "0.00"] in list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert other("/reports/spending", month="2026-12").json()["allowance_spent"] == 0
    assert json.loads(other("/reports/attendance", month="2026-12").json()["attendance"]) == []

    assert _balances(client, c, [funds, allowances[0], w["canteen_account"]]) == [40_000, 27_500, 3_000]
    assert client.portal.call(lambda: c.ledger.verify()).ok  # type: ignore[union-attr]

    # month end with the rule now "expire": a suspended employee's allowance goes back too
    assert boss("/rules", rules=json.dumps({**RULES, "month_end": "expire"})).status_code == 200
    assert boss("/employees/suspend", employee_id=emp_a).json()["state"] == "paused"
    clock.set(datetime(2027, 1, 1, 1, 0, tzinfo=UTC))
    closed = client.portal.call(lambda: c.enterprise.close_month(w["boss"], "2026-12"))  # type: ignore[union-attr]
    assert (closed.employees, closed.returned) == (2, 27_500 + 30_000)
    assert _balances(client, c, [funds, *allowances]) == [97_500, 0, 0, 0]
    assert client.portal.call(lambda: c.ledger.verify()).ok  # type: ignore[union-attr]


def test_the_employer_page_changes_rules_merchants_and_readers(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, c, _ = live
    w = client.portal.call(_setup, c)  # type: ignore[union-attr]
    client.portal.call(
        lambda: c.merchant_operators.create(
            w["boss"],
            "owner",
            PASSWORD,
            REFUND_PIN,  # type: ignore[union-attr]
            role="owner",
        )
    )
    assert sign_in(client, w["boss"]).status_code == 303
    page = client.get("/merchant/enterprise")
    assert page.status_code == 200 and 'data-testid="rules-form"' in page.text
    token = csrf(page.text)
    rules = lambda: client.portal.call(lambda: c.enterprise.employer(w["boss"])).rules  # type: ignore[union-attr]  # noqa: E731
    before = rules()

    bad = client.post(
        "/merchant/enterprise/rules",
        data={"csrf": token, "window_name_0": "lunch", "window_start_0": "13:00", "window_end_0": "11:00"},
    )
    assert bad.status_code == 400 and "ALLOWANCE_RULES_INVALID" in bad.text
    assert client.post("/merchant/enterprise/rules", data={"csrf": "forged", "per_meal": "1"}).status_code == 400
    assert rules() == before
    good = client.post(
        "/merchant/enterprise/rules",
        data={
            "csrf": token,
            "window_name_0": "lunch",
            "window_start_0": "11:00",
            "window_end_0": "13:30",
            "weekdays": ["1", "2", "3", "4", "5"],
            "per_meal": "25",
            "per_day": "40.00",
            "month_end": "rollover",
            "rollover_cap": "",
            "work_start": "08:30",
        },
    )
    assert good.status_code == 200 and 'data-testid="done"' in good.text, good.text
    now = rules()
    assert ([x.name for x in now.windows], now.weekdays, now.per_meal, now.per_day, now.month_end.value) == (
        ["lunch"],
        (1, 2, 3, 4, 5),
        2_500,
        4_000,
        "rollover",
    )
    assert 'value="25.00"' in good.text  # the form shows the rules as they are now

    named = client.post(
        "/merchant/enterprise/merchants", data={"csrf": token, "merchant_id": w["canteen"], "label": "canteen"}
    )
    assert named.status_code == 200 and w["canteen"] in named.text.split('data-testid="closed-loop"')[1]
    nowhere = client.post("/merchant/enterprise/merchants", data={"csrf": token, "merchant_id": "mch_nobody"})
    assert nowhere.status_code == 422 and "CLOSED_LOOP_MERCHANT_INVALID" in nowhere.text
    removed = client.post(
        "/merchant/enterprise/merchants", data={"csrf": token, "merchant_id": w["canteen"], "remove": "1"}
    )
    assert removed.status_code == 200
    assert client.portal.call(lambda: c.enterprise.closed_loop_merchants(w["boss"])) == []  # type: ignore[union-attr]

    made = client.post("/merchant/enterprise/readers", data={"csrf": token, "label": "南门闸机", "kind": "door"})
    assert made.status_code == 200 and 'data-testid="reader-key"' in made.text, made.text
    again = client.post("/merchant/enterprise/readers", data={"csrf": token, "label": "南门闸机", "kind": "door"})
    assert again.status_code == 200 and 'data-testid="reader-key"' not in again.text  # shown once, one reader
    readers = client.portal.call(lambda: c.enterprise.readers(w["boss"]))  # type: ignore[union-attr]
    assert [(r.label, r.kind, r.state) for r in readers] == [("南门闸机", "door", "active")]
    problem_page = client.post("/merchant/enterprise/readers", data={"csrf": token, "label": "x", "kind": "window"})
    assert problem_page.status_code == 400
    off = client.post("/merchant/enterprise/readers", data={"csrf": token, "disable": readers[0].id})
    assert off.status_code == 200 and "disabled" in off.text
    assert client.portal.call(lambda: c.enterprise.readers(w["boss"]))[0].state == "disabled"  # type: ignore[union-attr]
