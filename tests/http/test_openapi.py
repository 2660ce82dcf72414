"""The OpenAPI document: valid OpenAPI 3.1, and naming exactly the routes the app serves."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from openapi_spec_validator import validate

from intunedd import __version__
from intunedd.http.openapi import OPERATIONS, document

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _served(app: Any) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.websocket or rule.endpoint.startswith("dashboard."):  # the dashboard's HTML pages are no API
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method.lower(), _CONVERTER.sub(r"{\1}", rule.rule)))
    return routes


def test_document_is_valid_openapi_31() -> None:
    spec = document(__version__)
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_document_names_every_route_and_no_other(routed_app: Any) -> None:
    documented = {(method, path) for path, item in document(__version__)["paths"].items() for method in item}
    served = _served(routed_app)
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations no route serves"


def test_operations_are_listed_once() -> None:
    keys = [(op.method, op.path) for op in OPERATIONS]
    assert len(keys) == len(set(keys))


def test_every_reference_resolves() -> None:
    spec = document(__version__)
    text = msgspec.json.encode(spec).decode()
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in spec["components"]["schemas"], name


def test_error_body_schema_matches_the_wire() -> None:
    error = document(__version__)["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"code", "category", "message", "retirable", "details", "correlationId"}
    assert set(error["required"]) == {"code", "category", "message", "retirable", "correlationId"}
