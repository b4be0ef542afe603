"""The one place where errors become HTTP responses, in the API's documented shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.auth import required_scope
from gateway.errors import Forbidden, HTTPError, TooManyRequests
from gateway.keys import AUTH, LIMITER, METRICS, PRINCIPAL

__all__ = ["auth_middleware", "error_middleware"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(status: int, body: object, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render HTTPError and aiohttp's own errors as ``[{"message": ...}]``; never leak a 500."""
    try:
        response = await handler(request)
    except HTTPError as exc:
        response = _render(exc.status, exc.body(), exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        response = _render(exc.status, [{"message": exc.reason}], headers)
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        response = _render(500, [{"message": "An unknown error has occurred."}], {})
    request.app[METRICS].requests.labels(_route_name(request), str(response.status)).inc()
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, check the route's scope and the client's rate limit, then handle."""
    scope = required_scope(request.match_info.handler)
    if scope is None:
        return await handler(request)
    principal = request.app[AUTH].authenticate(
        request.headers.get("Authorization"),
        request.method,
        request.rel_url.raw_path,
        request.query.items(),
    )
    verdict = request.app[LIMITER].take(
        principal.client_id, rate=principal.rate_limit_per_s, burst=principal.rate_limit_burst
    )
    headers = verdict.headers()
    if not verdict.allowed:
        raise TooManyRequests(headers=headers)
    if scope not in principal.scopes:
        msg = f"Forbidden: this operation requires the {scope.value} scope ({scope.oauth})."
        raise Forbidden(msg, headers=headers)
    request[PRINCIPAL] = principal
    try:
        response = await handler(request)
    except HTTPError as exc:
        exc.headers.update(headers)
        raise
    if not response.prepared:  # a stream (the change stream) sent its headers already
        response.headers.update(headers)
    return response
