"""Web addresses from outside, parsed as browsers parse them: the known bypass vectors of
open-redirect and SSRF filters are refused, plain addresses keep their meaning, and the
public-address rule knows every private, local and embedded-IPv4 form."""

from __future__ import annotations

import ipaddress

import pytest

from mobipay.kernel.urls import AddressRefused, is_public, parse_networks, parse_web_address

#: (address, what a browser would take as the host) for addresses we accept.
ACCEPTED = [
    ("https://shop0.example/return", "shop0.example"),
    ("HTTPS://Shop0.EXAMPLE/Return?A=1#Top", "shop0.example"),
    ("http://shop0.example:8080/x", "shop0.example"),
    ("https://shop0.example?x=1", "shop0.example"),
    ("https://京东.example/订单?id=1", "xn--xhq9m.example"),
    ("https://xn--xhq9m.example/", "xn--xhq9m.example"),
    ("https://shop0。example/", "shop0.example"),  # the ideographic full stop is a dot to browsers
    ("https://ｓｈｏｐ０.example/", "shop0.example"),  # full-width letters are mapped
    ("https://93.184.215.14/notify", "93.184.215.14"),
    ("https://[2001:db8::1]:8443/", "2001:db8::1"),
    ("https://shop0.example/a%2Fb/../c", "shop0.example"),
]

#: Addresses with a meaning that differs between parsers, or that is not http(s).
REFUSED = [
    "https://evil.example\\@shop0.example/",  # the reported open redirect
    "https://evil.example\\.shop0.example/",
    "https://shop0.example\\evil.example/",
    "https://evil.example@shop0.example/",
    "https://shop0.example@evil.example/",
    "https://user:pass@shop0.example/",
    "https://@shop0.example/",
    "https:/evil.example/",
    "https:evil.example/",
    "https:///evil.example/",
    "https:////evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "javascript:alert(1)//https://shop0.example/",
    "JavaScript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "ftp://shop0.example/",
    "gopher://127.0.0.1:6379/_INFO",
    " https://evil.example/",
    "https://evil.example/\n",
    "ht\ttps://evil.example/",
    "https://evil\t.example/",
    "https://evil.example\u202e/",
    "https://shop0.example\u200b/",
    "https://evil%2eexample/",
    "https://%65vil.example/",
    "https://shop0.example./",
    "https://shop0..example/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://127.0.0.01/",
    "https://1.2.3.256/",
    "https://shop0.example.0x10/",
    "https://[::1/",
    "https://[fe80::1%25eth0]/",
    "https://[zz::1]/",
    "https://shop0.example:0/",
    "https://shop0.example:65536/",
    "https://shop0.example:+80/",
    "https://shop0.example:/",
    "https://shop0.example:８０/",
    "https://xn--zz.example/",
    "https://-evil.example/",
    "https://evil_.example/?" + "x" * 3000,
    "https://",
    "",
]


@pytest.mark.parametrize(("raw", "host"), ACCEPTED)
def test_plain_addresses_keep_their_meaning(raw: str, host: str) -> None:
    address = parse_web_address(raw)
    assert address.host == host
    assert parse_web_address(str(address)) == address  # what we send is what we checked


@pytest.mark.parametrize("raw", REFUSED)
def test_ambiguous_or_foreign_addresses_are_refused(raw: str) -> None:
    with pytest.raises(AddressRefused) as info:
        parse_web_address(raw)
    assert str(info.value)  # a sentence saying what to do


def test_serialisation() -> None:
    address = parse_web_address("HTTPS://京东.example:8443/pay?x=1#done")
    assert str(address) == "https://xn--xhq9m.example:8443/pay?x=1#done"
    assert str(address.with_query("out_trade_no=1")) == "https://xn--xhq9m.example:8443/pay?x=1&out_trade_no=1#done"
    assert str(parse_web_address("https://shop0.example").with_query("a=b")) == "https://shop0.example/?a=b"
    assert parse_web_address("http://[::ffff:127.0.0.1]/").host == "::ffff:7f00:1"
    assert parse_web_address("https://shop0.example/").effective_port == 443


@pytest.mark.parametrize("ip", [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "169.254.0.1", "100.64.0.1", "192.0.0.1", "192.0.2.1", "198.18.0.1", "198.51.100.1",
    "203.0.113.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1", "::10.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1",
])
def test_private_local_and_embedded_addresses_are_not_public(ip: str) -> None:
    assert not is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_are_public(ip: str) -> None:
    assert is_public(ipaddress.ip_address(ip))


def test_networks_setting() -> None:
    assert [str(n) for n in parse_networks(" 127.0.0.1/32, ::1/128 ,, 10.1.2.0/24")] == [
        "127.0.0.1/32", "::1/128", "10.1.2.0/24"]
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("127.0.0.1/32, localhost")
