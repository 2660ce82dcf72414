"""Projects: deploy an archive (each deploy is a new version), list them."""

from __future__ import annotations

from quart import Blueprint, Response

from ...errors import NotFound
from ..handles import Handles
from ..responses import json_response
from ..schemas import deployed, project_item, request_bytes

WORKSPACE = "/api/v1/workspace/<workspace_id>"


def projects_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("projects", __name__)

    @bp.post(f"{WORKSPACE}/projects/<project>/deploy")
    async def deploy(workspace_id: str, project: str) -> Response:
        return json_response(deployed(await h.deployer.deploy(project, await request_bytes())), 201)

    @bp.get(f"{WORKSPACE}/projects")
    async def list_projects(workspace_id: str) -> Response:
        return json_response([project_item(p) for p in await h.records.projects()])

    @bp.get(f"{WORKSPACE}/projects/<project>")
    async def get_project(workspace_id: str, project: str) -> Response:
        for found in await h.records.projects():
            if found.name == project:
                return json_response(project_item(found))
        raise NotFound(f"project '{project}' is not deployed", details={"field": "projectName"})

    return bp
