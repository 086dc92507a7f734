"""POS terminals over HTTP on both databases: registered per store through the signed
merchant API and the portal, every terminal request signed (Ed25519 over method, path,
timestamp, nonce and the body's SHA-256), each refusal its own code with nothing recorded,
disable and enable, re-keying, another merchant's store and terminals refused. The clock is
a ManualClock moved by hand; nothing sleeps."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.instore.signature import new_key, sign, signing_string
from mobipay.instore.tables import terminal_nonces
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.audit import entries
from mobipay.platform.config import Settings
from tests.e2e.test_merchant_portal import PASSWORD, REFUND_PIN, csrf, sign_in
from tests.e2e.test_merchants_api import _other_code, application


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


class Shop:
    """An approved merchant with a store, an HMAC API app and an owner account in the portal."""

    def __init__(self, client: TestClient, clock: ManualClock, *, credit_code: str | None = None,
                 name: str = "华新便利店") -> None:
        self.client, self.clock = client, clock
        self.c: Container = client.app.state.container  # type: ignore[attr-defined]

        async def setup() -> tuple[str, str, str, str]:
            f = application(**({"credit_code": credit_code} if credit_code else {}), name=name)
            m = await self.c.merchants.apply(name=f["name"], credit_code=f["credit_code"],
                                             legal_person=f["legal_person"], contact=f["contact_msisdn"], mcc=f["mcc"],
                                             website=f["website"], settlement_account=f["settlement_account"])
            store_id = await self.c.merchants.add_store(m, "南京路店", "上海市南京东路1号")
            app_id, key = await self.c.merchants.create_app(m.id, "HMAC")
            assert key is not None
            await self.c.merchant_operators.create(m.id, "owner", PASSWORD, REFUND_PIN, role="owner")
            return m.id, store_id, app_id, key

        self.merchant_id, self.store_id, self.app_id, self.key = self.run(setup)

    def run(self, work: Any) -> Any:
        return self.client.portal.call(work)  # type: ignore[union-attr]

    def api(self, path: str, **params: object) -> Any:
        """A signed merchant API call (HMAC), its answer's signature checked."""
        body: dict[str, object] = {"app_id": self.app_id, "timestamp": str(int(self.clock.now().timestamp())),
                                   "nonce": secrets.token_hex(8), "sign_type": "HMAC", **params}
        body["sign"] = sign_hmac(body, self.key.encode())
        r = self.client.post(path, json=body)
        if r.status_code < 300:
            answer = r.json()
            assert answer["sign"] == sign_hmac(answer, self.key.encode()), answer
        return r

    def register(self, label: str = "POS-01", **params: object) -> tuple[str, str]:
        r = self.api("/v1/merchant/terminals", store_id=self.store_id, label=label, **params)
        assert r.status_code == 201, r.text
        return r.json()["terminal_id"], r.json()["private_key"]


def call(client: TestClient, clock: ManualClock, terminal_id: str, seed: str, method: str = "GET",
         path: str = "/v1/terminal/ping", body: bytes = b"", *, ts: int | None = None, nonce: str | None = None,
         signed: tuple[str, str, bytes] | None = None, signature: str | None = None) -> Any:
    """A terminal request; ``signed`` (method, path, body) signs something other than what is sent."""
    stamp = str(int(clock.now().timestamp()) if ts is None else ts)
    nonce = nonce or secrets.token_hex(12)
    m, p, b = signed or (method, path, body)
    sig = signature if signature is not None else sign(seed, signing_string(terminal_id, m, p, stamp, nonce, b))
    headers = {"Terminal-Id": terminal_id, "Timestamp": stamp, "Nonce": nonce, "Signature": sig}
    return client.request(method, path, content=body, headers=headers)


def nonces(shop: Shop) -> int:
    async def work(uow: Any) -> int:
        return int((await uow.conn.execute(select(func.count()).select_from(terminal_nonces))).scalar_one())

    return int(shop.run(lambda: shop.c.uow.run("count", work)))


