"""A shop's existing Alipay code against mobipay: the two most used Python client libraries
from PyPI (python-alipay-sdk 3.4.0 and the official alipay-sdk-python 3.7.1411), pointed
at a live server's ``/gateway.do`` with the shop's app id and keys and nothing else
changed, on both databases. Create, precreate, page pay through the hosted cashier (its
signed return verified), query, close, cancel, refund (replayed, over-refunded), refund
query, the statement download; notifications received by a shop's server on loopback and
verified with each library's own function, a tampered one refused. Balances after each
money step.

Two things are worked around here, in the test's fixtures, not in mobipay: the official
library connects to port 80 whatever the URL says (``WebUtils.get_http_connection``), and
both libraries stamp requests with the machine's local time, which a shop in China keeps
in Beijing time (``TZ=Asia/Shanghai`` for the test).
"""

from __future__ import annotations

import base64
import html
import http.client
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import SHANGHAI
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application
from tests.support.live import Live

BUYER = "13900139000"


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def beijing_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client libraries write ``datetime.now()`` as Beijing time: run them as a shop's
    server in China runs, with its clock in Asia/Shanghai."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def official_port_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """alipay-sdk-python 3.7.1411 connects to port 80 (or 443) whatever the gateway URL says,
    and adds an int to a str when the URL has a port: connect where the URL says."""
    from alipay.aop.api.util import WebUtils

    def get_http_connection(url: str, query_string: str, timeout: int) -> tuple[str, http.client.HTTPConnection]:
        parsed = urlparse(url)
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=timeout)
        return f"{parsed.path}?{query_string}", connection

    monkeypatch.setattr(WebUtils, "get_http_connection", get_http_connection)


class ShopServer:
    """The shop's notify URL on loopback: records what is POSTed and answers ``success``."""

    def __init__(self) -> None:
        received: list[tuple[str, bytes]] = []
        raw: list[tuple[dict[str, str], str, bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.headers.get("Content-Type", ""), body))
                raw.append((dict(self.headers.items()), self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.raw = raw  # (headers, content type, body): what a WeChat Pay handler verifies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alipay/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forms(self) -> list[dict[str, str]]:
        """The notifications received, as a shop's framework parses a form body."""
        out = []
        for content_type, body in self.received:
            assert content_type.startswith("application/x-www-form-urlencoded"), content_type
            out.append(dict(parse_qsl(body.decode(), keep_blank_values=True)))
        return out


@pytest.fixture
def shop_server() -> Iterator[ShopServer]:
    shop = ShopServer()
    shop.thread.start()
    yield shop
    shop.server.shutdown()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports",
                        notify_allow_networks="127.0.0.1/32")
    server = Live(settings)
    server.start()
    server.call(lambda c: c.ensure_system_accounts())
    yield server
    server.stop()


# ---------------------------------------------------------------------- the shop's side


class Shop:
    """A book shop with an Alipay-protocol app: its key pair as Alipay's key tool gives it."""

    def __init__(self, live: Live, notify_url: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pkcs1 = key.private_bytes(  # PKCS#1, as both libraries load it
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        bare_public = base64.b64encode(public_der).decode()  # "应用公钥" as the key tool shows it
        self.merchant_id = httpx.post(f"{live.url}/v1/merchant-applications", json=application()).json()["id"]
        self.app_id, _ = live.call(lambda c: c.merchants.create_app(self.merchant_id, "RSA2", public_key=bare_public,
                                                                     notify_url=notify_url, protocol="alipay"))
        self.platform_public = httpx.get(f"{live.url}/v1/merchant/platform-key").text
        self.gateway = f"{live.url}/gateway.do"


def buyer(live: Live, balance: int) -> str:
    async def work(c: Container) -> str:
        user = await c.wallet.create_user(BUYER, actor="test", reason="alipay clients test")
        await c.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, balance),
                                              Leg.credit(user.account_code, balance)), "cash_in"))
        return user.id

    return live.call(work)


