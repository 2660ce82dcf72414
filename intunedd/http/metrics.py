"""``GET /metrics``: the daemon's registry in Prometheus' text format.

On the main port it needs an API key like every route (``app.check_key``); ``metrics.listen``
also serves it, and nothing else, without one on an address of its own.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from quart import Blueprint, Response
from quart_trio import QuartTrio

from ..errors import NotFound
from .handles import Handles

METRICS_PATH = "/metrics"


def _exposition(registry: CollectorRegistry | None) -> Response:
    if registry is None:
        raise NotFound("This daemon keeps no metrics")
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @bp.get(METRICS_PATH)
    async def metrics() -> Response:
        return _exposition(h.metrics)

    return bp


def metrics_app(registry: CollectorRegistry) -> QuartTrio:
    """The open listener's app: /metrics alone, so a key-less address exposes nothing else."""
    app = QuartTrio(__name__, static_folder=None)

    @app.get(METRICS_PATH)
    async def metrics() -> Response:
        return _exposition(registry)

    return app