def seen(shop: Shop, terminal_id: str) -> datetime | None:
    return shop.run(lambda: shop.c.terminals.terminal(shop.merchant_id, terminal_id)).last_seen_at  # type: ignore[no-any-return]


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_register_and_ping(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    terminal_id, seed = shop.register()
    assert terminal_id.startswith("trm_") and seed  # the platform made the key: shown in this answer only
    r = call(client, clock, terminal_id, seed)
    assert r.status_code == 200, r.text
    assert r.json() == {"terminal_id": terminal_id, "label": "POS-01", "store_id": shop.store_id,
                        "store_name": "南京路店", "merchant_id": shop.merchant_id, "merchant_name": "华新便利店",
                        "server_time": int(clock.now().timestamp())}
    assert seen(shop, terminal_id) == clock.now()
    listed = shop.api("/v1/merchant/terminals/query", store_id=shop.store_id).json()
    [item] = json.loads(listed["terminals"])
    assert listed["count"] == 1 and item["terminal_id"] == terminal_id and item["state"] == "active"
    assert "private_key" not in item and seed not in listed["terminals"]  # the private key is kept nowhere
    # a key made on the terminal: the platform only ever sees its public half
    own_seed, own_public = new_key()
    own_id, shown = shop.register("POS-02", public_key=own_public)
    assert shown == "" and call(client, clock, own_id, own_seed).status_code == 200
    assert [e["action"] for e in audited(shop, terminal_id)] == ["instore.terminal.register"]


def audited(shop: Shop, target: str) -> list[dict[str, Any]]:
    """The audit entries about ``target``, oldest first."""

    async def work(uow: Any) -> list[dict[str, Any]]:
        return await entries(uow.conn, target)

    return shop.run(lambda: shop.c.uow.run("audit", work))  # type: ignore[no-any-return]


def test_every_refusal_is_its_own_code_and_changes_nothing(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    terminal_id, seed = shop.register()
    assert call(client, clock, terminal_id, seed).status_code == 200
    before, last = nonces(shop), seen(shop, terminal_id)
    clock.advance(60)
    body = b'{"amount":2372}'
    now = int(clock.now().timestamp())
    refused(client.get("/v1/terminal/ping"), 401, "TERMINAL_NOT_SIGNED")
    refused(call(client, clock, terminal_id, seed, nonce="short"), 401, "TERMINAL_NOT_SIGNED")
    refused(call(client, clock, "trm_nobody", seed), 401, "TERMINAL_UNKNOWN")
    refused(call(client, clock, terminal_id, seed, ts=now - 301), 401, "TERMINAL_CLOCK_SKEW")  # terminal behind
    refused(call(client, clock, terminal_id, seed, ts=now + 301), 401, "TERMINAL_CLOCK_SKEW")  # terminal ahead
    refused(call(client, clock, terminal_id, seed, "POST", body=body,
                 signed=("POST", "/v1/terminal/ping", b'{"amount":1}')), 401, "TERMINAL_BAD_SIGNATURE")  # body
    refused(call(client, clock, terminal_id, seed, path="/v1/terminal/ping?x=1",
                 signed=("GET", "/v1/terminal/ping", b"")), 401, "TERMINAL_BAD_SIGNATURE")  # path (its query)
    refused(call(client, clock, terminal_id, seed, "POST", signed=("GET", "/v1/terminal/ping", b"")),
            401, "TERMINAL_BAD_SIGNATURE")  # method
    refused(call(client, clock, terminal_id, seed, signature="not base64!"), 401, "TERMINAL_BAD_SIGNATURE")
    other_seed, _ = new_key()
    refused(call(client, clock, terminal_id, other_seed), 401, "TERMINAL_BAD_SIGNATURE")  # another key
    assert (nonces(shop), seen(shop, terminal_id)) == (before, last)  # nothing recorded by any refusal

    # the edges of the window are accepted; a nonce is used once
    assert call(client, clock, terminal_id, seed, ts=now - 300).status_code == 200
    assert call(client, clock, terminal_id, seed, ts=now + 300).status_code == 200
    used = secrets.token_hex(8)
    assert call(client, clock, terminal_id, seed, nonce=used).status_code == 200
    refused(call(client, clock, terminal_id, seed, nonce=used), 401, "TERMINAL_NONCE_REPLAYED")
    clock.advance(200)  # a replay of the very same request, still inside the window
    refused(call(client, clock, terminal_id, seed, ts=now, nonce=used), 401, "TERMINAL_NONCE_REPLAYED")

    # old nonces are pruned by the next request (after twice the window nothing could replay them)
    count = nonces(shop)
    clock.advance(601)
    assert call(client, clock, terminal_id, seed).status_code == 200
    assert nonces(shop) == 1 < count

    # after a rotation the old key no longer verifies
    r = shop.api("/v1/merchant/terminals/key", terminal_id=terminal_id)
    assert r.status_code == 200 and r.json()["private_key"] not in ("", seed)
    refused(call(client, clock, terminal_id, seed), 401, "TERMINAL_BAD_SIGNATURE")
    assert call(client, clock, terminal_id, r.json()["private_key"]).status_code == 200


def test_disable_then_enable(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    terminal_id, seed = shop.register()
    off = shop.api("/v1/merchant/terminals/disable", terminal_id=terminal_id)
    assert off.status_code == 200 and off.json()["state"] == "disabled" and off.json()["disabled_at"]
    assert shop.api("/v1/merchant/terminals/disable", terminal_id=terminal_id).json()["state"] == "disabled"
    before = nonces(shop)
    refused(call(client, clock, terminal_id, seed), 403, "TERMINAL_DISABLED")
    assert nonces(shop) == before
    on = shop.api("/v1/merchant/terminals/enable", terminal_id=terminal_id)
    assert on.status_code == 200 and on.json()["state"] == "active" and on.json()["disabled_at"] == ""
    assert call(client, clock, terminal_id, seed).status_code == 200
    actions = [e["action"] for e in audited(shop, terminal_id)]
    assert actions == ["instore.terminal.register", "instore.terminal.disable", "instore.terminal.enable"]
    assert all(e["actor"] == f"{shop.merchant_id}/app:{shop.app_id}" for e in audited(shop, terminal_id))


def test_another_merchants_store_and_terminals_are_refused(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    other = Shop(client, clock, credit_code=_other_code(), name="另一家店")
    theirs, _ = other.register()
    r = shop.api("/v1/merchant/terminals", store_id=other.store_id, label="POS-X")
    refused(r, 404, "MERCHANT_NOT_FOUND")
    for path in ("/v1/merchant/terminals/disable", "/v1/merchant/terminals/enable", "/v1/merchant/terminals/key"):
        refused(shop.api(path, terminal_id=theirs), 404, "TERMINAL_NOT_FOUND")
    refused(shop.api("/v1/merchant/terminals", store_id=shop.store_id, label="收银台一"), 400, "INVALID_TERMINAL_FIELD")
    refused(shop.api("/v1/merchant/terminals", store_id=shop.store_id, label="POS", public_key="AAAA"), 400,
            "INVALID_TERMINAL_FIELD")
    assert json.loads(shop.api("/v1/merchant/terminals/query").json()["terminals"]) == []
    assert other.run(lambda: other.c.terminals.terminal(other.merchant_id, theirs)).state == "active"

    # a merchant not approved gets no terminal (a person still reviews this application)
    async def pending() -> str:
        f = application(credit_code=_third_code(), mcc="7995")
        m = await shop.c.merchants.apply(name=f["name"], credit_code=f["credit_code"], legal_person=f["legal_person"],
                                         contact=f["contact_msisdn"], mcc=f["mcc"], website=f["website"],
                                         settlement_account=f["settlement_account"])
        return m.id

    pending_id = shop.run(pending)
    with pytest.raises(MobipayError) as info:
        shop.run(lambda: shop.c.terminals.register(pending_id, shop.store_id, "POS-01", actor="test"))
    assert info.value.code == "MERCHANT_NOT_APPROVED"


def _third_code() -> str:
    from mobipay.merchants.model import credit_code_check_char

    return "91310000MA1FL0000"[:17] + credit_code_check_char("91310000MA1FL0000"[:17])


def test_portal_pages(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    assert sign_in(client, shop.merchant_id).status_code == 303
    stores = client.get("/merchant/stores")
    assert stores.status_code == 200 and f"/merchant/stores/{shop.store_id}/terminals" in stores.text
    page = client.get(f"/merchant/stores/{shop.store_id}/terminals")
    assert page.status_code == 200 and 'data-testid="key"' not in page.text
    token = csrf(page.text)
    made = client.post(f"/merchant/stores/{shop.store_id}/terminals", data={"csrf": token, "label": "POS-09"})
    assert made.status_code == 200 and 'data-testid="key"' in made.text, made.text
    [terminal] = shop.run(lambda: shop.c.terminals.find(shop.merchant_id, shop.store_id))
    seed = made.text.split('data-testid="key"')[1].split("<code>")[1].split("</code>")[0]
    assert call(client, clock, terminal.id, seed).status_code == 200  # the key shown works
    again = client.get(f"/merchant/stores/{shop.store_id}/terminals")
    assert seed not in again.text and 'data-testid="key"' not in again.text  # shown once

    forged = client.post(f"/merchant/terminals/{terminal.id}/disable", data={"csrf": "forged"})
    assert forged.status_code == 400 and "VALIDATION_FAILED" in forged.text
    assert call(client, clock, terminal.id, seed).status_code == 200  # still active
    forged_register = client.post(f"/merchant/stores/{shop.store_id}/terminals", data={"csrf": "x", "label": "P2"})
    assert forged_register.status_code == 400
    assert len(shop.run(lambda: shop.c.terminals.find(shop.merchant_id))) == 1

    off = client.post(f"/merchant/terminals/{terminal.id}/disable", data={"csrf": token})
    assert off.status_code == 200 and 'data-state="disabled"' in off.text
    refused(call(client, clock, terminal.id, seed), 403, "TERMINAL_DISABLED")
    on = client.post(f"/merchant/terminals/{terminal.id}/enable", data={"csrf": token})
    assert on.status_code == 200 and 'data-state="active"' in on.text
    assert call(client, clock, terminal.id, seed).status_code == 200
    bad = client.post(f"/merchant/stores/{shop.store_id}/terminals", data={"csrf": token, "label": ""})
    assert bad.status_code == 400 and "INVALID_TERMINAL_FIELD" in bad.text

    other = Shop(client, clock, credit_code=_other_code(), name="另一家店")
    theirs, _ = other.register()
    assert client.get(f"/merchant/stores/{other.store_id}/terminals").status_code == 404
    assert client.post(f"/merchant/terminals/{theirs}/disable", data={"csrf": token}).status_code == 404
    assert other.run(lambda: other.c.terminals.terminal(other.merchant_id, theirs)).state == "active"
