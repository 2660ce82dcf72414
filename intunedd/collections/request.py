"""One scrape's wire shapes: ``ScrapeRequest`` (with its actions) in, ``ScrapeResponse`` out.

Field names, types and defaults are the official ``scrapingpros`` SDK's (0.7.8, ``scrapingpros.models``),
which is what clients send: it dumps requests with ``exclude_none``, so defaults such as
``window_size: ""`` and ``browser_type: "light"`` arrive explicitly and must be accepted. Where the SDK
is looser than the spec the SDK wins; where it is silent we chose, and say so at the field. Unknown
fields are ignored, as the SDK's pydantic models ignore them.

Every string, list and number has a bound, so a hostile request is refused before anything runs.
``decode_request`` turns a parsed JSON body into a ``ScrapeRequest`` or raises ``RequestInvalid``
carrying FastAPI-style entries (``{"loc", "msg", "type"}``), the 422 body that API answers with.
The ``url`` is kept as sent: the URL guard (``https://`` when the scheme is missing, SSRF rules)
is applied by the caller.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from msgspec import Meta

MAX_URL = 8192
MAX_SELECTOR = 4096
MAX_ACTIONS = 100
MAX_INNER_ACTIONS = 50
MAX_ITERATIONS = 500
MAX_WAIT_MS = 120_000
MAX_SCRIPT = 100_000
MAX_FIELDS = 100
MAX_HEADERS = 100
MAX_PAYLOAD_BYTES = 1_000_000

Selector = Annotated[
    str,
    # Some text that is not only a prefix: "css:" or "xpath:" alone selects nothing.
    Meta(min_length=1, max_length=MAX_SELECTOR, pattern=r"^(?!\s*(?:css|xpath):\s*$)\s*\S"),
]
Name = Annotated[str, Meta(min_length=1, max_length=256)]
ShortText = Annotated[str, Meta(max_length=1024)]
WaitMs = Annotated[int, Meta(ge=0, le=MAX_WAIT_MS)]
# Playwright's request.resource_type values, which is what block_resources and network_capture filter on.
ResourceType = Literal[
    "document", "stylesheet", "image", "media", "font", "script", "texttrack", "xhr", "fetch",
    "eventsource", "websocket", "manifest", "other",
]  # fmt: skip


class ExtractSpec(msgspec.Struct, kw_only=True):
    """The object form of an ``extract`` entry. The SDK types it ``dict[str, Any]`` with ``selector``
    and ``multiple``; ``attribute`` (read that attribute instead of the text) is our addition."""

    selector: Selector
    multiple: bool = False
    attribute: Name | None = None


Extract = Annotated[dict[Name, Selector | ExtractSpec], Meta(max_length=MAX_FIELDS)]


# --- actions (tagged by "type") ----------------------------------------------------------------


class _Action(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class WaitForTimeout(_Action, tag="wait-for-timeout"):
    time: WaitMs


class WaitForSelector(_Action, tag="wait-for-selector"):
    selector: Selector
    time: WaitMs
    state: Literal["visible", "attached", "hidden"] | None = None  # None: visible


class Click(_Action, tag="click"):
    selector: Selector
    wait_for_navigation: bool = False
    optional: bool = False


class Input(_Action, tag="input"):
    selector: Selector
    text: Annotated[str, Meta(max_length=100_000)]


class Select(_Action, tag="select"):
    selector: Selector
    value: ShortText


class KeyPress(_Action, tag="key-press"):
    key: Annotated[str, Meta(min_length=1, max_length=64)]


class Evaluate(_Action, tag="evaluate"):
    script: Annotated[str, Meta(min_length=1, max_length=MAX_SCRIPT)]
    timeout: WaitMs | None = 30_000  # ms; None: the default


class Collect(_Action, tag="collect"):
    extract: Extract


class _Condition(msgspec.Struct, kw_only=True, tag_field="type"):
    selector: Selector


class SelectorVisible(_Condition, tag="selector-visible"):
    pass


class SelectorInvisible(_Condition, tag="selector-invisible"):
    pass


InnerAction = WaitForTimeout | WaitForSelector | Click | Input | Select | KeyPress | Evaluate | Collect


class While(_Action, tag="while"):
    """Run ``actions`` while ``condition`` holds, at most ``max_iterations`` times; loops do not nest."""

    condition: SelectorVisible | SelectorInvisible
    actions: Annotated[list[InnerAction], Meta(max_length=MAX_INNER_ACTIONS)]
    max_iterations: Annotated[int, Meta(ge=1, le=MAX_ITERATIONS)] = 20


Action = While | InnerAction


# --- the rest of a request -----------------------------------------------------------------------


class _Method(msgspec.Struct, kw_only=True, tag_field="method"):
    pass


class MethodGet(_Method, tag="get"):
    pass


class MethodPost(_Method, tag="post"):
    """A POST of ``payload`` (JSON by default, or form-encoded) to ``url``, or to the request's url."""

    payload: dict[str, Any] | list[Any] | None = None
    url: Annotated[str, Meta(max_length=MAX_URL)] | None = None
    content_type: Literal["json", "form"] | None = None

    def __post_init__(self) -> None:
        if self.url is not None:
            self.url = self.url.strip() or None  # as the SDK does: blank means "the request's url"
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("http_method.url must start with http:// or https://")
        if self.content_type == "form" and isinstance(self.payload, list):
            raise ValueError("a form payload must be an object")
        try:
            size = len(msgspec.json.encode(self.payload))
        except RecursionError:
            raise ValueError("payload is nested too deeply") from None
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload is over {MAX_PAYLOAD_BYTES} bytes")

    def body(self) -> tuple[bytes, str]:
        """The encoded body and its Content-Type."""
        if self.content_type == "form":
            fields = self.payload if isinstance(self.payload, dict) else {}
            # A form field is text: anything else is sent as its JSON.
            encoded = {k: v if isinstance(v, str) else msgspec.json.encode(v).decode() for k, v in fields.items()}
            return urlencode(encoded).encode(), "application/x-www-form-urlencoded"
        return (b"" if self.payload is None else msgspec.json.encode(self.payload)), "application/json"


