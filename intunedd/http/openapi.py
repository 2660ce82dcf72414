"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

Component schemas come from the same msgspec Structs that decode requests and encode answers
(``msgspec.json.schema_components``), so the document cannot drift from the wire. What msgspec
cannot know (paths, methods, parameters, statuses) is the table ``OPERATIONS`` below, written
once; ``tests/http/test_openapi.py`` checks it against the routes Quart actually registered.
The ``/events`` websocket is not an HTTP operation and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ErrorBody
from ..job_spec import JobCreate, JobSpec
from ..store.keys import ApiKey
from . import auth_wire, wire
from .auth_schemas import CreateSessionBody, StorageState, UpdateSessionBody, ValidateSessionBody
from .keys import KeyList
from .routes.functions import KvPut, KvSaved, KvValue
from .schemas import MAX_QUERY_INT, RunStartBody

WS = "/api/v1/workspace/{workspace_id}"
PROJECT = f"{WS}/projects/{{project}}"
JOB = f"{PROJECT}/jobs/{{job_id}}"
ATTEMPT = f"{PROJECT}/runs/{{run_id}}/attempts/{{number}}"
FUNCTIONS = "/api/{workspace_id}/functions/{project}"
SESSIONS = f"{PROJECT}/auth-sessions"
SESSION = f"{SESSIONS}/{{session_id}}"
PAGE_MAX = 500


@dataclass(frozen=True)
class Raw:
    """A body that is not JSON: its media type and what it holds."""

    media_type: str
    description: str


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    status: int
    answer: Any  # a wire type, a Raw body, or None for no body
    body: Any = None  # the request body: a Struct type or a Raw body
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = (401, 403, 404)
    public: bool = False  # answered without an API key
    signed: bool = False  # a signed URL may stand in for the key
    functions: bool = False  # authorised by an attempt's functions token instead of the key


