"""The merchant portal's stores page on both databases: the list shows each store's city,
the owner adds a store with its name, address and city (printed on the store's QR code), and
a refused field is said at that field with what was typed kept and no store added; a forged
form and a staff account add nothing either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.instore.model import parse
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_merchant_portal import PASSWORD, REFUND_PIN, csrf, sign_in


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 2, 30, tzinfo=UTC))


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


def field_error(html: str) -> str | None:
    found = re.search(r'data-testid="field-error" data-field="(\w+)"', html)
    return found.group(1) if found else None


def test_the_owner_adds_a_store_with_its_city(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    assert sign_in(client, shop.merchant_id).status_code == 303
    page = client.get("/merchant/stores")
    assert page.status_code == 200 and 'data-testid="store-form"' in page.text and 'name="city"' in page.text
    assert '<option value="乌鲁木齐">' in page.text  # the 50 cities are offered, any other may be typed
    token = csrf(page.text)

    made = client.post("/merchant/stores", data={"csrf": token, "name": "西湖店", "address": "杭州市南山路1号",
                                                 "city": "杭州"})
    assert made.status_code == 200 and 'data-testid="done"' in made.text, made.text
    stores = shop.run(lambda: shop.c.merchants.stores(shop.merchant_id))
    assert [(s.name, s.address, s.city) for s in stores[1:]] == [("西湖店", "杭州市南山路1号", "杭州")]
    assert re.search(r"西湖店<br><small>sto_\w+</small></td><td data-testid=\"city\">杭州</td>", made.text)
    merchant = shop.run(lambda: shop.c.merchants.merchant(shop.merchant_id))
    qr = parse(shop.run(lambda: shop.c.instore.store_payload(merchant, stores[1].id)))
    assert qr.city == "HANGZHOU" and qr.local is not None and qr.local.city == "杭州"


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "", "city": "杭州"}, "name"),
    ({"name": "西湖店", "city": "一" * 33}, "city"),
    ({"name": "西湖店", "city": "杭\u2028州"}, "city"),  # not printable
    ({"name": "西湖店", "address": "路" * 257, "city": "杭州"}, "address"),
])
def test_a_refused_field_is_said_at_the_field(client: TestClient, clock: ManualClock, fields: dict[str, str],
                                              field: str) -> None:
    shop = Shop(client, clock)
    sign_in(client, shop.merchant_id)
    token = csrf(client.get("/merchant/stores").text)
    r = client.post("/merchant/stores", data={"csrf": token, "address": "杭州市南山路1号", **fields})
    assert r.status_code == 400 and "VALIDATION_FAILED" in r.text, r.text
    assert field_error(r.text) == field and 'data-testid="error"' not in r.text
    assert re.search(rf'id="store-{field}" name="{field}" value="[^"]*"[^>]*aria-invalid="true"', r.text)
    if fields.get("name"):  # what was typed is kept
        assert f'value="{fields["name"]}"' in r.text
    assert len(shop.run(lambda: shop.c.merchants.stores(shop.merchant_id))) == 1  # nothing added


def test_a_forged_form_or_a_staff_account_adds_nothing(client: TestClient, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    sign_in(client, shop.merchant_id)
    forged = client.post("/merchant/stores", data={"csrf": "forged", "name": "西湖店", "city": "杭州"})
    assert forged.status_code == 400 and 'data-testid="error"' in forged.text and field_error(forged.text) is None
    shop.run(lambda: shop.c.merchant_operators.create(shop.merchant_id, "clerk", PASSWORD, REFUND_PIN, role="staff"))
    client.cookies.clear()
    token = csrf(client.get("/merchant/signin").text)
    assert client.post("/merchant/signin", data={"csrf": token, "merchant_id": shop.merchant_id, "name": "clerk",
                                                 "password": PASSWORD}, follow_redirects=False).status_code == 303
    page = client.get("/merchant/stores")
    staff = client.post("/merchant/stores", data={"csrf": csrf(page.text), "name": "西湖店", "city": "杭州"})
    assert staff.status_code == 403 and "MERCHANT_ROLE_REQUIRED" in staff.text, staff.text
    assert len(shop.run(lambda: shop.c.merchants.stores(shop.merchant_id))) == 1
    assert client.post("/merchant/stores", data={"name": "x"}, follow_redirects=False).status_code in (400, 303)
