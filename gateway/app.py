"""The gateway's application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import resources

import orjson
import yaml
from aiohttp import web

from gateway.auth import Authenticator
from gateway.bodies import BodyBudget
from gateway.issues.replica import IssueReplica
from gateway.keys import (
    AUTH,
    BODIES,
    FAILURES,
    ISSUES,
    LIMITER,
    METRICS,
    OPENAPI,
    PRODUCER,
    QUERIES,
    RECORD_LIMIT,
    SCHEMAS,
    SETTINGS,
    STREAMS,
    WORKERS,
)
from gateway.limits import RecordLimit
from gateway.lookups import WorkerClient
from gateway.metrics import GatewayMetrics
from gateway.middleware import auth_middleware, error_middleware
from gateway.producer import EventProducer
from gateway.query.client import QueryClient
from gateway.query.feed import ChangeStreams
from gateway.ratelimit import RateLimiter
from gateway.reload import watch_clients
from gateway.routes import setup_routes
from gateway.schemas import SchemaRegistration
from gateway.settings import GatewaySettings
from schemas.registry import FramedCodec, SchemaRegistry

__all__ = ["create_app"]


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    producer = EventProducer(app[SETTINGS])
    producer.start()
    app[PRODUCER] = producer
    yield
    # Runs after the server stopped taking requests: in-flight events are delivered first.
    producer.close()


async def _issues(app: web.Application) -> AsyncIterator[None]:
    # Reads the registry topic in the background: start-up does not wait for Kafka.
    replica = IssueReplica(app[SETTINGS])
    replica.start()
    app[ISSUES] = replica
    yield
    await asyncio.get_running_loop().run_in_executor(None, replica.close)


async def _schemas(app: web.Application) -> AsyncIterator[None]:
    # In the background: the gateway serves /readyz (saying why) and lookups meanwhile.
    task = asyncio.create_task(app[SCHEMAS].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _workers(app: web.Application) -> AsyncIterator[None]:
    client = app[WORKERS]
    await client.start()
    queries = QueryClient(app[SETTINGS], _partition_count(app))
    await queries.start()
    app[QUERIES] = queries
    yield
    await client.close()
    await queries.close()


async def _streams(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[STREAMS] = ChangeStreams(
        settings.librdkafka_config(),
        settings.state_topic,
        settings.max_change_streams,
        FramedCodec("StoredDeployment", SchemaRegistry(settings.schema_registry_url)),
    )
    yield


async def _end_streams(app: web.Application) -> None:
    # Open change streams never end on their own: end them before the server waits for
    # its handlers to finish.
    app[STREAMS].closing.set()


def _partition_count(app: web.Application) -> Callable[[], int]:
    """The deployments topic's partition count, kept once known: it never changes (the
    workers refuse to run on a topic whose count is not theirs). 503 while Kafka was never
    seen."""
    known: list[int] = []

    def count() -> int:
        if not known:
            known.append(app[PRODUCER].partition_count())
        return known[0]

    return count


def openapi_json() -> bytes:
    """``gateway/openapi.yaml`` rendered as JSON."""
    text = resources.files("gateway").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return orjson.dumps(yaml.safe_load(text))


def create_app(settings: GatewaySettings) -> web.Application:
    """Build the gateway; schema registration, Kafka and worker clients start with the app
    and stop with it. Raises GatewayError when the settings cannot work (missing secrets)."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        # The submit handler enforces its own limit before parsing; this caps everything else.
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[SCHEMAS] = SchemaRegistration(settings)
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
    app.cleanup_ctx.append(_schemas)
    app.cleanup_ctx.append(_kafka)
    app.cleanup_ctx.append(_issues)
    app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(_streams)
    app.on_shutdown.append(_end_streams)
    app.cleanup_ctx.append(watch_clients)
    setup_routes(app)
    return app