def _int(minimum: int, maximum: int | None = None, default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    if default is not None:
        schema["default"] = default
    return schema


_LIMIT = Query("limit", _int(1, PAGE_MAX, 50), "Page size")
_OFFSET = Query("offset", _int(0, MAX_QUERY_INT, 0), "Items to skip")
_SIGNED = (
    Query("expires", {"type": "string"}, "Expiry (Unix seconds) of a signed URL"),
    Query("signature", {"type": "string"}, "Signature of a signed URL; replaces the API key"),
)
_BAD_BODY = (400, 401, 403, 404, 413)
_ARCHIVE = Raw("application/octet-stream", "The project folder as a gzip-compressed tar")

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/health", "Liveness and actor statistics", 200, wire.Health, errors=(), public=True),
    Operation("get", "/openapi.json", "This document", 200, dict[str, Any], errors=(), public=True),
    Operation(
        "get", "/trace-viewer/{name}", "Playwright's trace viewer (static files)", 200,
        Raw("application/octet-stream", "A file of the trace viewer"), errors=(404,), public=True,
    ),  # fmt: skip
    Operation("get", "/api/v1/info", "This daemon's workspace id and version", 200, wire.Info, errors=(401,)),
    Operation("get", f"{WS}/quarantine", "Stored records set aside as unprocessable", 200, wire.QuarantineList),
    Operation("get", f"{WS}/keys", "API keys (never the key or its hash)", 200, KeyList),
    Operation("post", f"{WS}/keys/{{key_id}}/revoke", "Revoke an API key", 200, ApiKey),
    Operation("delete", f"{WS}/keys/{{key_id}}", "Revoke an API key", 200, ApiKey),
    Operation("get", f"{WS}/projects", "Deployed projects, current versions", 200, list[wire.ProjectItem]),
    Operation("get", PROJECT, "One deployed project", 200, wire.ProjectItem),
    Operation("post", f"{PROJECT}/deploy", "Deploy a new version", 201, wire.Deployed, _ARCHIVE, errors=_BAD_BODY),
    Operation("post", f"{PROJECT}/run/start", "Start a run", 201, wire.RunStatus, RunStartBody, errors=_BAD_BODY),
    Operation(
        "post", f"{PROJECT}/run", "Run and wait (legacy sync run)", 200, wire.SyncRunResult, RunStartBody,
        errors=_BAD_BODY,
    ),  # fmt: skip
    Operation("get", f"{PROJECT}/run/{{run_id}}/result", "A run's result", 200, wire.RunResult),
    Operation("post", f"{PROJECT}/run/{{run_id}}/cancel", "Cancel a run", 200, wire.RunStatus),
    Operation(
        "get", f"{PROJECT}/runs", "List runs", 200, wire.RunList,
        query=(
            _LIMIT, _OFFSET,
            Query("filter", {"type": "array", "items": {"type": "string"}}, "FIELD OP VALUE, e.g. status=failed"),
        ),
        errors=(400, 401, 403),
    ),  # fmt: skip
    Operation("get", f"{PROJECT}/runs/{{run_id}}", "A run with its attempts", 200, wire.RunDetail),
    Operation(
        "get", f"{ATTEMPT}/log", "An attempt's log", 200, Raw("application/x-ndjson", "One JSON object a line"),
        query=_SIGNED, signed=True,
    ),  # fmt: skip
    Operation(
        "get", f"{ATTEMPT}/trace", "An attempt's Playwright trace", 200, Raw("application/zip", "trace.zip"),
        query=_SIGNED, signed=True,
    ),  # fmt: skip
    Operation(
        "get", f"{ATTEMPT}/video", "An attempt's video", 200, Raw("video/webm", "The recording"),
        query=_SIGNED, signed=True,
    ),  # fmt: skip
    Operation("get", f"{PROJECT}/jobs", "List jobs", 200, list[wire.JobListItem], errors=(401, 403)),
    Operation("post", f"{PROJECT}/jobs", "Create a job", 201, wire.JobSaved, JobCreate, errors=(*_BAD_BODY, 409)),
    Operation("get", JOB, "One job", 200, wire.JobGet),
    Operation("put", JOB, "Replace a job's spec", 200, wire.JobSaved, JobSpec, errors=_BAD_BODY),
    Operation("delete", JOB, "Delete a job", 204, None),
    Operation("post", f"{JOB}/pause", "Pause a job", 200, wire.Message),
    Operation("post", f"{JOB}/resume", "Resume a job", 200, wire.Message),
    Operation("post", f"{JOB}/trigger", "Start a JobRun now", 200, wire.JobTriggered, errors=(401, 403, 404, 409)),
    Operation(
        "get", f"{JOB}/runs", "List a job's JobRuns", 200, wire.JobRunList,
        query=(
            Query("pageSize", _int(1, PAGE_MAX, 20), "Page size"),
            Query("pageNumber", _int(1, MAX_QUERY_INT, 1), "Page, from 1"),
            Query("sortBy", {"type": "string"}, "Sort order"),
        ),
        errors=(400, 401, 403, 404),
    ),  # fmt: skip
    Operation("get", f"{JOB}/runs/{{job_run_id}}", "One JobRun", 200, wire.JobRunGet),
    Operation(
        "get", f"{JOB}/runs/{{job_run_id}}/results", "A JobRun's aggregate results", 200,
        Raw("application/x-ndjson", "One AggregateLine a line"), query=_SIGNED, signed=True,
    ),  # fmt: skip
    Operation("post", f"{JOB}/runs/{{job_run_id}}/terminate", "Terminate a JobRun", 200, wire.Message),
    Operation(
        "get", f"{WS}/deliveries", "List sink deliveries", 200, wire.DeliveryList,
        query=(
            Query("status", {"type": "string", "enum": ["pending", "delivered", "failed"]}, "Only this status"),
            Query("run", {"type": "string"}, "Only this run's"),
            _LIMIT, _OFFSET,
        ),
        errors=(400, 401, 403),
    ),  # fmt: skip
    Operation("get", f"{WS}/deliveries/{{delivery_id}}", "One sink delivery", 200, wire.DeliveryBody),
    Operation("get", f"{FUNCTIONS}/kv-store/{{key}}", "Read a persistent store value", 200, KvValue,
              errors=(400, 401, 403), functions=True),
    Operation("put", f"{FUNCTIONS}/kv-store/{{key}}", "Write a persistent store value", 200, KvSaved, KvPut,
              errors=(400, 401, 403, 413), functions=True),
    Operation("get", f"{FUNCTIONS}/auth-session/{{auth_session_id}}/parameters", "An AuthSession's parameters",
              200, dict[str, Any], errors=(401, 403, 404), functions=True),
    Operation("get", SESSIONS, "List AuthSessions", 200, list[auth_wire.AuthSessionBody], errors=(401, 403)),
    Operation("get", SESSION, "One AuthSession (never its parameters or state)", 200, auth_wire.AuthSessionBody),
    Operation("delete", SESSION, "Delete an AuthSession", 204, None),
    Operation(
        "post", f"{SESSIONS}/create", "Start creating an AuthSession", 201, auth_wire.OperationStarted,
        CreateSessionBody, errors=(*_BAD_BODY, 409, 503),
    ),  # fmt: skip
    Operation("get", f"{SESSIONS}/create/{{operation_id}}/result", "A create's result", 200, auth_wire.OperationResult),
    Operation(
        "post", f"{SESSION}/update", "Start creating an AuthSession again with new parameters", 201,
        auth_wire.OperationStarted, UpdateSessionBody, errors=(*_BAD_BODY, 409, 503),
    ),  # fmt: skip
    Operation(
        "get", f"{SESSION}/update/{{operation_id}}/result", "An update's result", 200, auth_wire.OperationResult
    ),
    Operation(
        "post", f"{SESSION}/validate/start", "Start validating an AuthSession", 201, auth_wire.OperationStarted,
        ValidateSessionBody, errors=(*_BAD_BODY, 409, 503),
    ),  # fmt: skip
    Operation(
        "get", f"{SESSION}/validate/{{operation_id}}/result", "A validate's result", 200, auth_wire.OperationResult
    ),
    Operation(
        "put", f"{SESSION}/state", "Import a Playwright storage state as a RECORDER session (intunedd's own)", 200,
        auth_wire.AuthSessionBody, StorageState, errors=(*_BAD_BODY, 503),
    ),  # fmt: skip
    Operation(
        "post", f"{WS}/deliveries/{{delivery_id}}/retry", "Retry a failed delivery now", 200, wire.DeliveryBody,
        errors=(401, 403, 404, 409),
    ),  # fmt: skip
)

