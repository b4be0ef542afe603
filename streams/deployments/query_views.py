"""The worker's query view: a page of one query over the partitions this worker owns.

``GET /internal/query?kind=…&tenant=…`` answers the partitions it read (its active ones,
recovered) and their merged page, each row its sort key and its JSON
(:func:`schemas.lookups.encode_page`). The gateway asks every worker and merges their pages
by sort key; a partition missing from every answer, or in two of them (a rebalance under
way), makes it ask again.
The tenant comes from the gateway, which authenticated the caller; only callers that present
the internal secret are answered (streams/internal_auth.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from pydantic import SecretStr

from schemas.lookups import BINARY, encode_page
from streams.deployments.queries import (
    Item,
    PartitionData,
    PipelineMemo,
    environment_history,
    environments_latest,
    issue_deployments,
    pipelines,
)
from streams.deployments.renderings import Renderer
from streams.deployments.views import render_listed
from streams.internal_auth import is_authorized
from streams.metrics import WorkerMetrics
from streams.web import is_ready

__all__ = ["MAX_LIMIT", "QUERY_PATH", "register_query_views"]

QUERY_PATH = "/internal/query"
#: Most items a worker returns for one query (the API's largest page, plus one).
MAX_LIMIT = 201
JSON = "application/json"
UNAVAILABLE = "rebalance, recovery or index rebuild under way; retry"


class QueryError(ValueError):
    """A query the view cannot answer (a message for a 400)."""


def _required(request: Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        msg = f"{name}: required"
        raise QueryError(msg)
    return value


def _after(request: Request) -> bytes | None:
    raw = request.query.get("after")
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw)
    except (ValueError, binascii.Error) as exc:
        msg = "after: base64url expected"
        raise QueryError(msg) from exc


def _limit(request: Request) -> int:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError as exc:
        msg = "limit: an integer expected"
        raise QueryError(msg) from exc
    if not 1 <= limit <= MAX_LIMIT:
        msg = f"limit: between 1 and {MAX_LIMIT}"
        raise QueryError(msg)
    return limit


def _run(request: Request, partitions: list[PartitionData]) -> list[Item]:
    kind = _required(request, "kind")
    tenant = _required(request, "tenant")
    after, limit = _after(request), _limit(request)
    if kind == "issue":
        issue = _required(request, "issue")
        return issue_deployments(partitions, tenant, issue, after, limit)
    if kind == "history":
        pipeline, environment = _required(request, "pipeline"), _required(request, "environment")
        return environment_history(partitions, tenant, pipeline, environment, after, limit)
    if kind == "environments":
        pipeline = _required(request, "pipeline")
        return environments_latest(partitions, tenant, pipeline, after, limit)
    if kind == "pipelines":
        return pipelines(partitions, tenant, after, limit)
    msg = f"kind: one of issue, history, environments, pipelines; not {kind!r}"
    raise QueryError(msg)


def _page(partitions: list[int], items: list[Item]) -> bytes:
    """The page in the internal format (:func:`schemas.lookups.encode_page`), kept
    listings as they are."""
    rows = []
    for item in items:
        if item.rendered is not None:
            value = item.rendered
        else:
            assert item.value is not None
            value = orjson.dumps(render_listed(item.value))
        rows.append((item.sort, value))
    return encode_page(partitions, rows)


def register_query_views(
    app: faust.App,
    tables: tuple[Any, Any],
    input_topic: str,
    decode: Callable[[bytes], dict[str, Any]],
    metrics: WorkerMetrics,
    rebuilding: Callable[[], bool],
    secret: SecretStr | None,
    renderer: Renderer | None = None,
) -> None:
    """Mount the query view on the worker's web server."""
    state_table, index_table = tables
    memo = PipelineMemo()

    def owned() -> tuple[list[int], list[PartitionData]]:
        state_dbs, index_dbs = state_table.data._dbs, index_table.data._dbs
        numbers = sorted(
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == input_topic and tp.partition in state_dbs and tp.partition in index_dbs
        )
        return numbers, [
            PartitionData(
                state_dbs[p],
                index_dbs[p],
                decode,
                None if renderer is None else renderer.listings(state_dbs[p]),
                memo,
            )
            for p in numbers
        ]

    class Query(View):
        async def get(self, request: Request) -> Response:
            if not is_authorized(request.headers, secret):
                metrics.queries.labels("unauthorized").inc()
                return self.bytes(
                    orjson.dumps([{"message": "Unauthorized: internal calls need the secret."}]),
                    content_type=JSON,
                    status=401,
                )
            if not is_ready(app) or rebuilding():
                metrics.queries.labels("unavailable").inc()
                return self.bytes(
                    orjson.dumps([{"message": UNAVAILABLE}]),
                    content_type=JSON,
                    status=503,
                    headers={"Retry-After": "1"},
                )
            numbers, partitions = owned()
            try:
                items = _run(request, partitions)
            except QueryError as exc:
                metrics.queries.labels("invalid").inc()
                return self.bytes(
                    orjson.dumps([{"message": str(exc)}]), content_type=JSON, status=400
                )
            metrics.queries.labels("answered").inc()
            return self.bytes(_page(numbers, items), content_type=BINARY)

    app.page(QUERY_PATH)(Query)
