"""Request handlers: parse, validate, build events, await Kafka, answer.

Handlers only raise HTTP errors; the middleware renders them.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import bodies
from gateway.auth import requires
from gateway.clients import Scope
from gateway.errors import (
    BadRequest,
    Conflict,
    KafkaUnavailable,
    NotFound,
    UnsupportedMediaType,
)
from gateway.events import (
    deployment_deleted,
    deployment_key,
    deployment_submitted,
    deployments_deleted_by_properties,
    gating_decision_recorded,
)
from gateway.formats import int64_of
from gateway.issues.check import check_submission
from gateway.keys import (
    BODIES,
    ISSUES,
    METRICS,
    OPENAPI,
    PRINCIPAL,
    PRODUCER,
    RECORD_LIMIT,
    SCHEMAS,
    SETTINGS,
    WORKERS,
)
from gateway.validation import (
    DeploymentKey,
    ItemRejected,
    parse_submission,
    reject_duplicate_keys,
)

__all__ = [
    "decide_gating",
    "delete_by_properties",
    "delete_deployment",
    "get_deployment",
    "get_gating_status",
    "healthz",
    "json_response",
    "metrics",
    "openapi_document",
    "readyz",
    "submit_deployments",
    "tenant_info",
]

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> web.Response:
    """A response with an orjson-encoded body."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes, within the body timeout and the body budget."""
    app = request.app
    return await bodies.read_body(
        request, limit, budget=app[BODIES], timeout_s=app[SETTINGS].body_timeout_s
    )


def parse_long(text: str, name: str) -> int:
    """An int64 from a path or query parameter (digits, optionally signed, nothing else), or
    400 naming the parameter."""
    value = int64_of(text)
    if value is None:
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


@requires(Scope.WRITE)
async def submit_deployments(request: web.Request) -> web.Response:
    """``POST .../bulk``: validate each deployment, write the valid ones to Kafka, 202."""
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    tenant = request[PRINCIPAL].tenant
    if request.content_type != JSON:
        msg = f"Content-Type must be {JSON}, got {request.content_type or 'nothing'}."
        raise UnsupportedMediaType(msg)
    body = await read_body(request, settings.max_body_bytes)
    command = parse_submission(body, max_deployments=settings.max_deployments)
    if request[PRINCIPAL].issue_registry:
        command = check_submission(app[ISSUES], tenant, command, settings.retry_after_s)
    codecs, limit = app[SCHEMAS].codecs(), app[RECORD_LIMIT]
    accepted, events = [], []
    rejected = list(command.rejected)
    for d in command.deployments:
        event = deployment_submitted(
            codecs, tenant, d, command.properties, command.provider_metadata
        )
        assert event.key is not None
        too_large = limit.over(d, event.key, event.value)
        if too_large is None:
            accepted.append(d)
            events.append(event)
        else:
            key = DeploymentKey(d.pipeline.id, d.environment.id, d.deploymentSequenceNumber)
            rejected.append(ItemRejected(key, (too_large,)))
    started = time.perf_counter()
    try:
        await app[PRODUCER].send(settings.deployments_topic, events)
    except KafkaUnavailable:
        metrics.kafka_unavailable.inc()
        raise
    metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.deployments.labels("accepted").inc(len(accepted))
    metrics.deployments.labels("rejected").inc(len(rejected))
    return json_response(
        {
            "acceptedDeployments": [
                {
                    "pipelineId": d.pipeline.id,
                    "environmentId": d.environment.id,
                    "deploymentSequenceNumber": d.deploymentSequenceNumber,
                }
                for d in accepted
            ],
            "rejectedDeployments": [
                {"key": r.key.as_json(), "errors": [{"message": m} for m in r.errors]}
                for r in rejected
            ],
            "unknownIssueKeys": list(command.unknown_issue_keys),
            "unknownAssociations": list(command.unknown_associations),
        },
        status=202,
    )


async def _stored_of(
    request: web.Request, tenant: str | None = None
) -> tuple[tuple[str, str, int], dict[str, Any]]:
    """The path's key and the stored state of it (the caller's own unless ``tenant``)."""
    app = request.app
    pipeline_id, environment_id, number = _key_of(request)
    owner = tenant or request[PRINCIPAL].tenant
    key = deployment_key(owner, pipeline_id, environment_id, number)
    stored = await app[WORKERS].get(key, "stored")
    if stored is None:
        raise NotFound
    return (pipeline_id, environment_id, number), orjson.loads(stored)


@requires(Scope.READ)
async def get_deployment(request: web.Request) -> web.Response:
    """``GET .../deployments/{n}``: the stored deployment, 404 when absent (the worker's
    rendering, passed on as it is)."""
    pipeline_id, environment_id, number = _key_of(request)
    key = deployment_key(request[PRINCIPAL].tenant, pipeline_id, environment_id, number)
    body = await request.app[WORKERS].get(key, "deployment")
    if body is None:
        raise NotFound
    return web.Response(body=body, content_type=JSON)


