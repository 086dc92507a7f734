"""A shop's WeChat Pay v3 code against mobipay: the ``wechatpayv3`` library from PyPI (2.0.4,
public-key mode) pointed at a live server with the shop's merchant id, key and APIv3 key:
Native and H5 orders, query by either number, close, refunds (replayed, over-refunded),
refund query; the encrypted notification decrypted and verified by the library's own
``callback``, a tampered one refused; balances after each money step, on both databases."""

from __future__ import annotations

import json
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e import test_alipay_clients as alipay_shop
from tests.e2e.test_alipay_clients import ShopServer, balances, buyer, deliver, pay
from tests.e2e.test_merchants_api import application
from tests.support.live import Live

#: The live server (loopback notify URLs allowed) and the shop's notify server: the Alipay test's.
live = alipay_shop.live
shop_server = alipay_shop.shop_server


class Shop:
    """A shop with an app of the WeChat Pay protocol: its API key pair and its APIv3 key."""

    def __init__(self, live: Live, notify_url: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.merchant_id = httpx.post(f"{live.url}/v1/merchant-applications", json=application()).json()["id"]
        self.mchid, self.apiv3_key = live.call(lambda c: c.merchants.create_app(
            self.merchant_id, "RSA2", public_key=public, notify_url=notify_url, protocol="wechat"))
        platform = httpx.get(f"{live.url}/v1/merchant/platform-key")
        self.platform_public, self.platform_key_id = platform.text, platform.headers["wechatpay-public-key-id"]


def client(live: Live, shop: Shop, notify_url: str, kind: str = "NATIVE") -> Any:
    from wechatpayv3 import WeChatPay, WeChatPayType

    wxpay = WeChatPay(wechatpay_type=getattr(WeChatPayType, kind), mchid=shop.mchid, private_key=shop.private_pem,
                      cert_serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1", appid="wx0000000000000001",
                      apiv3_key=shop.apiv3_key, notify_url=notify_url, public_key=shop.platform_public,
                      public_key_id=shop.platform_key_id)
    wxpay._core._gate_way = live.url  # the one line a shop changes (besides its keys)
    return wxpay


def test_wechatpayv3(live: Live, shop_server: ShopServer) -> None:
    shop = Shop(live, shop_server.url)
    user_id = buyer(live, 50_000)
    wxpay = client(live, shop, shop_server.url)

    code, message = wxpay.pay(description="三体 全集", out_trade_no="WX-1", amount={"total": 8800})
    assert code == 200 and json.loads(message)["code_url"].startswith(f"{live.url}/cashier/trd"), message
    code, message = wxpay.query(out_trade_no="WX-1")
    order = json.loads(message)
    assert (code, order["trade_state"], order["amount"]["total"]) == (200, "NOTPAY", 8800), message
    transaction_id = order["transaction_id"]

    pay(live, user_id, transaction_id)
    assert balances(live, shop) == (50_000 - 8_800, 8_800)  # type: ignore[arg-type]
    deliver(live)
    [(headers, body)] = [(h, b) for h, _, b in shop_server.raw]
    notice = wxpay.callback(headers, body)
    assert notice["event_type"] == "TRANSACTION.SUCCESS", notice
    resource = notice["resource"]
    assert (resource["out_trade_no"], resource["trade_state"], resource["amount"]["payer_total"]) == (
        "WX-1", "SUCCESS", 8800)
    tampered = body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.FAILED!"')
    assert wxpay.callback(headers, tampered) is None  # the platform's signature does not cover it

    code, message = wxpay.query(transaction_id=transaction_id)
    assert code == 200 and json.loads(message)["trade_state"] == "SUCCESS"

    refund = {"refund": 2000, "total": 8800, "currency": "CNY"}
    code, message = wxpay.refund(out_refund_no="WX-1-R1", amount=refund, out_trade_no="WX-1")
    assert code == 200 and json.loads(message)["status"] == "SUCCESS", message
    code, message = wxpay.refund(out_refund_no="WX-1-R1", amount=refund, out_trade_no="WX-1")  # again
    assert code == 200 and json.loads(message)["amount"]["refund"] == 2000
    assert balances(live, shop) == (50_000 - 8_800 + 2_000, 6_800)  # type: ignore[arg-type]
    code, message = wxpay.refund(out_refund_no="WX-1-R2", amount={**refund, "refund": 7000}, out_trade_no="WX-1")
    assert (code, json.loads(message)["code"]) == (400, "INVALID_REQUEST"), message
    assert balances(live, shop) == (50_000 - 8_800 + 2_000, 6_800)  # type: ignore[arg-type]
    code, message = wxpay.query_refund(out_refund_no="WX-1-R1")
    assert code == 200 and json.loads(message)["amount"]["refund"] == 2000
    code, message = wxpay.query_refund(out_refund_no="WX-1-R9")
    assert (code, json.loads(message)["code"]) == (404, "RESOURCE_NOT_EXISTS")
    deliver(live)
    refunded = wxpay.callback(*[(h, b) for h, _, b in shop_server.raw][1])
    assert (refunded["event_type"], refunded["resource"]["out_refund_no"]) == ("REFUND.SUCCESS", "WX-1-R1")

    code, _ = wxpay.pay(description="活着", out_trade_no="WX-2", amount={"total": 2500})
    code, message = wxpay.close(out_trade_no="WX-2")
    assert code == 204, message
    assert json.loads(wxpay.query(out_trade_no="WX-2")[1])["trade_state"] == "CLOSED"
    code, message = wxpay.close(out_trade_no="WX-1")  # paid: not closed
    assert code == 400 and json.loads(message)["code"] == "INVALID_REQUEST"

    h5 = client(live, shop, shop_server.url, "H5")
    code, message = h5.pay(description="读者", out_trade_no="WX-3", amount={"total": 990},
                           scene_info={"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}})
    assert code == 200 and "/cashier/trd" in json.loads(message)["h5_url"], message


def test_wechatpayv3_refusals(live: Live, shop_server: ShopServer) -> None:
    shop = Shop(live, shop_server.url)
    wxpay = client(live, shop, shop_server.url)
    for amount in ({"total": 88.5}, {"total": "8800"}, {"total": 0}, {"total": 100, "currency": "USD"}):
        code, message = wxpay.pay(description="x", out_trade_no="BAD-1", amount=amount)
        assert (code, json.loads(message)["code"]) == (400, "PARAM_ERROR"), (amount, message)
    code, message = wxpay.query(out_trade_no="BAD-1")
    assert (code, json.loads(message)["code"]) == (404, "ORDER_NOT_EXIST")  # nothing was made
    assert wxpay.pay(description="书", out_trade_no="OK-1", amount={"total": 100})[0] == 200
    code, message = wxpay.pay(description="书", out_trade_no="OK-1", amount={"total": 200})
    assert (code, json.loads(message)["code"]) == (403, "OUT_TRADE_NO_USED")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    impostor = client(live, shop, shop_server.url)
    from wechatpayv3.utils import load_private_key

    impostor._core._private_key = load_private_key(other)
    code, message = impostor.query(out_trade_no="OK-1")
    assert (code, json.loads(message)["code"]) == (401, "SIGN_ERROR")
    unsigned = httpx.get(f"{live.url}/v3/pay/transactions/out-trade-no/OK-1", params={"mchid": shop.mchid})
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGN_ERROR")
