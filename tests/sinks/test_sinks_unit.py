from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.messages import RunOptions, RunRecord
from intunedd.sinks.body import s3_key, sink_body
from intunedd.sinks.config import mask, parse_sink, wants
from intunedd.sinks.destinations import DestinationRefused, allowing, parse_networks, resolve
from intunedd.sinks.outcome import http_status_line, short_error
from intunedd.sinks.webhook import signature

README = Path(__file__).resolve().parents[2] / "README.md"


def _run(**changes: Any) -> RunRecord:
    run = RunRecord(
        id="R" * 21, seq=1, project="shop", version=1, api="list", parameters={"q": 1},
        options=RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False), status="completed",
        run_type="STANDALONE", created_at="2026-11-23T12:00:00.000Z", ended_at="2026-11-23T12:00:05.250Z",
        result={"ok": True},
    )  # fmt: skip
    return msgspec.structs.replace(run, **changes)


def test_the_readme_verifier_accepts_our_signatures() -> None:
    snippet = re.search(r"```python\n(import hashlib.*?def verify.*?)```", README.read_text(), re.S)
    assert snippet, "the README shows how to verify a signature"
    namespace: dict[str, Any] = {}
    exec(snippet.group(1), namespace)  # noqa: S102 - our own README
    body = b'{"apiInfo": {}}'
    now = int(time.time())
    assert namespace["verify"]("s3cret", signature("s3cret", now, body), body)
    assert not namespace["verify"]("wrong", signature("s3cret", now, body), body)
    assert not namespace["verify"]("s3cret", signature("s3cret", now, body), body + b" ")
    assert not namespace["verify"]("s3cret", signature("s3cret", now - 3600, body), body)


def test_bodies() -> None:
    assert sink_body(_run(), "ws") == {
        "apiInfo": {"name": "list", "parameters": {"q": 1}, "runId": "R" * 21,
                    "result": {"status": "completed", "result": {"ok": True}, "statusCode": 200}},
        "workspaceId": "ws",
        "project": {"id": "shop", "name": "shop"},
    }  # fmt: skip
    failed = _run(status="failed", result=None, error={"code": "script-timeout", "message": "slow"}, job_id="j",
                  job_run_id="jr")  # fmt: skip
    body = sink_body(failed, "ws")
    assert body["apiInfo"]["result"] == {
        "status": "failed",
        "error": "script-timeout",
        "message": "slow",
        "statusCode": 500,
    }
    assert (body["projectJob"], body["projectJobRun"]) == ({"id": "j"}, {"id": "jr"})


def test_s3_keys_sort_by_time_and_group_by_job_run() -> None:
    assert s3_key("p/", _run(), None) == f"p/shop/runs/2026/11/23/20261123T120005.250Z_{'R' * 21}.json"
    job_item = _run(job_id="daily", job_run_id="jr1")
    assert s3_key("", job_item, "2026-11-23T11:59:00.000Z") == (
        f"shop/jobs/daily/20261123T115900.000Z_jr1/20261123T120005.250Z_{'R' * 21}.json"
    )
    later = _run(id="S" * 21, ended_at="2026-11-23T12:00:06.000Z")
    assert sorted([s3_key("", later, None), s3_key("", _run(), None)])[0].endswith("R" * 21 + ".json")


@pytest.mark.parametrize(
    ("sink", "api", "status", "expected"),
    [
        ({}, "list", "completed", True),
        ({}, "list", "failed", True),
        ({}, "list", "canceled", False),
        ({"skipOnFail": True}, "list", "failed", False),
        ({"skipOnFail": True}, "list", "completed", True),
        ({"apisToSend": ["other"]}, "list", "completed", False),
        ({"apisToSend": ["list"]}, "list", "completed", True),
    ],
)
def test_which_runs_a_sink_takes(sink: dict[str, Any], api: str, status: str, expected: bool) -> None:
    parsed = parse_sink({"type": "webhook", "url": "https://hooks.test/x", **sink})
    assert wants(parsed, api, status) is expected


def test_masking() -> None:
    raw = {"type": "s3", "bucket": "b", "accessKeyId": "AKIA", "secretAccessKey": "shh", "region": "r"}
    assert mask(raw) == {**raw, "secretAccessKey": "****"}
    hook = {"type": "webhook", "url": "u", "headers": {"Authorization": "Bearer x"}, "secret": "s"}
    assert mask(hook) == {**hook, "headers": {"Authorization": "****"}, "secret": "****"}
    assert mask(None) is None


