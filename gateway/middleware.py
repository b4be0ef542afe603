"""The one place where errors become HTTP responses, in the API's documented shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.auth import required_scope
from gateway.errors import Forbidden, HTTPError, TooManyRequests, Unauthorized
from gateway.keys import AUTH, BODIES, FAILURES, LIMITER, METRICS, PRINCIPAL, SETTINGS
from gateway.ratelimit import source_of

__all__ = ["auth_middleware", "client_source", "error_middleware"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: nginx's code for "the client closed the connection before the answer": a metrics label only.
CLIENT_CLOSED = "499"


def _render(status: int, body: object, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def client_source(request: web.Request) -> str:
    """The address ``request`` comes from, for per-source limits (see ``source_of``)."""
    return source_of(
        request.remote,
        request.headers.get("X-Forwarded-For"),
        request.app[SETTINGS].trusted_proxies,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render HTTPError and aiohttp's own errors as ``[{"message": ...}]``; never leak a 500."""
    metrics = request.app[METRICS]
    try:
        response = await handler(request)
    except HTTPError as exc:
        response = _render(exc.status, exc.body(), exc.headers)
        if exc.close_connection:
            response.force_close()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        response = _render(exc.status, [{"message": exc.reason}], headers)
    except ConnectionError:
        if not _client_gone(request):
            raise
        # The client hung up mid-request (typically mid-body): nothing went wrong here and
        # nobody is left to answer.
        logger.debug("client closed the connection during %s %s", request.method, request.path)
        metrics.requests.labels(_route_name(request), CLIENT_CLOSED).inc()
        return web.Response(status=400)
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        response = _render(500, [{"message": "An unknown error has occurred."}], {})
    finally:
        request.app[BODIES].release(request)
    metrics.requests.labels(_route_name(request), str(response.status)).inc()
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, check the route's scope and the client's rate limit, then handle.

    Failed authentications are counted per source address, never against the client they
    name: an address that guesses too often is refused (429) until its bucket refills,
    while the real client, elsewhere, is unaffected.
    """
    scope = required_scope(request.match_info.handler)
    if scope is None:
        return await handler(request)
    authorization = request.headers.get("Authorization")
    source = client_source(request) if authorization else ""
    if authorization:
        refused = request.app[FAILURES].peek(source)
        if not refused.allowed:
            raise TooManyRequests(headers={"Retry-After": str(refused.retry_after_s)})
    try:
        principal = request.app[AUTH].authenticate(
            authorization,
            request.method,
            request.rel_url.raw_path,
            request.query.items(),
        )
    except Unauthorized:
        if authorization:
            request.app[FAILURES].take(source)
        raise
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
