"""Reading request bodies with bounds on size, time and the memory all bodies hold together."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.errors import PayloadTooLarge, RequestTimeout, ServiceUnavailable

__all__ = ["BodyBudget", "read_body"]

_HELD = web.RequestKey("body_bytes_held", int)
_CHUNK = 64 * 1024


class BodyBudget:
    """Bytes of request bodies held by this gateway at once, across all requests.

    A body is counted from its first chunk until its request is answered (its parsed form
    lives that long too); a request that would take the total over ``limit`` gets 503.
    """

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self._limit = limit
        self._retry_after = str(retry_after_s)
        self.held = 0

    def take(self, request: web.Request, size: int) -> None:
        """Count ``size`` more bytes held by ``request``; 503 when over the budget."""
        if self.held + size > self._limit:
            msg = "The gateway is receiving too much data at once; retry later."
            raise ServiceUnavailable(msg, headers={"Retry-After": self._retry_after})
        self.held += size
        request[_HELD] = request.get(_HELD, 0) + size

    def release(self, request: web.Request) -> None:
        """Give back what ``request`` held (called once it is answered)."""
        self.held -= request.pop(_HELD, 0)


async def read_body(
    request: web.Request, limit: int, *, budget: BodyBudget, timeout_s: float
) -> bytes:
    """The body, refusing anything over ``limit`` bytes before it is parsed, and any body
    that takes longer than ``timeout_s`` to arrive (408: a client dribbling a body must not
    hold a connection and its memory)."""
    if request.content_length is not None and request.content_length > limit:
        msg = f"Request body of {request.content_length} bytes exceeds the {limit}-byte limit."
        raise PayloadTooLarge(msg)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            # read(n) returns what has arrived, up to n bytes: read until the end of the body.
            while chunk := await request.content.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    msg = f"Request body exceeds the {limit}-byte limit."
                    raise PayloadTooLarge(msg)
                budget.take(request, len(chunk))
                chunks.append(chunk)
    except TimeoutError as exc:
        msg = f"The request body did not arrive within {timeout_s:g} s."
        raise RequestTimeout(msg) from exc
    return b"".join(chunks)