# -- masking: what a sink shows of itself ---------------------------------------------------


def test_urls_credentials_and_query_values_are_masked() -> None:
    hook = {"type": "webhook", "url": "https://bob:hunter2@hooks.test:8443/in?token=abc&x=1#frag"}
    assert mask(hook) == {**hook, "url": "https://****@hooks.test:8443/in?token=****&x=****#****"}
    assert mask({"type": "webhook", "url": "https://hooks.test/in?bare-token"}) == {
        "type": "webhook",
        "url": "https://hooks.test/in?****",
    }
    s3 = {"type": "s3", "bucket": "b", "accessKeyId": "AKIA", "secretAccessKey": "shh", "region": "r",
          "endpoint": "https://key:sec@minio.test"}  # fmt: skip
    assert mask(s3)["endpoint"] == "https://****@minio.test"  # type: ignore[index]


secret_words = st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=6, max_size=12)


@given(user=secret_words, password=secret_words, value=secret_words)
def test_masked_urls_never_show_credentials(user: str, password: str, value: str) -> None:
    url = f"https://{quote(user)}:{quote(password)}@hooks.test/p?k={quote(value)}&k2={quote(value)}"
    shown = mask({"type": "webhook", "url": url})["url"]  # type: ignore[index]
    for secret in (user, password, value, quote(user), quote(password), quote(value)):
        assert secret not in shown


# -- destinations: sinks reach public addresses only ------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1",
     "240.0.0.1", "[::1]", "[::]", "[fe80::1]", "[fd00::1]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",
     "[2002:a9fe:a9fe::1]", "2130706433", "127.1", "0x7f.0.0.1", "0251.0376.0251.0376"],
)  # fmt: skip
def test_non_public_literal_addresses_are_refused(host: str) -> None:
    for sink in (
        {"type": "webhook", "url": f"http://{host}:8080/hook"},
        {"type": "s3", "bucket": "b", "accessKeyId": "a", "secretAccessKey": "s", "region": "r",
         "endpoint": f"http://{host}:9000"},
    ):  # fmt: skip
        with pytest.raises(msgspec.ValidationError, match="not a public address"):
            parse_sink(sink)


def test_allowed_networks_and_public_addresses_pass() -> None:
    parse_sink({"type": "webhook", "url": "https://93.184.216.34/hook"})
    parse_sink({"type": "webhook", "url": "https://[2606:4700::1111]/hook"})
    parse_sink({"type": "webhook", "url": "https://hooks.test/hook"})  # names are checked at delivery
    with allowing(parse_networks(["127.0.0.0/8", "fd00::/8"])):
        parse_sink({"type": "webhook", "url": "http://127.0.0.1:8080/hook"})
        parse_sink({"type": "webhook", "url": "http://[fd00::1]:8080/hook"})
        with pytest.raises(msgspec.ValidationError):
            parse_sink({"type": "webhook", "url": "http://169.254.169.254/latest"})
    with pytest.raises(ValueError, match="not a network"):
        parse_networks(["localhost"])


async def test_names_are_checked_after_resolution() -> None:
    with pytest.raises(DestinationRefused, match="127.0.0.1 is not a public address"):
        await resolve("localhost", 80)
    with allowing(parse_networks(["127.0.0.0/8", "::1/128"])):
        assert "127.0.0.1" in await resolve("localhost", 80)
    with pytest.raises(DestinationRefused, match="did not resolve"):
        await resolve("no-such-host.invalid", 80)


# -- outcomes: a short status line, never the receiver's body ---------------------------------


def test_status_lines() -> None:
    assert http_status_line(500) == "HTTP 500 Internal Server Error"
    assert http_status_line(299) == "HTTP 299"
    assert http_status_line(404, "NoSuchBucket") == "HTTP 404 Not Found (NoSuchBucket)"
    assert http_status_line(404, "<html>leak</html>") == "HTTP 404 Not Found"


@given(message=st.text(max_size=2000))
def test_short_errors_are_short_and_carry_no_urls(message: str) -> None:
    line = short_error(RuntimeError(f"{message} http://user:pw@internal.test/x {message}"))
    assert len(line) <= 200
    assert "pw@internal" not in line and line.startswith("RuntimeError")
