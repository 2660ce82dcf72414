"""Every response shape of ours, encoded, parsed by the official SDK's own models and error mapping."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime

import msgspec
import pytest
from scrapingpros import exceptions as sp_errors
from scrapingpros import models as sp
from scrapingpros._base import map_error
from scrapingpros.client import _map_job_result_error

from intunedd.collections import wire

T = datetime(2026, 12, 2, 1, 2, 3, 456000, tzinfo=UTC)


def encoded(body: msgspec.Struct) -> bytes:
    return msgspec.json.encode(body)


def test_new_collection_response_keeps_every_bucket() -> None:
    ours = wire.NewCollectionResponse(
        id="c1",
        name="daily",
        duplicates_skipped=2,
        blocked_urls=[wire.BlockedUrl(index=1, url="http://10.0.0.1/", reason="private_ip", message="private")],
        invalid_items=[
            wire.InvalidItem(
                index=3,
                url="https://e.com/",
                errors=[wire.InvalidItemError(field="actions.0.time", error_type="missing", message="required")],
            )
        ],
        duplicate_urls=["https://e.com/a", "https://e.com/a"],
    )
    theirs = sp.NewCollectionResponse.model_validate_json(encoded(ours))
    assert theirs.id == "c1" and theirs.name == "daily" and theirs.message == wire.CREATED
    assert theirs.duplicates_skipped == 2
    assert theirs.duplicate_urls == ["https://e.com/a", "https://e.com/a"]
    assert theirs.blocked_urls[0].model_dump() == {
        "index": 1, "url": "http://10.0.0.1/", "reason": "private_ip", "message": "private"
    }  # fmt: skip
    assert theirs.invalid_items[0].index == 3
    assert theirs.invalid_items[0].errors[0].model_dump() == {
        "field": "actions.0.time", "error_type": "missing", "message": "required"
    }  # fmt: skip


def test_an_empty_create_answer_is_the_seed_s() -> None:
    body = json.loads(encoded(wire.NewCollectionResponse(id="c1", name="new collection")))
    assert {k: body[k] for k in ("id", "name", "message")} == {
        "id": "c1", "name": "new collection", "message": "Collection created successfully."
    }  # fmt: skip
    theirs = sp.NewCollectionResponse.model_validate(body)
    assert (theirs.blocked_urls, theirs.invalid_items, theirs.duplicate_urls) == ([], [], [])


def test_collections_list_and_get() -> None:
    ours = [wire.CollectionPublic(id="c1", name="a", created_at=1777853217.82, updated_at=1777853300.5)]
    theirs = [sp.CollectionPublic.model_validate(c) for c in json.loads(msgspec.json.encode(ours))]
    assert theirs[0].model_dump() == {"id": "c1", "name": "a", "created_at": 1777853217.82, "updated_at": 1777853300.5}


def full_run() -> wire.RunPublic:
    return wire.RunPublic(
        run_id="r1",
        status="completed",
        total_requests=5,
        success_requests=2,
        failed_requests=2,
        timeout_requests=1,
        collection_id="c1",
        failed_jobs=[wire.FailedJob(job_id="j3", url="https://e.com/3", error="HTTP 500", status="failed")],
        job_ids=["j1", "j2", "j3", "j4", "j5"],
        callback_url="https://hooks.example/x",
        callback_status="sent",
        created_at=1777853217.82,
        success_criterion=wire.SuccessCriterion(rules=["status == 'completed'", "200 <= status_code < 300"]),
        all_jobs_persisted=True,
    )


def test_run_public_and_run_list() -> None:
    theirs = sp.RunListPublic.model_validate_json(encoded(wire.RunList(items=[full_run()], total=1)))
    assert theirs.total == 1
    run = theirs.items[0]
    assert run.model_dump() == {
        "run_id": "r1",
        "status": "completed",
        "total_requests": 5,
        "success_requests": 2,
        "failed_requests": 2,
        "timeout_requests": 1,
        "collection_id": "c1",
        "failed_jobs": [{"job_id": "j3", "url": "https://e.com/3", "error": "HTTP 500", "status": "failed"}],
        "job_ids": ["j1", "j2", "j3", "j4", "j5"],
        "callback_url": "https://hooks.example/x",
        "callback_status": "sent",
        "created_at": 1777853217.82,
        "success_criterion": {
            "version": "content_success_v1",
            "rules": ["status == 'completed'", "200 <= status_code < 300"],
        },
        "all_jobs_persisted": True,
    }


def test_a_fresh_run_matches_the_seed_example() -> None:
    body = json.loads(encoded(wire.RunPublic(run_id="r1", collection_id="c1", total_requests=2)))
    assert {k: body[k] for k in ("run_id", "status", "total_requests", "success_requests", "collection_id")} == {
        "run_id": "r1", "status": "in_progress", "total_requests": 2, "success_requests": 0, "collection_id": "c1"
    }  # fmt: skip
    assert sp.RunPublic.model_validate(body).status == "in_progress"


def test_job_page_with_an_inline_result() -> None:
    result = msgspec.Raw(b'{"message":"OK","html":"<h1>x</h1>","statusCode":200,"custom_id":"p-1"}')
    job = wire.JobExecution(
        job_public_id="j1",
        run_public_id="r1",
        collection_id="c1",
        client_id="k1",
        status="completed",
        status_code=200,
        message="OK",
        url="https://e.com/1",
        custom_id="p-1",
        queued_at=T,
        started_at=T,
        completed_at=T,
        execution_time_ms=1234,
        retries_attempted=1,
        block_reason="none",
        url_truncated=False,
        protection_stack=["cloudflare"],
        rule_hits=["r1"],
        validator_version="intunedd-1",
        has_extractable_data=False,
        is_success=True,
        result=result,
    )
    failed = wire.JobExecution(job_public_id="j2", run_public_id="r1", collection_id="c1", status="timeout")
    page = sp.JobExecutionListPublic.model_validate_json(
        encoded(wire.JobPage(items=[job, failed], cursor_next="abc", has_more=True))
    )
    assert page.cursor_next == "abc" and page.has_more is True
    first, second = page.items
    assert first.completed_at == T and first.queued_at == T
    assert first.execution_time_ms == 1234 and first.is_success is True and first.custom_id == "p-1"
    assert first.result is not None and first.result.html == "<h1>x</h1>" and first.result.statusCode == 200
    assert second.status == "timeout" and second.result is None and second.protection_stack == []
    # What the SDK sends back as since_completed_at names the same instant.
    assert datetime.fromisoformat(first.completed_at.isoformat(timespec="milliseconds")) == T


def test_download_response_is_camel_case() -> None:
    ours = wire.DownloadResponse(
        content="aGk=", content_type="application/pdf", status_code=200, message="OK", execution_time=0.5
    )
    theirs = sp.DownloadResponse.model_validate_json(encoded(ours))
    assert theirs.model_dump() == {
        "content": "aGk=", "contentType": "application/pdf", "statusCode": 200, "message": "OK", "executionTime": 0.5
    }  # fmt: skip


def test_health_is_plain_json() -> None:
    assert json.loads(encoded(wire.Health(version="0.1.0"))) == {"status": "ok", "version": "0.1.0"}


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("result_pending", sp_errors.JobResultPending),
        ("result_expired", sp_errors.JobResultExpired),
        ("result_lost", sp_errors.JobResultLost),
        ("job_id_invalid", sp_errors.JobNotFound),
    ],
)
def test_result_404s_become_the_sdk_s_typed_errors(code: wire.ResultErrorCode, kind: type[Exception]) -> None:
    detail = wire.ResultMissingDetail(error_code=code, message="why", completed_at="2026-12-01T00:00:00.000Z")
    if code == "result_expired":
        detail = msgspec.structs.replace(detail, age_hours=25.5)
    text = encoded(wire.ResultMissing(detail=detail)).decode()
    error = _map_job_result_error(map_error(404, text))
    assert type(error) is kind
    assert error.error_code == code and error.detail == "why"
    assert error.completed_at == "2026-12-01T00:00:00.000Z"
    assert error.age_hours == (25.5 if code == "result_expired" else None)


def test_not_found_detail_is_a_plain_404() -> None:
    error = map_error(404, encoded(wire.Detail(detail=wire.COLLECTION_NOT_FOUND)).decode())
    assert type(error) is sp_errors.APIError and error.status_code == 404
    assert wire.COLLECTION_NOT_FOUND in error.detail


def test_a_422_is_a_validation_error_naming_the_field() -> None:
    body = wire.FieldErrors(
        detail=[wire.FieldError(type="less_than_equal", loc=["query", "limit"], msg="at most 1000", input="5000")]
    )
    error = map_error(422, encoded(body).decode())
    assert type(error) is sp_errors.ValidationError
    assert json.loads(error.detail)["detail"][0]["loc"] == ["query", "limit"]


def test_a_blocked_url_is_the_sdk_s_url_blocked_error() -> None:
    text = encoded(wire.Detail(detail=f"{wire.URL_BLOCKED}: 10.0.0.1 is a private address")).decode()
    assert type(map_error(422, text)) is sp_errors.URLBlockedError


def test_rate_limited_is_retried_not_a_spent_quota() -> None:
    text = encoded(wire.Detail(detail=f"{wire.RATE_LIMITED}: 600 requests per minute")).decode()
    with warnings.catch_warnings():
        error = map_error(429, text, {"Retry-After": "3"})
    assert type(error) is sp_errors.RateLimitError and error.retry_after == 3.0