def pay(live: Live, user_id: str, trade_no: str) -> None:
    async def work(c: Container) -> None:
        await c.merchants.pay(await c.wallet.principal(user_id), trade_no)

    live.call(work)


def balances(live: Live, shop: Shop) -> tuple[int, int]:
    """(the buyer's wallet, what the platform owes the shop), in fen."""

    async def work(c: Container) -> tuple[int, int]:
        wallet = await c.ledger.account((await c.wallet.user_by_msisdn(BUYER)).account_code)
        payable = await c.ledger.account((await c.merchants.merchant(shop.merchant_id)).account_code)
        return wallet.balance, payable.balance

    return live.call(work)


def deliver(live: Live) -> None:
    live.call(lambda c: c.merchant_notifier.deliver_due())


def pay_in_cashier(live: Live, location: str) -> dict[str, str]:
    """The buyer's browser at the hosted cashier the gateway sent it to: sign in by SMS
    code, pay; returns the parameters the done page sends the buyer back to the shop with."""
    with httpx.Client(base_url=live.url) as browser:
        def csrf(page: httpx.Response) -> str:
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert found, page.text
            return found.group(1)

        page = browser.get(location)
        assert page.status_code == 200, page.text
        path, _, query = location.partition("?")
        suffix = f"?{query}" if query else ""
        page = browser.post(f"{path}/otp{suffix}", data={"csrf": csrf(page), "msisdn": BUYER})
        assert page.status_code == 200, page.text
        signed_in = browser.post(f"{path}/signin{suffix}", data={"csrf": csrf(page), "msisdn": BUYER,
                                                                 "code": live.sms_code("+86" + BUYER)})
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get(signed_in.headers["location"])
        done = browser.post(f"{path}/pay{suffix}", data={"csrf": csrf(page)})
        assert done.status_code == 200 and "支付成功" in done.text, done.text
        back = re.search(r'<a href="([^"]+)" data-testid="back"', done.text)
        assert back, done.text
        target = urlparse(html.unescape(back.group(1)))
        assert (target.scheme, target.netloc, target.path) == ("https", "book.example", "/return")
        return dict(parse_qsl(target.query))


# ---------------------------------------------------------------------- python-alipay-sdk