class ProxyConfig(msgspec.Struct, kw_only=True):
    proxy: Annotated[str, Meta(max_length=64)] = "any"
    max_retries: Annotated[int, Meta(ge=0, le=10)] = 3
    delay_seconds: Annotated[int, Meta(ge=0, le=60)] = 1
    backoff_factor: Annotated[int, Meta(ge=1, le=10)] = 2


class NetworkCapture(msgspec.Struct, kw_only=True):
    resource_types: Annotated[list[ResourceType], Meta(max_length=20)] | None = None  # None: every type
    listen_after_load_ms: WaitMs | None = None
    url_pattern: ShortText | None = None  # fnmatch glob; matching responses get their body (≤ 64 KB)


UrlPart = Annotated[str, Meta(min_length=1, max_length=1024)]
CookieValue = Annotated[str, Meta(max_length=4096)] | int | float | bool


class ScrapeRequest(msgspec.Struct, kw_only=True):
    url: Annotated[str, Meta(max_length=MAX_URL)]
    format: Literal["html", "markdown"] = "html"
    browser: bool = False
    browser_type: Literal["light", "heavy", "stealth"] = "light"  # deprecated by the SDK; accepted, ignored
    # None: direct; "any" or a country code: the daemon's configured proxies (countries are not told apart).
    use_proxy: ProxyConfig | Annotated[str, Meta(max_length=64)] | None = None
    screenshot: bool = False
    actions: Annotated[list[Action], Meta(max_length=MAX_ACTIONS)] | None = None
    language: Annotated[str, Meta(max_length=64)] = ""  # sent as Accept-Language
    http_method: MethodGet | MethodPost | None = None
    headers: Annotated[dict[Name, Annotated[str, Meta(max_length=8192)]], Meta(max_length=MAX_HEADERS)] | None = None
    # The SDK types this a free string; the documented values are these ("" is its default: desktop).
    window_size: Literal["", "desktop", "mobile", "any"] = ""
    # The SDK allows any value; scalars are sent as their text, which is all a Cookie header holds.
    cookies: Annotated[dict[Name, CookieValue], Meta(max_length=MAX_HEADERS)] | None = None
    extract: Extract | None = None
    network_capture: NetworkCapture | None = None
    retry_on_block: bool = False
    block_resources: Annotated[list[ResourceType], Meta(max_length=20)] | None = None
    block_requests: Annotated[list[UrlPart], Meta(max_length=100)] | None = None  # matched case-insensitively
    custom_id: Annotated[str, Meta(max_length=255)] | None = None


# Options that only a browser can honour: asking for one with browser false is refused, as the service does.
BROWSER_ONLY = ("screenshot", "actions", "network_capture", "block_resources", "block_requests")


# --- the response ----------------------------------------------------------------------------------


class Guidance(msgspec.Struct, kw_only=True):
    """The verdict the SDK reads (``resp.guidance.success``); always present in our answers."""

    success: bool = False
    error_type: str | None = None
    error_provider: str | None = None
    credits_charged: int | None = None
    credits_refunded: bool | None = None
    next_steps: list[str] = []
    suggested_request: dict[str, Any] | None = None
    stop_reason: str | None = None


