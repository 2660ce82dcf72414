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

from ..collections import wire as sp_wire
from ..collections.request import ScrapeRequest, ScrapeResponse
from ..errors import ErrorBody
from ..job_spec import JobCreate, JobSpec
from ..queue_spec import QueueCreate, QueueItem, RepeatItemInput
from ..store.keys import ApiKey
from . import auth_wire, queue_wire, wire
from .auth_schemas import CreateSessionBody, StorageState, UpdateSessionBody, ValidateSessionBody
from .keys import KeyList
from .routes.collections import CollectionBody, DownloadBody, UpdateBody
from .routes.functions import KvPut, KvSaved, KvValue
from .schemas import MAX_QUERY_INT, RunStartBody

WS = "/api/v1/workspace/{workspace_id}"
PROJECT = f"{WS}/projects/{{project}}"
JOB = f"{PROJECT}/jobs/{{job_id}}"
ATTEMPT = f"{PROJECT}/runs/{{run_id}}/attempts/{{number}}"
FUNCTIONS = "/api/{workspace_id}/functions/{project}"
SESSIONS = f"{PROJECT}/auth-sessions"
SESSION = f"{SESSIONS}/{{session_id}}"
V1 = "/v1/async/collections"
V1_RUN = f"{V1}/{{collection_id}}/runs/{{run_id}}"
V1_ERRORS = (sp_wire.Detail, sp_wire.FieldErrors, sp_wire.ResultMissing)  # untagged: an anyOf of the three
QUEUES = f"{PROJECT}/queues"
QUEUE = f"{QUEUES}/{{queue_id}}"
REPEAT = f"{QUEUE}/repeatItems"
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
    v1: bool = False  # the Scraping Pros-compatible /v1 API: a bearer key, {"detail": …} errors


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
_V1_ERRORS = (401, 413, 422, 429)
_V1_404 = (401, 404, 429)
_ARCHIVE = Raw("application/octet-stream", "The project folder as a gzip-compressed tar")

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/health", "Liveness and actor statistics", 200, wire.Health, errors=(), public=True),
    Operation("get", "/openapi.json", "This document", 200, dict[str, Any], errors=(), public=True),
    Operation(
        "get", "/trace-viewer/{name}", "Playwright's trace viewer (static files)", 200,
        Raw("application/octet-stream", "A file of the trace viewer"), errors=(404,), public=True,
    ),  # fmt: skip
    Operation("get", "/api/v1/info", "This daemon's workspace id and version", 200, wire.Info, errors=(401,)),
    Operation(
        "get", "/metrics", "Prometheus metrics (also served without a key on metrics.listen)", 200,
        Raw("text/plain; version=0.0.4", "Prometheus text exposition format"), errors=(401,),
    ),  # fmt: skip
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
            Query("cursor", _int(1, MAX_QUERY_INT, 1), "nextCursor of the previous page"),
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
    Operation("get", QUEUES, "List queues, each with its state", 200, list[queue_wire.QueueWire], errors=(401, 403)),
    Operation("post", QUEUES, "Create a queue", 201, queue_wire.QueueCreated, QueueCreate, errors=(*_BAD_BODY, 409)),
    Operation("get", QUEUE, "One queue, with its depth and why its next item waits", 200, queue_wire.QueueWire),
    Operation("delete", QUEUE, "Delete a queue; its queued items are canceled", 204, None),
    Operation("post", f"{QUEUE}/items", "Append an item", 201, queue_wire.ItemQueued, QueueItem, errors=_BAD_BODY),
    Operation("get", f"{QUEUE}/items/{{run_id}}", "An item's result", 200, queue_wire.ItemResult),
    Operation("delete", f"{QUEUE}/items/{{run_id}}", "Delete a queued item", 204, None, errors=(400, 401, 403, 404)),
    Operation("get", REPEAT, "List repeat items", 200, list[queue_wire.RepeatItemWire]),
    Operation(
        "post", REPEAT, "Add a repeat item (appended now, then every period)", 201, queue_wire.RepeatCreated,
        RepeatItemInput, errors=_BAD_BODY,
    ),  # fmt: skip
    Operation("get", f"{REPEAT}/{{item_id}}", "One repeat item", 200, queue_wire.RepeatItemWire),
    Operation("put", f"{REPEAT}/{{item_id}}", "Replace a repeat item", 200, wire.Message, RepeatItemInput,
              errors=_BAD_BODY),
    Operation("delete", f"{REPEAT}/{{item_id}}", "Delete a repeat item", 204, None),
    Operation("post", "/v1/sync/scrape", "Scrape one page now", 200, ScrapeResponse, ScrapeRequest,
              errors=_V1_ERRORS, v1=True),
    Operation("post", "/v1/sync/download", "Download one file now (base64)", 200, sp_wire.DownloadResponse,
              DownloadBody, errors=_V1_ERRORS, v1=True),
    Operation("get", "/v1/health", "Liveness of the /v1 API", 200, sp_wire.Health, errors=(), public=True),
    Operation(
        "post", V1, "Create a collection (Idempotency-Key header honoured)", 201, sp_wire.NewCollectionResponse,
        CollectionBody, errors=_V1_ERRORS, v1=True,
    ),  # fmt: skip
    Operation(
        "get", V1, "List collections, newest first", 200, list[sp_wire.CollectionPublic],
        query=(Query("name", {"type": "string"}, "Only this name"),
               Query("since", {"type": "string"}, "Only created at or after this ISO time")),
        errors=(401, 422, 429), v1=True,
    ),  # fmt: skip
    Operation("get", f"{V1}/{{collection_id}}", "One collection", 200, sp_wire.CollectionPublic, errors=_V1_404,
              v1=True),
    Operation("put", f"{V1}/{{collection_id}}", "Update a collection (its request list replaced)", 200,
              sp_wire.NewCollectionResponse, UpdateBody, errors=(*_V1_ERRORS, 404), v1=True),
    Operation("delete", f"{V1}/{{collection_id}}", "Delete a collection", 200, sp_wire.Detail, errors=_V1_404,
              v1=True),
    Operation("post", f"{V1}/{{collection_id}}/run", "Run a collection", 200, sp_wire.RunPublic, errors=_V1_404,
              v1=True),
    Operation(
        "get", f"{V1}/{{collection_id}}/runs", "A collection's runs, newest first", 200, sp_wire.RunList,
        query=(Query("status_filter", {"type": "string", "enum": ["in_progress", "completed"]}, "Only this status"),),
        errors=(*_V1_404, 422), v1=True,
    ),  # fmt: skip
    Operation("get", V1_RUN, "One run, with live counters", 200, sp_wire.RunPublic, errors=_V1_404, v1=True),
    Operation(
        "get", f"{V1_RUN}/jobs", "A run's jobs, paged by cursor", 200, sp_wire.JobPage,
        query=(
            Query("limit", _int(1, 1000, 100), "Page size (at most 100 with include_results)"),
            Query("cursor", {"type": "string"}, "cursor_next of the previous page"),
            Query("status_filter", {"type": "string"}, "Comma-separated: processing, completed, failed, timeout"),
            Query("order_by", {"type": "string", "enum": ["id", "completed_at"]}, "Order"),
            Query("order_dir", {"type": "string", "enum": ["asc", "desc"]}, "Direction"),
            Query("since_completed_at", {"type": "string"}, "Only jobs completed after this ISO time"),
            Query("include_results", {"type": "boolean"}, "Embed each completed job's result"),
        ),
        errors=(*_V1_404, 422), v1=True,
    ),  # fmt: skip
    Operation("get", f"{V1_RUN}/jobs/{{job_id}}/result", "One job's result (kept 24 h)", 200, ScrapeResponse,
              errors=_V1_404, v1=True),
    Operation(
        "post", f"{WS}/deliveries/{{delivery_id}}/retry", "Retry a failed delivery now", 200, wire.DeliveryBody,
        errors=(401, 403, 404, 409),
    ),  # fmt: skip
)

# Types the document names though no operation answers them directly.
_EXTRA_TYPES: tuple[Any, ...] = (ErrorBody, wire.AggregateLine, *V1_ERRORS)
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
    if op.v1:
        either = {"anyOf": [schemas[kind] for kind in V1_ERRORS]}
        error = {"description": "Error", "content": {"application/json": {"schema": either}}}
    else:
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
    elif op.v1:
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
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
                "bearer": {"type": "http", "scheme": "bearer", "description": "The API key, for the /v1 API"},
            },
        },
        "security": [{"apiKey": []}],
    }
