"""Payment codes (付款码) and micropay over HTTP on both databases: a bound device is given its
secret, the applet SIMULATOR makes codes offline (with its own clock offset), a signed
terminal charges them. A code pays once (used twice, at two terminals at once), expires after
its window, wrong codes lock the device; above the password-free amount the order waits
(USERPAYING) for the PIN in the app while the till queries, then is cancelled (closed unpaid,
refunded once paid). Balances are asserted before and after every refusal. ManualClock only."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.instore.signature import sign, signing_string
from mobipay.instore.tables import paycode_devices
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings
from mobipay.simulators.paycode_device import PaycodeApplet
from tests.e2e.test_instore_qr_api import PIN, payer
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_merchants_api import _other_code
from tests.e2e.test_wallet_api import balance, bearer, login_by_sms

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, the first second of a 30 s step


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)  # the in-store rules are under test
        yield c


def container(client: TestClient) -> Container:
    found: Container = client.app.state.container  # type: ignore[attr-defined]
    return found


class Till:
    """A registered terminal of the shop's store, sending signed requests."""

    def __init__(self, shop: Shop, label: str = "POS-01") -> None:
        self.shop = shop
        self.id, self.seed = shop.register(label)

    def post(self, path: str, **body: object) -> Any:
        sent = json.dumps(body, ensure_ascii=False).encode()
        stamp, nonce = str(int(self.shop.clock.now().timestamp())), secrets.token_hex(12)
        signature = sign(self.seed, signing_string(self.id, "POST", path, stamp, nonce, sent))
        return self.shop.client.post(path, content=sent, headers={
            "Terminal-Id": self.id, "Timestamp": stamp, "Nonce": nonce, "Signature": signature,
            "Content-Type": "application/json"})

    def charge(self, out_trade_no: str, code: str, amount: int, subject: str = "便利店购物") -> Any:
        return self.post("/v1/terminal/micropay", out_trade_no=out_trade_no, auth_code=code, amount=amount,
                         subject=subject)

    def query(self, out_trade_no: str) -> Any:
        return self.post("/v1/terminal/micropay/query", out_trade_no=out_trade_no)

    def cancel(self, out_trade_no: str) -> Any:
        return self.post("/v1/terminal/micropay/cancel", out_trade_no=out_trade_no)

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int) -> Any:
        return self.post("/v1/terminal/micropay/refund", out_trade_no=out_trade_no, out_refund_no=out_refund_no,
                         refund_amount=amount)


def shop_balance(shop: Shop) -> int:
    state = shop.run(lambda: shop.c.ledger.account(f"liability:merchant:{shop.merchant_id}"))
    amount: int = state.balance
    return amount


def provision(client: TestClient, who: dict[str, str], key: str = "pc-1") -> Any:
    return client.post("/v1/instore/paycode/devices", headers={**bearer(who), "Idempotency-Key": key})


