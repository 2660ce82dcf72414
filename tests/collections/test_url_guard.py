from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.collections.url_guard import Refusal, Target, address_allowed, check, check_all, inspect, judge, normalise
from intunedd.sinks.destinations import parse_networks

NONE: tuple[()] = ()
LOOPBACK = parse_networks(["127.0.0.1/32"])
LOCAL = parse_networks(["127.0.0.0/8", "::1/128"])  # whatever localhost resolves to here


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("www.google.com", "https://www.google.com"),
        ("  example.com/a?b=1 ", "https://example.com/a?b=1"),
        ("http://example.com", "http://example.com"),
        ("HTTPS://example.com", "HTTPS://example.com"),
        ("ftp://example.com", "ftp://example.com"),
        ("localhost:8000", "https://localhost:8000"),
    ],
)
def test_normalise_prepends_https_only_without_a_scheme(raw: str, url: str) -> None:
    assert normalise(raw) == url


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ftp://example.com/x", "invalid_protocol"),
        ("file:///etc/passwd", "invalid_protocol"),
        ("gopher://example.com", "invalid_protocol"),
        ("https://", "malformed_url"),
        ("https://[::1", "malformed_url"),
        ("https://exa mple.com", "malformed_url"),
        ("https://exa%6dple.com", "malformed_url"),
        ("https://-bad-.com", "malformed_url"),
        ("https://a..b", "malformed_url"),
        ("https://example.com\n/x", "malformed_url"),
        ("https://example.com:99999", "invalid_port"),
        ("https://example.com:0", "invalid_port"),
        ("https://example.com:25", "invalid_port"),
        ("javascript:alert(1)", "invalid_port"),
    ],
)
def test_syntax_refusals(raw: str, reason: str) -> None:
    verdict = inspect(normalise(raw))
    assert isinstance(verdict, Refusal) and verdict.reason == reason, verdict


@pytest.mark.parametrize(
    ("raw", "host", "port", "address"),
    [
        ("example.com", "example.com", 443, None),
        ("https://example.com/search?q=a b", "example.com", 443, None),
        ("http://Example.COM.:8080/x", "example.com", 8080, None),
        ("http://user:pw@10.0.0.1/x", "10.0.0.1", 80, "10.0.0.1"),
        ("http://[::ffff:127.0.0.1]:81/", "::ffff:127.0.0.1", 81, "::ffff:7f00:1"),
        ("http://2130706433/", "2130706433", 80, "127.0.0.1"),
        ("http://0x7f.1/", "0x7f.1", 80, "127.0.0.1"),
        ("https://bücher.de", "xn--bcher-kva.de", 443, None),
    ],
)
def test_inspect_reads_host_port_and_literal_addresses(raw: str, host: str, port: int, address: str | None) -> None:
    assert inspect(normalise(raw)) == Target(host=host, port=port, address=address)


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "metadata.google.internal", "db.internal", "printer.local", "x.localhost",
             "metadata", "router.home.arpa"]
)  # fmt: skip
def test_names_inside_private_networks_are_blocked(host: str) -> None:
    target = inspect(normalise(f"http://{host}/"))
    assert isinstance(target, Target)
    refusal = judge(target, ["93.184.215.14"], NONE)
    assert refusal is not None and refusal.reason == "blocked_hostname"


def test_a_blocked_name_is_allowed_when_it_only_reaches_allowed_networks() -> None:
    target = inspect("http://localhost:8000/")
    assert isinstance(target, Target)
    assert judge(target, ["127.0.0.1"], LOOPBACK) is None
    refused = judge(target, ["127.0.0.1", "::1"], LOOPBACK)
    assert refused is not None and refused.reason == "blocked_hostname"


def test_one_private_address_among_public_ones_blocks_the_name() -> None:
    target = inspect("https://rebind.example.com/")
    assert isinstance(target, Target)
    assert judge(target, ["93.184.215.14"], NONE) is None
    refused = judge(target, ["93.184.215.14", "10.1.2.3"], NONE)
    assert refused is not None and refused.reason == "private_ip" and "10.1.2.3" in refused.message
    dns = judge(target, None, NONE)
    assert dns is not None and dns.reason == "dns_failed"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
     "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:10.0.0.1",
     "2002:a00:1::", "64:ff9b::a00:1"],
)  # fmt: skip
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not address_allowed(address, NONE)
    target = inspect(normalise(f"http://[{address}]/" if ":" in address else f"http://{address}/"))
    assert isinstance(target, Target)
    refused = judge(target, None, NONE)
    assert refused is not None and refused.reason == "private_ip"


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_allowed(address, NONE)


PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
              "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")]  # fmt: skip
PRIVATE_V6 = [ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "ff00::/8", "::1/128")]


@st.composite
def private_addresses(draw: st.DrawFn) -> str:
    network = draw(st.sampled_from(PRIVATE_V4 + PRIVATE_V6))
    address = network[draw(st.integers(0, network.num_addresses - 1))]
    if isinstance(address, ipaddress.IPv4Address) and draw(st.booleans()):
        return str(ipaddress.IPv6Address(f"::ffff:{address}"))  # the same address, IPv4-mapped
    return str(address)


@given(address=private_addresses(), allow=st.booleans())
def test_every_private_address_is_blocked_unless_its_network_is_allowed(address: str, allow: bool) -> None:
    allowed = parse_networks([f"{address}/{128 if ':' in address else 32}"]) if allow else NONE
    target = inspect(normalise("https://name.example/"))
    assert isinstance(target, Target)
    verdict = judge(target, ["93.184.215.14", address], allowed)
    assert (verdict is None) if allow else (verdict == Refusal("private_ip", verdict.message if verdict else ""))


@given(raw=st.text(max_size=80))
def test_no_string_makes_inspection_raise(raw: str) -> None:
    verdict = inspect(normalise(raw))
    if isinstance(verdict, Target):
        assert 1 <= verdict.port <= 65535 and verdict.host


@given(raw=st.from_regex(r"[a-z]{1,6}://[^\s/]{0,30}(:[0-9]{0,6})?/?", fullmatch=True))
def test_url_shaped_strings_get_a_verdict(raw: str) -> None:
    verdict = inspect(normalise(raw))
    target_or_known_reason = isinstance(verdict, Target) or verdict.reason in (
        "invalid_protocol", "malformed_url", "invalid_port"
    )  # fmt: skip
    assert target_or_known_reason


# -- resolution, with the system resolver --------------------------------------------------------


async def test_literal_addresses_need_no_resolution() -> None:
    assert await check("http://127.0.0.1:8000/x", LOOPBACK) is None
    refused = await check("http://127.0.0.2:8000/x", LOOPBACK)
    assert refused is not None and refused.reason == "private_ip"


async def test_localhost_resolves_and_is_judged_by_its_addresses() -> None:
    refused = await check("http://localhost:8000/", NONE)
    assert refused is not None and refused.reason == "blocked_hostname"
    assert await check("http://localhost:8000/", LOCAL) is None


async def test_an_unresolvable_name_is_dns_failed() -> None:
    refused = await check("https://no-such-host.invalid/", NONE, timeout_s=5)
    assert refused is not None and refused.reason == "dns_failed"


async def test_check_all_keeps_the_order_of_its_urls() -> None:
    verdicts = await check_all(
        ["ftp://x.example", "http://127.0.0.1:9/", "http://127.0.0.1:8080/", "http://localhost/"], LOCAL
    )
    assert [v.reason if v else None for v in verdicts] == ["invalid_protocol", "invalid_port", None, None]
