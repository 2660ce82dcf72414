"""Collections (the /v1 scraping API): each one's runs and their progress, and a button to start one."""

from __future__ import annotations

from datetime import UTC, datetime

from quart import Blueprint, Response

from ..actors.collections import CollectionNotFound, CollectionsHandle
from ..errors import NotFound, Unavailable
from ..http.handles import Handles
from .render import page, render, see_other


def epoch_iso(seconds: float | None) -> str | None:
    """The /v1 API's epoch seconds as the ISO text the other pages show."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def add_collection_views(bp: Blueprint, h: Handles) -> None:
    bp.add_app_template_filter(epoch_iso)

    def service() -> CollectionsHandle:
        if h.collections is None:
            raise Unavailable("Collections are not available in this daemon")
        return h.collections

    @bp.get("/collections")
    async def collections() -> str:
        found = sorted(await service().list_collections(), key=lambda c: c.created_at, reverse=True)
        return await render("collections.html", collections=[c.public() for c in found])

    @bp.get("/collections/<collection_id>")
    async def collection(collection_id: str) -> str:
        try:
            record = await service().get(collection_id)
            runs = await service().list_runs(collection_id)
        except CollectionNotFound as e:
            raise NotFound(f"collection '{collection_id}' not found", details={"field": "collectionId"}) from e
        return await page("collection.html", "_collection_live.html", collection=record.public(), runs=runs)

    @bp.post("/collections/<collection_id>/run")
    async def start_collection_run(collection_id: str) -> Response:
        try:
            await service().start_run(collection_id)
        except CollectionNotFound as e:
            raise NotFound(f"collection '{collection_id}' not found", details={"field": "collectionId"}) from e
        return see_other(f"/collections/{collection_id}", notice="Run started")