def applet(client: TestClient, clock: ManualClock, who: dict[str, str], key: str = "pc-1",
           drift: float = 0.0) -> PaycodeApplet:
    """The phone's applet provisioned now; its own clock runs ``drift`` seconds ahead of the platform's."""
    r = provision(client, who, key)
    assert r.status_code == 201, r.text
    return PaycodeApplet.provisioned(r.json(), clock=lambda: clock.now() + timedelta(seconds=drift))


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def test_provision_replay_list_reissue_revoke_and_sign_out(client: TestClient, db_url: str,
                                                            clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    phone = payer(client, db_url, "13900139000")
    by_pin = client.post("/v1/sessions", json={"msisdn": "13900139000", "pin": PIN, "device_id": "tablet"}).json()
    refused(provision(client, by_pin), 403, "PAYCODE_DEVICE_NOT_BOUND")  # the PIN alone binds no device
    refused(client.post("/v1/instore/paycode/devices", headers=bearer(phone)), 400, "IDEMPOTENCY_KEY_REQUIRED")

    first = provision(client, phone)
    assert first.status_code == 201, first.text
    made = first.json()
    secret = base64.b32decode(made["secret"])  # 20 bytes: 32 characters, no padding
    assert len(secret) == 20 and len(made["device_no"]) == 8 and made["device_no"].isdigit()
    assert (made["prefix"], made["algorithm"], made["digits"], made["period"]) == ("78", "TOTP-SHA1", 8, 30)
    assert made["server_time"] == int(START.timestamp()) and made["state"] == "active" and made["this_session"]
    again = provision(client, phone)  # a lost answer: the same device and secret again
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["device_id"], again.json()["secret"]) == (made["device_id"], made["secret"])

    async def stored() -> list[Any]:  # the secret is kept sealed: neither its bytes nor its base32 are there
        async def work(uow: Any) -> list[Any]:
            return list(await uow.conn.execute(select(paycode_devices)))

        return await shop.c.uow.run("rows", work)

    [row] = shop.run(stored)
    assert made["secret"] not in row.sealed_secret and secret not in base64.b64decode(row.sealed_secret)

    listed = client.get("/v1/instore/paycode/devices", headers=bearer(phone)).json()
    assert listed["server_time"] == int(START.timestamp())
    assert [(d["device_id"], d["state"]) for d in listed["devices"]] == [(made["device_id"], "active")]

    old = PaycodeApplet.provisioned(made, clock=clock.now)
    clock.advance(5)
    reissued = applet(client, clock, phone, "pc-2")  # the same session asks again: the old secret stops
    assert reissued.device_no != old.device_no
    before = balance(client, phone)
    refused(till.charge("T-1", old.code(), 1_000), 422, "PAYCODE_DEVICE_REVOKED")
    assert balance(client, phone) == before and shop_balance(shop) == 0
    assert till.charge("T-2", reissued.code(), 1_000).json()["state"] == "SUCCESS"
    assert balance(client, phone) == before - 1_000 and shop_balance(shop) == 1_000
    listed = client.get("/v1/instore/paycode/devices", headers=bearer(phone)).json()["devices"]
    assert [d["device_no"] for d in listed] == [reissued.device_no]

    clock.advance(30)
    device_id = listed[0]["device_id"]
    assert client.delete(f"/v1/instore/paycode/devices/{device_id}", headers=bearer(phone)).status_code == 204
    assert client.delete(f"/v1/instore/paycode/devices/{device_id}", headers=bearer(phone)).status_code == 204
    refused(client.delete("/v1/instore/paycode/devices/pcd_nope", headers=bearer(phone)), 404,
            "PAYCODE_DEVICE_NOT_FOUND")
    refused(till.charge("T-3", reissued.code(), 1_000), 422, "PAYCODE_DEVICE_REVOKED")
    assert balance(client, phone) == before - 1_000 and shop_balance(shop) == 1_000

    other = login_by_sms(client, db_url, "13900139000", "phone-2")  # a second phone of the wallet
    second = applet(client, clock, other, "pc-3")
    assert client.delete("/v1/sessions/current", headers=bearer(other)).status_code == 204  # signed out
    refused(till.charge("T-4", second.code(), 1_000), 422, "PAYCODE_DEVICE_REVOKED")
    assert balance(client, phone) == before - 1_000 and shop_balance(shop) == 1_000


def test_a_code_pays_once_and_retries_are_the_same_order(client: TestClient, db_url: str,
                                                         clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till, other_till = Till(shop), Till(shop, "POS-02")
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who, drift=200)  # the phone's clock is 200 s fast: the offset covers it
    code = phone.code()
    r = till.charge("S-1", code, 5_000)
    assert r.status_code == 200, r.text
    paid = r.json()
    assert (paid["state"], paid["amount"], paid["store_id"], paid["terminal_id"]) == ("SUCCESS", 5_000,
                                                                                       shop.store_id, till.id)
    assert paid["next_query_s"] is None and paid["paid_at"] is not None
    assert balance(client, who) == 95_000 and shop_balance(shop) == 5_000
    trade = shop.run(lambda: shop.c.merchants.trade(paid["trade_no"]))  # a merchant trade: settled T+1 as any
    assert (trade.state.value, trade.store_id, trade.out_trade_no, trade.payer_id) == (
        "TRADE_SUCCESS", shop.store_id, "S-1", trade.payer_id)

    refused(till.charge("S-2", code, 5_000), 409, "PAYCODE_USED")  # scanned again, another sale
    refused(other_till.charge("S-3", code, 5_000), 409, "PAYCODE_USED")  # at another till
    assert balance(client, who) == 95_000 and shop_balance(shop) == 5_000
    retry = till.charge("S-1", code, 5_000)  # the till's retry of the same sale
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["trade_no"] == paid["trade_no"] and retry.json()["state"] == "SUCCESS"
    refused(till.charge("S-1", code, 6_000), 409, "MICROPAY_AMOUNT_MISMATCH")
    clock.advance(30)
    refused(till.charge("S-1", phone.code(), 5_000), 409, "MICROPAY_CODE_MISMATCH")
    assert balance(client, who) == 95_000 and shop_balance(shop) == 5_000

    r = till.charge("S-4", phone.code(), 2_500)  # the next step's code pays
    assert r.status_code == 200 and r.json()["state"] == "SUCCESS", r.text
    assert balance(client, who) == 92_500 and shop_balance(shop) == 7_500
    refused(till.charge("S-1b", phone.code().replace("78", "25", 1), 100), 422, "PAYCODE_NOT_OURS")
    refused(till.charge("S-1c", phone.code()[:-1], 100), 400, "PAYCODE_MALFORMED")
    refused(till.charge("S-1d", "78" + ("00000000" if phone.device_no != "00000000" else "00000001") + "12345678", 100),
            422, "PAYCODE_DEVICE_UNKNOWN")
    refused(till.charge("S-1", phone.code(), 5_000), 409, "MICROPAY_CODE_MISMATCH")
    assert balance(client, who) == 92_500 and shop_balance(shop) == 7_500


