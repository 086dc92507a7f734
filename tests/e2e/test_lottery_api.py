"""The lottery over HTTP against the lottery centre SIMULATOR (SQLite and PostgreSQL): the draw
calendar, a draw imported only once held, a jackpot recorded with its tax and claimed with
the identity card, and every refusal a problem that moves no money."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import PAYABLE_PRIZE_TAX
from mobipay.platform.config import Settings
from tests.conftest import LOTTERY_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up
from tests.integration.test_lottery import ID_CARD

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)  # a Tuesday: 双色球 is drawn at 21:15


@pytest.fixture
def live(db_url: str, lottery_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url, lottery_url=lottery_url,  # type: ignore[call-arg]
                        lottery_secret=LOTTERY_SECRET, partner_timeout_s=5.0)
    clock = ManualClock(NOON)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def test_calendar_jackpot_tax_and_claim(live: tuple[TestClient, Container, ManualClock], db_url: str,
                                        lottery_url: str) -> None:
    client, container, clock = live
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)

    draws = client.get("/v1/lottery/draws", params={"game": "ssq", "upcoming": 2}).json()
    on_sale = [d for d in draws if d["state"] == "on_sale"]
    assert len(on_sale) == 1 and [d["state"] for d in draws][-2:] == ["upcoming", "upcoming"], draws
    issue = on_sale[0]["issue"]
    assert client.get("/v1/lottery/draws", params={"game": "keno"}).json()["code"] == "UNKNOWN_GAME"

    t = client.post("/v1/lottery/tickets", headers={**bearer(me), "Idempotency-Key": "jackpot"},
                    json={"game": "ssq", "bets": [[[3, 9, 14, 20, 26, 31], [12]]]})
    assert t.status_code == 201, t.text
    ticket_id = t.json()["id"]
    httpx.put(f"{lottery_url}/sim/draws/ssq/{issue}", json={"numbers": [[3, 9, 14, 20, 26, 31], [12]]}
              ).raise_for_status()
    lottery = container.lottery
    with pytest.raises(Exception, match="drawn at") as early:
        client.portal.call(lottery.import_draw, "ssq", issue)  # type: ignore[union-attr]
    assert getattr(early.value, "code", "") == "DRAW_NOT_DUE"
    clock.set(datetime(2026, 11, 24, 21, 15, tzinfo=SHANGHAI))
    client.portal.call(lottery.import_due)  # type: ignore[union-attr]
    me = login_by_sms(client, db_url, "13800138000", "a")  # nine hours later: the access token is long gone
    assert [d["state"] for d in client.get("/v1/lottery/draws", params={"game": "ssq"}).json()
            if d["issue"] == issue] == ["drawn"]

    mine = client.get(f"/v1/lottery/tickets/{ticket_id}", headers=bearer(me)).json()
    gross = 500_000_000
    assert (mine["prize"]["amount"], mine["tax"]["amount"], mine["paid"]["amount"], mine["claim"]) == (
        gross, gross // 5, 0, "waiting"), mine
    assert mine["claim_by"].startswith("2027-01-23")
    assert balance(client, me) == 50_000 - 200  # a jackpot waits for its claim

    def claim(body: dict[str, Any], ticket: str = ticket_id) -> httpx.Response:
        return client.post(f"/v1/lottery/tickets/{ticket}/claim", headers=bearer(me), json=body)

    refusals = [
        (claim({"name": "张三", "id_number": ID_CARD}), 403, "REAL_NAME_REQUIRED"),
        (claim({"name": "张三", "id_number": "1"}), 400, "INVALID_ID_CARD"),
        (claim({"name": "张三", "id_number": ID_CARD}, "lt_nope"), 404, "TICKET_NOT_FOUND"),
        (claim({"name": "张三"}), 400, "VALIDATION_FAILED"),
    ]
    for r, status, code in refusals:
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert balance(client, me) == 50_000 - 200

    from tests.integration.test_lottery import verified

    user = client.portal.call(container.wallet.user_by_msisdn, "+8613800138000")  # type: ignore[union-attr]
    principal = client.portal.call(container.wallet.principal, user.id)  # type: ignore[union-attr]
    client.portal.call(verified, lottery, principal, "张三", ID_CARD)  # type: ignore[union-attr]
    assert claim({"name": "李四", "id_number": ID_CARD}).json()["code"] == "IDENTITY_MISMATCH"
    paid = claim({"name": "张三", "id_number": ID_CARD})
    assert paid.status_code == 200 and paid.json()["claim"] == "claimed", paid.text
    assert paid.json()["paid"]["amount"] == gross - gross // 5
    assert claim({"name": "张三", "id_number": ID_CARD}).json()["claim"] == "claimed"  # again: paid once
    assert balance(client, me) == 50_000 - 200 + gross - gross // 5
    receipt = client.get(f"/v1/me/transactions/prize:{ticket_id}", headers=bearer(me)).json()
    assert (receipt["amount"]["amount"], receipt["prize_tax"]["amount"]) == (gross - gross // 5, gross // 5)
    assert "tax" in receipt["reference"]
    tax = client.portal.call(container.ledger.account, PAYABLE_PRIZE_TAX)  # type: ignore[union-attr]
    assert tax.balance == gross // 5
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]
