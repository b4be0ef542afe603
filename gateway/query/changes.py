"""``GET /rest/deploystream/1/changes``: the caller's deployment changes as Server-Sent Events.

Every record of the state topic about one of the caller's deployments becomes an event once
it is in Kafka: ``event: deployment`` with its DeploymentData (and pipelineId,
environmentId), or ``event: deleted`` with its key. Each event's ``id`` names, for every
partition, the offset after everything delivered so far: a client that reconnects with it in
``Last-Event-ID`` (what browsers' EventSource does by itself) resumes exactly there, missing
nothing and repeating nothing. Without one, the stream starts with the next change.

Each stream reads the topic with a consumer of its own (no consumer group, nothing
committed), in a thread; a gateway serves at most ``DEPLOYSTREAM_MAX_CHANGE_STREAMS`` at once.
The tenant filter is a byte-prefix test: a key's Avro encoding starts with its tenant's
length and bytes, so no other tenant's key can match.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging

from aiohttp import web
from confluent_kafka import Consumer, KafkaException

from gateway.auth import requires
from gateway.clients import Scope
from gateway.errors import ServiceUnavailable
from gateway.keys import PRINCIPAL, SETTINGS, STREAMS
from gateway.query.feed import (
    HEARTBEAT_S,
    POLL_S,
    ChangeStreams,
    event_id,
    tenant_prefix,
)

__all__ = ["changes"]

logger = logging.getLogger(__name__)

_BATCH = 500


def _frame(name: str, ident: str, data: bytes) -> bytes:
    out = io.BytesIO()
    out.write(b"event: " + name.encode() + b"\nid: " + ident.encode() + b"\ndata: ")
    out.write(data)
    out.write(b"\n\n")
    return out.getvalue()


@requires(Scope.READ)
async def changes(request: web.Request) -> web.StreamResponse:
    """The caller's changes, as they reach the state topic."""
    streams: ChangeStreams = request.app[STREAMS]
    retry_after = {"Retry-After": str(request.app[SETTINGS].retry_after_s)}
    if streams.open >= streams.limit:
        msg = "Too many change streams are open on this gateway; retry later."
        raise ServiceUnavailable(msg, headers=retry_after)
    last = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    loop = asyncio.get_running_loop()
    try:
        consumer, positions = await loop.run_in_executor(None, streams.reader, last)
    except KafkaException as exc:
        msg = "Kafka is not reachable; retry later."
        raise ServiceUnavailable(msg, headers=retry_after) from exc
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    streams.open += 1
    try:
        await response.prepare(request)
        await _serve(request, response, streams, consumer, positions)
    finally:
        streams.open -= 1
        await loop.run_in_executor(None, consumer.close)
    return response


async def _serve(
    request: web.Request,
    response: web.StreamResponse,
    streams: ChangeStreams,
    consumer: Consumer,
    positions: list[int],
) -> None:
    loop = asyncio.get_running_loop()
    prefix = tenant_prefix(request[PRINCIPAL].tenant)
    await response.write(b"retry: 2000\n\n")
    quiet = 0.0
    while not streams.closing.is_set() and request.transport is not None:
        try:
            batch = await loop.run_in_executor(None, consumer.consume, _BATCH, POLL_S)
        except KafkaException as exc:
            logger.warning("change stream: %s", exc)
            batch = []
        frames = []
        for message in batch:
            if message.error() is not None:
                continue
            partition, offset, key = message.partition(), message.offset(), message.key()
            if partition is None or offset is None:
                continue
            positions[partition] = offset + 1
            if key is None or not key.startswith(prefix):
                continue
            try:
                name, data = await streams.render(key, message.value())
            except ValueError:
                logger.warning("change stream: an undecodable state record at %d", offset)
                continue
            frames.append(_frame(name, event_id(positions), data))
        try:
            if frames:
                await response.write(b"".join(frames))
                quiet = 0.0
            else:
                quiet += POLL_S
                if quiet >= HEARTBEAT_S:
                    await response.write(b": keep-alive\n\n")
                    quiet = 0.0
        except (ConnectionResetError, RuntimeError):
            return  # the client went away
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
