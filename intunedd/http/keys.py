"""API keys over HTTP: list them (never the key, never its hash) and revoke one.

Revoking the key the request itself uses is allowed; it stops working like any other.
"""

from __future__ import annotations

import msgspec
from quart import Blueprint, Response

from ..errors import from_store
from ..store.errors import StoreError
from ..store.keys import ApiKey
from .handles import Handles
from .responses import json_response

KEYS = "/api/v1/workspace/<workspace_id>/keys"


class KeyList(msgspec.Struct, frozen=True):
    items: list[ApiKey]


def keys_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("keys", __name__)

    @bp.get(KEYS)
    async def list_keys(workspace_id: str) -> Response:
        return json_response(KeyList(await h.records.keys()))

    @bp.post(f"{KEYS}/<key_id>/revoke")
    @bp.delete(f"{KEYS}/<key_id>")
    async def revoke(workspace_id: str, key_id: str) -> Response:
        try:
            return json_response(await h.records.revoke_key(key_id))
        except StoreError as e:
            raise from_store(e) from e

    return bp
