"""The NFC wallet over HTTP on both databases, with the two far sides simulated: the phone's
applet (simulators/nfc_device.py) and a store's card reader with a keypad
(simulators/pos_terminal.py, every request signed with its Ed25519 key). The verification is
the platform's own. Online taps and every refusal (tampered cryptogram, replayed and
out-of-window ATC, exhausted and expired keys, suspended and denied tokens), with balances
asserted before and after; offline taps uploaded twice and out of order; a debt, the deny
list pushed to terminals, and its recovery at the next top-up; SMS GS and support's
suspension. A ManualClock drives time; nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.instore.tables import nfc_taps
from mobipay.kernel.clock import ManualClock
from mobipay.platform.audit import entries
from mobipay.platform.config import Settings
from mobipay.simulators.nfc_device import DeviceRefused, NfcDevice
from mobipay.simulators.pos_terminal import PosTerminal
from mobipay.wallet.service import WalletCredited
from tests.conftest import BANK_SECRET
from tests.e2e.test_banking_api import CARD, ID_NUMBER, open_account
from tests.e2e.test_instore_qr_api import payer
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_wallet_api import bearer, login_by_sms

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
NUMBER = "13700137000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", sms_console_file=tmp_path / "sms.log",
                        report_dir=tmp_path / "reports")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


class World:
    """A shop with a terminal, a payer with an NFC token on their phone."""

    def __init__(self, client: TestClient, clock: ManualClock, db_url: str, funds: int = 100_000) -> None:
        self.client, self.clock = client, clock
        self.c: Container = client.app.state.container  # type: ignore[attr-defined]
        self.shop = Shop(client, clock)
        terminal_id, seed = self.shop.register()
        self.pos = PosTerminal(client, terminal_id, seed, clock)
        self.db_url = db_url
        self.tokens = payer(client, db_url, NUMBER, funds, device="phone-1")
        self.logged_at = clock.now()
        r = self.app("POST", "/v1/me/nfc/tokens", {"kind": "hce"}, key="prov-1")
        assert r.status_code == 201, r.text
        self.device = NfcDevice.provisioned(r.json())
        self.token_id = self.device.token_id

    def app(self, method: str, path: str, body: Any = None, *, key: str | None = None,
            tokens: dict[str, str] | None = None) -> Any:
        if tokens is None and self.clock.now() - self.logged_at > timedelta(minutes=10):  # sign in again, same phone
            self.tokens = login_by_sms(self.client, self.db_url, NUMBER, "phone-1")
            self.logged_at = self.clock.now()
        headers = bearer(tokens or self.tokens) | ({"Idempotency-Key": key} if key else {})
        return self.client.request(method, path, json=body, headers=headers)

    def run(self, work: Any) -> Any:
        return self.client.portal.call(work)  # type: ignore[union-attr]

    def wallet(self) -> int:
        return int(self.run(lambda: self.c.ledger.account(f"wallet:+86{NUMBER}")).balance)

    def merchant(self) -> int:
        return int(self.run(lambda: self.c.ledger.account(f"liability:merchant:{self.shop.merchant_id}")).balance)

    def balances(self) -> tuple[int, int]:
        return self.wallet(), self.merchant()

    def tap_rows(self) -> list[Any]:
        async def work(uow: Any) -> list[Any]:
            return list(await uow.conn.execute(select(nfc_taps).order_by(nfc_taps.c.atc)))

        return self.run(lambda: self.c.uow.run("rows", work))  # type: ignore[no-any-return]

    def post_tap(self, tap: dict[str, Any], key: str) -> Any:
        return self.pos.request("POST", "/v1/terminal/nfc/taps", tap, idempotency_key=key)


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_provision_needs_a_bound_device(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = World(client, clock, db_url)
    listed = w.app("GET", "/v1/me/nfc/tokens").json()
    assert [(t["token_id"], t["kind"], t["state"], t["key"]["seq"], t["key"]["luk"]) for t in listed] == [
        (w.token_id, "hce", "active", 1, None)]  # the key itself only in the answer that issued it
    again = w.app("POST", "/v1/me/nfc/tokens", {"kind": "hce"}, key="prov-1")
    assert again.json()["token_id"] == w.token_id  # a retry: the same token
    pin_session = client.post("/v1/sessions", json={"msisdn": NUMBER, "pin": "739154", "device_id": "tablet"}).json()
    refused(w.app("POST", "/v1/me/nfc/tokens", {"kind": "sim_sticker"}, key="prov-2", tokens=pin_session), 403,
            "NFC_DEVICE_NOT_BOUND")
    refused(w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/keys", key="k2", tokens=pin_session), 403,
            "NFC_DEVICE_NOT_BOUND")
    other = login_by_sms(client, db_url, NUMBER, "phone-2")  # bound, but not the token's device
    refused(w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/keys", key="k2", tokens=other), 403,
            "NFC_DEVICE_NOT_BOUND")
    assert w.app("POST", "/v1/me/nfc/tokens", {"kind": "sim_sticker"}, key="prov-3", tokens=other).status_code == 201


def test_online_taps_and_every_refusal(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = World(client, clock, db_url)
    r = w.pos.online_tap(w.device, "23.72")
    assert r.status_code == 200 and r.json()["result"] == "accepted", r.text
    assert w.pos.display == "APPROVED" and w.balances() == (100_000 - 2372, 2372)
    trade = w.run(lambda: w.c.merchants.trade(r.json()["trade_id"]))
    assert (trade.amount, trade.payer_id is not None, trade.store_id) == (2372, True, w.shop.store_id)
    first = w.tap_rows()[0]
    assert (first.atc, first.state, first.mode) == (1, "paid", "online")
    before = w.balances()

    # the terminal retries its request (same Idempotency-Key): the same answer, paid once
    tap = w.pos.read(w.device, 1000)
    assert w.post_tap(tap, "retry-1").status_code == 200
    again = w.post_tap(tap, "retry-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert w.balances() == (before[0] - 1000, before[1] + 1000)
    before = w.balances()

    # replayed: the same cryptogram under a new request
    refused(w.post_tap(tap, "replay-1"), 409, "NFC_ATC_REPLAYED")
    # tampered: another amount than the cryptogram covers; another terminal's tap
    fresh = w.pos.read(w.device, 500)
    refused(w.post_tap({**fresh, "amount": 50}, "tamper-1"), 422, "NFC_CRYPTOGRAM_INVALID")
    refused(w.post_tap({**fresh, "cryptogram": "0" * 16}, "tamper-2"), 422, "NFC_CRYPTOGRAM_INVALID")
    refused(w.post_tap({**fresh, "key_seq": 9}, "tamper-3"), 422, "NFC_CRYPTOGRAM_INVALID")
    assert w.balances() == before and len(w.tap_rows()) == 2  # refusals change nothing
    w.device.atc = 10  # the device skipped counters (aborted taps): fine, within the window
    assert w.post_tap(w.pos.read(w.device, 500), "ok-2").status_code == 200  # ATC 11
    before = w.balances()
    # ATC out of window: decreasing (an unused counter below the highest seen) and a jump far ahead
    w.device.atc = 4  # a cloned or rolled-back counter
    refused(w.post_tap(w.pos.read(w.device, 100, force=True), "down-1"), 422, "NFC_ATC_OUT_OF_WINDOW")
    w.device.atc = 11 + 500
    refused(w.post_tap(w.pos.read(w.device, 100, force=True), "jump-1"), 422, "NFC_ATC_OUT_OF_WINDOW")
    assert w.balances() == before and len(w.tap_rows()) == 3
    w.device.atc = 20

    # above the password-free amount the phone must be unlocked (CDCVM in the cryptogram)
    big = w.c.wallet.limits.password_free + 100
    refused(w.post_tap(w.pos.read(w.device, big), "big-1"), 422, "NFC_CVM_REQUIRED")
    w.device.cdcvm = True
    assert w.post_tap(w.pos.read(w.device, big), "big-2").status_code == 200
    w.device.cdcvm = False
    assert w.balances() == (before[0] - big, before[1] + big)
    before = w.balances()

    # exhausted: the key's 10 taps are made (6 so far, counting the refused one the device spent locally)
    used = int(w.app("GET", "/v1/me/nfc/tokens").json()[0]["key"]["used_taps"])
    for i in range(10 - used):
        assert w.post_tap(w.pos.read(w.device, 100, force=True), f"fill-{i}").status_code == 200
    before = w.balances()
    refused(w.post_tap(w.pos.read(w.device, 100, force=True), "spent-1"), 422, "NFC_KEY_EXHAUSTED")
    w.device.keys[1].taps = 10
    with pytest.raises(DeviceRefused):  # the applet itself knows
        w.pos.read(w.device, 100)
    assert w.balances() == before
    # replenished: a new key pays; the old one is refused online
    key2 = w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/keys", key="k2")
    assert key2.status_code == 201 and key2.json()["seq"] == 2, key2.text
    w.device.load_key(key2.json())
    assert w.post_tap(w.pos.read(w.device, 300), "k2-1").status_code == 200
    old = w.device.keys.pop(2)
    refused(w.post_tap(w.pos.read(w.device, 300, force=True), "old-key"), 422, "NFC_KEY_EXPIRED")
    w.device.keys[2] = old
    before = w.balances()
    # expired: the key's 3 days are over
    clock.advance(3 * 86400 + 1)
    refused(w.post_tap(w.pos.read(w.device, 300, force=True), "late-1"), 422, "NFC_KEY_EXPIRED")
    assert w.balances() == before

    # a lost phone: suspended by the subscriber, refused at once; resumed
    w.device.load_key(w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/keys", key="k3").json())
    assert w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/suspend").json()["state"] == "suspended"
    refused(w.post_tap(w.pos.read(w.device, 300), "lost-1"), 403, "NFC_TOKEN_SUSPENDED")
    refused(w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/keys", key="k4"), 403, "NFC_TOKEN_SUSPENDED")
    assert w.balances() == before
    assert w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/resume").json()["state"] == "active"
    assert w.post_tap(w.pos.read(w.device, 300), "found-1").status_code == 200
    actions = [e["action"] for e in w.run(lambda: w.c.uow.run("a", lambda uow: entries(uow.conn, w.token_id)))]
    assert actions == ["instore.nfc_token.suspend", "instore.nfc_token.resume"]


def test_offline_upload_twice_and_out_of_order(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = World(client, clock, db_url)
    assert w.pos.offline_tap(w.device, "5") == "DECLINED DENY LIST TOO OLD"  # never fetched: no offline taps
    w.pos.refresh_deny_list()
    w.pos.online = False
    for typed in ("12.00", "3.50", "8.00"):
        assert w.pos.offline_tap(w.device, typed) == "APPROVED OFFLINE"
        clock.advance(60)
    assert w.pos.offline_tap(w.device, "250") == "DECLINED OFFLINE LIMIT: ONLINE ONLY"
    stored = list(w.pos.stored)
    assert [t["atc"] for t in stored] == [1, 2, 3] and w.balances() == (100_000, 0)
    # a terminal that lies about the limit: refused on upload, the others paid; out of order
    over = w.pos.read(w.device, 25_000)
    tampered = {**w.pos.read(w.device, 700), "amount": 70}
    w.pos.stored = [stored[2], over, stored[0], tampered, stored[1]]
    clock.advance(3600)
    r = w.pos.upload()
    assert r.status_code == 200, r.text
    got = [(x["atc"], x["result"], x["code"]) for x in r.json()["results"]]
    assert got == [(3, "accepted", ""), (4, "refused", "NFC_OFFLINE_LIMIT"), (1, "accepted", ""),
                   (5, "refused", "NFC_CRYPTOGRAM_INVALID"), (2, "accepted", "")]
    assert w.balances() == (100_000 - 2350, 2350) and w.pos.stored == []
    # uploaded again (a terminal that missed the answer), and again mixed with a new tap
    w.pos.stored = list(reversed(stored))
    again = w.pos.upload().json()
    assert [(x["atc"], x["result"], x["original"]) for x in again["results"]] == [
        (3, "duplicate", "accepted"), (2, "duplicate", "accepted"), (1, "duplicate", "accepted")]
    assert again["duplicate"] == 3 and w.balances() == (100_000 - 2350, 2350)
    newer = w.pos.read(w.device, 100)
    w.pos.stored = [stored[1], newer, newer]  # one tap twice in one upload
    mixed = w.pos.upload().json()["results"]
    assert [x["result"] for x in mixed] == ["duplicate", "accepted", "duplicate"]
    # a replay under an ATC already paid, with another cryptogram
    w.pos.stored = [{**stored[0], "amount": 1, "cryptogram": "00" * 8}]
    assert w.pos.upload().json()["results"][0]["code"] == "NFC_ATC_REPLAYED"
    assert w.balances() == (100_000 - 2450, 2450)
    # the taps are the merchant's trades of the day they arrived: in its statement and T+1 settlement
    day = date(2026, 6, 1)
    statement = w.run(lambda: w.c.settlements.statement(w.shop.merchant_id, day))
    assert statement.count("nfc_tap_") == 4
    clock.set(datetime(2026, 6, 1, 16, 10, tzinfo=UTC))  # the Beijing day is over
    [settled] = w.run(lambda: w.c.settlements.settle(day))
    assert (settled.merchant_id, settled.gross) == (w.shop.merchant_id, 2450)


def test_debt_deny_list_and_recovery(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = World(client, clock, db_url, funds=1_000)  # 10 CNY in the wallet
    w.pos.refresh_deny_list()
    version = w.pos.deny_version
    for typed in ("6", "8"):  # 14 CNY offline: the second cannot be paid when it arrives
        assert w.pos.offline_tap(w.device, typed) == "APPROVED OFFLINE"
    r = w.pos.upload().json()
    assert [(x["result"], x["charged"]) for x in r["results"]] == [("accepted", 600), ("debt", 800)]
    assert w.balances() == (400, 1400)  # the merchant is paid in full, the wallet owes 8 CNY
    assert w.app("GET", "/v1/me/nfc/tokens").json()[0]["owed"] == 800
    receivable = w.run(lambda: w.c.ledger.account("asset:receivable:nfc_offline_taps")).balance
    assert receivable == 800
    # the token is on the deny list; terminals fetch the change since their version
    assert w.pos.refresh_deny_list() > version and w.pos.deny == {w.token_id: "debt"}
    assert w.pos.offline_tap(w.device, "1") == "DECLINED CARD DENIED (debt)"
    before = w.balances()
    refused(w.post_tap(w.pos.read(w.device, 100), "denied-1"), 403, "NFC_TOKEN_DENIED")
    assert w.balances() == before
    # a tap made offline long after it was listed (a terminal with a stale list) is refused
    late = w.pos.read(w.device, 100)
    late["tapped_at"] += 13 * 3600
    clock.advance(13 * 3600 + 60)
    w.pos.refresh_deny_list()
    w.pos.stored = [late]
    assert w.pos.upload().json()["results"][0]["code"] == "NFC_TOKEN_DENIED"
    assert w.balances() == before
    # the next top-up pays the debt (wallet.credited through the outbox), the token leaves the list
    topup = 5_000

    async def cash_in() -> None:
        from mobipay.ledger.model import Leg, Transfer

        [res] = await w.c.ledger.post_batch([Transfer("cashin-test", (Leg.debit("asset:bank:settlement", topup),
                                                                     Leg.credit(f"wallet:+86{NUMBER}", topup)),
                                                      "cash_in")])
        assert res.error is None
        user = await w.c.wallet.user_by_msisdn(NUMBER)
        await w.c.uow.run("emit", lambda uow: uow.emit(WalletCredited(
            key="bo_test:credited", user_id=user.id, msisdn=user.msisdn, account_code=user.account_code,
            amount=topup, source="cash_in")))
        await w.c.outbox_worker().run_once()

    w.run(cash_in)
    assert w.wallet() == 400 + topup - 800
    assert w.app("GET", "/v1/me/nfc/tokens").json()[0]["owed"] == 0
    assert w.run(lambda: w.c.ledger.account("asset:receivable:nfc_offline_taps")).balance == 0
    w.pos.refresh_deny_list()
    assert w.pos.deny == {}
    assert w.post_tap(w.pos.read(w.device, 100), "after-1").status_code == 200
    again = w.app("POST", "/v1/me/nfc/debts/repay").json()
    assert again == {"recovered": 0, "owed": 0}  # nothing twice


def test_sms_gs_and_support_suspend(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = World(client, clock, db_url)
    w.pos.refresh_deny_list()

    async def sms(text: str) -> None:
        assert await w.c.sms.receive(f"gw-{text}-{clock.now().timestamp()}", f"+86{NUMBER}", "10658", text)
        await w.c.outbox_worker().run_once()

    before = w.balances()
    w.run(lambda: sms("挂失"))
    assert w.app("GET", "/v1/me/nfc/tokens").json()[0]["suspended_by"] == "sms"
    refused(w.post_tap(w.pos.read(w.device, 100), "gs-1"), 403, "NFC_TOKEN_SUSPENDED")
    w.pos.refresh_deny_list()
    assert w.pos.deny == {w.token_id: "suspended"}
    assert w.balances() == before
    assert w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/resume").json()["state"] == "active"
    # support suspends (audited): the subscriber cannot resume it
    w.run(lambda: w.c.nfc_tokens.suspend_by_support(w.token_id, actor="agent7", reason="called: phone stolen"))
    refused(w.app("POST", f"/v1/me/nfc/tokens/{w.token_id}/resume"), 403, "NFC_TOKEN_SUSPENDED")
    w.run(lambda: w.c.nfc_tokens.resume_by_support(w.token_id, actor="agent7", reason="identity checked"))
    assert w.post_tap(w.pos.read(w.device, 100), "ok-1").status_code == 200
    log = [(e["actor"], e["action"]) for e in w.run(lambda: w.c.uow.run("a", lambda uow: entries(uow.conn,
                                                                                              w.token_id)))]
    assert log == [(f"sms:+86{NUMBER}", "instore.nfc_token.suspend"), (f"subscriber:+86{NUMBER}",
                                                                       "instore.nfc_token.resume"),
                   ("agent7", "instore.nfc_token.suspend"), ("agent7", "instore.nfc_token.resume")]
    w.pos.refresh_deny_list()
    assert w.pos.deny == {}


@pytest.fixture
def banked(db_url: str, bank: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank,  # type: ignore[call-arg]
                        bank_secret=BANK_SECRET, bank_timeout_s=1.0, merchant_key_file=tmp_path / "platform.pem",
                        sms_console_file=tmp_path / "sms.log", report_dir=tmp_path / "reports")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


def test_a_real_card_top_up_pays_the_debt(banked: TestClient, bank: str, clock: ManualClock, db_url: str) -> None:
    """The wallet's cash-in from a bound card emits wallet.credited; the in-store consumer
    (the wallet knows nothing of it) recovers the debt."""
    w = World(banked, clock, db_url, funds=500)
    w.pos.refresh_deny_list()
    assert w.pos.offline_tap(w.device, "9") == "APPROVED OFFLINE"
    assert w.pos.upload().json()["results"][0]["result"] == "debt"
    assert w.balances() == (500, 900)
    open_account(bank, phone=NUMBER)
    card = w.app("POST", "/v1/me/cards", {"card_number": CARD, "name": "张明", "id_number": ID_NUMBER})
    assert card.status_code == 201, card.text
    r = w.app("POST", "/v1/cash-ins", {"card_id": card.json()["id"], "amount": {"amount": 2_000}}, key="in-1")
    assert r.status_code == 201 and r.json()["state"] == "succeeded", r.text
    assert w.wallet() == 2_500  # topped up; the debt is paid by the outbox consumer
    w.run(lambda: w.c.outbox_worker().run_once())
    assert w.wallet() == 1_600 and w.app("GET", "/v1/me/nfc/tokens").json()[0]["owed"] == 0
    w.pos.refresh_deny_list()
    assert w.pos.deny == {}
