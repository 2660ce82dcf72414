"""Which request URLs a collection accepts, and why the others are refused (``blocked_urls``).

A request URL is user input that the daemon then fetches from inside its own network, so only
public http(s) addresses are accepted unless ``collections.allowed_networks`` names others.
Refusal reasons, checked in this order:

- ``invalid_protocol``: a scheme other than http or https (none at all means https, as the
  service and its SDK prepend ``https://``);
- ``malformed_url``: no host, or a host that is neither an address nor a DNS name;
- ``invalid_port``: outside 1–65535, or one of the Fetch standard's "bad ports" (SMTP, IRC,
  SIP…) that Chromium refuses, so ``browser: false`` refuses them too;
- ``blocked_hostname``: ``localhost``, ``metadata``, ``instance-data`` and names under
  ``localhost``, ``local``, ``internal`` (``metadata.google.internal``), ``localdomain`` and
  ``home.arpa``: names that only mean something inside a network. Allowed when every address
  the name resolves to is in an allowed network;
- ``dns_failed``: the name does not resolve within the timeout;
- ``private_ip``: an address (literal, or any one the name resolves to) that is not public:
  private, loopback, link-local, carrier-grade NAT, multicast, reserved, unspecified, or an IPv4
  address inside IPv6 (``::ffff:10.0.0.1``, 6to4); see ``sinks.destinations``.

A name checked here can resolve elsewhere at fetch time (DNS rebinding): the executor checks
each address it connects to with ``address_allowed`` again.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import msgspec
import trio

from ..sinks.destinations import Network, address_allowed, literal_address
from .wire import BlockReason

__all__ = ["Refusal", "Target", "address_allowed", "check", "check_all", "inspect", "judge", "normalise", "resolve"]

DNS_TIMEOUT_S = 5.0
BLOCKED_NAMES = frozenset({"localhost", "metadata", "instance-data"})
BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# https://fetch.spec.whatwg.org/#bad-port
BAD_PORTS = frozenset(
    {1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109,
     110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530,
     531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190,
     5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)  # fmt: skip
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DNS_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")


class Refusal(msgspec.Struct, frozen=True):
    reason: BlockReason
    message: str


class Target(msgspec.Struct, frozen=True):
    """A syntactically acceptable URL: its host (lower case, no trailing dot) and port."""

    host: str
    port: int
    address: str | None  # the host as an IP address, when it is one


def normalise(raw: str) -> str:
    """``raw`` without surrounding blanks, ``https://`` prepended when it names no scheme."""
    url = raw.strip()
    return url if _SCHEME.match(url) else f"https://{url}"


def _host_name(host: str) -> str | None:
    """``host`` as an ASCII DNS name, or None when it cannot be one."""
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    return ascii_host if len(ascii_host) <= 253 and _DNS_NAME.match(ascii_host) else None


def inspect(url: str) -> Target | Refusal:
    """The checks that need no network, on a ``normalise``d URL."""
    if not url.isprintable():  # a blank in a path or query is fine: fetchers percent-encode it
        return Refusal("malformed_url", "The URL contains control characters.")
    scheme = _SCHEME.match(url)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        return Refusal("invalid_protocol", "Only http:// and https:// URLs are allowed.")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        reason: BlockReason = "invalid_port" if "port" in str(e).lower() else "malformed_url"
        return Refusal(reason, f"The URL cannot be read: {e}.")
    if not host:
        return Refusal("malformed_url", "The URL names no host.")
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    if not 1 <= port <= 65535 or port in BAD_PORTS:
        return Refusal("invalid_port", f"Port {port} is not allowed.")
    host = host.removesuffix(".")  # "localhost." is localhost
    address = literal_address(host)
    if address is not None:
        return Target(host=host, port=port, address=address)
    name = _host_name(host)
    if name is None:
        return Refusal("malformed_url", "The URL's host is neither an address nor a valid name.")
    return Target(host=name, port=port, address=None)


def hostname_blocked(host: str) -> bool:
    return host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES)


def judge(target: Target, addresses: Sequence[str] | None, allowed: tuple[Network, ...]) -> Refusal | None:
    """The verdict once the host is resolved; ``addresses`` None: resolution failed."""
    if target.address is not None:
        addresses = [target.address]
    if target.address is None and hostname_blocked(target.host):
        # Listed explicitly, not merely public: such a name has no business resolving publicly.
        if not addresses or not all(address_allowed(a, allowed, public=False) for a in addresses):
            return Refusal("blocked_hostname", f"{target.host} names a host inside a private network.")
    if not addresses:
        return Refusal("dns_failed", f"{target.host} did not resolve.")
    refused = next((a for a in addresses if not address_allowed(a, allowed)), None)
    if refused is not None:
        return Refusal("private_ip", f"URL resolved to a private or internal IP ({refused}).")
    return None


async def resolve(host: str, port: int, timeout_s: float = DNS_TIMEOUT_S) -> list[str] | None:
    """Every address ``host`` resolves to, or None when it does not within ``timeout_s``."""
    with trio.move_on_after(timeout_s):
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
    return None


async def check(url: str, allowed: tuple[Network, ...], timeout_s: float = DNS_TIMEOUT_S) -> Refusal | None:
    """Why ``url`` (``normalise``d) is refused, or None when it may be fetched."""
    return (await check_all([url], allowed, timeout_s))[0]


async def check_all(
    urls: Iterable[str], allowed: tuple[Network, ...], timeout_s: float = DNS_TIMEOUT_S, concurrency: int = 16
) -> list[Refusal | None]:
    """``check`` for many URLs: each host resolved once, ``concurrency`` resolutions at a time."""
    inspected = [inspect(url) for url in urls]
    hosts = {
        (t.host, t.port)
        for t in inspected
        if isinstance(t, Target) and t.address is None and (allowed or not hostname_blocked(t.host))
    }
    resolved: dict[tuple[str, int], list[str] | None] = {}
    limiter = trio.CapacityLimiter(concurrency)

    async def one(host: str, port: int) -> None:
        async with limiter:
            resolved[host, port] = await resolve(host, port, timeout_s)

    async with trio.open_nursery() as nursery:
        for host, port in hosts:
            nursery.start_soon(one, host, port)
    return [t if isinstance(t, Refusal) else judge(t, resolved.get((t.host, t.port)), allowed) for t in inspected]
