"""The agent that applies DeploymentEvents to the table, one partition at a time, in order."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import faust

from schemas import AvroCodec, AvroDecodeError
from streams.deployments.records import Delete, Put, apply_event
from streams.metrics import WorkerMetrics

__all__ = ["register_agents"]

logger = logging.getLogger(__name__)


def register_agents(app: faust.App, topic: Any, table: Any, metrics: WorkerMetrics) -> Any:
    """Attach the apply agent to ``app``; concurrency stays 1 (faust #606)."""
    events = AvroCodec("DeploymentEvent")

    async def apply_deployment_events(stream: Any) -> None:
        async for message in stream.events():
            key: bytes | None = message.key
            try:
                if key is None:
                    raise AvroDecodeError("record without a key")  # noqa: EM101
                event = events.decode(message.value)
            except AvroDecodeError as exc:
                tp = message.message.tp
                metrics.poison.inc()
                logger.error(
                    "skipping undecodable record at %s[%d]@%d: %s",
                    tp.topic,
                    tp.partition,
                    message.message.offset,
                    exc,
                )
                continue
            outcome = apply_event(table.get(key), event)
            if isinstance(outcome, Put):
                table[key] = outcome.value
            elif isinstance(outcome, Delete):
                # The memory store (unit tests) raises for a missing key; RocksDB does not.
                with contextlib.suppress(KeyError):
                    del table[key]
            metrics.applied.labels(type(outcome).__name__.lower()).inc()

    return app.agent(topic, name="apply-deployment-events", concurrency=1)(apply_deployment_events)