def test_python_alipay_sdk(live: Live, shop_server: ShopServer, beijing_time: None) -> None:
    from alipay import AliPay

    shop = Shop(live, shop_server.url)
    user_id = buyer(live, 50_000)
    client = AliPay(appid=shop.app_id, app_notify_url=shop_server.url, app_private_key_string=shop.private_pkcs1,
                    alipay_public_key_string=shop.platform_public, sign_type="RSA2")
    client._gateway = shop.gateway  # the one line a shop changes (besides its keys)

    # precreate: a QR code's text for the cashier
    pre = client.api_alipay_trade_precreate(subject="三体 全集", out_trade_no="PY-1", total_amount="88.00")
    assert pre["code"] == "10000", pre
    assert pre["qr_code"].startswith(f"{live.url}/cashier/trd")
    queried = client.api_alipay_trade_query(out_trade_no="PY-1")
    assert (queried["code"], queried["trade_status"], queried["total_amount"]) == ("10000", "WAIT_BUYER_PAY", "88.00")
    trade_no = queried["trade_no"]

    # the buyer pays; the shop's server gets Alipay's form notification and verifies it
    pay(live, user_id, trade_no)
    assert balances(live, shop) == (50_000 - 8_800, 8_800)
    deliver(live)
    [paid] = shop_server.forms()
    assert (paid["trade_status"], paid["total_amount"], paid["buyer_pay_amount"]) == ("TRADE_SUCCESS", "88.00",
                                                                                      "88.00")
    assert paid["app_id"] == shop.app_id and paid["notify_type"] == "trade_status_sync"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", paid["notify_time"])
    signature = paid.pop("sign")
    assert client.verify(dict(paid), signature)
    tampered = {**paid, "total_amount": "8800.00"}
    assert not client.verify(tampered, signature)  # a forged amount does not verify

    by_trade_no = client.api_alipay_trade_query(trade_no=trade_no)
    assert (by_trade_no["trade_status"], by_trade_no["buyer_pay_amount"]) == ("TRADE_SUCCESS", "88.00")

    # refunds: one, the same again (no money moves), one too many
    first = client.api_alipay_trade_refund(refund_amount="20.00", out_trade_no="PY-1", out_request_no="PY-1-R1")
    assert (first["code"], first["fund_change"], first["refund_fee"]) == ("10000", "Y", "20.00"), first
    replay = client.api_alipay_trade_refund(refund_amount="20.00", out_trade_no="PY-1", out_request_no="PY-1-R1")
    assert (replay["code"], replay["fund_change"], replay["refund_fee"]) == ("10000", "N", "20.00"), replay
    assert balances(live, shop) == (50_000 - 8_800 + 2_000, 6_800)
    over = client.api_alipay_trade_refund(refund_amount="70.00", out_trade_no="PY-1", out_request_no="PY-1-R2")
    assert (over["code"], over["sub_code"]) == ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"), over
    assert balances(live, shop) == (50_000 - 8_800 + 2_000, 6_800)  # refused: nothing moved
    found = client.api_alipay_trade_fastpay_refund_query("PY-1-R1", out_trade_no="PY-1")
    assert (found["refund_amount"], found["refund_status"]) == ("20.00", "REFUND_SUCCESS"), found
    never = client.api_alipay_trade_fastpay_refund_query("PY-1-R2", out_trade_no="PY-1")
    assert never["code"] == "10000" and "refund_amount" not in never  # Alipay's "no such refund"
    deliver(live)
    refunded = shop_server.forms()[1]
    assert (refunded["out_biz_no"], refunded["refund_fee"], refunded["trade_status"]) == ("PY-1-R1", "20.00",
                                                                                          "TRADE_SUCCESS")
    assert client.verify({k: v for k, v in refunded.items() if k != "sign"}, refunded["sign"])

    # close and cancel
    closed_paid = client.api_alipay_trade_close(out_trade_no="PY-1")
    assert (closed_paid["code"], closed_paid["sub_code"]) == ("40004", "ACQ.TRADE_STATUS_ERROR"), closed_paid
    created = client.api_alipay_trade_create(subject="活着", out_trade_no="PY-2", total_amount=25)
    assert created["code"] == "10000" and created["out_trade_no"] == "PY-2", created
    assert client.api_alipay_trade_close(out_trade_no="PY-2")["code"] == "10000"
    assert client.api_alipay_trade_query(out_trade_no="PY-2")["trade_status"] == "TRADE_CLOSED"
    client.api_alipay_trade_create(subject="围城", out_trade_no="PY-3", total_amount="15.50")
    cancelled = client.api_alipay_trade_cancel(out_trade_no="PY-3")
    assert (cancelled["code"], cancelled["action"], cancelled["retry_flag"]) == ("10000", "close", "N"), cancelled
    cancel_paid = client.api_alipay_trade_cancel(out_trade_no="PY-1")  # refunds what is left: 68.00
    assert cancel_paid["action"] == "refund"
    assert balances(live, shop) == (50_000, 0)

    # page pay: the browser goes to the gateway, then the cashier, then back to the shop, signed
    query = client.api_alipay_trade_page_pay(subject="平凡的世界", out_trade_no="PY-4", total_amount="66.60",
                                             return_url="https://book.example/return")
    sent = httpx.get(f"{shop.gateway}?{query}")
    assert sent.status_code == 303 and sent.headers["location"].startswith("/cashier/trd"), sent.text
    returned = pay_in_cashier(live, sent.headers["location"])
    assert (returned["out_trade_no"], returned["total_amount"], returned["method"]) == (
        "PY-4", "66.60", "alipay.trade.page.pay.return")
    signature = returned.pop("sign")
    assert client.verify(dict(returned), signature)
    assert balances(live, shop) == (50_000 - 6_660, 6_660)

    # the statement of a day that has ended: a zip with the CSV
    day = (live.call(lambda c: _now(c)) - timedelta(days=2)).date().isoformat()
    bill = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                             biz_content={"bill_type": "trade", "bill_date": day})
    assert bill["code"] == "10000", bill
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(bill["bill_download_url"]).content))
    [name] = archive.namelist()
    lines = archive.read(name).decode("gbk").splitlines()  # Alipay's files are read as GBK
    assert name == f"{shop.app_id}_{day.replace('-', '')}_业务明细.csv"
    assert lines[0] == "#支付宝业务明细查询" and lines[4].startswith("支付宝交易号,商户订单号,业务类型")
    assert "#交易合计：0笔，商家实收共0.00元" in lines
    today = client.server_api("alipay.data.dataservice.bill.downloadurl.query",
                              biz_content={"bill_type": "trade", "bill_date": _today(live)})
    assert (today["code"], today["sub_code"]) == ("40004", "isp.bill_not_exist")  # the day is not over


