"""Merchant signatures and credit codes: the documented test vectors still hold, tampering
is refused, GB 32100 check characters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.kernel.errors import MobipayError
from mobipay.merchants.alipay import request_string
from mobipay.merchants.model import check_credit_code, credit_code_check_char, signing_string
from mobipay.merchants.signing import (
    new_rsa_key,
    sign_hmac,
    sign_rsa2,
    sign_rsa2_text,
    verify_hmac,
    verify_rsa2,
    verify_rsa2_text,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/merchant-signatures.md").read_text(encoding="utf-8")
PRIVATE = (ROOT / "tests/data/merchant_test_key.pem").read_bytes()
PUBLIC = (ROOT / "tests/data/merchant_test_key.pub.pem").read_bytes()


def blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```(?:json)?\n(.*?)```", DOC, flags=re.S)]


def test_the_documented_vectors_hold() -> None:
    params_text, string, mac, rsa_sig, public, gateway_text, gateway_string, gateway_sig = blocks()
    params = json.loads(params_text)
    assert signing_string(params) == string
    assert sign_hmac(params, b"test-hmac-key") == mac
    assert sign_rsa2(params, PRIVATE) == rsa_sig
    assert public == PUBLIC.decode().strip()
    verify_rsa2(params, rsa_sig, PUBLIC)
    verify_hmac(params, mac, b"test-hmac-key")
    # the gateway's rule signs sign_type too: the same key, another string
    gateway = json.loads(gateway_text)
    assert request_string(gateway) == gateway_string and "sign_type=RSA2" in gateway_string
    assert sign_rsa2_text(gateway_string, PRIVATE) == gateway_sig
    verify_rsa2_text(request_string(gateway), gateway_sig, PUBLIC)
    assert code(verify_rsa2_text, request_string({**gateway, "sign_type": "RSA"}), gateway_sig, PUBLIC) == \
        "BAD_SIGNATURE"


def code(fn: object, *args: object) -> str:
    with pytest.raises(MobipayError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code


def test_tampering_is_refused() -> None:
    params = json.loads(blocks()[0])
    signature = sign_rsa2(params, PRIVATE)
    assert code(verify_rsa2, {**params, "total_amount": "1"}, signature, PUBLIC) == "BAD_SIGNATURE"
    assert code(verify_rsa2, params, "not base64!", PUBLIC) == "BAD_SIGNATURE"
    _, other_public = new_rsa_key()
    assert code(verify_rsa2, params, signature, other_public) == "BAD_SIGNATURE"
    assert code(verify_hmac, params, sign_hmac(params, b"k1"), b"k2") == "BAD_SIGNATURE"
    # the signature covers what is sent, empty and sign parameters aside
    assert signing_string({**params, "sign": "x", "extra": ""}) == signing_string(params)


def test_credit_codes() -> None:
    assert check_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    for bad in ("91350100M000100Y44", "91350100M000100Y4", "9135010OM000100Y43", "91ABCDEFM000100Y43", 123):
        assert code(check_credit_code, bad) == "INVALID_CREDIT_CODE", bad


CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@given(st.tuples(st.text(CHARS, min_size=2, max_size=2), st.text("0123456789", min_size=6, max_size=6),
                 st.text(CHARS, min_size=9, max_size=9)).map("".join))
def test_every_completed_code_checks(first17: str) -> None:
    assert check_credit_code(first17 + credit_code_check_char(first17)).startswith(first17)


def test_an_empty_key_or_a_hostile_signature_never_verifies() -> None:
    """No key means no signature can be right (an empty HMAC key is one anybody holds), and a
    signature that is not ASCII is refused as BAD_SIGNATURE, never a 500."""
    params = json.loads(blocks()[0])
    assert code(verify_hmac, params, sign_hmac(params, b""), b"") == "BAD_SIGNATURE"
    assert code(verify_rsa2, params, sign_rsa2(params, PRIVATE), b"") == "BAD_SIGNATURE"
    for hostile in ("é" * 64, "", "\x00" * 64, sign_hmac(params, b"test-hmac-key") + "é"):
        assert code(verify_hmac, params, hostile, b"test-hmac-key") == "BAD_SIGNATURE"
        assert code(verify_rsa2, params, hostile, PUBLIC) == "BAD_SIGNATURE"
    verify_hmac(params, sign_hmac(params, b"test-hmac-key").upper(), b"test-hmac-key")  # hex in either case
