"""The terminal signature's string and its worked vectors (docs/instore.md), byte for byte.

The key is RFC 8032's TEST 1 key (section 7.1), for tests only: its public half is the
RFC's, so the vectors check our Ed25519 against the standard as well as our string."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from mobipay.instore.signature import check_public_key, public_of, sign, signing_string, verifies

SEED = base64.b64encode(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")).decode()
PUBLIC = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
TERMINAL = "trm_0000000000000000000000000000001"
PING = ("MOBIPAY-TERMINAL-V1\ntrm_0000000000000000000000000000001\nGET\n/v1/terminal/ping\n1795573800\n"
        "n0nce-2026-0001\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
PING_SIGNATURE = "kyjbKzdEuZ8HMxhmfChuMIF2gH/1dZapv/2fN4MwXwZQsEeSu+Zv5fWC4KK0Yg+sPoEIzV3AXZSwbDvpgyAwAQ=="
BODY = '{"amount":2372,"subject":"华新便利店"}'.encode()
PAYMENT = ("MOBIPAY-TERMINAL-V1\ntrm_0000000000000000000000000000001\nPOST\n/v1/terminal/payments?store=sto_1\n"
           "1795573800\nn0nce-2026-0002\nf3424c97c5a580c37dab7c194565ea192469449150313a7b11988a4ba990a449")
PAYMENT_SIGNATURE = "LBc2y+Pe/dmikI4iisz1VRMEB59AI/4xHf78pFbaG5vbi6rPjI1vGVoxe/9bUiYGqe476zS5160HdxxYuJhJAg=="


def test_the_key_is_rfc_8032_test_1() -> None:
    assert base64.b64decode(public_of(SEED)).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert public_of(SEED) == PUBLIC == check_public_key(PUBLIC)


def test_the_vectors() -> None:
    ping = signing_string(TERMINAL, "get", "/v1/terminal/ping", "1795573800", "n0nce-2026-0001", b"")
    assert ping == PING and sign(SEED, ping) == PING_SIGNATURE and verifies(PUBLIC, PING, PING_SIGNATURE)
    payment = signing_string(TERMINAL, "POST", "/v1/terminal/payments?store=sto_1", "1795573800", "n0nce-2026-0002",
                             BODY)
    assert payment.endswith(hashlib.sha256(BODY).hexdigest())
    assert payment == PAYMENT and sign(SEED, payment) == PAYMENT_SIGNATURE


def test_anything_else_does_not_verify() -> None:
    assert not verifies(PUBLIC, PING.replace("GET", "PUT"), PING_SIGNATURE)
    assert not verifies(PUBLIC, PING, PAYMENT_SIGNATURE)
    for junk in ("", "not base64", base64.b64encode(b"x" * 63).decode(), "签名"):
        assert not verifies(PUBLIC, PING, junk)


def test_the_docs_carry_the_vectors() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "instore.md").read_text(encoding="utf-8")
    for value in (PING, PING_SIGNATURE, PAYMENT, PAYMENT_SIGNATURE, PUBLIC, SEED):
        assert value in text, value
