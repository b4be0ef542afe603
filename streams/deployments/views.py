"""Lookups of the deployments table, routed to the worker that owns the key's partition."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import faust
import orjson
from faust.exceptions import SameNode
from faust.web import Request, Response, View

from streams.metrics import WorkerMetrics

__all__ = ["LOOKUP_PATH", "register_views", "render_deployment"]

LOOKUP_PATH = "/internal/deployments"
JSON = "application/json"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def render_deployment(stored: dict[str, Any]) -> dict[str, Any]:
    """The contract's DeploymentData of a stored record: optional fields that were absent
    are left out, numbers stay numbers."""
    return {
        "deployment": _without_nulls(stored["deployment"]),
        "properties": stored["properties"],
        "providerMetadata": stored["providerMetadata"],
    }


def register_views(app: faust.App, table: Any, metrics: WorkerMetrics) -> None:
    """Mount the lookup view on the worker's web server."""

    class DeploymentLookup(View):
        async def get(self, request: Request) -> Response:
            try:
                key = base64.urlsafe_b64decode(request.query["key"])
            except (KeyError, ValueError, binascii.Error):
                return self.bytes(
                    orjson.dumps([{"message": "key: base64url-encoded key required"}]),
                    content_type=JSON,
                    status=400,
                )
            try:
                return await app.router.route_req(table.name, key, self.web, request)
            except SameNode:
                pass
            stored = table.get(key)
            if stored is None:
                metrics.lookups.labels("missing").inc()
                return self.bytes(b"[]", content_type=JSON, status=404)
            metrics.lookups.labels("found").inc()
            return self.bytes(orjson.dumps(render_deployment(stored)), content_type=JSON)

    app.page(LOOKUP_PATH)(DeploymentLookup)
