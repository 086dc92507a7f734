"""A jackpot claimed on the mobile web wallet (SQLite and PostgreSQL, lottery centre
SIMULATOR, ManualClock): the ticket page shows the prize, the tax and the claim deadline;
a wrong identity is a sentence on the page that pays nothing; the right one pays the prize
less its tax once, however often the form is sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from tests.conftest import LOTTERY_SECRET
from tests.e2e.test_wallet_api import fund, signed_up
from tests.e2e.test_web_wallet import balance, hidden, sign_in
from tests.e2e.test_web_wallet_products import sentence
from tests.integration.test_lottery import ID_CARD, verified

ALICE = "13800138000"
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)  # a Tuesday: 双色球 is drawn at 21:15


@pytest.fixture
def world(db_url: str, tmp_path: Path, lottery_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url, merchant_key_file=tmp_path / "p.pem",  # type: ignore[call-arg]
                        lottery_url=lottery_url, lottery_secret=LOTTERY_SECRET, partner_timeout_s=5.0)
    clock = ManualClock(NOON)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        signed_up(client, db_url, ALICE)
        fund(client, ALICE, 50_000)
        yield client, container, clock


def test_a_jackpot_is_claimed_on_the_ticket_page(world: tuple[TestClient, Container, ManualClock], db_url: str,
                                                 lottery_url: str) -> None:
    client, container, clock = world
    token = sign_in(client, db_url, ALICE)
    base = {"csrf": token, "numbers": "03 09 14 20 26 31 + 12", "quick_picks": "0", "multiplier": "1"}
    confirm = client.post("/m/lottery/ssq/confirm", data=base)
    issue = hidden(confirm.text, "issue")
    bought = client.post("/m/lottery/ssq", data={**base, "issue": issue, "key": hidden(confirm.text, "key")},
                         follow_redirects=False)
    assert bought.status_code == 303, bought.text
    page_url = bought.headers["location"]
    httpx.put(f"{lottery_url}/sim/draws/ssq/{issue}", json={"numbers": [[3, 9, 14, 20, 26, 31], [12]]}
              ).raise_for_status()
    clock.set(datetime(2026, 11, 24, 21, 15, tzinfo=SHANGHAI))
    client.portal.call(container.lottery.import_draw, "ssq", issue)  # type: ignore[union-attr]

    token = sign_in(client, db_url, ALICE)  # nine hours on: a new session
    page = client.get(page_url)
    assert 'data-testid="prize">¥5000000.00' in page.text and 'data-testid="tax">¥1000000.00' in page.text
    assert "待兑奖，截止 2027-01-23" in page.text and 'data-testid="claim-form"' in page.text
    assert balance(client, ALICE) == 50_000 - 200
    claim_url = page_url + "/claim"

    refused = client.post(claim_url, data={"csrf": token, "name": "张三", "id_number": ID_CARD})
    assert refused.status_code == 403 and "实名认证" in sentence(refused.text)  # no verified identity yet
    user = client.portal.call(container.wallet.user_by_msisdn, ALICE)  # type: ignore[union-attr]
    me = client.portal.call(container.wallet.principal, user.id)  # type: ignore[union-attr]
    client.portal.call(verified, container.lottery, me, "张三", ID_CARD)  # type: ignore[union-attr]
    for bad, status in (({"name": "李四", "id_number": ID_CARD}, 422), ({"name": "张三", "id_number": "1234"}, 400),
                        ({"name": "", "id_number": ID_CARD}, 400)):
        r = client.post(claim_url, data={"csrf": token, **bad})
        assert r.status_code == status and sentence(r.text) and "Traceback" not in r.text, (bad, r.text[:500])
    forged = client.post(claim_url, data={"csrf": "forged", "name": "张三", "id_number": ID_CARD})
    assert forged.status_code == 400 and "reload" in sentence(forged.text)
    assert balance(client, ALICE) == 50_000 - 200

    form = {"csrf": token, "name": "张三", "id_number": ID_CARD}
    first = client.post(claim_url, data=form, follow_redirects=False)
    again = client.post(claim_url, data=form, follow_redirects=False)  # a double submit
    assert first.status_code == again.status_code == 303, first.text
    assert balance(client, ALICE) == 50_000 - 200 + 400_000_000  # the prize less its 20% tax, once
    paid = client.get(page_url).text
    assert "已兑奖" in paid and 'data-testid="claim-form"' not in paid
    assert re.search(r'data-testid="net">¥4000000.00', paid)
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]
