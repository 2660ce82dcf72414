"""Decoding ``ScrapeRequest``: the SDK's own requests are accepted as it sends them, bounds refuse hostile
ones up front, and every refusal is a ``RequestInvalid`` with FastAPI-style entries."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapingpros import models as sdk

from intunedd.collections.request import (
    MAX_ITERATIONS,
    Click,
    Collect,
    ExtractSpec,
    MethodPost,
    RequestInvalid,
    ScrapeRequest,
    ScrapeResponse,
    SelectorInvisible,
    While,
    decode_request,
    parse_selector,
)


def _sdk_dump(request: sdk.ScrapeRequest) -> Any:
    # What the SDK puts on the wire for scrape() and collection items.
    return json.loads(request.model_dump_json(exclude_none=True))


def test_sdk_defaults_round_trip() -> None:
    decoded = decode_request(_sdk_dump(sdk.ScrapeRequest(url="example.com")))
    assert decoded.url == "https://example.com"  # the SDK prepends the scheme itself
    assert (decoded.format, decoded.browser, decoded.window_size, decoded.language) == ("html", False, "", "")
    assert decoded.use_proxy is None and decoded.actions is None and not decoded.retry_on_block


def test_every_sdk_field_and_action_decodes() -> None:
    request = sdk.ScrapeRequest(
        url="https://shop.test/list",
        format="markdown",
        browser=True,
        use_proxy=sdk.ProxyConfig(proxy="US", max_retries=2),
        screenshot=True,
        actions=[
            sdk.WaitForTimeoutAction(time=100),
            sdk.WaitForSelectorAction(selector="css:.results", time=5000, state="attached"),
            sdk.ClickAction(selector="xpath://button", optional=True),
            sdk.InputAction(selector="#q", text="kettle"),
            sdk.SelectAction(selector="css:#country", value="US"),
            sdk.KeyPressAction(key="Enter"),
            sdk.EvaluateAction(script="document.title"),
            sdk.WhileControl(
                condition=sdk.SelectorInvisibleCondition(selector="css:.end"),
                actions=[
                    sdk.CollectAction(extract={"titles": {"selector": "css:h2", "multiple": True}}),
                    sdk.ClickAction(selector="css:.next", wait_for_navigation=True),
                ],
                max_iterations=7,
            ),
        ],
        language="es-AR",
        http_method=sdk.MethodPOST(payload={"grant_type": "client_credentials"}, content_type="form"),
        headers={"X-Test": "1"},
        window_size="mobile",
        cookies={"session": "abc", "n": 3},
        extract={"title": "css:h1", "links": {"selector": "xpath://a/@href", "multiple": True}},
        network_capture=sdk.NetworkCaptureConfig(resource_types=["xhr", "fetch"], url_pattern="*api*"),
        retry_on_block=True,
        block_resources=["image", "font"],
        block_requests=["analytics"],
        custom_id="row-7",
    )
    decoded = decode_request(_sdk_dump(request))
    assert decoded.actions is not None and len(decoded.actions) == 8
    loop = decoded.actions[7]
    assert isinstance(loop, While) and isinstance(loop.condition, SelectorInvisible) and loop.max_iterations == 7
    assert isinstance(loop.actions[0], Collect) and isinstance(loop.actions[1], Click)
    assert loop.actions[0].extract["titles"] == ExtractSpec(selector="css:h2", multiple=True)
    assert isinstance(decoded.http_method, MethodPost)
    assert decoded.http_method.body() == (b"grant_type=client_credentials", "application/x-www-form-urlencoded")
    assert decoded.extract == {"title": "css:h1", "links": ExtractSpec(selector="xpath://a/@href", multiple=True)}
    assert decoded.cookies == {"session": "abc", "n": 3}
    assert decoded.custom_id == "row-7"


def test_sdk_get_method_and_json_post() -> None:
    assert decode_request({"url": "https://a.test", "http_method": {"method": "get"}}).http_method is not None
    post = decode_request({"url": "https://a.test", "http_method": {"method": "post", "payload": [1, 2]}}).http_method
    assert isinstance(post, MethodPost) and post.body() == (b"[1,2]", "application/json")


@pytest.mark.parametrize(
    ("raw", "loc", "error_type"),
    [
        ({}, ["body", "url"], "missing"),
        ([], ["body"], "dict_type"),
        ({"url": 3}, ["body", "url"], "string_type"),
        ({"url": "u" * 9000}, ["body", "url"], "string_too_long"),
        ({"url": "u", "format": "pdf"}, ["body", "format"], "literal_error"),
        ({"url": "u", "browser": True, "actions": [{"type": "click"}]}, ["body", "actions", 0, "selector"], "missing"),
        (
            {"url": "u", "browser": True, "actions": [{"type": "fly"}]},
            ["body", "actions", 0, "type"],
            "union_tag_invalid",
        ),
        (
            {"url": "u", "browser": True, "actions": [{"type": "click", "selector": "xpath:  "}]},
            ["body", "actions", 0, "selector"],
            "string_pattern_mismatch",
        ),
        (
            {"url": "u", "browser": True, "actions": [{"type": "wait-for-timeout", "time": 10**7}]},
            ["body", "actions", 0, "time"],
            "less_than_equal",
        ),
        (
            {"url": "u", "browser": True, "actions": [{"type": "wait-for-timeout"}] * 101},
            ["body", "actions"],
            "too_long",
        ),
        ({"url": "u", "headers": {"a": 1}}, ["body", "headers", "..."], "string_type"),
        ({"url": "u", "window_size": "huge"}, ["body", "window_size"], "literal_error"),
        ({"url": "u", "block_resources": ["pictures"]}, ["body", "block_resources", 0], "literal_error"),
        ({"url": "u", "custom_id": "c" * 256}, ["body", "custom_id"], "string_too_long"),
        ({"url": "u", "http_method": {"method": "post", "url": "ftp://x"}}, ["body", "http_method"], "value_error"),
        (
            {"url": "u", "http_method": {"method": "post", "payload": [1], "content_type": "form"}},
            ["body", "http_method"],
            "value_error",
        ),
        ({"url": "u", "screenshot": True}, ["body", "screenshot"], "param_invalid"),
        ({"url": "u", "actions": [{"type": "key-press", "key": "Enter"}]}, ["body", "actions"], "param_invalid"),
        ({"url": "u", "block_requests": ["ads"]}, ["body", "block_requests"], "param_invalid"),
    ],
)
def test_refusals_name_the_field(raw: Any, loc: list[Any], error_type: str) -> None:
    with pytest.raises(RequestInvalid) as refused:
        decode_request(raw)
    [error] = refused.value.errors
    assert (error["loc"], error["type"]) == (loc, error_type)
    assert error["msg"]


def test_while_does_not_nest_and_iterations_are_capped() -> None:
    condition = {"type": "selector-visible", "selector": "css:.more"}
    nested = {"type": "while", "condition": condition, "actions": []}
    with pytest.raises(RequestInvalid) as refused:
        decode_request({"url": "u", "browser": True, "actions": [{**nested, "actions": [nested]}]})
    assert refused.value.errors[0]["loc"] == ["body", "actions", 0, "actions", 0, "type"]
    with pytest.raises(RequestInvalid) as refused:
        decode_request({"url": "u", "browser": True, "actions": [{**nested, "max_iterations": MAX_ITERATIONS + 1}]})
    assert refused.value.errors[0]["loc"] == ["body", "actions", 0, "max_iterations"]
    loop = decode_request({"url": "u", "browser": True, "actions": [nested]}).actions
    assert loop is not None and isinstance(loop[0], While) and loop[0].max_iterations == 20


def test_loc_prefix_places_item_errors() -> None:
    with pytest.raises(RequestInvalid) as refused:
        decode_request({"url": "u", "custom_id": 5}, ("body", "requests", 3))
    assert refused.value.errors[0]["loc"] == ["body", "requests", 3, "custom_id"]


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        ("css:button.go", ("css", "button.go")),
        ("xpath://a[1]", ("xpath", "//a[1]")),
        ("li:nth-child(2)", ("css", "li:nth-child(2)")),
    ],
)
def test_parse_selector(selector: str, parsed: tuple[str, str]) -> None:
    assert parse_selector(selector) == parsed


def test_response_casing_is_the_sdks() -> None:
    body = msgspec.json.encode(ScrapeResponse(message="OK", status_code=200, execution_time=1.5))
    decoded = json.loads(body)
    assert {"statusCode", "executionTime", "potentiallyBlockedByCaptcha", "extracted_data", "evaluate_results"} <= set(
        decoded
    )
    parsed = sdk.ScrapeResponse.model_validate_json(body)
    assert (parsed.statusCode, parsed.executionTime, parsed.message) == (200, 1.5, "OK")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "url",
        "format",
        "browser",
        "actions",
        "extract",
        "http_method",
        "headers",
        "cookies",
        "window_size",
        "network_capture",
        "use_proxy",
        "block_resources",
        "screenshot",
        "type",
        "selector",
        "time",
        "condition",
        "max_iterations",
        "method",
        "payload",
        "multiple",
    ]
)
_shaped = st.recursive(
    _json,
    lambda inner: st.dictionaries(_keys, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(raw=_shaped)
def test_decode_only_ever_raises_request_invalid(raw: Any) -> None:
    try:
        decoded = decode_request(raw, ("body",))
    except RequestInvalid as e:
        assert e.errors and all(error["loc"][0] == "body" and error["msg"] and error["type"] for error in e.errors)
    else:
        assert isinstance(decoded, ScrapeRequest)


def test_deeply_nested_payload_is_refused_not_crashing() -> None:
    payload: list[Any] = []
    for _ in range(5000):
        payload = [payload]
    with pytest.raises(RequestInvalid) as refused:
        decode_request({"url": "u", "http_method": {"method": "post", "payload": {"a": payload}}})
    assert refused.value.errors[0]["loc"] == ["body", "http_method"]


def test_request_round_trips_through_json() -> None:
    # How a request reaches a worker and how it is stored: encoded, then decoded as the type.
    raw = {
        "url": "https://a.test",
        "browser": True,
        "http_method": {"method": "post", "payload": {"a": [1]}},
        "extract": {"t": "css:h1", "l": {"selector": "xpath://a", "multiple": True}},
        "actions": [
            {"type": "while", "condition": {"type": "selector-visible", "selector": "css:.more"}, "actions": [
                {"type": "click", "selector": "css:.more"}, {"type": "collect", "extract": {"x": "css:li"}}]},
            {"type": "evaluate", "script": "1"},
        ],
        "use_proxy": {"proxy": "any"},
    }  # fmt: skip
    request = decode_request(raw)
    assert msgspec.json.decode(msgspec.json.encode(request), type=ScrapeRequest) == request
