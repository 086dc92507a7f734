"""A wallet's history on both databases, as every channel shows it: one line per payment
with its state (an order's hold and the posting that settled it are one line, never two of
the same amount) in the API, the mobile web, SMS "MX" and voice "recent" (the channels'
recent lines) and the CLI statement, which shows the newest N."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.bills.reference_data import shipped_billers
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from tests.conftest import BANK_SECRET, BILLER_SECRET, TELCO_SECRET
from tests.e2e.test_banking_api import CARD, ID_NUMBER, open_account, post
from tests.e2e.test_wallet_api import balance, bearer, login_by_sms, signed_up
from tests.e2e.test_web_wallet import sign_in

ME = "13800138000"
PIN = "739154"


@pytest.fixture
def world(db_url: str, bank: str, telcos: dict[str, str], billers_url: str) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank, bank_secret=BANK_SECRET,  # type: ignore[call-arg]
                        operator_billing_url=telcos["operator_billing"], aggregator_url=telcos["topup_aggregator"],
                        operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET,
                        billers_url=billers_url, billers_secret=BILLER_SECRET, partner_timeout_s=1.0,
                        bank_timeout_s=1.0)
    container = build(settings, clock=ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0)))
    with TestClient(create_app(settings, container)) as client:
        client.portal.call(lambda: container.bills.import_billers(shipped_billers(), actor="t", reason="t"))  # type: ignore[union-attr]
        yield client, container


def test_one_line_per_payment_everywhere(world: tuple[TestClient, Container], db_url: str, bank: str) -> None:
    client, container = world
    signed_up(client, db_url, ME)
    me = login_by_sms(client, db_url, ME, "a")
    open_account(bank)
    card = client.post("/v1/me/cards", headers=bearer(me), json={"card_number": CARD, "name": "张明",
                                                                  "id_number": ID_NUMBER}).json()["id"]
    assert client.put("/v1/me/pin", headers=bearer(me), json={"pin": PIN}).status_code == 204
    assert post(client, "/v1/cash-ins", me, "in-1", {"card_id": card, "amount": {"amount": 200_000}}).status_code == 201
    assert post(client, "/v1/cash-outs", me, "out-1", {"card_id": card, "amount": {"amount": 10_000},
                                                       "pin": PIN}).status_code == 201
    topup = post(client, "/v1/topups", me, "tu-1", {"msisdn": ME, "amount": {"amount": 10_000}})
    assert topup.status_code == 201, topup.text
    price = topup.json()["price"]["amount"]
    bill = post(client, "/v1/bill-payments", me, "bp-1", {"biller": "BUS_SH", "customer_id": "12345678",
                                                          "amount": {"amount": 5_000}})
    assert bill.status_code == 201, bill.text
    httpx.put(f"{bank}/sim/behaviour", json={"decline_rate": 1.0}).raise_for_status()
    assert post(client, "/v1/cash-ins", me, "in-2", {"card_id": card, "amount": {"amount": 100}}).status_code == 422
    httpx.put(f"{bank}/sim/behaviour", json={"processing_rate": 1.0, "settle_after_s": None}).raise_for_status()
    assert post(client, "/v1/cash-ins", me, "in-3", {"card_id": card, "amount": {"amount": 700}}).status_code == 202
    now = balance(client, me)
    assert now == 200_000 - 10_010 - price - 5_000  # the pending cash-in is not in the balance yet

    expected = [("cash_in", "in", 200_000, "succeeded"), ("cash_out", "out", 10_010, "succeeded"),
                ("topup", "out", price, "succeeded"), ("bill", "out", 5_000, "succeeded"),
                ("cash_in", "in", 100, "failed"), ("cash_in", "in", 700, "pending")]
    api = client.get("/v1/me/transactions?limit=100", headers=bearer(me)).json()["items"]
    assert [(e["kind"], e["direction"], e["amount"]["amount"], e["state"]) for e in api] == expected
    assert len({e["transfer_id"] for e in api}) == len(api)
    assert [e["pending"] for e in api] == [False] * 5 + [True]
    assert api[3]["balance_after"]["amount"] == now  # the bill's line: the balance after it was posted
    page = client.get("/v1/me/transactions?limit=4", headers=bearer(me)).json()  # lines, not postings, per page
    rest = client.get(f"/v1/me/transactions?after={page['next']}", headers=bearer(me)).json()
    assert [e["transfer_id"] for e in page["items"] + rest["items"]] == [e["transfer_id"] for e in api]
    assert [e["state"] for e in client.get("/v1/me/transactions?kind=cash_in", headers=bearer(me)).json()[
        "items"]] == ["succeeded", "failed", "pending"]

    # SMS "MX" and voice "recent" read the channels' recent lines: the newest first, with their state
    principal = client.portal.call(lambda: container.wallet.authenticate(me["access_token"]))  # type: ignore[union-attr]
    recent = client.portal.call(lambda: container.channel_actions.recent(principal, 5))  # type: ignore[union-attr]
    assert [(ln.kind, ln.amount, ln.state) for ln in recent] == [
        ("cash_in", 700, "pending"), ("cash_in", 100, "failed"), ("bill", -5_000, "succeeded"),
        ("topup", -price, "succeeded"), ("cash_out", -10_010, "succeeded")]
    # the kinds in the words of channels/words.py, with the state when it is not "succeeded"
    assert recent[0].words == ("银行卡充值（处理中）", "Cash-in (pending)")
    assert recent[2].words == ("生活缴费", "Bill payment")
    reply = client.portal.call(lambda: container.sms._history("in-1", principal, None))  # type: ignore[union-attr, arg-type]
    assert reply.params["rows"].count("缴费") == 1 and "银行卡充值（未成功，未扣款）" in reply.params["rows"]

    # the mobile web history
    sign_in(client, db_url, ME)
    page_html = client.get("/m/history").text
    assert page_html.count("/m/receipts/") == 6 and "处理中" in page_html and "未成功" in page_html

    # the CLI statement: the newest N, newest first, then the older ones
    env = {**os.environ, "MOBIPAY_DATABASE_URL": db_url, "MOBIPAY_LOG_LEVEL": "WARNING"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "statement", ME, *args], capture_output=True,
                              text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    newest = cli("--limit", "2").splitlines()
    assert [line.split()[3:] for line in newest[1:3]] == [["cash_in", "in", "7.00", f"{now / 100:.2f}", "pending"],
                                                          ["cash_in", "in", "1.00", f"{now / 100:.2f}", "failed"]]
    assert newest[3].startswith(f"more: mobipay statement {ME} --limit 2 --before ")
    older = cli("--limit", "10", "--before", newest[3].rsplit(" ", 1)[1]).splitlines()
    assert [line.split()[3] for line in older[1:]] == ["bill", "topup", "cash_out", "cash_in"]
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]
