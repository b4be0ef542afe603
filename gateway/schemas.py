"""The gateway's schemas: registered in the background as the gateway starts.

Until they are, ``/readyz`` says why and every operation that writes to Kafka answers 503
(lookups work meanwhile). While the registry cannot be reached the gateway keeps trying;
once registered, nothing asks the registry again, so a registry that goes away later stops
nothing. A registry that refuses a schema stops the gateway: it must not write records
consumers could not read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from gateway.errors import ServiceUnavailable
from gateway.events import EventCodecs
from gateway.settings import GatewaySettings
from schemas.registry import (
    FramedCodec,
    RegistryError,
    RegistryUnavailable,
    SchemaRegistry,
    TopicSchemas,
    register_schemas,
)

__all__ = ["SchemaRegistration", "SchemasNotReady"]

logger = logging.getLogger(__name__)


class SchemasNotReady(ServiceUnavailable):
    """The gateway's schemas are not registered yet: nothing can be written."""

    default_message = "The schema registry has not been reached yet; retry later."


class SchemaRegistration:
    """Registers the gateway's schemas; then hands out the codecs."""

    def __init__(self, settings: GatewaySettings, *, retry_s: float = 2.0) -> None:
        self._settings = settings
        self._registry = SchemaRegistry(settings.schema_registry_url)
        self._retry_s = retry_s
        self._codecs: EventCodecs | None = None
        self._issues: FramedCodec | None = None
        #: Why the gateway is not ready (None once registered).
        self.reason: str | None = "registering schemas"
        #: Set when the registry refused a schema: the gateway stops, exit code 2.
        self.refused: str | None = None

    @property
    def ready(self) -> bool:
        """The schemas are registered: events can be encoded."""
        return self._codecs is not None

    def codecs(self) -> EventCodecs:
        """The codecs; SchemasNotReady (503, Retry-After) before registration."""
        if self._codecs is None:
            retry_after = {"Retry-After": str(self._settings.retry_after_s)}
            msg = f"Not ready: {self.reason}"
            raise SchemasNotReady(msg, headers=retry_after)
        return self._codecs

    def issue_codec(self) -> FramedCodec:
        """The issue registry topic's value codec; SchemasNotReady before registration."""
        self.codecs()
        assert self._issues is not None
        return self._issues

    def _register(self) -> EventCodecs:
        topic, issues = self._settings.deployments_topic, self._settings.issues_topic
        schemas = TopicSchemas(
            writes={topic: "DeploymentEvent", issues: "KnownIssue"},
            keys={topic: "DeploymentKey", issues: "IssueKey"},
        )
        codecs = register_schemas(self._registry, schemas)
        self._issues = codecs[issues]
        return EventCodecs(codecs[topic])

    async def run(self) -> None:
        """Register, retrying while the registry is unavailable; on a refusal, log why and
        stop the gateway (SIGTERM to itself: the requests it serves are drained)."""
        logged = 0.0
        while True:
            try:
                self._codecs = await asyncio.to_thread(self._register)
            except RegistryUnavailable as exc:
                self.reason = f"waiting for the schema registry: {exc}"
                if time.monotonic() - logged > 30:
                    logger.warning("%s (retrying every %.0fs)", self.reason, self._retry_s)
                    logged = time.monotonic()
                await asyncio.sleep(self._retry_s)
                continue
            except RegistryError as exc:
                self.refused = self.reason = str(exc)
                logger.error("cannot start: %s", exc)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.reason = None
            logger.info("schemas registered at %s", self._settings.schema_registry_url)
            return