def test_python_alipay_sdk_refusals(live: Live, shop_server: ShopServer, beijing_time: None) -> None:
    """Alipay's refusals in Alipay's envelope: a wrong key, a bad amount, an unknown trade;
    nothing is created by a refused request."""
    from alipay import AliPay

    shop = Shop(live, shop_server.url)
    client = AliPay(appid=shop.app_id, app_private_key_string=shop.private_pkcs1,
                    alipay_public_key_string=shop.platform_public, sign_type="RSA2")
    client._gateway = shop.gateway
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    impostor = AliPay(appid=shop.app_id, app_private_key_string=other.decode(),
                      alipay_public_key_string=shop.platform_public, sign_type="RSA2")
    impostor._gateway = shop.gateway
    forged = impostor.api_alipay_trade_create(subject="x", out_trade_no="BAD-1", total_amount="1.00")
    assert (forged["code"], forged["sub_code"]) == ("40002", "isv.invalid-signature"), forged
    for amount in ("88.001", "-1.00", "1e3", "８８.００", "0.00"):
        refused = client.api_alipay_trade_create(subject="x", out_trade_no="BAD-2", total_amount=amount)
        assert (refused["code"], refused["sub_code"]) == ("40004", "ACQ.INVALID_PARAMETER"), (amount, refused)
    missing = client.api_alipay_trade_query(out_trade_no="BAD-1")
    assert (missing["code"], missing["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")
    assert client.api_alipay_trade_query(out_trade_no="BAD-2")["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    first = client.api_alipay_trade_create(subject="书", out_trade_no="OK-1", total_amount="10.00")
    assert first["code"] == "10000"
    changed = client.api_alipay_trade_create(subject="书", out_trade_no="OK-1", total_amount="12.00")
    assert (changed["code"], changed["sub_code"]) == ("40004", "ACQ.CONTEXT_INCONSISTENT")
    unpaid_refund = client.api_alipay_trade_refund(refund_amount="1.00", out_trade_no="OK-1")
    assert (unpaid_refund["code"], unpaid_refund["sub_code"]) == ("40004", "ACQ.TRADE_STATUS_ERROR")
    # a request from the past (its timestamp is 31 minutes old) is refused
    data = client.build_body("alipay.trade.query", {"out_trade_no": "OK-1"})
    data["timestamp"] = (live.call(lambda c: _now(c)) - timedelta(minutes=31)).astimezone(SHANGHAI).strftime(
        "%Y-%m-%d %H:%M:%S")
    old = json.loads(httpx.get(f"{shop.gateway}?{client.sign_data(data)}").text)["alipay_trade_query_response"]
    assert (old["code"], old["sub_code"]) == ("40002", "isv.invalid-timestamp")
    # wap pay: to the cashier; a return URL off the shop's registered website is refused before any trade
    wap = httpx.get(f"{shop.gateway}?" + client.api_alipay_trade_wap_pay(
        subject="书", out_trade_no="WAP-1", total_amount="5.00", return_url="https://book.example/m/back"))
    assert wap.status_code == 303 and wap.headers["location"].startswith("/cashier/trd"), wap.text
    elsewhere = httpx.get(f"{shop.gateway}?" + client.api_alipay_trade_wap_pay(
        subject="书", out_trade_no="WAP-2", total_amount="5.00", return_url="https://evil.example/back"))
    assert elsewhere.status_code == 400 and "RETURN_URL" not in elsewhere.text and "book.example" in elsewhere.text
    assert client.api_alipay_trade_query(out_trade_no="WAP-2")["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    unknown = httpx.get(shop.gateway, params={"method": "alipay.trade.pay.nothing", "app_id": shop.app_id,
                                              "sign_type": "RSA2", "sign": "x", "timestamp": "2026-01-01 00:00:00"})
    assert unknown.status_code == 200 and json.loads(unknown.text)["error_response"]["sub_code"] == \
        "isv.invalid-method"


# ---------------------------------------------------------------------- alipay-sdk-python (official)


def test_official_alipay_sdk(live: Live, shop_server: ShopServer, beijing_time: None, official_port_fix: None
                             ) -> None:
    from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
    from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
    from alipay.aop.api.domain.AlipayDataDataserviceBillDownloadurlQueryModel import (
        AlipayDataDataserviceBillDownloadurlQueryModel,
    )
    from alipay.aop.api.domain.AlipayTradeCancelModel import AlipayTradeCancelModel
    from alipay.aop.api.domain.AlipayTradeCloseModel import AlipayTradeCloseModel
    from alipay.aop.api.domain.AlipayTradeCreateModel import AlipayTradeCreateModel
    from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel
    from alipay.aop.api.domain.AlipayTradePagePayModel import AlipayTradePagePayModel
    from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
    from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel
    from alipay.aop.api.request.AlipayDataDataserviceBillDownloadurlQueryRequest import (
        AlipayDataDataserviceBillDownloadurlQueryRequest,
    )
    from alipay.aop.api.request.AlipayTradeCancelRequest import AlipayTradeCancelRequest
    from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest
    from alipay.aop.api.request.AlipayTradeCreateRequest import AlipayTradeCreateRequest
    from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest
    from alipay.aop.api.request.AlipayTradePagePayRequest import AlipayTradePagePayRequest
    from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
    from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest
    from alipay.aop.api.response.AlipayTradeQueryResponse import AlipayTradeQueryResponse
    from alipay.aop.api.util.SignatureUtils import get_sign_content, verify_with_rsa
    from rsa.pkcs1 import VerificationError

    shop = Shop(live, shop_server.url)
    user_id = buyer(live, 30_000)
    config = AlipayClientConfig()
    config.server_url, config.app_id = shop.gateway, shop.app_id
    config.app_private_key, config.alipay_public_key = shop.private_pkcs1, shop.platform_public
    client = DefaultAlipayClient(config)

    def execute(request: Any) -> dict[str, Any]:
        return dict(json.loads(client.execute(request)))  # the library has verified the platform's signature

    model = AlipayTradeCreateModel()
    model.out_trade_no, model.total_amount, model.subject = "OF-1", "120.00", "红楼梦 四册"
    create = AlipayTradeCreateRequest(biz_model=model)
    create.notify_url = shop_server.url
    made = execute(create)
    assert made["code"] == "10000", made
    trade_no = made["trade_no"]

    query_model = AlipayTradeQueryModel()
    query_model.trade_no = trade_no
    answer = AlipayTradeQueryResponse()
    answer.parse_response_content(client.execute(AlipayTradeQueryRequest(biz_model=query_model)))
    assert answer.is_success() and answer.trade_status == "WAIT_BUYER_PAY" and answer.total_amount == "120.00"

    pay(live, user_id, trade_no)
    deliver(live)
    [note] = shop_server.forms()
    sign = note.pop("sign")
    note.pop("sign_type")
    assert verify_with_rsa(shop.platform_public, get_sign_content(note).encode(), sign)
    with pytest.raises(VerificationError):  # the official library raises on a forged notification
        verify_with_rsa(shop.platform_public, get_sign_content({**note, "trade_status": "TRADE_CLOSED"}).encode(), sign)

    refund_model = AlipayTradeRefundModel()
    refund_model.out_trade_no, refund_model.refund_amount, refund_model.out_request_no = "OF-1", "20.50", "OF-1-R1"
    refunded = execute(AlipayTradeRefundRequest(biz_model=refund_model))
    assert (refunded["fund_change"], refunded["refund_fee"]) == ("Y", "20.50"), refunded
    assert execute(AlipayTradeRefundRequest(biz_model=refund_model))["fund_change"] == "N"
    refund_model.out_request_no, refund_model.refund_amount = "OF-1-R2", "100.00"
    assert execute(AlipayTradeRefundRequest(biz_model=refund_model))["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert balances(live, shop) == (30_000 - 12_000 + 2_050, 12_000 - 2_050)
    rq = AlipayTradeFastpayRefundQueryModel()
    rq.out_trade_no, rq.out_request_no = "OF-1", "OF-1-R1"
    assert execute(AlipayTradeFastpayRefundQueryRequest(biz_model=rq))["refund_amount"] == "20.50"

    cancel_model = AlipayTradeCancelModel()
    cancel_model.out_trade_no = "OF-1"
    assert execute(AlipayTradeCancelRequest(biz_model=cancel_model))["action"] == "refund"
    assert balances(live, shop) == (30_000, 0)
    close_model = AlipayTradeCloseModel()
    close_model.out_trade_no = "OF-1"
    assert execute(AlipayTradeCloseRequest(biz_model=close_model))["sub_code"] == "ACQ.TRADE_STATUS_ERROR"

    # page pay as the official library writes it: an HTML form the browser POSTs to the gateway
    page_model = AlipayTradePagePayModel()
    page_model.out_trade_no, page_model.total_amount, page_model.subject = "OF-2", "9.90", "读者"
    page_model.product_code = "FAST_INSTANT_TRADE_PAY"
    page_request = AlipayTradePagePayRequest(biz_model=page_model)
    page_request.return_url = "https://book.example/return"
    form = client.page_execute(page_request, http_method="POST")
    action = html.unescape(re.search(r'action="([^"]+)"', form).group(1))  # type: ignore[union-attr]
    fields = {name: html.unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form)}
    sent = httpx.post(action, data=fields)
    assert sent.status_code == 303, sent.text
    returned = pay_in_cashier(live, sent.headers["location"])
    sign = returned.pop("sign")
    returned.pop("sign_type")
    assert verify_with_rsa(shop.platform_public, get_sign_content(returned).encode(), sign)
    assert balances(live, shop) == (30_000 - 990, 990)

    bill_model = AlipayDataDataserviceBillDownloadurlQueryModel()
    bill_model.bill_type = "trade"
    bill_model.bill_date = (live.call(lambda c: _now(c)) - timedelta(days=2)).date().isoformat()
    url = execute(AlipayDataDataserviceBillDownloadurlQueryRequest(biz_model=bill_model))["bill_download_url"]
    assert zipfile.ZipFile(io.BytesIO(httpx.get(url).content)).namelist()
    assert httpx.get(url.replace("sign=", "sign=A")).status_code == 404  # a link that is not ours


async def _now(c: Container) -> Any:
    return c.clock.now().astimezone(SHANGHAI)


def _today(live: Live) -> str:
    return str(live.call(lambda c: _now(c)).date().isoformat())