def test_expired_and_wrong_codes_and_the_device_lock(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    shown = phone.code()  # made at a step's first second
    clock.advance(59)
    clock.advance(1)  # 60 s: past its window
    refused(till.charge("E-1", shown, 1_000), 422, "PAYCODE_EXPIRED")
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0

    good = phone.code()
    wrong = [good[:-1] + str((int(good[-1]) + n) % 10) for n in range(1, 6)]
    for n, bad in enumerate(wrong[:4]):
        assert refused(till.charge(f"W-{n}", bad, 1_000), 422, "PAYCODE_INVALID")["attempts_left"] == 4 - n
    refused(till.charge("W-4", wrong[4], 1_000), 423, "PAYCODE_DEVICE_LOCKED")  # the fifth in a row
    refused(till.charge("W-5", good, 1_000), 423, "PAYCODE_DEVICE_LOCKED")  # even the right one, now
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
    listed = client.get("/v1/instore/paycode/devices", headers=bearer(who)).json()["devices"]
    assert [d["state"] for d in listed] == ["locked"]

    fresh = applet(client, clock, who, "pc-2")  # the payer re-issues the code in the app
    clock.advance(1)
    code = fresh.code()
    assert till.charge("W-6", code[:-1] + str((int(code[-1]) + 1) % 10), 1_000).json()["attempts_left"] == 4
    assert till.charge("W-7", code, 1_000).json()["state"] == "SUCCESS"  # a right code resets the count
    assert balance(client, who) == 99_000 and shop_balance(shop) == 1_000


def test_the_same_code_at_two_terminals_at_once_pays_once(client: TestClient, db_url: str,
                                                          clock: ManualClock) -> None:
    shop = Shop(client, clock)
    tills = [Till(shop, f"POS-0{n}") for n in range(1, 5)]
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    c = container(client)
    terminals = [shop.run(lambda t=t: c.terminals.terminal(shop.merchant_id, t.id)) for t in tills]
    code = phone.code()

    async def race(numbers: list[str]) -> list[Any]:
        done: list[Any] = await asyncio.gather(*(
            c.micropay.micropay(t, out_trade_no=n, auth_code=code, amount=3_000, subject="同一个码")
            for t, n in zip(terminals, numbers, strict=True)), return_exceptions=True)
        return done

    outcomes = shop.run(lambda: race(["R-1", "R-2", "R-3", "R-4"]))
    paid = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(paid) == 1 and paid[0][0].state == "SUCCESS", outcomes
    assert {o.code for o in outcomes if isinstance(o, MobipayError)} == {"PAYCODE_USED"}, outcomes
    assert balance(client, who) == 97_000 and shop_balance(shop) == 3_000

    clock.advance(30)  # one sale sent by two tills at once (a retry racing the first try)
    code = phone.code()
    outcomes = shop.run(lambda: race(["Q-1", "Q-1", "Q-1", "Q-1"]))
    assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
    assert {o[0].trade_id for o in outcomes} == {outcomes[0][0].trade_id}
    assert sum(1 for o in outcomes if not o[1]) == 1  # one made it, the others are its replays
    assert balance(client, who) == 94_000 and shop_balance(shop) == 6_000


def test_userpaying_confirm_query_refund_and_cancel(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    r = till.charge("U-1", phone.code(), 30_000)  # above the password-free 200 CNY
    assert r.status_code == 202, r.text
    waiting = r.json()
    assert (waiting["state"], waiting["next_query_s"]) == ("USERPAYING", 3)
    assert waiting["expires_at"] == (START + timedelta(seconds=60)).isoformat().replace("+00:00", "Z") or \
        datetime.fromisoformat(waiting["expires_at"]) == START + timedelta(seconds=60)
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0

    [pending] = client.get("/v1/instore/micropay/pending", headers=bearer(who)).json()["orders"]
    assert (pending["order_id"], pending["amount"]["amount"], pending["merchant"]["name"],
            pending["store"]["id"]) == (waiting["order_id"], 30_000, "华新便利店", shop.store_id)
    clock.advance(3)
    assert till.query("U-1").json()["state"] == "USERPAYING"  # the till's schedule: every 3 s

    confirm = f"/v1/instore/micropay/{waiting['order_id']}/confirm"
    refused(client.post(confirm, headers={**bearer(who), "Idempotency-Key": "c-1"}, json={"pin": "000111"}), 422,
            "PIN_INCORRECT")
    refused(client.post(confirm, headers=bearer(who), json={"pin": PIN}), 400, "IDEMPOTENCY_KEY_REQUIRED")
    stranger = payer(client, db_url, "13700137000", 10_000)
    refused(client.post(confirm, headers={**bearer(stranger), "Idempotency-Key": "c-1"}, json={"pin": PIN}), 404,
            "MICROPAY_ORDER_NOT_FOUND")
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
    done = client.post(confirm, headers={**bearer(who), "Idempotency-Key": "c-2"}, json={"pin": PIN})
    assert done.status_code == 200 and done.json()["state"] == "SUCCESS", done.text
    assert client.post(confirm, headers={**bearer(who), "Idempotency-Key": "c-3"},
                       json={"pin": PIN}).json()["state"] == "SUCCESS"  # pressed twice: paid once
    assert balance(client, who) == 70_000 and shop_balance(shop) == 30_000
    clock.advance(3)
    assert till.query("U-1").json()["state"] == "SUCCESS"
    assert client.get("/v1/instore/micropay/pending", headers=bearer(who)).json()["orders"] == []
    refused(client.post(f"/v1/instore/micropay/{waiting['order_id']}/decline", headers=bearer(who)), 409,
            "MICROPAY_ORDER_PAID")

    part = till.refund("U-1", "RF-1", 10_000)
    assert part.status_code == 200, part.text
    assert (part.json()["state"], part.json()["refunded"], part.json()["refund_amount"]) == ("REFUND", 10_000, 10_000)
    again = till.refund("U-1", "RF-1", 10_000)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["refunded"] == 10_000
    refused(till.refund("U-1", "RF-1", 5_000), 409, "IDEMPOTENCY_CONFLICT")
    refused(till.refund("U-1", "RF-2", 25_000), 422, "REFUND_EXCEEDS_PAID")
    assert balance(client, who) == 80_000 and shop_balance(shop) == 20_000

    cancelled = till.cancel("U-1")  # paid: the cancel refunds what is left
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["action"], cancelled.json()["state"], cancelled.json()["refunded"]) == (
        "refund", "REFUND", 30_000)
    assert till.cancel("U-1").json()["refunded"] == 30_000  # again: nothing more
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0


def test_userpaying_cancelled_declined_expired(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)

    def waiting(number: str) -> dict[str, Any]:
        clock.advance(30)  # each sale with a new code
        r = till.charge(number, phone.code(), 25_000)
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body

    def confirm(order: dict[str, Any]) -> Any:
        return client.post(f"/v1/instore/micropay/{order['order_id']}/confirm",
                           headers={**bearer(who), "Idempotency-Key": order["order_id"]}, json={"pin": PIN})

    a = waiting("C-1")
    cancelled = till.cancel("C-1")  # the till gave up before the payer confirmed
    assert (cancelled.json()["action"], cancelled.json()["state"], cancelled.json()["close_reason"]) == (
        "close", "CLOSED", "cancelled")
    refused(confirm(a), 409, "MICROPAY_ORDER_CLOSED")
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
    trade = shop.run(lambda: shop.c.merchants.trade(a["trade_no"]))
    assert trade.state.value == "TRADE_CLOSED" and trade.paid_at is None

    b = waiting("C-2")
    declined = client.post(f"/v1/instore/micropay/{b['order_id']}/decline", headers=bearer(who))
    assert declined.json()["state"] == "CLOSED" and declined.json()["close_reason"] == "declined"
    assert till.query("C-2").json()["close_reason"] == "declined"
    refused(confirm(b), 409, "MICROPAY_ORDER_CLOSED")

    c = waiting("C-3")
    clock.advance(60)  # the till stopped querying; the window has passed
    refused(confirm(c), 409, "MICROPAY_ORDER_EXPIRED")
    q = till.query("C-3").json()
    assert (q["state"], q["close_reason"]) == ("CLOSED", "expired")

    waiting("C-4")
    clock.advance(61)
    assert shop.run(lambda: shop.c.micropay.expire_due()) == 1  # the worker's job: nothing stays USERPAYING
    assert shop.run(lambda: shop.c.micropay.expire_due()) == 0
    assert client.get("/v1/instore/micropay/pending", headers=bearer(who)).json()["orders"] == []
    assert till.query("C-4").json()["close_reason"] == "expired"
    refused(till.refund("C-4", "RF-1", 100), 409, "MICROPAY_NOT_PAID")
    refused(till.query("C-404"), 404, "MICROPAY_ORDER_NOT_FOUND")
    refused(till.cancel("C-404"), 404, "MICROPAY_ORDER_NOT_FOUND")
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0


def test_refused_payments_and_the_one_factor_limit(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    poor = payer(client, db_url, "13700137000", 1_000)
    phone = applet(client, clock, poor, "poor")
    refused(till.charge("P-1", phone.code(), 5_000), 422, "INSUFFICIENT_FUNDS")
    assert balance(client, poor) == 1_000 and shop_balance(shop) == 0
    failed = refused(till.charge("P-1", phone.code(), 5_000), 409, "MICROPAY_ORDER_FAILED")  # the till's retry
    assert failed["error_code"] == "INSUFFICIENT_FUNDS"
    q = till.query("P-1").json()
    assert (q["state"], q["error_code"]) == ("PAYERROR", "INSUFFICIENT_FUNDS")
    assert till.cancel("P-1").json()["action"] == "close"
    assert balance(client, poor) == 1_000 and shop_balance(shop) == 0

    who = payer(client, db_url, "13900139000", 1_000_000)
    rich = applet(client, clock, who)
    for n in range(5):  # 5 x 190 CNY password-free: one factor, 950 of the 1,000 CNY a day (PBoC 2017/296)
        clock.advance(30)
        assert till.charge(f"L-{n}", rich.code(), 19_000).json()["state"] == "SUCCESS"
    clock.advance(30)
    over = till.charge("L-5", rich.code(), 19_000)  # past 1,000 CNY with one factor: the PIN is asked instead
    assert over.status_code == 202 and over.json()["state"] == "USERPAYING", over.text
    assert balance(client, who) == 1_000_000 - 95_000
    done = client.post(f"/v1/instore/micropay/{over.json()['order_id']}/confirm",
                       headers={**bearer(who), "Idempotency-Key": "k"}, json={"pin": PIN})
    assert done.json()["state"] == "SUCCESS", done.text  # the PIN on a bound device: two factors, 5,000 CNY
    assert balance(client, who) == 1_000_000 - 114_000 and shop_balance(shop) == 114_000


def test_terminal_requests_are_signed_and_bodies_checked(client: TestClient, db_url: str,
                                                         clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    unsigned = client.post("/v1/terminal/micropay", json={"out_trade_no": "X-1", "auth_code": phone.code(),
                                                          "amount": 100, "subject": "x"})
    refused(unsigned, 401, "TERMINAL_NOT_SIGNED")
    refused(till.post("/v1/terminal/micropay", out_trade_no="X-1", auth_code=phone.code(), amount=1.5,
                      subject="x"), 400, "INVALID_AMOUNT")
    refused(till.refund("X-1", "cancel", 100), 400, "VALIDATION_FAILED")
    made = shop.api("/v1/merchant/trades", out_trade_no="API-1", total_amount=100, subject="x")
    assert made.status_code == 201, made.text
    refused(till.charge("API-1", phone.code(), 100), 409, "TRADE_EXISTS")  # the merchant's own number for a trade
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
    assert till.charge("X-1", phone.code(), 100).json()["state"] == "SUCCESS"  # the code was not spent
    other = Till(Shop(client, clock, credit_code=_other_code(), name="另一家店"))
    refused(other.query("X-1"), 404, "MICROPAY_ORDER_NOT_FOUND")  # another merchant's order looks like none
    refused(other.cancel("X-1"), 404, "MICROPAY_ORDER_NOT_FOUND")
    refused(other.refund("X-1", "RF-1", 100), 404, "MICROPAY_ORDER_NOT_FOUND")
    assert balance(client, who) == 99_900 and shop_balance(shop) == 100
    elsewhere = Till(shop, "POS-09")  # any till of the same merchant follows the order
    assert elsewhere.refund("X-1", "RF-1", 100).json()["state"] == "REFUND"
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
