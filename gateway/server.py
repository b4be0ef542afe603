"""Serving the app: a cap on open connections, idle timeouts, and SIGTERM draining.

aiohttp closes a connection that has not sent a complete request head within its keep-alive
timeout, counted from the connection's start or its last response (also when bytes trickle
in), and bodies are bounded by :mod:`gateway.bodies`. What aiohttp has no setting for is the
number of open connections: each accepted connection is wrapped, counted while it lives, and
one over the cap is answered 503 and closed without being read.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import cast

import orjson
from aiohttp import web

from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

__all__ = ["ConnectionCap", "serve", "start"]

logger = logging.getLogger(__name__)

LINGER_S = 2.0
_BUSY_BODY = orjson.dumps([{"message": "Too many open connections; retry later."}])
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class _Refused(asyncio.Protocol):
    """A connection over the cap: one 503, then closed, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's are not subclasses of asyncio.WriteTransport).
        cast("asyncio.WriteTransport", transport).write(_BUSY)
        transport.close()


class _Counted(asyncio.Protocol):
    """Hands every event to aiohttp's protocol; tells the cap when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, cap: ConnectionCap) -> None:
        self._inner = inner
        self._cap = cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cap.closed()
        self._inner.connection_lost(exc)


class ConnectionCap:
    """Counts the connections of one server and refuses those over ``limit``."""

    def __init__(self, limit: int, metrics: GatewayMetrics | None = None) -> None:
        self.limit = limit
        self.open = 0
        self._metrics = metrics

    def closed(self) -> None:
        """One counted connection ended."""
        self.open -= 1
        if self._metrics is not None:
            self._metrics.connections.set(self.open)

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's."""

        def make() -> asyncio.Protocol:
            # Counted here, when the connection is accepted, not in connection_made: several
            # connections can be accepted before the first of them is made.
            if self.open >= self.limit:
                if self._metrics is not None:
                    self._metrics.connections_refused.inc()
                return _Refused()
            self.open += 1
            if self._metrics is not None:
                self._metrics.connections.set(self.open)
            return _Counted(inner(), self)

        return make


class _CappedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionCap`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: ConnectionCap) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._cap = cap

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._cap.factory(server), self._host, self._port, reuse_address=True
        )


async def start(
    app: web.Application, settings: GatewaySettings, metrics: GatewayMetrics | None = None
) -> web.AppRunner:
    """Start serving ``app`` on the configured address; ``runner.cleanup()`` stops it."""
    runner = web.AppRunner(
        app,
        access_log=None,
        # Also the deadline for a connection's first request head (aiohttp arms it when the
        # connection opens): slow or absent headers are cut after idle_timeout_s.
        keepalive_timeout=settings.idle_timeout_s,
        # How long the rest of a body nobody reads (a 401 or 408 answered early) is drained
        # before the connection is closed; aiohttp's 10 s would let a stalled client keep it.
        lingering_time=LINGER_S,
        shutdown_timeout=settings.produce_timeout_s + 5,
    )
    await runner.setup()
    try:
        cap = ConnectionCap(settings.max_connections, metrics)
        await _CappedSite(runner, settings.gateway_host, settings.gateway_port, cap).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def serve(app: web.Application, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then stop accepting, answer what was accepted
    (up to the produce timeout) and run the app's cleanup."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = await start(app, settings, metrics)
    logger.info("serving on http://%s:%d", settings.gateway_host, settings.gateway_port)
    try:
        await stop.wait()
        logger.info("stopping: draining requests in flight")
    finally:
        await runner.cleanup()
