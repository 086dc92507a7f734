"""The mobile web wallet's operator products, insurance and lottery pages over HTTP on both
databases, against the provider and lottery-centre SIMULATORS at a fixed noon (ManualClock):
buy with the PIN above the password-free amount, double submits paying once, every bad
form a sentence on the page with nothing changed (balances asserted), other subscribers'
orders, policies and tickets not found, cancelling in the cooling-off period, the sales
cut-off between the confirmation and the payment."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.wallet.model import id_card_check_char
from tests.conftest import LOTTERY_SECRET, PROVIDER_SECRET
from tests.e2e.test_wallet_api import fund, signed_up
from tests.e2e.test_web_wallet import balance, hidden, sign_in

ALICE, BOB, UNICOM = "13800138000", "13900139000", "18600186000"
PIN = "135790"
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)  # a Tuesday: 双色球 is drawn tonight, sales close at 20:00
ID_NUMBER = "11010519491231002" + id_card_check_char("11010519491231002")


@pytest.fixture
def world(db_url: str, tmp_path: Path, providers: dict[str, str], lottery_url: str
          ) -> Iterator[tuple[TestClient, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url, merchant_key_file=tmp_path / "p.pem",  # type: ignore[call-arg]
                        products_url=providers["operator_products"], insurer_url=providers["insurer"],
                        products_secret=PROVIDER_SECRET, insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url,
                        lottery_secret=LOTTERY_SECRET, partner_timeout_s=2.0)
    clock = ManualClock(NOON)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        for number in (ALICE, BOB, UNICOM):
            signed_up(client, db_url, number)
        fund(client, ALICE, 50_000)
        fund(client, UNICOM, 10_000)
        client.portal.call(container.wallet.set_pin, ALICE, PIN)  # type: ignore[union-attr]
        yield client, clock


def sentence(html: str) -> str:
    """The refusal shown on the page (the error card)."""
    found = re.search(r'data-testid="error">([^<]+)<', html)
    assert found, html[:2000]
    return found.group(1)


def test_products_page_buy_once_with_words_for_every_refusal(world: tuple[TestClient, ManualClock],
                                                             db_url: str) -> None:
    client, _ = world
    token = sign_in(client, db_url, ALICE)
    page = client.get("/m/products")
    assert page.status_code == 200 and "彩铃" in page.text and "12580天气预报" in page.text and "飞信" in page.text
    assert "暂无订单" in page.text
    assert "Fetion membership" in client.get("/m/products?lang=en").text
    client.get("/m/products?lang=zh")  # the language is remembered: back to Chinese

    confirm = client.get("/m/products/MUSIC_TRACK")
    assert confirm.status_code == 200 and "¥2.00" in confirm.text and "138****8000" in confirm.text
    assert 'name="pin"' not in confirm.text  # under the password-free amount
    form = {"csrf": token, "key": hidden(confirm.text, "key")}
    first = client.post("/m/products/MUSIC_TRACK", data=form, follow_redirects=False)
    again = client.post("/m/products/MUSIC_TRACK", data=form, follow_redirects=False)  # a double submit
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert first.headers["location"].startswith("/m/product-orders/")
    assert balance(client, ALICE) == 50_000 - 200  # once
    order = client.get(first.headers["location"])
    assert order.status_code == 200 and 'data-testid="state">成功' in order.text and 'data-testid="ref"' in order.text
    assert "整曲下载" in order.text and first.headers["location"] in client.get("/m/products").text

    missing = client.get("/m/products/NOPE")
    assert missing.status_code == 404 and sentence(missing.text).startswith("没有这个业务")
    assert client.post("/m/products/NOPE", data=form).status_code == 404
    forged = client.post("/m/products/MUSIC_TRACK", data={"csrf": "forged", "key": "k-forged"})
    assert forged.status_code == 400 and "reload" in sentence(forged.text)
    bad_key = client.post("/m/products/MUSIC_TRACK", data={"csrf": token, "key": ""})
    assert bad_key.status_code in (400, 422) and "Traceback" not in bad_key.text
    assert balance(client, ALICE) == 50_000 - 200

    sign_in(client, db_url, BOB)  # another subscriber: Alice's order is not found
    r = client.get(first.headers["location"])
    assert r.status_code == 404 and "NOT_FOUND" in r.text and "整曲下载" not in r.text

    token = sign_in(client, db_url, UNICOM)  # not the home operator's number: told at once, no form
    refused = client.get("/m/products/MUSIC_TRACK")
    assert refused.status_code == 422 and "仅限本运营商" in sentence(refused.text)
    assert 'action="/m/products/MUSIC_TRACK"' not in refused.text
    r = client.post("/m/products/MUSIC_TRACK", data={"csrf": token, "key": "k-unicom"})
    assert r.status_code == 422 and "PRODUCT_NOT_AVAILABLE" in r.text
    assert balance(client, UNICOM) == 10_000


def test_insurance_for_another_person_and_cancelling_it(world: tuple[TestClient, ManualClock], db_url: str) -> None:
    client, clock = world
    token = sign_in(client, db_url, ALICE)
    page = client.get("/m/insurance")
    assert page.status_code == 200 and "综合意外险" in page.text and "中国平安" in page.text
    tomorrow = (NOON.date() + timedelta(days=1)).isoformat()
    assert f'value="{tomorrow}"' in page.text and "暂无保单" in page.text
    form = {"csrf": token, "product": "ACC_1Y_100K", "insured_name": "王小明", "insured_id_number": ID_NUMBER,
            "starts_on": tomorrow, "key": hidden(page.text, "key")}

    wrong_id = "110105194912310029" if ID_NUMBER[-1] != "9" else "110105194912310028"
    for bad, code, words in (({"insured_id_number": wrong_id}, "INVALID_ID_CARD", "身份证号码不正确"),
                             ({"insured_name": "王小明123"}, "INVALID_REAL_NAME", "请按身份证填写姓名"),
                             ({"product": ""}, "VALIDATION_FAILED", ""),
                             ({"product": "NOPE"}, "PRODUCT_NOT_FOUND", "没有这个业务"),
                             ({"starts_on": "2026-13-01"}, "VALIDATION_FAILED", ""),
                             ({"starts_on": "2027-06-01"}, "VALIDATION_FAILED", ""),  # over 90 days ahead
                             ({"starts_on": (NOON.date() - timedelta(days=1)).isoformat()}, "VALIDATION_FAILED", "")):
        r = client.post("/m/insurance", data={**form, **bad, "key": f"k-{code}-{len(str(bad))}"})
        assert r.status_code in (400, 404, 422) and code in r.text, (bad, r.text[:500])
        assert sentence(r.text).startswith(words) and "Traceback" not in r.text
        assert wrong_id not in r.text and ID_NUMBER not in r.text  # the identity number is never echoed
    assert balance(client, ALICE) == 50_000

    first = client.post("/m/insurance", data=form, follow_redirects=False)
    again = client.post("/m/insurance", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert balance(client, ALICE) == 50_000 - 5_000
    policy = client.get(first.headers["location"])
    assert policy.status_code == 200 and 'data-testid="insured">**明' in policy.text and ID_NUMBER not in policy.text
    assert 'data-testid="state">成功' in policy.text and "/cancel" in policy.text
    assert first.headers["location"] in client.get("/m/insurance").text

    sign_in(client, db_url, BOB)
    assert client.get(first.headers["location"]).status_code == 404
    token = sign_in(client, db_url, ALICE)

    cancel_url = first.headers["location"] + "/cancel"
    assert client.post(cancel_url, data={"csrf": "forged"}).status_code == 400
    assert balance(client, ALICE) == 50_000 - 5_000
    done = client.post(cancel_url, data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303, done.text
    cancelled = client.get(done.headers["location"])
    assert 'data-testid="cancellation">成功' in cancelled.text and "/cancel" not in cancelled.text
    assert balance(client, ALICE) == 50_000  # the premium is back in full
    assert client.post(cancel_url, data={"csrf": token}).status_code < 500
    assert balance(client, ALICE) == 50_000  # asking again refunds nothing more

    # Without a cooling-off period a policy can be cancelled until its cover starts, not after.
    page = client.get("/m/insurance")
    short = client.post("/m/insurance", data={**form, "csrf": token, "product": "ACC_1M_50K",
                                              "key": hidden(page.text, "key")},
                        follow_redirects=False)
    assert short.status_code == 303 and balance(client, ALICE) == 50_000 - 990
    clock.advance(2 * 86_400)
    late = client.get(short.headers["location"])
    assert late.status_code == 200 and "/cancel" not in late.text
    r = client.post(short.headers["location"] + "/cancel", data={"csrf": token})
    assert r.status_code == 422 and sentence(r.text).startswith("已过犹豫期")
    assert balance(client, ALICE) == 50_000 - 990


def test_lottery_chosen_numbers_quick_picks_pin_and_the_cut_off(world: tuple[TestClient, ManualClock],
                                                               db_url: str) -> None:
    client, clock = world
    token = sign_in(client, db_url, ALICE)
    page = client.get("/m/lottery")
    assert page.status_code == 200 and "双色球" in page.text and "超级大乐透" in page.text and "福彩3D" in page.text
    issue = re.search(r'data-testid="game-ssq">\s*<h2>双色球 · 第(\d+)期', page.text)
    assert issue, page.text[:3000]
    assert "11-24 20:00" in page.text  # the cut-off, Beijing time

    base = {"csrf": token, "numbers": "01 05 12 19 27 33 + 09", "quick_picks": "1", "multiplier": "1"}
    for bad in ({"numbers": "1 2 + 9"}, {"numbers": "１ 2 3 4 5 6 + 9"}, {"numbers": "1 2 3 4 5 6 + 17"},
                {"numbers": "1 1 2 3 4 5 + 9"}, {"numbers": "a b c"}, {"numbers": "", "quick_picks": "0"},
                {"quick_picks": "9"}, {"quick_picks": "-1"}, {"multiplier": "0"}, {"multiplier": "100"},
                {"multiplier": "1e3"}, {"numbers": ";".join(["1 2 3 4 5 6 + 9"] * 6)}):
        r = client.post("/m/lottery/ssq/confirm", data={**base, **bad})
        assert r.status_code == 400 and "INVALID_NUMBERS" in r.text, (bad, r.text[:300])
        assert sentence(r.text) and "Traceback" not in r.text
    r = client.post("/m/lottery/nope/confirm", data=base)
    assert r.status_code == 404 and "UNKNOWN_GAME" in r.text
    assert balance(client, ALICE) == 50_000

    confirm = client.post("/m/lottery/ssq/confirm", data=base)
    assert confirm.status_code == 200 and 'data-testid="cost">¥4.00' in confirm.text
    assert "01 05 12 19 27 33+09" in confirm.text and 'name="pin"' not in confirm.text
    assert hidden(confirm.text, "issue") == issue.group(1)
    form = {**base, "issue": issue.group(1), "key": hidden(confirm.text, "key")}
    first = client.post("/m/lottery/ssq", data=form, follow_redirects=False)
    again = client.post("/m/lottery/ssq", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert balance(client, ALICE) == 50_000 - 400
    ticket = client.get(first.headers["location"])
    assert ticket.status_code == 200 and "01 05 12 19 27 33+09" in ticket.text and "待开奖" in ticket.text
    assert 'data-testid="ref"' in ticket.text and ticket.text.count("<li>") == 2  # the chosen bet and a quick pick
    assert first.headers["location"] in client.get("/m/lottery").text

    big = client.post("/m/lottery/ssq/confirm", data={**base, "numbers": "", "quick_picks": "5",
                                                      "multiplier": "30"})
    assert 'data-testid="cost">¥300.00' in big.text and 'name="pin"' in big.text  # over the password-free amount
    big_form = {**base, "numbers": "", "quick_picks": "5", "multiplier": "30", "issue": issue.group(1),
                "key": hidden(big.text, "key")}
    r = client.post("/m/lottery/ssq", data=big_form)
    assert r.status_code == 422 and "PIN_REQUIRED" in r.text
    r = client.post("/m/lottery/ssq", data={**big_form, "pin": "000000"})
    assert r.status_code == 422 and sentence(r.text).startswith("支付密码错误")
    assert balance(client, ALICE) == 50_000 - 400
    paid = client.post("/m/lottery/ssq", data={**big_form, "pin": PIN}, follow_redirects=False)
    assert paid.status_code == 303 and balance(client, ALICE) == 50_000 - 400 - 30_000

    late = client.post("/m/lottery/ssq/confirm", data=base)  # confirmed before the cut-off ...
    late_form = {**base, "issue": issue.group(1), "key": hidden(late.text, "key")}
    clock.set(NOON.replace(hour=20, minute=1))  # ... paid after it: no ticket for another draw
    r = client.post("/m/lottery/ssq", data=late_form)
    assert r.status_code == 422 and sentence(r.text).startswith("本期已停止销售")
    assert balance(client, ALICE) == 50_000 - 400 - 30_000
    assert client.post("/m/lottery/ssq", data=form, follow_redirects=False).headers["location"] == \
        first.headers["location"]  # the first form sent again after the cut-off is still its own ticket
    assert f"第{issue.group(1)}期" not in client.get("/m/lottery").text.split('data-testid="game-dlt"')[0]

    sign_in(client, db_url, BOB)
    r = client.get(first.headers["location"])
    assert r.status_code == 404 and "01 05 12 19 27 33" not in r.text
    assert client.get("/m/lottery").text.count('data-testid="ticket"') == 0
