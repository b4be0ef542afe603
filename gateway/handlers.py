"""Request handlers: parse, validate, build events, await Kafka, answer.

Handlers only raise HTTP errors; the middleware renders them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from gateway.events import deployment_deleted, deployment_submitted
from gateway.keys import AUTH, CODECS, METRICS, OPENAPI, PRODUCER, SETTINGS, WORKERS
from gateway.validation import INT64_MAX, INT64_MIN, parse_submission

__all__ = [
    "delete_deployment",
    "get_deployment",
    "healthz",
    "metrics",
    "openapi_document",
    "readyz",
    "submit_deployments",
]

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> web.Response:
    """A response with an orjson-encoded body."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing anything over ``limit`` bytes before it is parsed."""
    if request.content_length is not None and request.content_length > limit:
        msg = f"Request body of {request.content_length} bytes exceeds the {limit}-byte limit."
        raise PayloadTooLarge(msg)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        msg = f"Request body exceeds the {limit}-byte limit."
        raise PayloadTooLarge(msg)
    return body


def parse_long(text: str, name: str) -> int:
    """An int64 from a path or query parameter, or 400 naming the parameter."""
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        msg = f"{name}: must be a 64-bit integer, got {text!r}"
        raise BadRequest(msg)
    return value


def _key_of(request: web.Request) -> tuple[str, str, int]:
    info = request.match_info
    pipeline_id, environment_id = info["pipelineId"], info["environmentId"]
    for name, value in (("pipelineId", pipeline_id), ("environmentId", environment_id)):
        if len(value) > 255:
            msg = f"{name}: must be at most 255 characters"
            raise BadRequest(msg)
    number = parse_long(info["deploymentSequenceNumber"], "deploymentSequenceNumber")
    return pipeline_id, environment_id, number


async def submit_deployments(request: web.Request) -> web.Response:
    """``POST .../bulk``: validate each deployment, write the valid ones to Kafka, 202."""
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    tenant = app[AUTH].tenant(request)
    if request.content_type != JSON:
        msg = f"Content-Type must be {JSON}, got {request.content_type or 'nothing'}."
        raise UnsupportedMediaType(msg)
    body = await read_body(request, settings.max_body_bytes)
    command = parse_submission(body, max_deployments=settings.max_deployments)
    codecs = app[CODECS]
    events = [
        deployment_submitted(codecs, tenant, d, command.properties, command.provider_metadata)
        for d in command.deployments
    ]
    started = time.perf_counter()
    try:
        await app[PRODUCER].send(settings.deployments_topic, events)
    except Exception:
        metrics.kafka_unavailable.inc()
        raise
    metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.deployments.labels("accepted").inc(len(command.deployments))
    metrics.deployments.labels("rejected").inc(len(command.rejected))
    return json_response(
        {
            "acceptedDeployments": [
                {
                    "pipelineId": d.pipeline.id,
                    "environmentId": d.environment.id,
                    "deploymentSequenceNumber": d.deploymentSequenceNumber,
                }
                for d in command.deployments
            ],
            "rejectedDeployments": [
                {"key": r.key.as_json(), "errors": [{"message": m} for m in r.errors]}
                for r in command.rejected
            ],
            "unknownIssueKeys": [],
            "unknownAssociations": [],
        },
        status=202,
    )


async def get_deployment(request: web.Request) -> web.Response:
    """``GET .../deployments/{n}``: the stored deployment, 404 when absent."""
    app = request.app
    pipeline_id, environment_id, number = _key_of(request)
    key = app[CODECS].encode_key(app[AUTH].tenant(request), pipeline_id, environment_id, number)
    stored = await app[WORKERS].get(key)
    if stored is None:
        raise NotFound
    return json_response(stored["deployment"])


async def delete_deployment(request: web.Request) -> web.Response:
    """``DELETE .../deployments/{n}``: a DeploymentDeleted event, 202 once in Kafka."""
    app = request.app
    pipeline_id, environment_id, number = _key_of(request)
    raw = request.query.get("_updateSequenceNumber")
    usn = parse_long(raw, "_updateSequenceNumber") if raw is not None else None
    tenant = app[AUTH].tenant(request)
    event = deployment_deleted(app[CODECS], tenant, pipeline_id, environment_id, number, usn)
    await app[PRODUCER].send(app[SETTINGS].deployments_topic, [event])
    return web.Response(status=202)


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI document of this gateway."""
    return web.Response(body=request.app[OPENAPI], content_type=JSON)


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    del request
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Kafka answers metadata requests for the deployments topic."""
    producer = request.app[PRODUCER]
    ready = await asyncio.get_running_loop().run_in_executor(None, producer.healthy)
    return json_response(
        {"status": "ready" if ready else "not ready", "kafka": ready}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
