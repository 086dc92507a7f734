"""HTTP to addresses that others chose (merchants' notify URLs), without letting them aim
the platform at itself or its neighbours (SSRF).

Checking the URL when it is registered is not enough: a name can resolve to a public
address then and to 127.0.0.1 or 169.254.169.254 later (DNS rebinding). So the check is
made in the connection itself: the client's network backend resolves the host, refuses
unless every address it resolves to is allowed by the :class:`DestinationPolicy`, and
connects to the address it checked (the client never resolves a second time). TLS still
verifies the certificate for the host name, and the request still names it in ``Host``.
Redirects are not followed and no proxy from the environment is used (either would let
the request go somewhere unchecked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from mobipay.kernel.urls import DestinationPolicy, IPAddress

#: Resolves a host name to its addresses (the system resolver; tests give a stand-in DNS).
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class DestinationRefused(Exception):
    """The destination resolved to an address the policy does not allow: nothing was sent."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address ``getaddrinfo`` gives for ``host``, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking the host before connecting."""

    def __init__(self, policy: DestinationPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refused = [ip for ip in addresses if not self.policy.allows(ip)]
        if refused or not addresses:
            # Every address must pass: a mix of public and private answers is a rebinding trick.
            raise DestinationRefused(f"{host} resolves to {refused[0] if refused else 'no address'}, which is not "
                                     "a public internet address: nothing was sent")
        error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: DestinationPolicy, resolver: Resolver) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to choose the network backend: build it again
        # with the same TLS settings and the checking backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=20,
            max_keepalive_connections=0, network_backend=_CheckedBackend(policy, resolver))


def checked_client(policy: DestinationPolicy, *, timeout_s: float, resolver: Resolver = system_resolver
                   ) -> httpx.AsyncClient:
    """An HTTP client that only reaches addresses ``policy`` allows, checked at connection
    time after DNS, follows no redirect and ignores proxy settings of the environment."""
    return httpx.AsyncClient(transport=_CheckedTransport(policy, resolver), timeout=timeout_s,
                             follow_redirects=False, trust_env=False)
