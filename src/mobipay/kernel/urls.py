"""Web addresses that come from outside (a merchant's notify URL, a shop's return URL):
parsed the way a browser parses them (the WHATWG URL standard), and refused wherever a
browser, an HTTP client and Python's ``urllib`` could disagree about where they lead.

Why a parser of our own: ``urllib.parse`` and browsers read the same text differently.
``https://evil.example\\@shop.example/`` is host ``shop.example`` to Python and
``evil.example`` to a browser (which reads ``\\`` as ``/``); ``http://2130706433/`` is
127.0.0.1 to a browser and to ``getaddrinfo``. Rather than reproduce every quirk, this
module accepts only addresses whose meaning is the same everywhere and refuses the rest,
each with a sentence that says how to write the address instead:

* scheme ``http`` or ``https`` followed by exactly ``//``;
* no user information (``@``), backslash, percent sign in the host, control character,
  space or invisible formatting character anywhere;
* a host that is a domain name (international names are converted to their ``xn--`` form,
  as browsers do), an IPv4 address written as four decimal numbers, or a bracketed IPv6
  address; no trailing dot, no empty label, no other spelling of a number
  (``0x7f.1``, ``0177.0.0.1``, ``127.1``);
* a decimal port from 1 to 65535.

:func:`is_public` says whether an IP address is one the public internet routes to
(not loopback, private, link-local, shared, reserved, multicast, documentation, nor an
IPv6 form that embeds such an IPv4 address).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_LENGTH = 2048
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_DOTTED_QUAD = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
_NUMBER = re.compile(r"\d+|0[xX][0-9A-Fa-f]*")
_DEFAULT_PORT = {"http": 80, "https": 443}

#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052/8215).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
#: The deprecated IPv4-compatible form ``::a.b.c.d`` (and ``::``, ``::1``).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class AddressRefused(ValueError):
    """Why an address is refused, as one sentence a merchant can act on."""


@dataclass(frozen=True, slots=True)
class WebAddress:
    """An http(s) address whose meaning is the same to a browser and to us."""

    scheme: str  # http | https
    host: str  # a lower-case ASCII domain (xn-- labels for international names) or an IP address
    ip: IPAddress | None  # the host, when it is an IP address
    port: int | None  # as written (None: the scheme's default)
    path: str  # "/" at least
    query: str | None  # without the "?"
    fragment: str | None  # without the "#"

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORT[self.scheme]

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def with_query(self, extra: str) -> WebAddress:
        """The same address with ``extra`` (already encoded) appended to its query."""
        query = f"{self.query}&{extra}" if self.query else extra
        return WebAddress(self.scheme, self.host, self.ip, self.port, self.path, query, self.fragment)

    def __str__(self) -> str:
        """The address as a browser would serialise it (so what was checked is what is sent)."""
        text = f"{self.scheme}://{self.authority}{self.path}"
        if self.query is not None:
            text += f"?{self.query}"
        if self.fragment is not None:
            text += f"#{self.fragment}"
        return text


def _invisible(ch: str) -> bool:
    """Controls, spaces and formatting characters (bidi overrides, zero-width joiners…),
    which browsers strip or which make an address read differently from what it is."""
    return ch <= " " or ch == "\x7f" or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cs", "Cn")


def parse_web_address(raw: object, *, max_length: int = MAX_LENGTH) -> WebAddress:
    """``raw`` as an unambiguous http(s) address, or :class:`AddressRefused` saying why not."""
    if not isinstance(raw, str) or not raw:
        raise AddressRefused("give an http(s) address, e.g. https://shop.example/path")
    if len(raw) > max_length:
        raise AddressRefused(f"the address is longer than {max_length} characters")
    if any(_invisible(ch) for ch in raw):
        raise AddressRefused("the address contains a space, a control or an invisible character: "
                             "percent-encode it (%20) or remove it")
    if "\\" in raw:
        raise AddressRefused("the address contains a backslash, which browsers read as '/': use '/'")
    scheme_match = _SCHEME.match(raw)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme not in _DEFAULT_PORT:
        raise AddressRefused("only http and https addresses are accepted, e.g. https://shop.example/path")
    rest = raw[len(scheme) + 1:]
    if not rest.startswith("//") or rest.startswith("///"):
        raise AddressRefused(f"write the address as {scheme}://host/path (exactly two slashes)")
    rest = rest[2:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, rest = rest[:end], rest[end:]
    if "@" in authority:
        raise AddressRefused("the address has user information before '@' (user:password@host), which hides "
                             "the real host: remove it")
    if "%" in authority:
        raise AddressRefused("the host is percent-encoded: write it as plain text")
    host_text, port = _split_port(authority)
    host, ip = _host(host_text)
    path, query, fragment = rest, None, None
    if "#" in path:
        path, fragment = path.split("#", 1)
    if "?" in path:
        path, query = path.split("?", 1)
    return WebAddress(scheme, host, ip, port, path or "/", query, fragment)


def _split_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise AddressRefused("an IPv6 host is written in brackets, e.g. http://[2001:db8::1]/")
        host, after = authority[:close + 1], authority[close + 1:]
        if after and not after.startswith(":"):
            raise AddressRefused("after an IPv6 host in brackets only ':port' may follow")
        port_text = after[1:] if after else None
    elif ":" in authority:
        host, port_text = authority.split(":", 1)
    else:
        host, port_text = authority, None
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and 0 < int(port_text) <= 65535):
        raise AddressRefused("the port is a number from 1 to 65535, e.g. https://shop.example:8443/")
    return host, int(port_text)


def _host(text: str) -> tuple[str, IPAddress | None]:
    if not text:
        raise AddressRefused("the address has no host, e.g. https://shop.example/path")
    if text.startswith("["):
        try:
            ip6 = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise AddressRefused("the IPv6 address in brackets is not valid") from None
        return ip6.compressed, ip6
    if text.isascii():
        host = text.lower()
        if any(label.startswith("xn--") for label in host.split(".")):
            try:  # a browser refuses a malformed international label; so do we
                idna.decode(host)
            except idna.IDNAError:
                raise AddressRefused("the host has an 'xn--' label that is not valid punycode") from None
    else:
        try:  # what browsers do: UTS #46 mapping, then the ASCII (xn--) form
            host = idna.encode(text, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            raise AddressRefused("the host is not a valid international domain name") from None
    if host.endswith("."):
        raise AddressRefused("the host ends with a dot: write it without (shop.example, not shop.example.)")
    labels = host.split(".")
    if _NUMBER.fullmatch(labels[-1]):  # browsers read such a host as an IPv4 address, in any base
        if not _DOTTED_QUAD.fullmatch(host):
            raise AddressRefused("write an IPv4 address as four decimal numbers from 0 to 255 without leading "
                                 "zeros (a.b.c.d); other spellings (2130706433, 0x7f.1, 0177.0.0.1, 127.1) are "
                                 "refused")
        ip4 = ipaddress.IPv4Address(host)
        return str(ip4), ip4
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressRefused("the host is not a valid domain name (letters, digits and '-' between dots)")
    return host, None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is an address of the public internet: not loopback, private,
    link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10), shared
    (100.64.0.0/10), unique-local (fc00::/7), site-local, multicast, reserved, documentation
    or unspecified; an IPv6 address embedding IPv4 (mapped, NAT64, 6to4) is judged by the
    IPv4 address it carries; Teredo and the old IPv4-compatible form are refused."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if any(ip in net for net in _NAT64):
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return is_public(ip.sixtofour)
        if ip.teredo is not None or ip in _IPV4_COMPATIBLE or ip.is_site_local:
            return False
    return bool(ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                      or ip.is_private or ip.is_unspecified))


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """A comma-separated list of CIDR networks (``127.0.0.0/8, ::1/128``); ValueError naming
    the first entry that is not one."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network: write CIDRs such as 127.0.0.0/8 or ::1/128") from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Where the platform may send requests to addresses others chose (notify URLs): public
    addresses, plus the non-public ``allowed_networks`` a test environment names for its
    loopback SIMULATORS (the settings refuse any in production)."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def allows(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return is_public(ip) or any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def check(self, raw: object, *, max_length: int = MAX_LENGTH) -> WebAddress:
        """``raw`` as an address the platform may send to, as far as can be told before DNS
        (the connection checks the resolved address again, every time)."""
        address = parse_web_address(raw, max_length=max_length)
        ip = address.ip
        if ip is None and (address.host == "localhost" or address.host.endswith(".localhost")):
            ip = ipaddress.IPv4Address("127.0.0.1")  # RFC 6761: always the loopback
        if ip is None and "." not in address.host:
            raise AddressRefused("give the full host name (shop.example, not a single word a resolver may "
                                 "complete to an internal host)")
        if ip is not None and not self.allows(ip):
            raise AddressRefused(f"{address.host} is not a public internet address (loopback, private, "
                                 "link-local or reserved): give your server's public address")
        return address
