from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from intunedd.messages import RunOptions, RunRecord
from intunedd.sinks.body import s3_key, sink_body
from intunedd.sinks.config import mask, parse_sink, wants
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
