"""Merchant-presented QR codes over HTTP on both databases: the merchant's static (store) and
dynamic (trade) codes, the subscriber's scan and pay, retries paying once, every refusal
moving nothing, and the daily limits of PBoC notice 2017/296 (static codes across shops,
dynamic codes with one and two factors, concurrent payments). A ManualClock drives the days."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.instore.model import Initiation, encode, parse
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.merchants.model import MerchantState, credit_code_check_char
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

PIN = "739154"
PROMPTPAY = "00020101021129370016A000000677010111011300669245317755802TH54076000.00530376463049B3B"
START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, operators="rev:merchant_review;risk:risk",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)  # the QR limits are under test here
        yield c


class Shop:
    """A merchant with an HMAC app, calling the signed merchant API."""

    def __init__(self, client: TestClient, clock: ManualClock, name: str, serial: int) -> None:
        self.client, self.clock = client, clock
        base = f"91110105MA0{serial:06d}"
        answer = client.post("/v1/merchant-applications", json={
            "name": name, "credit_code": base + credit_code_check_char(base), "legal_person": "刘强",
            "contact_msisdn": "13800138000", "mcc": "5411", "website": "", "settlement_account": "6222020000111122"})
        assert answer.status_code == 201 and answer.json()["state"] == "approved", answer.text
        self.id: str = answer.json()["id"]
        self.app_id, key = call(client, lambda s: s.create_app(self.id, "HMAC"))
        self.key = key.encode()

    def _signed(self, params: dict[str, object]) -> dict[str, str]:
        body = {"app_id": self.app_id, "timestamp": str(int(self.clock.now().timestamp())),
                "nonce": secrets.token_hex(8), "sign_type": "HMAC", **{k: str(v) for k, v in params.items()}}
        body["sign"] = sign_hmac(body, self.key)
        return body

    def post(self, path: str, **params: object) -> Any:
        return self.client.post(path, json=self._signed(params))

    def get(self, path: str, **params: object) -> Any:
        return self.client.get(path, params=self._signed(params))

    def store(self, name: str, city: str) -> str:
        r = self.post("/v1/merchant/stores", name=name, address="南京东路 1 号", city=city)
        assert r.status_code == 201 and r.json()["city"] == city, r.text
        store_id: str = r.json()["store_id"]
        return store_id

    def store_code(self, store_id: str) -> str:
        r = self.get("/v1/merchant/store-qr", store_id=store_id, format="text")
        assert r.status_code == 200, r.text
        assert r.json()["sign"] == sign_hmac({k: v for k, v in r.json().items() if k != "sign"}, self.key)
        payload: str = r.json()["emv_qr"]
        return payload

    def trade(self, out_trade_no: str, amount: int, store_id: str | None = None, **extra: object) -> dict[str, Any]:
        params: dict[str, object] = {"out_trade_no": out_trade_no, "total_amount": amount, "subject": "日用品", **extra}
        if store_id:
            params["store_id"] = store_id
        r = self.post("/v1/merchant/trades", **params)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def balance(self) -> int:
        ledger = self.client.app.state.container.ledger  # type: ignore[attr-defined]
        state = self.client.portal.call(ledger.account, f"liability:merchant:{self.id}")  # type: ignore[union-attr]
        amount: int = state.balance
        return amount


def call(client: TestClient, use: Any) -> Any:
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    return client.portal.call(lambda: use(service))  # type: ignore[union-attr]


def payer(client: TestClient, db_url: str, number: str, amount: int = 1_000_000, *, pin: bool = True,
          device: str = "phone") -> dict[str, str]:
    signed_up(client, db_url, number)
    tokens = login_by_sms(client, db_url, number, device)
    if pin:
        assert client.put("/v1/me/pin", headers=bearer(tokens), json={"pin": PIN}).status_code == 204
    fund(client, number, amount)
    return tokens


def scan(client: TestClient, who: dict[str, str], payload: str) -> Any:
    return client.post("/v1/instore/scans", headers=bearer(who), json={"payload": payload})


def pay(client: TestClient, who: dict[str, str], payload: str, key: str | None, **body: object) -> Any:
    headers = {**bearer(who), **({"Idempotency-Key": key} if key else {})}
    return client.post("/v1/instore/payments", headers=headers, json={"payload": payload, **body})


def test_scan_and_pay_a_dynamic_and_a_static_code(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 1)
    store = shop.store("南京路店", "上海")
    created = shop.trade("HX-1", 8_800, store)
    code = parse(created["emv_qr"])  # the precreate-style answer carries the dynamic code
    assert (code.initiation, code.amount, code.merchant_id, code.store_id) == (Initiation.DYNAMIC, 8_800, shop.id,
                                                                                store)
    assert code.city == "SHANGHAI" and code.local is not None and code.local.name == "华新便利店"
    buyer = payer(client, db_url, "13900139000")

    seen = scan(client, buyer, created["emv_qr"])
    assert seen.status_code == 200, seen.text
    s = seen.json()
    assert (s["kind"], s["merchant"]["name"], s["store"]["name"], s["city"], s["amount"]["amount"]) == (
        "dynamic", "华新便利店", "南京路店", "上海", 8_800)
    assert s["trade_id"] == created["trade_no"]
    paid = pay(client, buyer, created["emv_qr"], "k-1", scan_id=s["scan_id"])
    assert paid.status_code == 201 and paid.json()["state"] == "TRADE_SUCCESS", paid.text
    again = pay(client, buyer, created["emv_qr"], "k-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert pay(client, buyer, created["emv_qr"], "k-other").status_code == 200  # the trade is the key: paid once
    assert balance(client, buyer) == 1_000_000 - 8_800 and shop.balance() == 8_800
    assert shop.post("/v1/merchant/trades/query", out_trade_no="HX-1").json()["trade_status"] == "TRADE_SUCCESS"

    static = shop.store_code(store)
    qr = parse(static)
    assert (qr.initiation, qr.amount, qr.store_id, qr.name) == (Initiation.STATIC, None, store,
                                                                f"MOBIPAY {shop.id[-8:].upper()}")
    s = scan(client, buyer, static).json()
    assert (s["kind"], s["amount"], s["store"]["id"], s["city"], s["trade_id"]) == ("static", None, store, "上海",
                                                                                   None)
    assert pay(client, buyer, static, "s-1").json()["code"] == "QR_AMOUNT_MISSING"
    assert pay(client, buyer, static, None, amount=1_234).json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    first = pay(client, buyer, static, "s-1", amount=1_234, scan_id=s["scan_id"])
    assert first.status_code == 201 and first.json()["paid"]["amount"] == 1_234, first.text
    retry = pay(client, buyer, static, "s-1", amount=1_234)
    assert retry.status_code == 200 and retry.json()["trade_id"] == first.json()["trade_id"]
    assert pay(client, buyer, static, "s-1", amount=999).json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert pay(client, buyer, static, "s-1", amount=1_234, scan_id="scn_other").json()["code"] == "QR_SCAN_MISMATCH"
    assert balance(client, buyer) == 1_000_000 - 8_800 - 1_234 and shop.balance() == 8_800 + 1_234

    other = shop.trade("HX-2", 500, store)
    fixed = pay(client, buyer, other["emv_qr"], "k-2", amount=400)
    assert fixed.status_code == 422 and fixed.json()["code"] == "QR_AMOUNT_FIXED"
    assert balance(client, buyer) == 1_000_000 - 8_800 - 1_234 and shop.balance() == 8_800 + 1_234


def test_every_refusal_moves_nothing(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "Starbucks 星巴克", 2)
    store = shop.store("国贸店", "北京")
    buyer = payer(client, db_url, "13900139000", 100_000)
    other = payer(client, db_url, "13700137000", 100_000)

    def refused(who: dict[str, str], payload: str, code: str, status: int, **body: object) -> None:
        for r in (scan(client, who, payload), pay(client, who, payload, secrets.token_hex(8), **body)):
            assert (r.status_code, r.json()["code"]) == (status, code), r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        assert balance(client, buyer) == 100_000 - spent[0] and balance(client, other) == 100_000
        assert shop.balance() == spent[0]

    spent = [0]
    static = shop.store_code(store)
    assert parse(static).name == "STARBUCKS" and parse(static).city == "BEIJING"
    refused(buyer, PROMPTPAY, "QR_NOT_OURS", 422, amount=100)
    damaged = static.replace("BEIJING", "BEIJINH")  # a scuffed module: the CRC no longer matches
    refused(buyer, damaged, "QR_BAD_CRC", 400, amount=100)
    refused(buyer, static[:40], "QR_BAD_LENGTH", 400, amount=100)
    ghost_store = encode(replace(parse(static), store_id="sto_0000000000000000000000000000dead"))
    refused(buyer, ghost_store, "QR_STORE_NOT_FOUND", 404, amount=100)
    ghost_shop = encode(replace(parse(static), merchant_id="mch_0000000000000000000000000000dead"))
    refused(buyer, ghost_shop, "QR_MERCHANT_UNKNOWN", 404, amount=100)

    created = shop.trade("SB-1", 3_000, store, expire_minutes=1)
    tampered = encode(replace(parse(created["emv_qr"]), amount=1))  # a new CRC, but not the order's amount
    refused(buyer, tampered, "QR_TRADE_NOT_FOUND", 404)
    clock.advance(61)
    refused(buyer, created["emv_qr"], "QR_TRADE_EXPIRED", 409)
    closing = shop.trade("SB-2", 3_000, store)
    assert shop.post("/v1/merchant/trades/close", out_trade_no="SB-2").json()["trade_status"] == "TRADE_CLOSED"
    refused(buyer, closing["emv_qr"], "QR_TRADE_CLOSED", 409)
    sold = shop.trade("SB-3", 3_000, store)
    assert pay(client, buyer, sold["emv_qr"], "b-1").status_code == 201
    spent[0] = 3_000
    refused(other, sold["emv_qr"], "QR_TRADE_PAID", 409)

    call(client, lambda s: s.review(shop.id, MerchantState.SUSPENDED, actor="risk", reason="test"))
    refused(buyer, static, "QR_MERCHANT_NOT_ACTIVE", 422, amount=100)
    late = shop.post("/v1/merchant/trades", out_trade_no="SB-4", total_amount=100, subject="x")
    assert late.json()["code"] == "MERCHANT_NOT_ACTIVE"


def test_static_codes_500_a_day_across_shops(client: TestClient, db_url: str, clock: ManualClock) -> None:
    a, b = Shop(client, clock, "华新便利店", 3), Shop(client, clock, "全家 FamilyMart", 4)
    code_a, code_b = a.store_code(a.store("一店", "上海")), b.store_code(b.store("二店", "杭州"))
    buyer = payer(client, db_url, "13900139000")
    assert pay(client, buyer, code_a, "1", amount=30_000, pin=PIN).status_code == 201
    over = pay(client, buyer, code_b, "2", amount=25_000, pin=PIN)
    assert over.status_code == 422 and over.json()["code"] == "QR_STATIC_DAILY_LIMIT", over.text
    assert (over.json()["limit"], over.json()["left"], over.json()["limit_fen"]) == ("static", 20_000, 50_000)
    assert balance(client, buyer) == 1_000_000 - 30_000 and b.balance() == 0  # nothing moved
    assert pay(client, buyer, code_b, "3", amount=20_000).status_code == 201  # exactly the rest
    assert pay(client, buyer, code_a, "4", amount=1).json()["left"] == 0
    dynamic = a.trade("A-1", 60_000)["emv_qr"]  # dynamic codes have their own limit
    assert pay(client, buyer, dynamic, "5", pin=PIN).status_code == 201
    assert balance(client, buyer) == 1_000_000 - 110_000 and a.balance() == 90_000 and b.balance() == 20_000

    clock.set(datetime(2026, 6, 1, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Beijing: the same day
    buyer = login_by_sms(client, db_url, "13900139000", "phone")  # (the access token lasts 15 minutes)
    assert pay(client, buyer, code_a, "6", amount=1).json()["code"] == "QR_STATIC_DAILY_LIMIT"
    clock.set(datetime(2026, 6, 1, 16, 0, tzinfo=UTC))  # midnight in Beijing (16:00 UTC): a new day
    buyer = login_by_sms(client, db_url, "13900139000", "phone")
    assert pay(client, buyer, code_a, "7", amount=50_000, pin=PIN).status_code == 201


def test_dynamic_codes_with_one_and_two_factors(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 5)
    store = shop.store("一店", "上海")
    strong = payer(client, db_url, "13900139000")  # signed in by SMS code: the PIN makes two factors
    assert pay(client, strong, shop.trade("S-1", 300_000, store)["emv_qr"], "1", pin=PIN).status_code == 201
    assert pay(client, strong, shop.trade("S-2", 200_000, store)["emv_qr"], "2", pin=PIN).status_code == 201
    over = pay(client, strong, shop.trade("S-3", 1, store)["emv_qr"], "3", pin=PIN)
    assert over.json()["code"] == "QR_DYNAMIC_DAILY_LIMIT", over.text
    assert (over.json()["limit"], over.json()["left"]) == ("dynamic_two_factor", 0)
    assert balance(client, strong) == 1_000_000 - 500_000

    weak = payer(client, db_url, "13700137000")  # the same wallet signed in with the PIN on a tablet: one factor
    by_pin = client.post("/v1/sessions", json={"msisdn": "13700137000", "pin": PIN, "device_id": "tablet"}).json()
    assert pay(client, by_pin, shop.trade("W-1", 80_000, store)["emv_qr"], "1", pin=PIN).status_code == 201
    small = pay(client, weak, shop.trade("W-2", 15_000, store)["emv_qr"], "2")  # password-free: the device alone
    assert small.status_code == 201, small.text
    refused = pay(client, by_pin, shop.trade("W-3", 10_000, store)["emv_qr"], "3", pin=PIN)
    assert refused.json()["code"] == "QR_DYNAMIC_DAILY_LIMIT", refused.text
    assert (refused.json()["limit"], refused.json()["left"], refused.json()["limit_fen"]) == ("dynamic", 5_000,
                                                                                               100_000)
    assert balance(client, weak) == 1_000_000 - 95_000
    wrong = pay(client, weak, shop.trade("W-4", 10_000, store)["emv_qr"], "4", pin="000111")
    assert wrong.json()["code"] == "PIN_INCORRECT" and balance(client, weak) == 1_000_000 - 95_000
    two = pay(client, weak, shop.trade("W-5", 10_000, store)["emv_qr"], "5", pin=PIN)  # PIN + bound device
    assert two.status_code == 201, two.text
    assert balance(client, weak) == 1_000_000 - 105_000 and shop.balance() == 605_000


def test_concurrent_payments_never_pass_the_limit(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 6)
    static = shop.store_code(shop.store("一店", "上海"))
    buyer = payer(client, db_url, "13900139000")
    container = client.app.state.container  # type: ignore[attr-defined]

    async def race() -> list[object]:
        me = await container.wallet.authenticate(buyer["access_token"])
        done: list[object] = await asyncio.gather(*(
            container.instore.pay(me, static, idempotency_key=f"c-{i}", amount=15_000) for i in range(6)),
            return_exceptions=True)
        return done

    outcomes = client.portal.call(race)  # type: ignore[union-attr]
    refused = [o for o in outcomes if isinstance(o, MobipayError)]
    assert len(refused) == 3 and {o.code for o in refused} == {"QR_STATIC_DAILY_LIMIT"}, outcomes
    assert balance(client, buyer) == 1_000_000 - 45_000 and shop.balance() == 45_000


def test_a_printed_store_code_read_by_a_camera_is_paid(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 7)
    store = shop.store("一店", "上海")
    png = shop.get("/v1/merchant/store-qr", store_id=store, format="png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert read.text == shop.store_code(store)
    svg = shop.get("/v1/merchant/store-qr", store_id=store, format="svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    created = shop.trade("T-1", 2_500, store)
    trade_png = shop.get("/v1/merchant/trade-qr", out_trade_no="T-1", format="png")
    [dynamic] = zxingcpp.read_barcodes(Image.open(io.BytesIO(trade_png.content)))
    assert dynamic.text == created["emv_qr"]
    assert shop.get("/v1/merchant/store-qr", store_id="sto_nope", format="png").json()["code"] == "MERCHANT_NOT_FOUND"
    unsigned = client.get("/v1/merchant/store-qr", params={"store_id": store})
    assert unsigned.status_code == 401

    buyer = payer(client, db_url, "13900139000", 10_000)
    assert pay(client, buyer, read.text, "p-1", amount=2_000).status_code == 201
    assert pay(client, buyer, dynamic.text, "p-2").status_code == 201
    assert balance(client, buyer) == 10_000 - 4_500 and shop.balance() == 4_500