@requires(Scope.DELETE)
async def delete_deployment(request: web.Request) -> web.Response:
    """``DELETE .../deployments/{n}``: a DeploymentDeleted event, 202 once in Kafka."""
    app = request.app
    pipeline_id, environment_id, number = _key_of(request)
    raw = request.query.get("_updateSequenceNumber")
    usn = parse_long(raw, "_updateSequenceNumber") if raw is not None else None
    tenant = request[PRINCIPAL].tenant
    event = deployment_deleted(
        app[SCHEMAS].codecs(), tenant, pipeline_id, environment_id, number, usn
    )
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
    """Ready when the schemas are registered, Kafka answered a metadata request for the
    deployments topic lately (the producer's monitor thread asks: a probe never waits for
    Kafka) and the issue registry was read to its end once (its freshness is in the body);
    when not, ``reason`` says what the gateway waits for."""
    schemas = request.app[SCHEMAS]
    kafka = request.app[PRODUCER].ready()
    issues = request.app[ISSUES].freshness()
    ready = kafka and schemas.ready and issues["caughtUp"]
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "kafka": kafka,
        "registry": schemas.ready,
        "issues": issues,
    }
    if schemas.reason is not None:
        body["reason"] = schemas.reason
    return json_response(body, status=200 if ready else 503)


async def tenant_info(request: web.Request) -> web.Response:
    """``GET /_edge/tenant_info``: the installation's cloudId, as a Jira site answers it."""
    return json_response({"cloudId": request.app[SETTINGS].cloud_id})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


@requires(Scope.DELETE)
async def delete_by_properties(request: web.Request) -> web.Response:
    """``DELETE .../bulkByProperties?k=v&...``: delete the caller's deployments matching every
    property; one event per partition, 202 once all are in Kafka."""
    app = request.app
    properties: dict[str, str] = {}
    usn: int | None = None
    for name, value in request.query.items():
        if name == "jwt":
            # A Connect token in the query: outside the qsh it is signed with, so never data.
            continue
        if name == "_updateSequenceNumber":
            usn = parse_long(value, "_updateSequenceNumber")
        elif not name or name.startswith("_") or ":" in name:
            msg = f"{name!r}: property keys must be non-empty, without ':' and not start with '_'"
            raise BadRequest(msg)
        elif name in properties:
            msg = f"{name}: give each property once"
            raise BadRequest(msg)
        elif len(value) > 255:
            msg = f"{name}: property values are at most 255 characters"
            raise BadRequest(msg)
        else:
            properties[name] = value
    if not properties:
        msg = "At least one property query parameter is required (e.g. ?accountId=account-123)."
        raise BadRequest(msg)
    producer = app[PRODUCER]
    partitions = producer.partition_count()
    events = deployments_deleted_by_properties(
        app[SCHEMAS].codecs(), request[PRINCIPAL].tenant, properties, usn, partitions
    )
    await producer.send(app[SETTINGS].deployments_topic, events)
    return web.Response(status=202)


@requires(Scope.READ)
async def get_gating_status(request: web.Request) -> web.Response:
    """``GET .../gating-status``: the gating of a deployment; ``invalid`` if it never asked."""
    (pipeline_id, environment_id, number), stored = await _stored_of(request)
    gating = stored.get("gating")
    body: dict[str, Any] = {
        "deploymentSequenceNumber": number,
        "pipelineId": pipeline_id,
        "environmentId": environment_id,
    }
    if gating is None:
        body["gatingStatus"] = "invalid"
        body["details"] = []
    else:
        body["gatingStatus"] = gating["status"]
        body["updatedTimestamp"] = gating["updatedTimestamp"]
        body["details"] = gating["details"]
    return json_response(body)


class GatingDecision(msgspec.Struct):
    """Body of the gating-decision extension endpoint."""

    decision: Literal["allowed", "prevented"]
    reason: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    tenant: str | None = None


_DECISION = msgspec.json.Decoder(GatingDecision)


@requires(Scope.APPROVE_GATING)
async def decide_gating(request: web.Request) -> web.Response:
    """``POST .../gating-decision`` (deploystream extension): an approver allows or prevents a
    gated deployment; the decision travels as an event like everything else."""
    app = request.app
    _key_of(request)  # a malformed path is a 400 before the body is even read
    if request.content_type != JSON:
        msg = f"Content-Type must be {JSON}."
        raise UnsupportedMediaType(msg)
    body = await read_body(request, 16 * 1024)
    try:
        decision = _DECISION.decode(body)
        reject_duplicate_keys(body.decode("utf-8"))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        msg = f"Invalid gating decision: {exc}"
        raise BadRequest(msg) from exc
    principal = request[PRINCIPAL]
    tenant = decision.tenant or principal.tenant
    if tenant != principal.tenant and tenant not in principal.approves_for:
        # Same answer as for a deployment that does not exist: tenants stay invisible.
        raise NotFound
    (pipeline_id, environment_id, number), stored = await _stored_of(request, tenant)
    if stored.get("gating") is None:
        msg = "This deployment did not ask for gating (initiate_deployment_gating)."
        raise Conflict(msg)
    event = gating_decision_recorded(
        app[SCHEMAS].codecs(),
        tenant,
        pipeline_id,
        environment_id,
        number,
        decision.decision,
        principal.client_id,
        decision.reason,
    )
    await app[PRODUCER].send(app[SETTINGS].deployments_topic, [event])
    return web.Response(status=202)
