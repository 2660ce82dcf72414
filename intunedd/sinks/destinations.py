"""Where a sink may send: public addresses only, unless ``sinks.allow_networks`` says otherwise.

A sink's URL is user input, and the daemon usually sits next to things a stranger must not
reach (cloud metadata at 169.254.169.254, databases on 10.x, admin ports on loopback). So
every address a delivery would connect to is checked: loopback, private, link-local,
multicast, reserved, unspecified and other non-global addresses are refused, for IPv6 too,
including IPv4 addresses embedded in IPv6 ones (``::ffff:10.0.0.1``, 6to4).

Checked twice: when a sink is accepted, if its host is a literal address (in any form the
resolver accepts, ``2130706433`` included), and at delivery, after DNS resolution. Webhook
connections are then made to the checked address itself (``GuardedBackend``), so a name
that resolves differently a moment later cannot slip through. botocore offers no such hook:
S3 endpoints are resolved and checked just before each request is sent, which leaves the
small window between that check and botocore's own resolution.

The allowed networks live in a context variable, set once for the whole daemon
(``allow``) and inherited by every task and worker thread it starts.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import trio

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_allowed: ContextVar[tuple[Network, ...]] = ContextVar("sink_allowed_networks", default=())


class DestinationRefused(Exception):
    """A sink's destination is not a public address (and not in ``sinks.allow_networks``)."""


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``sinks.allow_networks``; a ValueError names the entry that is not a CIDR."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as e:
            raise ValueError(f"{cidr!r} is not a network like '10.0.0.0/8' or 'fd00::/8'") from e
    return tuple(networks)


def allow(networks: tuple[Network, ...]) -> None:
    """Allow ``networks`` for the rest of the current context (the daemon's, once, at start)."""
    _allowed.set(networks)


@contextmanager
def allowing(networks: tuple[Network, ...]) -> Iterator[None]:
    token = _allowed.set(networks)
    try:
        yield
    finally:
        _allowed.reset(token)


def _embedded(address: Address) -> list[Address]:
    if isinstance(address, ipaddress.IPv6Address):
        return [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    return []


def _not_public(address: Address) -> bool:
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def address_allowed(address: str, networks: tuple[Network, ...], *, public: bool = True) -> bool:
    """Whether ``address`` (an IP) is inside one of ``networks``, or (``public``) a public one."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
    if any(parsed in network for network in networks):
        return True
    return public and not any(_not_public(a) for a in (parsed, *_embedded(parsed)))


def refusal(address: str) -> str | None:
    """Why a delivery may not connect to ``address`` (an IP), or None if it may."""
    if address_allowed(address, _allowed.get()):
        return None
    return f"{address} is not a public address (allow it with sinks.allow_networks)"


def literal_address(host: str) -> str | None:
    """``host`` as an IP address if it is one, in any form the system resolver reads as one."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))  # "127.1", "0x7f.0.0.1", "2130706433"
    except OSError:
        return None


def check_host(host: str) -> None:
    """At validation: refuse a literal address that is not allowed (names wait for delivery)."""
    address = literal_address(host)
    reason = refusal(address) if address else None
    if reason:
        raise ValueError(reason)


def _check_all(host: str, infos: list[Any]) -> list[str]:
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DestinationRefused(f"{host} did not resolve")
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise DestinationRefused(f"{host}: {reason}")
    return addresses


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, once all are checked; DestinationRefused otherwise."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise DestinationRefused(f"{host} did not resolve: {e.strerror or e}") from e
    return _check_all(host, infos)


def resolve_sync(host: str, port: int) -> list[str]:
    """``resolve`` for code running in a worker thread (botocore)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise DestinationRefused(f"{host} did not resolve: {e.strerror or e}") from e
    return _check_all(host, infos)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses.

    httpcore resolves nothing itself: it hands the URL's host to ``connect_tcp``. Here the
    host is resolved and checked, and the connection made to the checked address, while TLS
    (SNI and certificate checks) still uses the host name, which httpcore passes separately.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("sinks do not deliver to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
