"""The Scraping Pros-compatible ``/v1`` API (spec §10): sync scrapes and async collections.

Its own conventions, copied so the ``scrapingpros`` SDK works unchanged: the daemon's API key as
``Authorization: Bearer``, errors as ``{"detail": …}`` (a 422 lists field errors, typed 404s
carry an ``error_code``), per-key rate-limit headers on every answer and a 429 past the limit.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from quart import Blueprint, Response, current_app, g, request

from ... import __version__
from ...actors.collections import CallbackInvalid, CollectionNotFound, CollectionsHandle, ResultMissing, RunNotFound
from ...clock import parse_iso
from ...collections import cursors, url_guard, wire
from ...collections.dedup import screen
from ...collections.request import RequestInvalid, ScrapeRequest, decode_request
from ...errors import ApiError
from ...policy.key_rate_limits import KeyRateLimits
from ...store.keys import hash_key
from ..handles import Handles
from ..json_depth import within_depth
from ..schemas import MAX_JSON_DEPTH, request_bytes

MAX_REQUESTS = 10_000  # requests in one collection
_encoder = msgspec.json.Encoder()


class V1Error(Exception):
    """An answer in this API's own error shape."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class CollectionBody(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    requests: Annotated[list[Any], msgspec.Meta(max_length=MAX_REQUESTS)] = []
    callback_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None