# Types the document names though no operation answers them directly.
_EXTRA_TYPES: tuple[Any, ...] = (ErrorBody, wire.AggregateLine)
_PATH_PARAM = re.compile(r"{([^}]+)}")
_REF = "#/components/schemas/{name}"


def _path_parameter(name: str) -> dict[str, Any]:
    schema = _int(0) if name == "number" else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _content(kind: Any, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if isinstance(kind, Raw):
        return {kind.media_type: {"schema": {"type": "string", "description": kind.description}}}
    return {"application/json": {"schema": schemas[kind]}}


def _operation(op: Operation, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": op.summary}
    if op.answer is not None:
        ok["content"] = _content(op.answer, schemas)
    error = {"description": "Error", "content": _content(ErrorBody, schemas)}
    spec: dict[str, Any] = {
        "operationId": f"{op.method}{_PATH_PARAM.sub(lambda m: m.group(1), op.path)}".replace("/", "_"),
        "summary": op.summary,
        "parameters": [_path_parameter(name) for name in _PATH_PARAM.findall(op.path)]
        + [{"name": q.name, "in": "query", "schema": q.schema, "description": q.description} for q in op.query],
        "responses": {str(op.status): ok, **{str(code): error for code in op.errors}, "default": error},
    }
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": _content(op.body, schemas)}
    if op.public:
        spec["security"] = []
    elif op.signed:
        spec["security"] = [{"apiKey": []}, {}]
    elif op.functions:
        spec["security"] = [{"functionsToken": []}]
    return spec


def document(version: str) -> dict[str, Any]:
    kinds = [k for op in OPERATIONS for k in (op.answer, op.body) if k is not None and not isinstance(k, Raw)]
    kinds = list(dict.fromkeys([*kinds, *_EXTRA_TYPES]))
    refs, components = msgspec.json.schema_components(kinds, ref_template=_REF)
    schemas = dict(zip(kinds, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "intunedd",
            "version": version,
            "description": "Self-hosted runner of Playwright automations, wire-compatible with Intuned's REST API. "
            "Run and attempt events stream over the websocket /api/v1/workspace/{workspace_id}/events.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "functionsToken": {"type": "http", "scheme": "bearer", "description": "An attempt's functions token"},
            },
        },
        "security": [{"apiKey": []}],
    }
