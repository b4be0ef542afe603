"""The gateway's application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources

import orjson
import yaml
from aiohttp import web

from gateway.auth import Authenticator
from gateway.bodies import BodyBudget
from gateway.events import EventCodecs
from gateway.keys import (
    AUTH,
    BODIES,
    CODECS,
    FAILURES,
    LIMITER,
    METRICS,
    OPENAPI,
    PRODUCER,
    RECORD_LIMIT,
    SETTINGS,
    WORKERS,
)
from gateway.limits import RecordLimit
from gateway.lookups import WorkerClient
from gateway.metrics import GatewayMetrics
from gateway.middleware import auth_middleware, error_middleware
from gateway.producer import EventProducer
from gateway.ratelimit import RateLimiter
from gateway.reload import watch_clients
from gateway.routes import setup_routes
from gateway.settings import GatewaySettings

__all__ = ["create_app"]


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    producer = EventProducer(app[SETTINGS])
    producer.start()
    app[PRODUCER] = producer
    yield
    # Runs after the server stopped taking requests: in-flight events are delivered first.
    producer.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    client = app[WORKERS]
    await client.start()
    yield
    await client.close()


def openapi_json() -> bytes:
    """``gateway/openapi.yaml`` rendered as JSON."""
    text = resources.files("gateway").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return orjson.dumps(yaml.safe_load(text))


def create_app(settings: GatewaySettings) -> web.Application:
    """Build the gateway; Kafka and worker clients start with the app and stop with it.
    Raises GatewayError when the settings cannot work (missing secrets)."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        # The submit handler enforces its own limit before parsing; this caps everything else.
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[CODECS] = EventCodecs()
    app[AUTH] = Authenticator(settings)
    app[WORKERS] = WorkerClient(settings)
    app[LIMITER] = RateLimiter(
        settings.rate_limit_per_s, settings.rate_limit_burst, max_keys=settings.rate_limit_max_keys
    )
    app[FAILURES] = RateLimiter(
        settings.auth_failure_rate_per_s,
        settings.auth_failure_burst,
        max_keys=settings.rate_limit_max_keys,
    )
    app[BODIES] = BodyBudget(settings.max_inflight_body_bytes, settings.retry_after_s)
    app[RECORD_LIMIT] = RecordLimit(settings.max_record_bytes, settings.jira_base_url)
    app[OPENAPI] = openapi_json()
    app.cleanup_ctx.append(_kafka)
    app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(watch_clients)
    setup_routes(app)
    return app
