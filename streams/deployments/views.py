"""Lookups of the deployments table, answered by the worker that owns the key's partition.

Any worker accepts a lookup. faust's router (``app.router.key_store``) names the owner from the
current assignment; a lookup for another worker's key is forwarded to it once. We forward
ourselves instead of calling ``app.router.route_req`` because that relays the caller's headers
unchanged, has no timeout, turns an unreachable owner into a 500 and cannot tell a forwarded
request from a new one, so two workers holding different generations of the assignment would
bounce a request between them until one of them catches up.

Every answer that is not a verdict (200 found, 404 absent) is a 503: during a rebalance, while
the table recovers, or while the owner is unreachable. The gateway retries those.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from pydantic import SecretStr
from yarl import URL

from streams.internal_auth import INTERNAL_SECRET_HEADER, is_authorized
from streams.metrics import WorkerMetrics
from streams.web import is_ready

__all__ = [
    "FORWARDED_HEADER",
    "LOOKUP_PATH",
    "SERVED_BY_HEADER",
    "register_views",
    "render_deployment",
    "render_listed",
    "without_nulls",
]

LOOKUP_PATH = "/internal/deployments"
#: Set on a lookup one worker forwards to another; such a lookup is never forwarded again.
FORWARDED_HEADER = "X-Deploystream-Forwarded-By"
#: The advertised URL of the worker that read its table to answer.
SERVED_BY_HEADER = "X-Deploystream-Served-By"
JSON = "application/json"
#: Below the gateway's per-attempt timeout (lookup_timeout_s, 5 s by default), so that a hung
#: owner costs the gateway a 503 it retries rather than a timeout of its own.
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=3.0, sock_connect=1.0)


def without_nulls(value: Any) -> Any:
    """``value`` without the keys whose value is None, at every depth (the contract leaves
    absent optional fields out)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def render_deployment(stored: dict[str, Any]) -> dict[str, Any]:
    """The contract's DeploymentData of a stored record: optional fields that were absent
    are left out, numbers stay numbers."""
    return {
        "deployment": without_nulls(stored["deployment"]),
        "properties": stored["properties"],
        "providerMetadata": stored["providerMetadata"],
        "gating": stored.get("gating"),
    }


def render_listed(value: dict[str, Any]) -> dict[str, Any]:
    """A query result: a stored deployment as the contract's DeploymentData with its
    pipeline and environment ids; anything else (a pipeline) as it is."""
    if "deployment" not in value:
        return value
    key = value["key"]
    rendered: dict[str, Any] = without_nulls(value["deployment"])
    rendered["pipelineId"] = key["pipelineId"]
    rendered["environmentId"] = key["environmentId"]
    return rendered


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


def register_views(
    app: faust.App, table: Any, metrics: WorkerMetrics, secret: SecretStr | None = None
) -> None:
    """Mount the lookup view on the worker's web server; it answers only callers that
    present ``secret`` (none at all without one)."""
    me = URL(str(app.conf.canonical_url))
    internal = {INTERNAL_SECRET_HEADER: secret.get_secret_value()} if secret else {}

    class DeploymentLookup(View):
        def _unavailable(self, why: str) -> Response:
            metrics.lookups.labels("unavailable").inc()
            return self.bytes(
                orjson.dumps([{"message": f"lookup unavailable: {why}; retry"}]),
                content_type=JSON,
                status=503,
                headers={"Retry-After": "1"},
            )

        async def _forward(self, owner: URL, encoded_key: str) -> Response:
            url = owner.with_path(LOOKUP_PATH).with_query(key=encoded_key)
            try:
                async with app.http_client.get(
                    url, headers={FORWARDED_HEADER: str(me), **internal}, timeout=FORWARD_TIMEOUT
                ) as response:
                    body = await response.read()
                    served_by = response.headers.get(SERVED_BY_HEADER)
                    status = response.status
                    content_type = response.content_type
            except (aiohttp.ClientError, TimeoutError) as exc:
                return self._unavailable(f"owner {owner} unreachable ({type(exc).__name__})")
            metrics.lookups.labels("forwarded").inc()
            headers = {SERVED_BY_HEADER: served_by} if served_by else None
            return self.bytes(body, content_type=content_type, status=status, headers=headers)

        async def get(self, request: Request) -> Response:
            if not is_authorized(request.headers, secret):
                metrics.lookups.labels("unauthorized").inc()
                return self.bytes(
                    orjson.dumps([{"message": "Unauthorized: internal calls need the secret."}]),
                    content_type=JSON,
                    status=401,
                )
            try:
                encoded = request.query["key"]
                key = base64.urlsafe_b64decode(encoded)
            except (KeyError, ValueError, binascii.Error):
                return self.bytes(
                    orjson.dumps([{"message": "key: base64url-encoded key required"}]),
                    content_type=JSON,
                    status=400,
                )
            try:
                owner = URL(str(app.router.key_store(table.name, key)))
            except (KeyError, TypeError):
                # No assignment yet (KeyError), or no metadata for the state topic yet (the
                # producer's partitioner gets None partitions: TypeError).
                return self._unavailable("no partition assignment yet")
            if _ident(owner) != _ident(me):
                if FORWARDED_HEADER in request.headers:
                    return self._unavailable(f"assignments disagree (owner {owner})")
                return await self._forward(owner, encoded)
            # The assignment names us before the partition's state is recovered: a lookup
            # now could answer 404 for a key that exists.
            if not is_ready(app):
                return self._unavailable("rebalance or recovery under way")
            stored = table.get(key)
            served_by = {SERVED_BY_HEADER: str(me)}
            if stored is None:
                metrics.lookups.labels("missing").inc()
                return self.bytes(b"[]", content_type=JSON, status=404, headers=served_by)
            metrics.lookups.labels("found").inc()
            return self.bytes(
                orjson.dumps(render_deployment(stored)), content_type=JSON, headers=served_by
            )

    app.page(LOOKUP_PATH)(DeploymentLookup)
