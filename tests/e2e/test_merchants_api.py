"""Merchants over HTTP on both databases: apply (review or rule), signed trade API with
RSA2 and HMAC, the buyer paying once, close, partial refunds never above what was paid,
replays and tampering refused; balances checked after each money step."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.merchants.signing import new_rsa_key, sign_hmac, sign_rsa2, verify_rsa2
from mobipay.platform.config import Settings
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

CODE = "91350100M000100Y43"
OPERATORS = "rev:merchant_review;risk:risk"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, operators=OPERATORS,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings)) as c:
        yield c


def application(**overrides: str) -> dict[str, str]:
    return {"name": "京东图书", "credit_code": CODE, "legal_person": "刘强", "contact_msisdn": "13800138000",
            "mcc": "5942", "website": "https://book.example", "settlement_account": "6222 0200 0011 1122 222",
            **overrides}


def test_onboarding(client: TestClient) -> None:
    auto = client.post("/v1/merchant-applications", json=application())
    assert auto.status_code == 201 and auto.json()["state"] == "approved", auto.text  # 5942 book stores: low risk
    again = client.post("/v1/merchant-applications", json=application())
    assert again.json()["code"] == "INVALID_MERCHANT_FIELD"
    bad = client.post("/v1/merchant-applications", json=application(credit_code="91350100M000100Y44"))
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CREDIT_CODE"
    risky = client.post("/v1/merchant-applications", json=application(credit_code=_other_code(), mcc="7995"))
    assert risky.json()["state"] == "submitted", risky.text  # gambling-like MCC: a person reviews it
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    more = client.portal.call(lambda: service.review(risky.json()["id"], _state("more_info"), actor="rev",  # type: ignore[union-attr]
                                                      reason="send the licence"))
    assert more.state.value == "more_info"
    from mobipay.kernel.errors import MobipayError

    with pytest.raises(MobipayError) as info:  # the risk team cannot approve: review is not its role
        client.portal.call(lambda: service.review(risky.json()["id"], _state("rejected"), actor="risk",  # type: ignore[union-attr]
                                                  reason="no"))
    assert info.value.code == "ROLE_REQUIRED"


def _other_code() -> str:
    from mobipay.merchants.model import credit_code_check_char

    return "91110105MA01234567"[:17] + credit_code_check_char("91110105MA01234567"[:17])


def _state(name: str) -> Any:
    from mobipay.merchants.model import MerchantState

    return MerchantState(name)


def test_trades_with_rsa2_and_hmac(client: TestClient, db_url: str) -> None:
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    private, public = new_rsa_key()
    rsa_app, _ = client.portal.call(lambda: service.create_app(merchant_id, "RSA2", public_key=public.decode()))  # type: ignore[union-attr]
    hmac_app, key = client.portal.call(lambda: service.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]
    platform_public = client.get("/v1/merchant/platform-key").text.encode()

    def call(path: str, app: str, sign: str = "RSA2", **params: object) -> Any:
        body: dict[str, Any] = {"app_id": app, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                                "sign_type": sign, **{k: str(v) for k, v in params.items()}}
        body["sign"] = sign_rsa2(body, private) if sign == "RSA2" else sign_hmac(body, key.encode())  # type: ignore[union-attr]
        r = client.post(path, json=body)
        if r.status_code < 300 and sign == "RSA2":
            answer = r.json()
            verify_rsa2(answer, answer["sign"], platform_public)  # our answers are signed too
        return r

    created = call("/v1/merchant/trades", rsa_app, out_trade_no="JD-1", total_amount=8_800, subject="图书")
    assert created.status_code == 201 and created.json()["trade_status"] == "WAIT_BUYER_PAY", created.text
    trade_id = created.json()["trade_no"]
    same = call("/v1/merchant/trades", rsa_app, out_trade_no="JD-1", total_amount=8_800, subject="图书")
    assert same.json()["trade_no"] == trade_id
    assert call("/v1/merchant/trades", rsa_app, out_trade_no="JD-1", total_amount=1, subject="图书").json()[
        "code"] == "TRADE_EXISTS"

    signed_up(client, db_url, "13900139000")
    buyer = login_by_sms(client, db_url, "13900139000", "b")
    fund(client, "13900139000", 10_000)
    shown = client.get(f"/v1/trades/{trade_id}", headers=bearer(buyer)).json()
    assert (shown["merchant"], shown["amount"]["amount"]) == ("京东图书", 8_800)
    paid = client.post(f"/v1/trades/{trade_id}/pay", headers=bearer(buyer), json={})
    assert paid.status_code == 200 and paid.json()["state"] == "TRADE_SUCCESS", paid.text
    assert client.post(f"/v1/trades/{trade_id}/pay", headers=bearer(buyer), json={}).status_code == 200
    assert balance(client, buyer) == 1_200  # paid once

    h = call("/v1/merchant/trades/query", hmac_app, "HMAC", out_trade_no="JD-1")
    assert h.json()["trade_status"] == "TRADE_SUCCESS" and h.json()["sign_type"] == "HMAC"
    assert h.json()["sign"] == sign_hmac({k: v for k, v in h.json().items() if k != "sign"}, key.encode())  # type: ignore[union-attr]
    r1 = call("/v1/merchant/refunds", rsa_app, out_trade_no="JD-1", out_request_no="R1", refund_amount=3_000)
    assert r1.status_code == 201 and r1.json()["refunded_amount"] == 3000, r1.text  # integer fen
    assert call("/v1/merchant/refunds", rsa_app, out_trade_no="JD-1", out_request_no="R1",
                refund_amount=3_000).status_code == 200  # the same request: nothing refunded twice
    too_much = call("/v1/merchant/refunds", rsa_app, out_trade_no="JD-1", out_request_no="R2", refund_amount=5_801)
    assert too_much.status_code == 422 and too_much.json()["code"] == "REFUND_EXCEEDS_PAID"
    rest = call("/v1/merchant/refunds", rsa_app, out_trade_no="JD-1", out_request_no="R3", refund_amount=5_800)
    assert rest.json()["trade_status"] == "TRADE_CLOSED"
    assert balance(client, buyer) == 10_000

    unpaid = call("/v1/merchant/trades", rsa_app, out_trade_no="JD-2", total_amount=100, subject="x").json()
    assert call("/v1/merchant/trades/close", rsa_app, out_trade_no="JD-2").json()["trade_status"] == "TRADE_CLOSED"
    late = client.post(f"/v1/trades/{unpaid['trade_no']}/pay", headers=bearer(buyer), json={})
    assert late.status_code == 409 and late.json()["code"] == "TRADE_STATE_INVALID"
    assert call("/v1/merchant/refunds", rsa_app, out_trade_no="JD-2", out_request_no="R9",
                refund_amount=1).json()["code"] == "TRADE_STATE_INVALID"

    # tampering, replay and stale requests are refused
    body = {"app_id": rsa_app, "timestamp": str(int(time.time())), "nonce": "fixed-nonce-1", "sign_type": "RSA2",
            "out_trade_no": "JD-1"}
    body["sign"] = sign_rsa2(body, private)
    assert client.post("/v1/merchant/trades/query", json=body).status_code == 200
    assert client.post("/v1/merchant/trades/query", json=body).json()["detail"].startswith("nonce was used")
    forged = {**body, "nonce": "fixed-nonce-2", "out_trade_no": "JD-2"}
    assert client.post("/v1/merchant/trades/query", json=forged).json()["code"] == "BAD_SIGNATURE"
    stale = {**body, "nonce": "fixed-nonce-3", "timestamp": str(int(time.time()) - 900)}
    stale["sign"] = sign_rsa2(stale, private)
    assert client.post("/v1/merchant/trades/query", json=stale).status_code == 401

    # key rotation: the old key still works during the overlap, the new one at once
    new_private, new_public = new_rsa_key()
    client.portal.call(lambda: service.rotate_key(rsa_app, new_public.decode()))  # type: ignore[union-attr]
    assert call("/v1/merchant/trades/query", rsa_app, out_trade_no="JD-1").status_code == 200  # old key
    private = new_private
    assert call("/v1/merchant/trades/query", rsa_app, out_trade_no="JD-1").status_code == 200  # new key


def test_notifications_follow_the_schedule(db_url: str, tmp_path: Path, merchant_site: str) -> None:
    import httpx

    from mobipay.app.bootstrap import build
    from mobipay.kernel.clock import ManualClock

    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem",
                        notify_allow_networks="127.0.0.1/32")  # the merchant site SIMULATOR is on loopback
    clock = ManualClock(time_now())
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
        app_id, key = client.portal.call(lambda: container.merchants.create_app(  # type: ignore[union-attr]
            merchant_id, "HMAC", notify_url=f"{merchant_site}/notify"))
        body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": "n-00000001",
                                "sign_type": "HMAC", "out_trade_no": "N-1", "total_amount": "500", "subject": "书"}
        body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
        trade_id = client.post("/v1/merchant/trades", json=body).json()["trade_no"]
        signed_up(client, db_url, "13900139000")
        buyer = login_by_sms(client, db_url, "13900139000", "b")
        fund(client, "13900139000", 1_000)
        httpx.put(f"{merchant_site}/sim/fail", json={"count": 2}).raise_for_status()
        assert client.post(f"/v1/trades/{trade_id}/pay", headers=bearer(buyer), json={}).status_code == 200

        notifier = container.merchant_notifier
        assert client.portal.call(notifier.deliver_due) == 1  # first try: the site answers 500
        assert client.portal.call(notifier.deliver_due) == 0  # next try only after 15 s
        clock.advance(15)
        assert client.portal.call(notifier.deliver_due) == 1  # second try fails too
        clock.advance(15)
        assert client.portal.call(notifier.deliver_due) == 1  # third: success
        clock.advance(3600)
        assert client.portal.call(notifier.deliver_due) == 0  # delivered: never again
        [got] = httpx.get(f"{merchant_site}/sim/received").json()
        assert (got["trade_status"], got["out_trade_no"], got["total_amount"]) == ("TRADE_SUCCESS", "N-1", 500)
        platform_pem = client.get("/v1/merchant/platform-key").text.encode()
        verify_rsa2(got, got["sign"], platform_pem)

        # The shop checks notifications as the SDK does: RSA2 against the platform key,
        # whatever the message names. A forged TRADE_SUCCESS marked HMAC with the empty key
        # (the SDK's old hole) is refused; the platform's own notification still verifies.
        import hashlib
        import hmac

        from mobipay.merchants.model import signing_string

        httpx.put(f"{merchant_site}/sim/platform-key", content=platform_pem).raise_for_status()
        forged = {**{k: v for k, v in got.items() if k != "sign"}, "out_trade_no": "N-2", "sign_type": "HMAC"}
        forged["sign"] = hmac.new(b"", signing_string(forged).encode(), hashlib.sha256).hexdigest()
        assert httpx.post(f"{merchant_site}/notify", json=forged).status_code == 400
        assert httpx.post(f"{merchant_site}/notify", json={**got, "sign_type": "HMAC"}).status_code == 400
        assert httpx.post(f"{merchant_site}/notify", json=got).text == "success"
        assert [n["out_trade_no"] for n in httpx.get(f"{merchant_site}/sim/refused").json()] == ["N-2", "N-1"]


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_settlement_t_plus_1(db_url: str, tmp_path: Path, bank: str) -> None:
    """Pay three trades, refund part of one, settle the day: fee allocated to the fen, net
    paid out through the bank; a merchant with settlement suspended is skipped until resumed."""
    import csv
    from datetime import UTC, datetime

    from mobipay.app.bootstrap import build
    from mobipay.kernel.clock import ManualClock
    from mobipay.ledger.chart import FEE_INCOME, SETTLEMENT_IN_TRANSIT
    from mobipay.merchants.model import MerchantState
    from tests.conftest import BANK_SECRET

    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank, bank_secret=BANK_SECRET,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports",
                        operators=OPERATORS)
    clock = ManualClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # 11:00 in Shanghai
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        m = container.merchants
        merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
        app_id, key = client.portal.call(lambda: m.create_app(merchant_id, "HMAC"))

        def call(path: str, **params: object) -> Any:
            body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(clock.now().timestamp())),
                                    "nonce": secrets.token_hex(8), "sign_type": "HMAC",
                                    **{k: str(v) for k, v in params.items()}}
            body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
            return client.post(path, json=body)

        signed_up(client, db_url, "13900139000")
        buyer = login_by_sms(client, db_url, "13900139000", "b")
        fund(client, "13900139000", 100_000)
        for n, amount in enumerate((3_333, 3_333, 3_334)):
            trade_id = call("/v1/merchant/trades", out_trade_no=f"S-{n}", total_amount=amount, subject="x").json()[
                "trade_no"]
            assert client.post(f"/v1/trades/{trade_id}/pay", headers=bearer(buyer), json={}).status_code == 200
        assert call("/v1/merchant/refunds", out_trade_no="S-0", out_request_no="R", refund_amount=1_000
                    ).status_code == 201
        statement = call("/v1/merchant/statements", day="2026-11-24")
        rows = list(csv.DictReader(statement.text.splitlines()))
        assert [r["type"] for r in rows] == ["payment", "payment", "payment", "refund"]

        assert client.portal.call(lambda: container.settlements.settle_due(datetime(2026, 11, 24).date())) == []
        clock.set(datetime(2026, 11, 24, 16, 5, tzinfo=UTC))  # 00:05 on the 25th in Shanghai: the 24th has ended
        [s] = client.portal.call(lambda: container.settlements.settle_due(datetime(2026, 11, 25).date()))  # T+1
        assert (s.gross, s.refunds, s.fee, s.net, s.state) == (10_000, 1_000, 60, 8_940, "paid")  # 0.6 %
        report = list(csv.reader(s.report.read_text().splitlines()))  # type: ignore[union-attr]
        assert sum(int(r[3]) for r in report[4:] if r[0] == "payment") == 60  # fees allocated, none lost
        again = client.portal.call(lambda: container.settlements.settle(datetime(2026, 11, 24).date()))
        assert again[0].state == "paid"  # settled once
        accounts = client.portal.call(lambda: container.ledger.accounts([FEE_INCOME, SETTLEMENT_IN_TRANSIT]))
        assert (accounts[FEE_INCOME].balance, accounts[SETTLEMENT_IN_TRANSIT].balance) == (60, 0)

        # a second day, with settlement suspended: skipped, then settled once resumed
        clock.set(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
        buyer = login_by_sms(client, db_url, "13900139000", "b2")  # a day later: a fresh session
        trade_id = call("/v1/merchant/trades", out_trade_no="S-9", total_amount=5_000, subject="x").json()["trade_no"]
        assert client.post(f"/v1/trades/{trade_id}/pay", headers=bearer(buyer), json={}).status_code == 200
        clock.set(datetime(2026, 11, 25, 16, 5, tzinfo=UTC))
        client.portal.call(lambda: m.review(merchant_id, MerchantState.SETTLEMENT_SUSPENDED, actor="risk",
                                            reason="SP red card"))
        [held] = client.portal.call(lambda: container.settlements.settle(datetime(2026, 11, 25).date()))
        assert held.state == "suspended"
        client.portal.call(lambda: m.review(merchant_id, MerchantState.APPROVED, actor="risk", reason="cleared"))
        [paid] = client.portal.call(lambda: container.settlements.settle(datetime(2026, 11, 25).date()))
        assert (paid.net, paid.state) == (5_000 - 30, "paid")
        assert client.portal.call(lambda: container.ledger.verify()).ok


def test_the_python_sdk(client: TestClient, db_url: str) -> None:
    """A shop using mobipay_sdk.merchant: every call signed, every answer verified."""
    from mobipay_sdk.merchant import MerchantClient, MobipayError

    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    private, public = new_rsa_key()
    app_id, _ = client.portal.call(lambda: service.create_app(merchant_id, "RSA2", public_key=public.decode()))  # type: ignore[union-attr]
    shop = MerchantClient("", app_id, private_key_pem=private,
                          platform_key_pem=client.get("/v1/merchant/platform-key").text.encode(), http=client)
    trade = shop.create_trade("SDK-1", 2_000, "书")
    assert trade["trade_status"] == "WAIT_BUYER_PAY" and trade["pay_url"].startswith("/v1/trades/")
    signed_up(client, db_url, "13900139000")
    buyer = login_by_sms(client, db_url, "13900139000", "b")
    fund(client, "13900139000", 5_000)
    assert client.post(f"{trade['pay_url']}/pay", headers=bearer(buyer), json={}).status_code == 200
    assert shop.query("SDK-1")["trade_status"] == "TRADE_SUCCESS"
    assert shop.refund("SDK-1", "r1", 500)["refund_amount"] == 500
    assert shop.refund_query("SDK-1", "r1")["refunded_amount"] == 500
    assert shop.cancel("SDK-1")["trade_status"] == "TRADE_CLOSED"  # refunds the rest
    assert balance(client, buyer) == 5_000
    with pytest.raises(MobipayError) as info:
        shop.refund("SDK-1", "r2", 1)
    assert info.value.code == "REFUND_EXCEEDS_PAID"
    unpaid = shop.create_trade("SDK-2", 100, "x")
    assert shop.cancel("SDK-2")["trade_status"] == "TRADE_CLOSED" and unpaid["trade_no"]
    # the shop rotates its key through the API, signed with the old one
    new_private, new_public = new_rsa_key()
    assert shop.call("/v1/merchant/keys", public_key=new_public.decode())["key_status"] == "rotated"
    rotated = MerchantClient("", app_id, private_key_pem=new_private,
                             platform_key_pem=client.get("/v1/merchant/platform-key").text.encode(), http=client)
    assert rotated.query("SDK-2")["trade_status"] == "TRADE_CLOSED"
    assert shop.query("SDK-2")["trade_status"] == "TRADE_CLOSED"  # the old key, within the overlap
    # by the platform's trade number; a store named on create; amounts as integer fen
    assert rotated.query(trade_no=unpaid["trade_no"])["out_trade_no"] == "SDK-2"
    store_id = rotated.call("/v1/merchant/stores", name="朝阳店")["store_id"]
    in_store = rotated.create_trade("SDK-3", 1_250, "书", store_id=store_id)
    assert in_store["total_amount"] == 1_250 and isinstance(in_store["refunded_amount"], int)
    with pytest.raises(MobipayError) as info:
        rotated.create_trade("SDK-4", 100, "x", store_id="sto_not_mine")
    assert info.value.code == "MERCHANT_NOT_FOUND"
    # the statements' CSV, its digest and signature checked; call() says where to go instead of crashing
    day = client.app.state.container.clock.now().date().isoformat()  # type: ignore[attr-defined]
    assert rotated.statement(day).startswith("type,trade_no,out_trade_no")
    with pytest.raises(MobipayError) as info:
        rotated.call("/v1/merchant/statements", day=day)
    assert info.value.code == "NOT_JSON" and "statement(day)" in str(info.value)
    # a signature refusal is titled for merchants, not as a missing bearer token
    forged = client.post("/v1/merchant/trades/query", json={"app_id": app_id, "out_trade_no": "SDK-2"})
    assert forged.status_code == 401 and "bearer" not in forged.json()["title"], forged.text


def test_categories_limits_and_stores(client: TestClient, db_url: str) -> None:
    """Fee, cycle and limits come from the category data; stores name where a trade was taken."""
    unknown = client.post("/v1/merchant-applications", json=application(mcc="1234"))
    assert unknown.json()["code"] == "INVALID_MERCHANT_FIELD"
    game = client.post("/v1/merchant-applications", json=application(mcc="5816")).json()  # digital games: high risk
    assert (game["state"], game["fee_bps"]) == ("submitted", 100)
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    client.portal.call(lambda: service.review(game["id"], _state("approved"), actor="rev", reason="licence ok"))  # type: ignore[union-attr]
    app_id, key = client.portal.call(lambda: service.create_app(game["id"], "HMAC"))  # type: ignore[union-attr]

    def call(path: str, **params: object) -> Any:
        body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                                "sign_type": "HMAC", **{k: str(v) for k, v in params.items()}}
        body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
        return client.post(path, json=body)

    store = call("/v1/merchant/stores", name="西单店", address="北京市西城区").json()["store_id"]
    assert call("/v1/merchant/trades", out_trade_no="G-1", total_amount=100_001, subject="点卡").json()["code"] == (
        "MERCHANT_LIMIT_EXCEEDED")  # 1,000 CNY a payment for digital goods
    assert call("/v1/merchant/trades", out_trade_no="G-2", total_amount=100, subject="点卡",
                store_id="sto_nope").json()["code"] == "MERCHANT_NOT_FOUND"
    signed_up(client, db_url, "13900139000")
    buyer = login_by_sms(client, db_url, "13900139000", "b")
    assert client.put("/v1/me/pin", headers=bearer(buyer), json={"pin": "739154"}).status_code == 204
    fund(client, "13900139000", 2_000_000)

    async def tier3() -> None:  # a verified big spender: the buyer's own limits stay out of the way
        from sqlalchemy import update

        from mobipay.wallet.tables import users

        async with client.app.state.container.db.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(update(users).where(users.c.msisdn == "+8613900139000").values(tier=3))

    client.portal.call(tier3)  # type: ignore[union-attr]
    for n in range(10):  # 10 × 1,000 CNY: the daily limit of 10,000 CNY
        t = call("/v1/merchant/trades", out_trade_no=f"G-{n + 10}", total_amount=100_000, subject="点卡",
                 store_id=store).json()
        r = client.post(f"/v1/trades/{t['trade_no']}/pay", headers=bearer(buyer), json={"pin": "739154"})
        assert r.status_code == 200, r.text
    over = call("/v1/merchant/trades", out_trade_no="G-99", total_amount=100, subject="点卡").json()
    r = client.post(f"/v1/trades/{over['trade_no']}/pay", headers=bearer(buyer), json={})
    assert r.status_code == 422 and r.json()["code"] == "MERCHANT_LIMIT_EXCEEDED"


def test_the_documented_vectors_are_accepted(db_url: str, tmp_path: Path) -> None:
    """Both vectors of docs/merchant-signatures.md, sent at the time they were signed, make
    the same trade: the JSON API's (fen) and the gateway's (yuan, sign_type signed)."""
    import json
    import re
    from datetime import UTC, datetime

    from mobipay.app.bootstrap import build
    from mobipay.kernel.clock import ManualClock
    from mobipay.merchants.model import App

    root = Path(__file__).resolve().parents[2]
    blocks = [b.strip() for b in re.findall(r"```(?:json)?\n(.*?)```",
                                            (root / "docs/merchant-signatures.md").read_text(encoding="utf-8"),
                                            flags=re.S)]
    vector1, vector1_rsa, vector2, vector2_rsa = json.loads(blocks[0]), blocks[3], json.loads(blocks[5]), blocks[7]
    settings = Settings(_env_file=None, database_url=db_url, operators=OPERATORS,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    clock = ManualClock(datetime(2026, 11, 25, 2, 30, 10, tzinfo=UTC))  # 10:30:10 Beijing time
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
        public = (root / "tests/data/merchant_test_key.pub.pem").read_text()
        m = container.merchants

        async def add_app() -> None:
            async def work(tx: Any) -> None:
                await m.store(tx).add_app(App("app_2026000000000001", merchant_id, "RSA2", public, None, "", tx.now))

            await m.uow.run("vector_app", work)

        client.portal.call(add_app)  # type: ignore[union-attr]
        made = client.post("/v1/merchant/trades", json={**vector1, "sign": vector1_rsa})
        assert made.status_code == 201 and made.json()["total_amount"] == 8800, made.text
        answer = client.post("/gateway.do", data={**vector2, "sign": vector2_rsa}).json()
        content = answer["alipay_trade_create_response"]
        assert (content["code"], content["trade_no"]) == ("10000", made.json()["trade_no"]), answer
        clock.advance(seconds=31 * 60)  # half an hour later the same request is too old
        late = client.post("/gateway.do", data={**vector2, "sign": vector2_rsa}).json()
        assert late["alipay_trade_create_response"]["sub_code"] == "isv.invalid-timestamp"
