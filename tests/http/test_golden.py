"""Golden JSON: every response builder's body for representative records, pinned to files.

Intuned's clients parse these bodies, so a change of key, casing, presence or JSON type is a
wire break. The files hold the bodies as first encoded; a body matches its file when both are
the same JSON (key order aside, as no JSON client reads it). ``INTUNEDD_UPDATE_GOLDEN=1``
rewrites the files for a deliberate change, which then shows in review as a diff of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from intunedd.errors import BadRequest, NotFound
from intunedd.http import auth_schemas, job_schemas, schemas
from intunedd.http.auth_wire import OperationStarted
from intunedd.job_spec import JobRecord, JobRunRecord, JobSpec, snapshot
from intunedd.messages import AttemptRecord, DeployOutcome, ProjectEnvironment, ProjectVersion, RunOptions, RunRecord
from intunedd.store.auth_queries import AuthOperation, AuthSessionRecord
from intunedd.store.delivery_queries import Delivery

GOLDEN = Path(__file__).parent / "golden"
WORKSPACE = "0b7e4c1a-2f4e-4c1e-9d55-6a3f1c2b9e10"
T0, T1 = "2026-03-01T10:00:00.000Z", "2026-03-01T10:00:02.250Z"
SINK = {"type": "webhook", "url": "https://hooks.example/in", "headers": {"Authorization": "Bearer x"}, "secret": "s"}
OPTIONS = RunOptions(
    max_attempts=3, request_timeout_s=600, save_trace=True, proxy="http://bob:hunter2@proxy.example:8080", sink=SINK
)
ERROR = {"code": "script-execution-exception", "category": "execution", "message": "boom", "retirable": False}
REASON = {"type": "cancelled-user-action", "message": "The run was canceled by user action."}


def _run(**changes: Any) -> RunRecord:
    base = RunRecord(
        id="V1StGXR8_Z5jdHi6B-myT",
        seq=7,
        project="shop",
        version=2,
        api="products/list",
        parameters={"url": "https://x.test/p/1", "n": 1.5},
        options=OPTIONS,
        status="pending",
        run_type="STANDALONE",
        created_at=T0,
    )
    return msgspec.structs.replace(base, **changes)


COMPLETED = _run(
    status="completed",
    started_at=T0,
    ended_at=T1,
    result={"title": "Widget", "price": 9.5, "tags": [], "ok": True},
    extended_payloads=[{"api": "details", "parameters": {"id": 2}}],
    attempts_count=1,
)
FAILED = _run(status="failed", started_at=T0, ended_at=T1, error=ERROR, attempts_count=3)
CANCELED = _run(status="canceled", reason=REASON)
JOB_RUN = _run(
    status="failed",
    run_type="JOB",
    started_at=T0,
    ended_at=T1,
    error=ERROR,
    attempts_count=1,
    job_id="daily",
    job_run_id="5d9c0000-0000-4000-8000-000000000001",
    options=RunOptions(max_attempts=1, request_timeout_s=30, save_trace=False),
)
ATTEMPTS = [
    AttemptRecord(run_id=COMPLETED.id, number=1, status="failed", started_at=T0, ended_at=T1, error=ERROR),
    AttemptRecord(
        run_id=COMPLETED.id,
        number=2,
        status="completed",
        started_at=T0,
        ended_at=T1,
        log_path="/state/a/log.jsonl",
        trace_path="/state/a/trace.zip",
        video_path="/state/a/video",
    ),
]
LINKS = {
    "logUrl": "http://127.0.0.1/log?expires=1&signature=a",
    "traceUrl": "http://127.0.0.1/trace?expires=1&signature=b",
    "videoUrl": "http://127.0.0.1/video?expires=1&signature=c",
    "traceViewerUrl": "http://127.0.0.1/trace-viewer/index.html?trace=x",
}
PROJECT = ProjectVersion(
    name="shop",
    version=2,
    path="/state/projects/shop/2",
    apis=["details", "products/list"],
    api_access=True,
    max_concurrent=4,
    deployed_at=T0,
)
PROJECT_WITH_ENVIRONMENT = msgspec.structs.replace(
    PROJECT, environment=ProjectEnvironment(key="3f2a9c", runtime="intunedd", python="3.11.2")
)
FULL_SPEC = msgspec.convert(
    {
        "payload": [
            {"apiName": "list", "parameters": {"category": "shoes"}, "requestTimeout": 600},
            {"apiName": "details", "retry": {"maximumAttempts": 2}},
        ],
        "configuration": {
            "retry": {"maximumAttempts": 3},
            "maxConcurrentRequests": 5,
            "requestTimeout": 600,
            "proxy": "http://ann:pw@cfg.example:3128",
            "saveTrace": False,
        },
        "schedule": {"intervals": [{"every": "1h"}], "jitter": "5m"},
        "sink": {"type": "s3", "bucket": "b", "accessKeyId": "AK", "secretAccessKey": "SK", "region": "eu-west-1"},
        "proxy": "http://bob:hunter2@proxy.example:8080",
        "auth_session": {"id": "default", "checkAttempts": 2},
        "notifications": [{"type": "webhook", "url": "https://n.example/"}],
    },
    JobSpec,
)
MINIMAL_SPEC = msgspec.convert({"payload": [{"apiName": "list"}], "configuration": {}}, JobSpec)


def _job(spec: JobSpec, **changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "project": "shop",
        "id": "daily",
        "spec": spec,
        "state": "ACTIVE",
        "source": "API",
        "created_at": T0,
        "updated_at": T1,
        "next_run_time": "2026-03-01T11:00:00.000Z",
        **changes,
    }
    return JobRecord(**fields)


def _job_run(spec: JobSpec, **changes: Any) -> JobRunRecord:
    fields: dict[str, Any] = {
        "id": "5d9c0000-0000-4000-8000-000000000001",
        "project": "shop",
        "job_id": "daily",
        "type": "MANUAL",
        "status": "PENDING",
        "snapshot": snapshot(spec),
        "max_concurrent": 5,
        "created_at": T0,
        "updated_at": T1,
        "start_time": T0,
        **changes,
    }
    return JobRunRecord(**fields)


COUNTS = {"pending": 3, "running": 1, "completed": 5, "failed": 2, "canceled": 0}
DELIVERY = Delivery(
    id="d-1",
    run_id=COMPLETED.id,
    project="shop",
    kind="webhook",
    sink=SINK,
    status="pending",
    attempts=2,
    created_at=T0,
    updated_at=T1,
    next_attempt_at=T1,
    first_attempt_at=T0,
    last_status=503,
    last_error="HTTP 503",
)

SESSION = AuthSessionRecord(
    id="shop-login",
    project="shop",
    type="CREDENTIALS",
    status="READY",
    source="API",
    proxy_masked="http://bob:****@proxy.example:8080",
    options={"createAttempts": 3},
    created_at=T0,
    updated_at=T1,
    last_checked_at=T1,
    has_state=True,
)
OPERATION = AuthOperation(
    id="7f3e0000-0000-4000-8000-000000000002",
    project="shop",
    session_id="shop-login",
    kind="create",
    status="pending",
    run_id=None,
    error=None,
    reason=None,
    created_at=T0,
    updated_at=T0,
)


def _operation(**changes: Any) -> AuthOperation:
    return msgspec.structs.replace(OPERATION, **changes)


def _error_body(error: Exception) -> Any:
    body = msgspec.to_builtins(error.body())  # type: ignore[attr-defined]
    assert isinstance(body.pop("correlationId"), str)
    return body


CASES: dict[str, Callable[[], Any]] = {
    "run_result_pending": lambda: schemas.run_result(_run()),
    "run_result_started": lambda: schemas.run_result(_run(status="started", started_at=T0)),
    "run_result_completed": lambda: schemas.run_result(COMPLETED),
    "run_result_completed_bare": lambda: schemas.run_result(_run(status="completed", result=None)),
    "run_result_failed": lambda: schemas.run_result(FAILED),
    "run_result_failed_no_error": lambda: schemas.run_result(_run(status="failed")),
    "run_result_canceled": lambda: schemas.run_result(CANCELED),
    "run_result_canceled_no_reason": lambda: schemas.run_result(_run(status="canceled")),
    "sync_completed": lambda: schemas.sync_run_result(COMPLETED),
    "sync_started": lambda: schemas.sync_run_result(_run(status="started")),
    "sync_failed": lambda: schemas.sync_run_result(FAILED),
    "sync_canceled": lambda: schemas.sync_run_result(CANCELED),
    "sync_failed_bare": lambda: schemas.sync_run_result(_run(status="failed")),
    "run_item_pending": lambda: schemas.run_item(_run()),
    "run_item_completed": lambda: schemas.run_item(COMPLETED),
    "run_item_job": lambda: schemas.run_item(JOB_RUN),
    "run_item_canceled": lambda: schemas.run_item(CANCELED),
    "attempt_item_bare": lambda: schemas.attempt_item(ATTEMPTS[0], {}),
    "attempt_item_links": lambda: schemas.attempt_item(ATTEMPTS[1], LINKS),
    "run_detail": lambda: schemas.run_detail(COMPLETED, ATTEMPTS, lambda a: LINKS if a.number == 2 else {}),
    "run_detail_job": lambda: schemas.run_detail(JOB_RUN, [], lambda a: {}),
    "project_item": lambda: schemas.project_item(PROJECT),
    "project_item_environment": lambda: schemas.project_item(PROJECT_WITH_ENVIRONMENT),
    "deployed": lambda: schemas.deployed(DeployOutcome(project=PROJECT)),
    "deployed_environment": lambda: schemas.deployed(
        DeployOutcome(
            project=PROJECT_WITH_ENVIRONMENT,
            warnings=["requires-python '>=3.12' cannot be satisfied on this host: the project runs on Python 3.11.2"],
            environment_reused=True,
        )
    ),
    "job_get_full": lambda: job_schemas.job_get(_job(FULL_SPEC, last_run_time=T1)),
    "job_get_minimal": lambda: job_schemas.job_get(_job(MINIMAL_SPEC, state="PAUSED", source="CODE")),
    "job_list_item_full": lambda: job_schemas.job_list_item(_job(FULL_SPEC), WORKSPACE),
    "job_list_item_minimal": lambda: job_schemas.job_list_item(_job(MINIMAL_SPEC), WORKSPACE),
    "job_run_pending": lambda: job_schemas.job_run_body(_job_run(FULL_SPEC), COUNTS, WORKSPACE),
    "job_run_canceled": lambda: job_schemas.job_run_body(
        _job_run(
            MINIMAL_SPEC,
            status="CANCELED",
            end_time=T1,
            reason={"type": "another-job-run-active", "message": "busy"},
        ),
        dict.fromkeys(COUNTS, 0),
        WORKSPACE,
    ),
    "aggregate_completed": lambda: job_schemas.aggregate_line(COMPLETED, WORKSPACE),
    "aggregate_failed": lambda: job_schemas.aggregate_line(JOB_RUN, WORKSPACE),
    "delivery_pending": lambda: schemas.delivery_body(DELIVERY),
    "delivery_delivered": lambda: schemas.delivery_body(
        msgspec.structs.replace(DELIVERY, status="delivered", delivered_at=T1, last_status=200, last_error=None)
    ),
    "auth_session": lambda: auth_schemas.session_body(SESSION),
    "auth_session_recorder": lambda: auth_schemas.session_body(
        msgspec.structs.replace(SESSION, type="RECORDER", status="PENDING", proxy_masked=None, last_checked_at=None)
    ),
    "auth_started": lambda: OperationStarted("started", OPERATION.id),
    "auth_validate_started": lambda: OperationStarted("pending", OPERATION.id),
    "auth_result_pending": lambda: auth_schemas.operation_result(OPERATION),
    "auth_result_in_progress": lambda: auth_schemas.operation_result(_operation(status="in_progress", run_id="r-9")),
    "auth_result_done": lambda: auth_schemas.operation_result(_operation(status="done", run_id="r-9")),
    "auth_result_failed": lambda: auth_schemas.operation_result(_operation(status="failed", error=ERROR)),
    "auth_result_failed_bare": lambda: auth_schemas.operation_result(_operation(status="failed")),
    "auth_result_canceled": lambda: auth_schemas.operation_result(_operation(status="canceled", reason=REASON)),
    "auth_result_canceled_unknown_type": lambda: auth_schemas.operation_result(
        _operation(status="canceled", reason={"type": "session-deleted", "message": "deleted", "details": {"a": 1}})
    ),
    "error_with_details": lambda: _error_body(BadRequest("api is required", details={"field": "api"})),
    "error_bare": lambda: _error_body(NotFound("No route for GET /x")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_matches_golden(name: str) -> None:
    encoded = msgspec.json.encode(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("INTUNEDD_UPDATE_GOLDEN") == "1":
        path.write_bytes(encoded + b"\n")
    golden = path.read_bytes()
    # Same JSON, key order aside: sort_keys keeps 1 and 1.0, true and 1 apart.
    assert json.dumps(json.loads(encoded), sort_keys=True) == json.dumps(json.loads(golden), sort_keys=True)


def test_secrets_stay_masked_in_goldens() -> None:
    text = "".join(p.read_text() for p in GOLDEN.glob("*.json"))
    for secret in ("hunter2", ":pw@", '"SK"', "Bearer x", '"secret":"s"'):
        assert secret not in text
