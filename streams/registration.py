"""The worker's schemas, registered before it starts; while the registry cannot be reached it
waits, and its ``/readyz`` says why.

The worker writes the state topic, the index's changelog and the dead letters
(values framed, registered under ``<topic>-value``; keys registered under ``<topic>-key``)
and reads the deployments topic (every registered version of ``<topic>-value`` is fetched
now, so that a registry outage later stops nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from schemas.registry import (
    FramedCodec,
    RegistryUnavailable,
    SchemaRegistry,
    TopicSchemas,
    register_schemas,
)
from streams.deployments.tables import index_changelog_name
from streams.settings import WorkerSettings

__all__ = ["WorkerCodecs", "register_worker_schemas", "worker_schemas"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerCodecs:
    """The codecs of the worker's record values, registered."""

    #: DeploymentEvent, read from the deployments topic.
    events: FramedCodec
    #: StoredDeployment, the state topic (the deployments table's changelog).
    state: FramedCodec
    #: DeploymentIndexEntry, the index's changelog.
    index: FramedCodec
    #: DeadLetter, the dead-letter topic.
    dead_letters: FramedCodec


def worker_schemas(settings: WorkerSettings) -> TopicSchemas:
    """What the worker writes and reads."""
    index = index_changelog_name(settings)
    return TopicSchemas(
        writes={
            settings.state_topic: "StoredDeployment",
            index: "DeploymentIndexEntry",
            settings.dead_letter_topic: "DeadLetter",
        },
        reads={settings.deployments_topic: "DeploymentEvent"},
        keys={settings.state_topic: "DeploymentKey", index: "DeploymentIndexKey"},
    )


def _register(settings: WorkerSettings, registry: SchemaRegistry) -> WorkerCodecs:
    codecs = register_schemas(registry, worker_schemas(settings))
    return WorkerCodecs(
        events=codecs[settings.deployments_topic],
        state=codecs[settings.state_topic],
        index=codecs[index_changelog_name(settings)],
        dead_letters=codecs[settings.dead_letter_topic],
    )


class _Waiting(ThreadingHTTPServer):
    """``/healthz`` and ``/readyz`` on the worker's port until faust takes it over."""

    daemon_threads = True
    reason = "registering schemas"


class _WaitingPages(BaseHTTPRequestHandler):
    server: _Waiting

    def do_GET(self) -> None:
        body: dict[str, object]
        if self.path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif self.path == "/readyz":
            status = 503
            body = {"status": "not ready", "registry": False, "reason": self.server.reason}
        else:
            status, body = 404, {"status": "not found"}
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # probes every few hundred ms: not worth a log line each


def register_worker_schemas(
    settings: WorkerSettings, registry: SchemaRegistry, *, retry_s: float = 2.0
) -> WorkerCodecs:
    """Register the worker's schemas, waiting as long as the registry is unavailable.

    While waiting, the worker's web port answers ``/healthz`` (200) and ``/readyz`` (503,
    with the reason). Raises IncompatibleSchema (or another RegistryError) when the registry
    refuses: the worker must not start and write with a schema it does not accept.
    """
    waiting: _Waiting | None = None
    logged = 0.0
    try:
        while True:
            try:
                return _register(settings, registry)
            except RegistryUnavailable as exc:
                reason = f"waiting for the schema registry: {exc}"
                if waiting is None:
                    address = (settings.worker_host, settings.worker_port)
                    waiting = _Waiting(address, _WaitingPages)
                    threading.Thread(target=waiting.serve_forever, daemon=True).start()
                waiting.reason = reason
                if time.monotonic() - logged > 30:
                    logger.warning("%s (retrying every %.0fs)", reason, retry_s)
                    logged = time.monotonic()
                time.sleep(retry_s)
    finally:
        if waiting is not None:
            waiting.shutdown()
            waiting.server_close()