class UpdateBody(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    requests: Annotated[list[Any], msgspec.Meta(max_length=MAX_REQUESTS)] | None = None
    # Left out, the callback is kept; null removes it.
    callback_url: Annotated[str, msgspec.Meta(max_length=2048)] | None | msgspec.UnsetType = msgspec.UNSET


class DownloadBody(msgspec.Struct, kw_only=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
    use_proxy: Any = None


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    raw = body if isinstance(body, bytes) else _encoder.encode(body)
    return Response(raw, status=status, content_type="application/json", headers=headers)


def _invalid(loc: list[str | int], msg: str, kind: str = "value_error") -> V1Error:
    return V1Error(422, wire.FieldErrors(detail=[wire.FieldError(type=kind, loc=loc, msg=msg)]))


async def _json(kind: type[Any]) -> Any:
    """The body as ``kind``; a 422 in FastAPI's words when it is not."""
    body = await request_bytes()
    try:
        if not within_depth(body, current_app.config[MAX_JSON_DEPTH]):
            raise _invalid(["body"], "JSON nests too deeply", "json_invalid")
        return msgspec.json.decode(body or b"null", type=kind)
    except msgspec.ValidationError as e:
        text = str(e)
        field = text.rpartition("`$.")[2].rstrip("`") if "`$." in text else None
        raise _invalid(["body", *([field] if field else [])], text) from e
    except (msgspec.DecodeError, RecursionError) as e:
        raise _invalid(["body"], f"JSON decode error: {e}", "json_invalid") from e


def _key() -> str | None:
    bearer = request.headers.get("Authorization", "")
    scheme, _, token = bearer.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key")


def collections_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("collections_v1", __name__, url_prefix="/v1")
    limits = KeyRateLimits(h.settings.collections.requests_per_minute)
    networks = h.settings.collections.networks

    def service() -> CollectionsHandle:
        if h.collections is None:
            raise V1Error(503, wire.Detail(detail="Collections are not available yet"))
        return h.collections

    @bp.before_request
    async def authenticate() -> None:
        g.rate_headers = {}
        if request.path == "/v1/health":
            return
        key = _key()
        if not key:
            raise V1Error(401, wire.Detail(detail="Not authenticated"), {"WWW-Authenticate": "Bearer"})
        digest = hash_key(key)
        if not await h.known_keys.valid(digest, h.records.key_is_valid):
            raise V1Error(401, wire.Detail(detail="Invalid API key"), {"WWW-Authenticate": "Bearer"})
        g.key_digest = digest
        verdict = limits.take(digest, h.clock.now())
        if verdict is not None:
            g.rate_headers = verdict.headers()
            if not verdict.allowed:
                raise V1Error(429, wire.Detail(detail=wire.RATE_LIMITED), g.rate_headers)

    @bp.after_request
    async def rate_headers(response: Response) -> Response:
        response.headers.update(getattr(g, "rate_headers", {}))
        return response

    @bp.errorhandler(V1Error)
    async def v1_error(error: V1Error) -> Response:
        return _answer(error.body, error.status, {**getattr(g, "rate_headers", {}), **error.headers})

    @bp.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return _answer(wire.Detail(detail=error.message), error.status, getattr(g, "rate_headers", {}))

    async def call(make: Callable[[CollectionsHandle], Awaitable[Any]]) -> Any:
        """The service's answer, its errors in this API's shape."""
        try:
            return await make(service())
        except CollectionNotFound as e:
            raise V1Error(404, wire.Detail(detail=wire.COLLECTION_NOT_FOUND)) from e
        except RunNotFound as e:
            raise V1Error(404, wire.Detail(detail=wire.RUN_NOT_FOUND)) from e
        except ResultMissing as e:
            raise V1Error(404, wire.ResultMissing(detail=e.detail)) from e
        except CallbackInvalid as e:
            raise _invalid(["body", "callback_url"], str(e)) from e

    async def guarded(raw: Any) -> ScrapeRequest:
        """One request, decoded, its URL normalised and allowed (a 422 otherwise)."""
        try:
            scrape = decode_request(raw)
        except RequestInvalid as e:
            raise V1Error(422, wire.FieldErrors(detail=msgspec.convert(e.errors, list[wire.FieldError]))) from e
        url = url_guard.normalise(scrape.url)
        refusal = await url_guard.check(url, networks)
        if refusal is not None:
            raise V1Error(422, wire.Detail(detail=f"{wire.URL_BLOCKED}: {refusal.message}"))
        return msgspec.structs.replace(scrape, url=url)

    # -- sync -----------------------------------------------------------------------------

    @bp.post("/sync/scrape")
    async def sync_scrape() -> Response:
        scrape = await guarded(await _json(Any))
        return _answer(await call(lambda s: s.sync_scrape(scrape)))

    @bp.post("/sync/download")
    async def sync_download() -> Response:
        body = await _json(DownloadBody)
        scrape = await guarded({"url": body.url, "browser": False, "use_proxy": body.use_proxy})
        response = await call(lambda s: s.sync_scrape(scrape))
        content = response.body_base64
        if content is None and response.html is not None:
            content = base64.b64encode(response.html.encode()).decode()
        return _answer(
            wire.DownloadResponse(
                content=content,
                content_type=response.content_type,
                status_code=response.status_code,
                message=response.message,
                execution_time=response.execution_time,
            )
        )

    @bp.get("/health")
    async def health() -> Response:
        return _answer(wire.Health(status="draining" if h.runner.statistics().draining else "ok", version=__version__))

    # -- collections ----------------------------------------------------------------------

    @bp.post("/async/collections")
    async def create() -> Response:
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise _invalid(["header", "Idempotency-Key"], "must be 1-255 characters")
        if idempotency_key:
            earlier = await call(lambda s: s.replay(idempotency_key, g.key_digest))
            if earlier is not None:
                return _answer(earlier, 201, {"Idempotency-Replayed": "true"})
        body = await _json(CollectionBody)
        screened = await screen(body.requests, networks)
        answer, replayed = await call(
            lambda s: s.create(
                body.name, screened, body.callback_url, owner_key_id=g.key_digest, idempotency_key=idempotency_key
            )
        )
        return _answer(answer, 201, {"Idempotency-Replayed": "true"} if replayed else None)

    @bp.get("/async/collections")
    async def list_collections() -> Response:
        found = await call(lambda s: s.list_collections())
        name = request.args.get("name")
        since = _since(request.args.get("since"))
        shown = [
            c.public()
            for c in sorted(found, key=lambda c: c.created_at, reverse=True)
            if (name is None or c.name == name) and (since is None or c.created_at >= since)
        ]
        return _answer(shown)

    @bp.get("/async/collections/<collection_id>")
    async def get(collection_id: str) -> Response:
        return _answer((await call(lambda s: s.get(collection_id))).public())

    @bp.put("/async/collections/<collection_id>")
    async def update(collection_id: str) -> Response:
        body = await _json(UpdateBody)
        screened = None if body.requests is None else await screen(body.requests, networks)
        kwargs: dict[str, Any] = {"name": body.name, "screened": screened}
        if body.callback_url is not msgspec.UNSET:
            kwargs["callback_url"] = body.callback_url
        return _answer(await call(lambda s: s.update(collection_id, **kwargs)))

    @bp.delete("/async/collections/<collection_id>")
    async def delete(collection_id: str) -> Response:
        await call(lambda s: s.delete(collection_id))
        return _answer(wire.Detail(detail="Collection deleted"))

    # -- runs and their jobs --------------------------------------------------------------

    @bp.post("/async/collections/<collection_id>/run")
    async def start_run(collection_id: str) -> Response:
        return _answer(await call(lambda s: s.start_run(collection_id)))

    @bp.get("/async/collections/<collection_id>/runs")
    async def list_runs(collection_id: str) -> Response:
        status = _query(lambda: cursors.parse_runs_query(request.args))
        return _answer(await call(lambda s: s.list_runs(collection_id, status)))

    @bp.get("/async/collections/<collection_id>/runs/<run_id>")
    async def get_run(collection_id: str, run_id: str) -> Response:
        return _answer(await call(lambda s: s.get_run(collection_id, run_id)))

    @bp.get("/async/collections/<collection_id>/runs/<run_id>/jobs")
    async def list_jobs(collection_id: str, run_id: str) -> Response:
        query = _query(lambda: cursors.parse_jobs_query(request.args, run_id, service().cursor_key))
        return _answer(await call(lambda s: s.list_jobs(collection_id, run_id, query)))

    @bp.get("/async/collections/<collection_id>/runs/<run_id>/jobs/<job_id>/result")
    async def job_result(collection_id: str, run_id: str, job_id: str) -> Response:
        return _answer(await call(lambda s: s.job_result(collection_id, run_id, job_id)))

    return bp


def _query(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except cursors.QueryInvalid as e:
        raise V1Error(422, e.body()) from e


def _since(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return parse_iso(raw.replace(" ", "+")).timestamp()
    except (ValueError, OverflowError) as e:
        raise _invalid(["query", "since"], "must be an ISO-8601 time") from e

