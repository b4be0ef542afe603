"""Handlers of the query API: validate the page's parameters, ask the workers, answer
``{"values": [...], "next": cursor | null}``.

A cursor is opaque to clients: the sort key of a page's last row, with the query it belongs
to, base64url-encoded. The next page starts right after that row, so rows written or
deleted meanwhile never shift a page (nothing is repeated or skipped that was there before
and after).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import requires
from gateway.clients import Scope
from gateway.errors import BadRequest
from gateway.keys import ISSUES, PRINCIPAL, QUERIES
from gateway.query.client import Row

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "environment_deployments",
    "issue_deployments",
    "list_pipelines",
    "pipeline_environments",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 255
JSON = "application/json"


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        msg = f"limit: an integer from 1 to {MAX_LIMIT}"
        raise BadRequest(msg)
    return int(raw)


def _scope(kind: str, params: dict[str, str]) -> bytes:
    # Binds a cursor to its query: a cursor of another query (or tenant) is refused.
    return hashlib.sha256(orjson.dumps([kind, params], option=orjson.OPT_SORT_KEYS)).digest()[:8]


def _after(request: web.Request, kind: str, params: dict[str, str]) -> str | None:
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (ValueError, binascii.Error) as exc:
        msg = "cursor: not a cursor of this query"
        raise BadRequest(msg) from exc
    if len(data) < 9 or data[:8] != _scope(kind, params):
        msg = "cursor: not a cursor of this query"
        raise BadRequest(msg)
    return base64.urlsafe_b64encode(data[8:]).decode()


def _cursor(kind: str, params: dict[str, str], sort: bytes) -> str:
    return base64.urlsafe_b64encode(_scope(kind, params) + sort).decode().rstrip("=")


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not value or len(value) > MAX_ID:
        msg = f"{name}: 1 to {MAX_ID} characters"
        raise BadRequest(msg)
    return value


async def _page(
    request: web.Request, kind: str, params: dict[str, str], extra: dict[str, Any] | None = None
) -> web.Response:
    limit = _limit(request)
    scoped = {**params, "tenant": request[PRINCIPAL].tenant}
    query = dict(scoped)
    after = _after(request, kind, scoped)
    if after is not None:
        query["after"] = after
    rows: list[Row] = await request.app[QUERIES].page(kind, query, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    # The workers' JSON of each value is spliced in as it is: never parsed here.
    head = orjson.dumps(
        {**(extra or {}), "next": _cursor(kind, scoped, rows[-1][0]) if more else None}
    )
    values = b"[" + b",".join(value for _, value in rows) + b"]"
    return web.Response(body=head[:-1] + b',"values":' + values + b"}", content_type=JSON)


@requires(Scope.READ)
async def issue_deployments(request: web.Request) -> web.Response:
    """``GET /issues/{issueKey}/deployments``: the caller's deployments naming the issue,
    newest ``lastUpdated`` first, with what the issue registry knows of the issue."""
    issue = _path_id(request, "issueKey")
    known = request.app[ISSUES].known(request[PRINCIPAL].tenant, issue)
    extra = None
    if known is not None:
        extra = {
            "issue": {
                "key": known.key,
                "summary": known.summary,
                "status": known.status,
                "project": known.project,
            }
        }
    return await _page(request, "issue", {"issue": issue}, extra)


@requires(Scope.READ)
async def list_pipelines(request: web.Request) -> web.Response:
    """``GET /pipelines``: the caller's pipelines, each with its environments."""
    return await _page(request, "pipelines", {})


@requires(Scope.READ)
async def pipeline_environments(request: web.Request) -> web.Response:
    """``GET /pipelines/{pipelineId}/environments``: each environment of the pipeline with
    its latest deployment (the highest deploymentSequenceNumber stored)."""
    return await _page(request, "environments", {"pipeline": _path_id(request, "pipelineId")})


@requires(Scope.READ)
async def environment_deployments(request: web.Request) -> web.Response:
    """``GET /pipelines/{pipelineId}/environments/{environmentId}/deployments``: the
    environment's deployments, highest deploymentSequenceNumber first."""
    params = {
        "pipeline": _path_id(request, "pipelineId"),
        "environment": _path_id(request, "environmentId"),
    }
    return await _page(request, "history", params)
