"""The HTTP app as routed, for tests that serve no request reaching an actor."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from intunedd.clock import SystemClock
from intunedd.config import Settings
from intunedd.http.app import create_app
from intunedd.http.handles import Handles


@pytest.fixture
def routed_app() -> Any:
    """The app with every route and a clock; the actors' handles are left empty (None)."""
    required = [
        f.name
        for f in dataclasses.fields(Handles)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    values: dict[str, Any] = dict.fromkeys(required)
    values["settings"] = Settings()
    values["clock"] = SystemClock()
    return create_app(Handles(**values))