class ScrapeResponse(
    msgspec.Struct,
    kw_only=True,
    rename={
        "status_code": "statusCode",
        "execution_time": "executionTime",
        "potentially_blocked_by_captcha": "potentiallyBlockedByCaptcha",
    },
):
    """The sync answer and each job's result. ``html`` is set for format html, ``markdown`` for markdown."""

    url: str | None = None
    custom_id: str | None = None
    html: str | None = None
    markdown: str | None = None
    status_code: int | None = None
    message: str
    screenshot: str | None = None  # PNG, base64
    execution_time: float | None = None  # seconds
    extracted_data: dict[str, Any] | None = None
    evaluate_results: list[Any] | None = None
    network_requests: list[dict[str, Any]] | None = None
    potentially_blocked_by_captcha: bool | None = None
    timings: dict[str, Any] | None = None
    guidance: Guidance | None = None
    content_type: str | None = None
    body_base64: str | None = None  # binary bodies only
    body_url: str | None = None  # reserved by the service, never set


# --- decoding ----------------------------------------------------------------------------------


class RequestInvalid(Exception):
    """A request refused before running; ``errors`` are FastAPI's ``{"loc", "msg", "type"}`` entries."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def decode_request(raw: Any, loc_prefix: tuple[str | int, ...] = ("body",)) -> ScrapeRequest:
    """``raw`` (parsed JSON) as a ``ScrapeRequest``; ``loc_prefix`` starts every error's ``loc``."""
    try:
        request = msgspec.convert(raw, ScrapeRequest)
    except msgspec.ValidationError as e:
        raise RequestInvalid([_field_error(str(e), loc_prefix)]) from None
    if not request.browser:
        refused = [
            {"loc": [*loc_prefix, name], "msg": f"{name} requires browser=true", "type": "param_invalid"}
            for name in BROWSER_ONLY
            if getattr(request, name) not in (None, False, [])
        ]
        if refused:
            raise RequestInvalid(refused)
    return request


def parse_selector(selector: str) -> tuple[Literal["css", "xpath"], str]:
    """``"css:…"`` / ``"xpath:…"`` / a bare selector (CSS) as (engine, expression)."""
    stripped = selector.strip()
    for engine in ("css", "xpath"):
        if stripped.startswith(f"{engine}:"):
            return engine, stripped[len(engine) + 1 :].strip()
    return "css", stripped


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>.*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPES = {
    "str": ("string_type", "a valid string"),
    "int": ("int_type", "a valid integer"),
    "float": ("float_type", "a valid number"),
    "bool": ("bool_type", "a valid boolean"),
    "array": ("list_type", "a valid list"),
    "object": ("dict_type", "a valid dictionary"),
}
# msgspec's wording → (pydantic's error type, pydantic's wording with the match's groups); first match wins.
_MESSAGES = tuple(
    (re.compile(pattern), error_type, wording)
    for pattern, error_type, wording in (
        (r"Object missing required field `(?P<field>[^`]+)`", "missing", "Field required"),
        (r"Expected `str` of length <= (?P<n>\d+)", "string_too_long", "String should have at most {n} characters"),
        (r"Expected `str` of length >= (?P<n>\d+)", "string_too_short", "String should have at least {n} characters"),
        (r"Expected `str` matching regex", "string_pattern_mismatch", "String should be a selector"),
        (r"Expected `(?:array|object)` of length <= (?P<n>\d+)", "too_long", "Should have at most {n} items"),
        (r"Expected `\w+` <= (?P<n>\S+)", "less_than_equal", "Input should be less than or equal to {n}"),
        (r"Expected `\w+` >= (?P<n>\S+)", "greater_than_equal", "Input should be greater than or equal to {n}"),
        (r"Invalid enum value (?P<v>.*)", "literal_error", "Input should be one of the allowed values, not {v}"),
        (r"Invalid value (?P<v>.*)", "union_tag_invalid", "Input tag {v} is not one of the allowed types"),
    )
)
_WRONG_TYPE = re.compile(r"Expected `(?P<t>\w+)`.*, got `\w+`")


def _field_error(text: str, loc_prefix: tuple[str | int, ...]) -> dict[str, Any]:
    """One msgspec ``ValidationError`` message as a FastAPI error entry."""
    parsed = _AT.match(text)
    assert parsed is not None  # the pattern matches every string
    loc: list[str | int] = list(loc_prefix)
    for name, index in _PATH_PART.findall(parsed["path"] or ""):
        # msgspec does not name a dict's key in its path ("[...]"); "..." stands for it.
        loc.append(name or (int(index) if index.isdigit() else "..."))
    message = parsed["msg"]
    for pattern, error_type, wording in _MESSAGES:
        if match := pattern.match(message):
            if "field" in match.groupdict():
                loc.append(match["field"])
            return {"loc": loc, "msg": wording.format(**match.groupdict()), "type": error_type}
    if (match := _WRONG_TYPE.match(message)) and match["t"] in _TYPES:
        error_type, expected = _TYPES[match["t"]]
        return {"loc": loc, "msg": f"Input should be {expected}", "type": error_type}
    return {"loc": loc, "msg": f"Value error, {message}", "type": "value_error"}
