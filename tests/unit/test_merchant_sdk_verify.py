"""The merchant SDK's verification, attacked as a forger would: the scheme a message names
never chooses how it is checked (the client's configured key type does), an empty key never
verifies, and hostile signature values are a plain "no", never an exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from mobipay.merchants.signing import new_rsa_key, sign_hmac, sign_rsa2
from mobipay_sdk.merchant import MerchantClient, signing_string

PLATFORM_PRIVATE, PLATFORM_PUBLIC = new_rsa_key()
SHOP_PRIVATE, _ = new_rsa_key()
APP_KEY = "0f" * 32


def notification(**overrides: str) -> dict[str, Any]:
    """A TRADE_SUCCESS notification for a trade nobody paid (what a forger would send)."""
    return {"notify_id": "ntf_1", "notify_type": "trade_status_sync", "notify_time": "2026-11-25T10:30:00+00:00",
            "app_id": "app_1", "trade_no": "trd_1", "out_trade_no": "JD-1", "trade_status": "TRADE_SUCCESS",
            "total_amount": "8800", "refunded_amount": "0", **overrides}


def rsa_client() -> MerchantClient:
    return MerchantClient("http://pay.invalid", "app_1", private_key_pem=SHOP_PRIVATE,
                          platform_key_pem=PLATFORM_PUBLIC)


def hmac_client(platform: bool = True) -> MerchantClient:
    return MerchantClient("http://pay.invalid", "app_1", hmac_key=APP_KEY,
                          platform_key_pem=PLATFORM_PUBLIC if platform else None)


def empty_key_hmac(params: dict[str, Any]) -> str:
    return hmac.new(b"", signing_string(params).encode(), hashlib.sha256).hexdigest()


def test_an_rsa2_client_refuses_a_message_marked_hmac() -> None:
    """The reported hole: a forged TRADE_SUCCESS marked HMAC and keyed with the empty key."""
    forged = notification()
    forged.update(sign_type="HMAC", sign=empty_key_hmac(forged))
    client = rsa_client()
    assert client.verify_notification(forged) is False
    assert client.verify(forged) is False
    # even keyed with a guess of the app's key, HMAC is not what this client checks
    guessed = notification()
    guessed.update(sign_type="HMAC", sign=sign_hmac(guessed, APP_KEY.encode()))
    assert client.verify_notification(guessed) is False


def test_the_platforms_real_notification_verifies_for_both_kinds_of_client() -> None:
    real = notification()
    real.update(sign_type="RSA2", sign=sign_rsa2(real, PLATFORM_PRIVATE))
    assert rsa_client().verify_notification(real) is True
    assert hmac_client().verify_notification(real) is True  # notifications are RSA2 by the platform key
    # the scheme field is not signed: dropping it changes nothing, naming another refuses
    assert rsa_client().verify_notification({k: v for k, v in real.items() if k != "sign_type"}) is True
    assert rsa_client().verify_notification({**real, "sign_type": "HMAC"}) is False
    assert rsa_client().verify_notification({**real, "trade_status": "TRADE_CLOSED"}) is False


def test_an_hmac_client_checks_notifications_with_the_platform_key_only() -> None:
    """An HMAC app's notification is still RSA2: one signed with the app key (or any HMAC)
    is refused, and a client without the platform key cannot verify notifications at all."""
    keyed = notification()
    keyed.update(sign_type="HMAC", sign=sign_hmac(keyed, APP_KEY.encode()))
    assert hmac_client().verify_notification(keyed) is False
    with pytest.raises(ValueError, match="platform_key_pem"):
        hmac_client(platform=False).verify_notification(keyed)


def test_answers_are_checked_with_the_clients_own_scheme() -> None:
    answer = {"trade_no": "trd_1", "out_trade_no": "JD-1", "trade_status": "TRADE_SUCCESS"}
    by_app_key = {**answer, "sign_type": "HMAC", "sign": sign_hmac(answer, APP_KEY.encode())}
    by_platform = {**answer, "sign_type": "RSA2", "sign": sign_rsa2(answer, PLATFORM_PRIVATE)}
    assert hmac_client().verify(by_app_key) is True
    assert hmac_client().verify(by_platform) is False  # an HMAC app's answers are HMAC
    assert rsa_client().verify(by_platform) is True
    assert rsa_client().verify(by_app_key) is False
    forged = {**answer, "sign_type": "HMAC", "sign": empty_key_hmac(answer)}
    assert rsa_client().verify(forged) is False and hmac_client().verify(forged) is False


@pytest.mark.parametrize("sign", ["", "é" * 64, "not base64!", None, 12, ["a"], {"a": 1}, "00" * 32,
                                  base64.b64encode(b"\0" * 256).decode()])
def test_hostile_signature_values_are_a_plain_no(sign: object) -> None:
    message: dict[str, Any] = notification()
    message["sign"] = sign
    for client in (rsa_client(), hmac_client()):
        assert client.verify_notification(message) is False
        assert client.verify({**message, "sign_type": client.sign_type}) is False


def test_empty_keys_are_refused_when_the_client_is_made() -> None:
    with pytest.raises(ValueError, match="hmac_key"):
        MerchantClient("http://pay.invalid", "app_1", hmac_key="")
    with pytest.raises(ValueError, match="PEM"):
        MerchantClient("http://pay.invalid", "app_1", private_key_pem=b"")
    with pytest.raises(ValueError, match="either"):
        MerchantClient("http://pay.invalid", "app_1")
    with pytest.raises(ValueError, match="either"):
        MerchantClient("http://pay.invalid", "app_1", private_key_pem=SHOP_PRIVATE, hmac_key=APP_KEY)
    with pytest.raises(ValueError, match="RSA"):
        MerchantClient("http://pay.invalid", "app_1", private_key_pem=SHOP_PRIVATE, platform_key_pem=b"")
