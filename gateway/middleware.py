"""The one place where errors become HTTP responses, in the API's documented shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.errors import HTTPError
from gateway.keys import METRICS

__all__ = ["error_middleware"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(status: int, messages: list[str], headers: dict[str, str]) -> web.Response:
    body = orjson.dumps([{"message": m} for m in messages])
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render HTTPError and aiohttp's own errors as ``[{"message": ...}]``; never leak a 500."""
    try:
        response = await handler(request)
    except HTTPError as exc:
        response = _render(exc.status, list(exc.messages), exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        response = _render(exc.status, [exc.reason], headers)
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        response = _render(500, ["An unknown error has occurred."], {})
    request.app[METRICS].requests.labels(_route_name(request), str(response.status)).inc()
    return response
