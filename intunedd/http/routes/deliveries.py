"""Sink deliveries: list, inspect, and retry by hand the ones that exhausted their window."""

from __future__ import annotations

from quart import Blueprint, Response, request

from ...errors import BadRequest, NotFound
from ..handles import Handles
from ..responses import json_response
from ..schemas import delivery_body, query_int
from ..wire import DeliveryList

DELIVERIES = "/api/v1/workspace/<workspace_id>/deliveries"
STATUSES = ("pending", "delivered", "failed")


def deliveries_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("deliveries", __name__)

    @bp.get(DELIVERIES)
    async def list_deliveries(workspace_id: str) -> Response:
        status = request.args.get("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}", details={"field": "status"})
        limit = query_int("limit", 50, 1, 500)
        offset = query_int("offset", 0, 0)
        found, total = await h.records.deliveries(status, request.args.get("run"), limit, offset
        )
        return json_response(DeliveryList([delivery_body(d) for d in found], total))

    @bp.get(f"{DELIVERIES}/<delivery_id>")
    async def get(workspace_id: str, delivery_id: str) -> Response:
        delivery = await h.records.delivery(delivery_id)
        if delivery is None:
            raise NotFound(f"delivery '{delivery_id}' not found", details={"field": "deliveryId"})
        return json_response(delivery_body(delivery))

    @bp.post(f"{DELIVERIES}/<delivery_id>/retry")
    async def retry(workspace_id: str, delivery_id: str) -> Response:
        return json_response(delivery_body(await h.records.retry_delivery(delivery_id)))

    return bp
