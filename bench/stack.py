"""The processes a benchmark measures, built with the project's own helpers.

One broker (:func:`deploystream.kafka.provision.provide_broker`) for the whole run; workers
and gateways are :class:`deploystream.stack.ServiceProcess` es started on topics and
consumer groups of their own, so one phase never sees another's data.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from deploystream.kafka.broker import free_port
from deploystream.stack import ServiceProcess, StackConfig, gateway_process, worker_process
from gateway.clients import development_clients_yaml
from schemas.registry import FramedCodec, SchemaRegistry, value_subject
from streams.topics import ensure_topic

__all__ = [
    "BENCH_CLIENT",
    "BenchEnv",
    "committed_offsets",
    "end_offsets",
    "scrape_metric",
    "wait_committed",
]

BENCH_CLIENT = "bench"
#: High enough never to throttle the benchmark (requests per second and bucket size).
RATE_LIMIT = 1_000_000


def write_clients_file(path: Path, secret: str) -> Path:
    """A clients file with the bench client: every scope, every credential style, no limit."""
    text = development_clients_yaml(
        BENCH_CLIENT, secret, rateLimitPerSecond=RATE_LIMIT, rateLimitBurst=RATE_LIMIT
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


@dataclass
class BenchEnv:
    """What every service of one benchmark run shares: broker, registry, folders,
    credentials."""

    bootstrap: str
    registry_url: str
    root: Path
    partitions: int = 8
    session_timeout_s: float = 45.0
    log_dir: Path | None = None
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    services: list[ServiceProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clients_file = write_clients_file(self.root / "clients.yaml", self.secret)
        self.signing_key = secrets.token_urlsafe(48)

    def config(self, topic: str, app_id: str, *, worker_port: int | None = None) -> StackConfig:
        """A stack configuration on ``topic`` with consumer group ``app_id``; its state
        topic is ``<app_id>-state`` so that runs on the same topic never share a table."""
        return StackConfig(
            bootstrap=self.bootstrap,
            registry_url=self.registry_url,
            gateway_port=free_port(),
            worker_ports=[worker_port or free_port()],
            data_dir=self.root / "data" / app_id,
            log_dir=self.log_dir or self.root / "logs",
            partitions=self.partitions,
            topic=topic,
            app_id=app_id,
            extra_env={
                "DEPLOYSTREAM_CLIENTS_FILE": str(self.clients_file),
                "DEPLOYSTREAM_TOKEN_SIGNING_KEY": self.signing_key,
                "DEPLOYSTREAM_STATE_TOPIC": f"{app_id}-state",
                "DEPLOYSTREAM_SESSION_TIMEOUT_S": str(self.session_timeout_s),
                "DEPLOYSTREAM_LOG_LEVEL": "warning",
            },
        )

    def topic(self, name: str) -> str:
        """Create ``name`` with the run's partition count."""
        ensure_topic(self.bootstrap, name, self.partitions, 1)
        return name

    def event_codec(self, topic: str) -> FramedCodec:
        """The gateway's codec of ``topic``'s events, registered as the gateway registers it."""
        codec = FramedCodec("DeploymentEvent", SchemaRegistry(self.registry_url))
        codec.register(value_subject(topic))
        return codec

    def worker(self, config: StackConfig, name: str | None = None) -> ServiceProcess:
        """A started worker of ``config`` (not yet ready)."""
        return self._started(worker_process(config, name=name))

    def gateway(self, config: StackConfig, name: str = "gateway") -> ServiceProcess:
        """A started gateway of ``config`` (not yet ready)."""
        return self._started(gateway_process(config, name))

    def _started(self, service: ServiceProcess) -> ServiceProcess:
        self.services.append(service)
        return service.start()

    def stop_all(self, since: int = 0) -> None:
        """Stop the services this run started (from the ``since``-th on): SIGTERM, then
        SIGKILL."""
        for service in reversed(self.services[since:]):
            service.stop(timeout=15)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status ``url`` answers with, ``None`` when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def scrape_metric(port: int, name: str, timeout: float = 2.0) -> float | None:
    """Sum of all samples of ``name`` on a worker's or gateway's ``/metrics``."""
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """High watermarks of ``topic``'s partitions."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """Offsets ``group`` committed on ``topic`` (negative: none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10)]
    finally:
        consumer.close()


def wait_committed(config: StackConfig, timeout: float) -> float:
    """Block until the workers of ``config`` committed every record of its topic (faust
    commits only after processing); the time it took."""
    started = time.monotonic()
    ends = end_offsets(config.bootstrap, config.topic, config.partitions)
    while True:
        committed = committed_offsets(
            config.bootstrap, config.app_id, config.topic, config.partitions
        )
        if all(c >= e or (c < 0 and e == 0) for c, e in zip(committed, ends, strict=True)):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            msg = f"{config.app_id} did not catch up: committed {committed}, end {ends}"
            raise TimeoutError(msg)
        time.sleep(0.2)
