"""The mobile web wallet over HTTP on both databases: sign-in by SMS code into a hardened
session cookie, transfers with their confirmation step, amounts typed in yuan parsed
strictly (bad input changes nothing), double submits paying once, CSRF, and ids of other
subscribers' receipts and requests refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from tests.e2e.test_wallet_api import ADMIN, fund, last_code, signed_up

ALICE, BOB, CAROL = "13800138000", "13900139000", "13700137000"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings)) as c:
        yield c


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, db_url: str, number: str) -> str:
    """Sign ``number`` in on the wallet pages; returns the CSRF token the signed-in pages use."""
    client.cookies.clear()
    token = csrf(client.get("/m/signin").text)
    sent = client.post("/m/otp", data={"csrf": token, "msisdn": number, "next": "/m"})
    assert sent.status_code == 200 and 'name="code"' in sent.text
    done = client.post("/m/signin", data={"csrf": token, "msisdn": number, "code": last_code(db_url), "next": "/m"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/m", done.text
    cookies = [v.lower() for k, v in done.headers.multi_items() if k == "set-cookie"]
    assert any(c.startswith("mp_wallet=") and "httponly" in c and "samesite=lax" in c for c in cookies)
    renewed = client.cookies["mp_csrf"]
    assert renewed != token  # sign-in renews the CSRF token (no fixation)
    return renewed


def balance(client: TestClient, number: str) -> int:
    r = client.get(f"/v1/ledger/accounts/wallet:%2B86{number}", headers=ADMIN)
    amount: int = r.json()["balance"]["amount"]
    return amount


def test_sign_in_transfer_and_strict_amounts(client: TestClient, db_url: str) -> None:
    assert client.get("/m", follow_redirects=False).headers["location"] == "/m/signin?next=/m"
    for number in (ALICE, BOB):
        signed_up(client, db_url, number)
    fund(client, ALICE, 50_000)
    token = sign_in(client, db_url, ALICE)
    home = client.get("/m")
    assert home.status_code == 200 and "¥500.00" in home.text and "138****8000" in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"

    confirm = client.post("/m/transfer/confirm", data={"csrf": token, "to": BOB, "amount": "12.5", "note": "午饭"})
    assert confirm.status_code == 200 and "139****9000" in confirm.text and "¥12.50" in confirm.text
    assert 'name="pin"' not in confirm.text  # under the password-free amount
    form = {"csrf": token, "to": BOB, "amount": hidden(confirm.text, "amount"), "note": "午饭",
            "key": hidden(confirm.text, "key")}
    first = client.post("/m/transfer", data=form, follow_redirects=False)
    again = client.post("/m/transfer", data=form, follow_redirects=False)  # a double submit
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert (balance(client, ALICE), balance(client, BOB)) == (50_000 - 1_250, 1_250)
    receipt = client.get(first.headers["location"])
    assert receipt.status_code == 200 and "-¥12.50" in receipt.text and "139****9000" in receipt.text

    for bad in ("1e3", "12.505", "-5", "0", "１２", "1,000", "", "12.", " .5"):
        for path in ("/m/transfer/confirm", "/m/transfer"):
            r = client.post(path, data={**form, "amount": bad, "key": f"k-{bad}"})
            assert r.status_code == 400 and "INVALID_AMOUNT" in r.text, (path, bad, r.text[:300])
    assert (balance(client, ALICE), balance(client, BOB)) == (50_000 - 1_250, 1_250)

    big = client.post("/m/transfer/confirm", data={"csrf": token, "to": BOB, "amount": "300"})
    assert 'name="pin"' in big.text
    refused = client.post("/m/transfer", data={**form, "amount": "300", "key": hidden(big.text, "key")})
    assert refused.status_code == 422 and "PIN_REQUIRED" in refused.text
    forged = client.post("/m/transfer", data={**form, "csrf": "forged", "key": "other"})
    assert forged.status_code == 400 and "reload" in forged.text
    assert (balance(client, ALICE), balance(client, BOB)) == (50_000 - 1_250, 1_250)

    history = client.get("/m/history?kind=p2p&direction=out")
    assert history.status_code == 200 and first.headers["location"] in history.text
    assert client.get("/m/history?kind=nope").status_code == 200  # a bad filter is a message, not a 500
    assert client.get("/m/history?after=abc").text.count("VALIDATION_FAILED") == 1

    out = client.post("/m/signout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/m", follow_redirects=False).status_code == 303


def test_other_subscribers_data_is_not_shown(client: TestClient, db_url: str) -> None:
    for number in (ALICE, BOB, CAROL):
        signed_up(client, db_url, number)
    fund(client, ALICE, 10_000)
    token = sign_in(client, db_url, ALICE)
    confirm = client.post("/m/transfer/confirm", data={"csrf": token, "to": BOB, "amount": "10"})
    paid = client.post("/m/transfer", data={"csrf": token, "to": BOB, "amount": "10",
                                            "key": hidden(confirm.text, "key")}, follow_redirects=False)
    receipt_url = paid.headers["location"]
    page = client.get("/m/requests")
    asked = client.post("/m/requests", data={"csrf": token, "payer": BOB, "amount": "5", "note": "书",
                                             "key": hidden(page.text, "key")}, follow_redirects=False)
    assert asked.status_code == 303

    token = sign_in(client, db_url, CAROL)  # neither payer nor payee
    r = client.get(receipt_url)
    assert r.status_code == 404 and "NOT_FOUND" in r.text and "-¥10.00" not in r.text
    assert client.get("/m/topups/tu_nope").status_code == 404
    assert client.get("/m/bills/payments/bp_nope").status_code == 404
    assert client.get("/m/bank-orders/bo_nope").status_code == 404
    request_id = _request_id(client, db_url)
    r = client.post(f"/m/requests/{request_id}/pay", data={"csrf": token})
    assert r.status_code == 404 and "NOT_FOUND" in r.text
    r = client.post(f"/m/requests/{request_id}/decline", data={"csrf": token})
    assert r.status_code == 404
    assert balance(client, CAROL) == 0

    token = sign_in(client, db_url, BOB)  # the payer: sees it, pays it once
    assert client.get(receipt_url).status_code == 200
    page = client.get("/m/requests")
    assert "138****8000" in page.text and "¥5.00" in page.text
    pay = client.post(f"/m/requests/{request_id}/pay", data={"csrf": token}, follow_redirects=False)
    assert pay.status_code == 303
    assert client.post(f"/m/requests/{request_id}/pay", data={"csrf": token}, follow_redirects=False
                       ).headers["location"] == pay.headers["location"]  # paid once
    assert balance(client, BOB) == 1_000 - 500
    assert client.post(f"/m/requests/{request_id}/decline", data={"csrf": token}).status_code == 409


def _request_id(client: TestClient, db_url: str) -> str:
    from sqlalchemy import text

    c = client.app.state.container  # type: ignore[attr-defined]

    async def read() -> str:
        async with c.db.begin() as conn:
            return str((await conn.execute(text("SELECT id FROM wallet_money_requests"))).scalar_one())

    return client.portal.call(read)  # type: ignore[union-attr]


def test_pin_and_sign_in_refusals(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, ALICE)
    token = sign_in(client, db_url, ALICE)
    assert "设置密码" in client.get("/m/pin").text
    differ = client.post("/m/pin", data={"csrf": token, "pin": "739154", "again": "739155"})
    assert differ.status_code == 400
    weak = client.post("/m/pin", data={"csrf": token, "pin": "123456", "again": "123456"})
    assert weak.status_code == 422 and "（WEAK_PIN）" in weak.text  # the code in words, Chinese by default
    ok = client.post("/m/pin", data={"csrf": token, "pin": "739154", "again": "739154"})
    assert ok.status_code == 200 and 'data-testid="done"' in ok.text
    wrong = client.post("/m/pin?lang=en", data={"csrf": token, "current": "111111", "pin": "739155",
                                                "again": "739155"})
    assert wrong.status_code == 422 and "PIN_INCORRECT" in wrong.text and "Wrong PIN" in wrong.text
    changed = client.post("/m/pin", data={"csrf": token, "current": "739154", "pin": "739155", "again": "739155"})
    assert changed.status_code == 200

    client.cookies.clear()
    token = csrf(client.get("/m/signin").text)
    client.post("/m/otp", data={"csrf": token, "msisdn": ALICE})
    bad = client.post("/m/signin", data={"csrf": token, "msisdn": ALICE, "code": "000000"}, follow_redirects=False)
    assert bad.status_code in (400, 401, 403, 422) and "mp_wallet=" not in bad.headers.get("set-cookie", "")
    evil = client.post("/m/signin", data={"csrf": token, "msisdn": ALICE, "code": last_code(db_url),
                                          "next": "//evil.example/x"}, follow_redirects=False)
    assert evil.headers["location"] == "/m"  # no open redirect after sign-in


def test_real_name_upgrade_by_card_cash_in_and_english(db_url: str, tmp_path: Path, bank: str) -> None:
    """Binding a card on the cards page verifies the name and ID at the bank (Tier II); a
    wrong ID is refused without echoing it; money comes in from the card once per form."""
    from tests.conftest import BANK_SECRET
    from tests.e2e.test_banking_api import CARD, ID_NUMBER, open_account

    settings = Settings(_env_file=None, database_url=db_url, merchant_key_file=tmp_path / "p.pem",  # type: ignore[call-arg]
                        bank_url=bank, bank_secret=BANK_SECRET, bank_timeout_s=1.0)
    open_account(bank)
    with TestClient(create_app(settings)) as client:
        signed_up(client, db_url, ALICE)
        token = sign_in(client, db_url, ALICE)
        wrong = client.post("/m/cards", data={"csrf": token, "name": "张明", "id_number": "440304199001010010",
                                              "card_number": CARD})
        assert wrong.status_code in (400, 422) and "440304199001010010" not in wrong.text
        assert CARD not in wrong.text  # identity and card numbers never come back in a page
        bound = client.post("/m/cards", data={"csrf": token, "name": "张明", "id_number": ID_NUMBER,
                                              "card_number": CARD}, follow_redirects=True)
        assert bound.status_code == 200 and CARD[-4:] in bound.text and CARD not in bound.text
        me = client.get(f"/v1/ledger/accounts/wallet:%2B86{ALICE}", headers=ADMIN).json()
        assert me["balance"]["amount"] == 0
        card_id = re.search(r'<option value="(card_[^"]+)"', bound.text)
        assert card_id, bound.text
        key = hidden(bound.text, "key")
        form = {"csrf": token, "direction": "in", "card_id": card_id.group(1), "amount": "120.50", "key": key}
        first = client.post("/m/cash", data=form, follow_redirects=True)
        again = client.post("/m/cash", data=form, follow_redirects=True)  # a double submit
        assert first.status_code == again.status_code == 200
        assert balance(client, ALICE) == 12_050  # once
        bad = client.post("/m/cash", data={**form, "key": "k2", "amount": "1e3"})
        assert bad.status_code == 400 and "INVALID_AMOUNT" in bad.text and balance(client, ALICE) == 12_050
        english = client.get("/m/cards?lang=en")
        assert english.status_code == 200 and '<html lang="en"' in english.text and "Card" in english.text
        assert "mp_lang=en" in english.headers["set-cookie"]
        assert '<html lang="en"' in client.get("/m").text  # remembered


def test_history_filters_and_names_kinds_in_words(client: TestClient, db_url: str) -> None:
    """The kind filter offers what the ledger records (a bill is ``bill``), in words, and
    the list and the receipt name each kind in words with the time in Beijing."""
    signed_up(client, db_url, ALICE)
    fund(client, ALICE, 10_000)
    paid = client.post("/v1/ledger/transfers", headers={**ADMIN, "Idempotency-Key": "a-bill"}, json={
        "code": "bill", "reference": "上海城投水务 12345678", "legs": [
            {"account": f"wallet:+86{ALICE}", "side": "debit", "amount": {"amount": 3_000}},
            {"account": "asset:bank:settlement", "side": "credit", "amount": {"amount": 3_000}}]})
    assert paid.status_code == 201, paid.text
    sign_in(client, db_url, ALICE)
    page = client.get("/m/history")
    assert '<option value="bill" >生活缴费</option>' in page.text and "bill_payment" not in page.text
    bills = client.get("/m/history?kind=bill")
    assert bills.status_code == 200 and "/m/receipts/a-bill" in bills.text and "生活缴费" in bills.text
    assert "VALIDATION_FAILED" not in bills.text and "fund-" not in bills.text
    cash = client.get("/m/history?kind=cash_in")
    assert "/m/receipts/fund-13800138000" in cash.text and "a-bill" not in cash.text
    listed = re.sub(r"<[^>]+>", " ", page.text)
    assert not re.search(r"(?<![\w:/.-])(bill|cash_in)(?![\w:/.-])", listed), listed
    receipt = client.get("/m/receipts/a-bill")
    assert '<td data-testid="kind">生活缴费</td>' in receipt.text and "UTC" not in receipt.text
    assert "北京时间" in receipt.text and "Beijing time" in client.get("/m/receipts/a-bill?lang=en").text
