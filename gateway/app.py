"""The gateway's application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

import orjson
import yaml
from aiohttp import web

from gateway.auth import Authenticator
from gateway.keys import AUTH, LIMITER, METRICS, OPENAPI, PRODUCER, SCHEMAS, SETTINGS, WORKERS
from gateway.lookups import WorkerClient
from gateway.metrics import GatewayMetrics
from gateway.middleware import auth_middleware, error_middleware
from gateway.producer import EventProducer
from gateway.ratelimit import RateLimiter
from gateway.routes import setup_routes
from gateway.schemas import SchemaRegistration
from gateway.settings import GatewaySettings

__all__ = ["create_app"]


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    producer = EventProducer(app[SETTINGS])
    producer.start()
    app[PRODUCER] = producer
    yield
    # Runs after the server stopped taking requests: in-flight events are delivered first.
    producer.close()


async def _schemas(app: web.Application) -> AsyncIterator[None]:
    # In the background: the gateway serves /readyz (saying why) and lookups meanwhile.
    task = asyncio.create_task(app[SCHEMAS].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _workers(app: web.Application) -> AsyncIterator[None]:
    client = WorkerClient(app[SETTINGS])
    await client.start()
    app[WORKERS] = client
    yield
    await client.close()


def openapi_json() -> bytes:
    """``gateway/openapi.yaml`` rendered as JSON."""
    text = resources.files("gateway").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return orjson.dumps(yaml.safe_load(text))


def create_app(settings: GatewaySettings) -> web.Application:
    """Build the gateway; schema registration, Kafka and worker clients start with the app
    and stop with it."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        # The submit handler enforces its own limit before parsing; this caps everything else.
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[SCHEMAS] = SchemaRegistration(settings)
    app[AUTH] = Authenticator(settings)
    app[LIMITER] = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app[OPENAPI] = openapi_json()
    app.cleanup_ctx.append(_schemas)
    app.cleanup_ctx.append(_kafka)
    app.cleanup_ctx.append(_workers)
    setup_routes(app)
    return app
