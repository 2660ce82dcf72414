"""A Playwright storage state (``context.storage_state()``) with Intuned's ``sessionStorage`` list: what
an AuthSession keeps, a worker loads into an attempt's context, and a RECORDER import sends over HTTP.

Its bounds are the browser's own (a cookie is at most 4096 bytes, an origin's storage at most 5 Mi
characters), so whatever a browser captured loads again, and one import cannot hold the store for long.
Only msgspec here: the daemon's HTTP layer imports it without Playwright.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Text = Annotated[str, Meta(max_length=4096)]
StoredValue = Annotated[str, Meta(max_length=5 * 1024 * 1024)]
MAX_COOKIES = 10_000


class Cookie(msgspec.Struct, rename="camel", kw_only=True):
    name: Text
    value: StoredValue
    domain: Text
    path: Text = "/"
    expires: float = -1
    http_only: bool = False
    secure: bool = False
    same_site: Literal["Strict", "Lax", "None"] = "Lax"


class StorageItem(msgspec.Struct):
    name: Text
    value: StoredValue


Items = Annotated[list[StorageItem], Meta(max_length=10_000)]


class Origin(msgspec.Struct, rename="camel"):
    origin: Text
    local_storage: Items = []


class SessionStorageOrigin(msgspec.Struct, rename="camel"):
    origin: Text
    session_storage: Items = []


class StorageState(msgspec.Struct, rename="camel", kw_only=True):
    cookies: Annotated[list[Cookie], Meta(max_length=MAX_COOKIES)] = []
    origins: Annotated[list[Origin], Meta(max_length=1000)] = []
    # Intuned's runtime requires the key (null allowed), so it is always encoded.
    session_storage: Annotated[list[SessionStorageOrigin], Meta(max_length=1000)] | None = None
