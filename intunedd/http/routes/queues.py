"""Queues, their items and repeat items: Intuned's paths (spec §3.1), bodies and status codes."""

from __future__ import annotations

from quart import Blueprint, Response

from ...errors import NotFound
from ...queue_spec import QueueCreate, QueueItem, RepeatItemInput
from ..handles import Handles
from ..queue_wire import ItemQueued, QueueCreated, QueueWire, RepeatCreated, item_result, queue_body, repeat_body
from ..responses import json_response
from ..schemas import decode_body, request_bytes
from ..wire import Message

QUEUES = "/api/v1/workspace/<workspace_id>/projects/<project>/queues"
QUEUE = f"{QUEUES}/<queue_id>"


async def queue_bodies(h: Handles, project: str) -> list[QueueWire]:
    """Every queue of ``project`` as the API shows it, with one round trip to the runner."""
    now = h.clock.now()
    return [queue_body(view.queue, view.state, view.wait, now) for view in await h.runner.queue("list", project, "")]


def queues_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("queues", __name__)

    async def view(project: str, queue_id: str) -> Response:
        found = await h.runner.queue("state", project, queue_id)
        return json_response(queue_body(found.queue, found.state, found.wait, h.clock.now()))

    @bp.post(QUEUES)
    async def create(workspace_id: str, project: str) -> Response:
        body = decode_body(await request_bytes(), QueueCreate)
        queue_id = await h.runner.queue("create", project, "", body)
        return json_response(QueueCreated(queue_id), 201)

    @bp.get(QUEUES)
    async def list_queues(workspace_id: str, project: str) -> Response:
        return json_response(await queue_bodies(h, project))

    @bp.get(QUEUE)
    async def get(workspace_id: str, project: str, queue_id: str) -> Response:
        return await view(project, queue_id)

    @bp.delete(QUEUE)
    async def delete(workspace_id: str, project: str, queue_id: str) -> Response:
        await h.runner.queue("delete", project, queue_id)
        return Response(b"", status=204)

    @bp.post(f"{QUEUE}/items")
    async def append(workspace_id: str, project: str, queue_id: str) -> Response:
        item = decode_body(await request_bytes(), QueueItem)
        run = await h.runner.queue("append", project, queue_id, item)
        return json_response(ItemQueued(run.id, "queued"), 201)

    @bp.get(f"{QUEUE}/items/<run_id>")
    async def item(workspace_id: str, project: str, queue_id: str, run_id: str) -> Response:
        run = await h.records.queue_item(project, queue_id, run_id)
        if run is None or (run.reason or {}).get("type") == "queue-item-deleted":
            raise NotFound(f"item '{run_id}' not found in queue '{queue_id}'", details={"field": "itemRunId"})
        return json_response(item_result(run))

    @bp.delete(f"{QUEUE}/items/<run_id>")
    async def delete_item(workspace_id: str, project: str, queue_id: str, run_id: str) -> Response:
        await h.runner.queue("delete_item", project, queue_id, item_id=run_id)
        return Response(b"", status=204)

    @bp.get(f"{QUEUE}/repeatItems")
    async def list_repeats(workspace_id: str, project: str, queue_id: str) -> Response:
        await h.runner.queue("state", project, queue_id)  # 404 for a queue that does not exist
        return json_response([repeat_body(r) for r in await h.records.repeat_items(project, queue_id)])

    @bp.post(f"{QUEUE}/repeatItems")
    async def add_repeat(workspace_id: str, project: str, queue_id: str) -> Response:
        body = decode_body(await request_bytes(), RepeatItemInput)
        item_id = await h.runner.queue("add_repeat", project, queue_id, body)
        return json_response(RepeatCreated(item_id), 201)

    @bp.get(f"{QUEUE}/repeatItems/<item_id>")
    async def get_repeat(workspace_id: str, project: str, queue_id: str, item_id: str) -> Response:
        repeat = await h.records.repeat_item(project, queue_id, item_id)
        if repeat is None:
            raise NotFound(f"repeat item '{item_id}' not found in queue '{queue_id}'", details={"field": "itemId"})
        return json_response(repeat_body(repeat))

    @bp.put(f"{QUEUE}/repeatItems/<item_id>")
    async def update_repeat(workspace_id: str, project: str, queue_id: str, item_id: str) -> Response:
        body = decode_body(await request_bytes(), RepeatItemInput)
        await h.runner.queue("update_repeat", project, queue_id, body, item_id)
        return json_response(Message("repeatable item updated"))

    @bp.delete(f"{QUEUE}/repeatItems/<item_id>")
    async def delete_repeat(workspace_id: str, project: str, queue_id: str, item_id: str) -> Response:
        await h.runner.queue("delete_repeat", project, queue_id, item_id=item_id)
        return Response(b"", status=204)

    return bp
