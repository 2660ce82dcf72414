"""Screening a collection's request list: what a create (or update) keeps, and the answer's buckets.

Each item goes through, in order: decoding (``invalid_items``, with FastAPI's error types as
``error_type`` and the dotted path inside the item as ``field``, as the service reports them),
the URL guard (``blocked_urls``), then de-duplication by ``(url, custom_id)`` among what is
left, keeping the first (``duplicate_urls``, one entry per skipped item, and its count
``duplicates_skipped``). Indexes are those of the submitted list. The collection is created with
whatever passes, as the service does, so one bad item never costs the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ..sinks.destinations import Network
from . import url_guard, wire
from .request import RequestInvalid, ScrapeRequest, decode_request

T = TypeVar("T")
ROOT_FIELD = "<root>"


def dedup(items: Sequence[T], key: Callable[[T], Hashable]) -> tuple[list[T], list[T]]:
    """``items`` split into the first of each key, in order, and every later repeat."""
    seen: set[Hashable] = set()
    kept: list[T] = []
    repeats: list[T] = []
    for item in items:
        (repeats if key(item) in seen else kept).append(item)
        seen.add(key(item))
    return kept, repeats


@dataclass
class Screened:
    """``accepted``: (index in the submitted list, request with its URL normalised)."""

    accepted: list[tuple[int, ScrapeRequest]] = field(default_factory=list)
    blocked_urls: list[wire.BlockedUrl] = field(default_factory=list)
    invalid_items: list[wire.InvalidItem] = field(default_factory=list)
    duplicate_urls: list[str] = field(default_factory=list)

    def answer(self, collection_id: str, name: str, message: str = wire.CREATED) -> wire.NewCollectionResponse:
        return wire.NewCollectionResponse(
            id=collection_id,
            name=name,
            message=message,
            duplicates_skipped=len(self.duplicate_urls),
            blocked_urls=self.blocked_urls,
            invalid_items=self.invalid_items,
            duplicate_urls=self.duplicate_urls,
        )


def _invalid(index: int, raw: Any, errors: list[dict[str, Any]], prefix_length: int) -> wire.InvalidItem:
    url = raw.get("url") if isinstance(raw, dict) else None
    return wire.InvalidItem(
        index=index,
        url=url if isinstance(url, str) else None,
        errors=[
            wire.InvalidItemError(
                field=".".join(str(part) for part in e["loc"][prefix_length:]) or ROOT_FIELD,
                error_type=str(e["type"]),
                message=str(e["msg"]),
            )
            for e in errors
        ],
    )


def decode_all(raw_items: Sequence[Any]) -> Screened:
    """The decoding step: every item decoded (URL normalised) or listed as invalid."""
    screened = Screened()
    for index, raw in enumerate(raw_items):
        prefix: tuple[str | int, ...] = ("body", "requests", index)
        if not isinstance(raw, dict):
            error = {"loc": [*prefix], "msg": "Each request must be a JSON object", "type": "not_a_dict"}
            screened.invalid_items.append(_invalid(index, raw, [error], len(prefix)))
            continue
        try:
            request = decode_request(raw, prefix)
        except RequestInvalid as e:
            screened.invalid_items.append(_invalid(index, raw, e.errors, len(prefix)))
            continue
        screened.accepted.append((index, msgspec.structs.replace(request, url=url_guard.normalise(request.url))))
    return screened


def settle(screened: Screened, refusals: Sequence[url_guard.Refusal | None]) -> Screened:
    """The last steps, given the URL guard's verdict on each accepted request, in order."""
    allowed: list[tuple[int, ScrapeRequest]] = []
    blocked = list(screened.blocked_urls)
    for (index, request), refusal in zip(screened.accepted, refusals, strict=True):
        if refusal is None:
            allowed.append((index, request))
        else:
            blocked.append(
                wire.BlockedUrl(index=index, url=request.url, reason=refusal.reason, message=refusal.message)
            )
    kept, repeats = dedup(allowed, key=lambda item: (item[1].url, item[1].custom_id))
    return Screened(
        accepted=kept,
        blocked_urls=blocked,
        invalid_items=screened.invalid_items,
        duplicate_urls=[request.url for _, request in repeats],
    )


async def screen(
    raw_items: Sequence[Any],
    allowed: tuple[Network, ...],
    dns_timeout_s: float = url_guard.DNS_TIMEOUT_S,
) -> Screened:
    """A create's or update's ``requests``, screened: decode, guard the URLs (resolving names), dedup."""
    decoded = decode_all(raw_items)
    refusals = await url_guard.check_all([request.url for _, request in decoded.accepted], allowed, dns_timeout_s)
    return settle(decoded, refusals)
