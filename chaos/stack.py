"""The stack under test as the chaos scenarios see it: processes they can kill and restart, and
the few waits they need (ready, caught up)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition

from deploystream.kafka.broker import LocalKafka
from deploystream.stack import Services, StackConfig, start_services
from gateway.clients import development_clients_yaml

__all__ = ["ChaosStack", "start_stack", "vm_rss_bytes", "write_clients_file"]

SIGNING_KEY = "chaos-signing-key-0123456789abcdef0123456789"
CLIENT_ID = "chaos"
CLIENT_SECRET = "chaos-secret-0123456789abcdef0123456789"  # noqa: S105 (a test credential)
#: The load must measure the stack, not the per-client rate limit.
UNLIMITED = {"DEPLOYSTREAM_RATE_LIMIT_PER_S": "1000000", "DEPLOYSTREAM_RATE_LIMIT_BURST": "1000000"}


@dataclass
class ChaosStack(Services):
    """Worker(s) and a gateway on one topic, and the credentials of the load's client; the
    broker stays the caller's to stop."""

    auth: tuple[str, str]
    broker: LocalKafka | None = None

    def _consumer(self) -> tuple[Consumer, list[TopicPartition]]:
        config = self.config
        # The workers' group, to read its committed offsets: this reader must never commit.
        consumer = Consumer(
            {
                "bootstrap.servers": config.bootstrap,
                "group.id": config.app_id,
                "enable.auto.commit": False,
            }
        )
        return consumer, [TopicPartition(config.topic, p) for p in range(config.partitions)]

    @staticmethod
    def _behind(committed: list[int], marks: list[tuple[int, int]]) -> int:
        # An empty partition has no committed offset (negative) and nothing to apply.
        return sum(
            high - (c if c >= 0 else low) for c, (low, high) in zip(committed, marks, strict=True)
        )

    def lag(self) -> int:
        """Records on the topic that the workers have not committed yet."""
        consumer, partitions = self._consumer()
        try:
            marks = [consumer.get_watermark_offsets(tp, timeout=10) for tp in partitions]
            committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
            return self._behind(committed, marks)
        finally:
            consumer.close()

    def wait_caught_up(self, timeout: float = 120.0) -> float:
        """Block until the workers committed every record on the topic (faust commits only
        after applying); returns the seconds waited."""
        started = time.monotonic()
        consumer, partitions = self._consumer()
        try:
            marks = [consumer.get_watermark_offsets(tp, timeout=10) for tp in partitions]
            deadline = started + timeout
            while True:
                committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
                if self._behind(committed, marks) <= 0:
                    return time.monotonic() - started
                if time.monotonic() > deadline:
                    ends = [high for _, high in marks]
                    msg = f"workers did not catch up: committed {committed}, end {ends}"
                    raise TimeoutError(msg)
                time.sleep(0.2)
        finally:
            consumer.close()


def wait_ready(url: str, timeout: float) -> float:
    """Poll ``url`` until 200; returns the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    with httpx.Client(timeout=5.0) as client:
        while True:
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                msg = f"{url} not ready within {timeout:.0f}s"
                raise TimeoutError(msg)
            time.sleep(0.1)


def vm_rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    msg = f"no VmRSS for pid {pid}"
    raise RuntimeError(msg)


def write_clients_file(path: Path) -> Path:
    """A clients file with the load's client, every scope."""
    path.write_text(development_clients_yaml(CLIENT_ID, CLIENT_SECRET))
    return path


def start_stack(
    bootstrap: str,
    registry_url: str,
    work_dir: Path,
    *,
    name: str,
    workers: int = 1,
    partitions: int = 4,
    env: dict[str, str] | None = None,
) -> ChaosStack:
    """Start ``workers`` workers and a gateway on a topic and app id named after ``name``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config = StackConfig.in_folder(
        bootstrap,
        registry_url,
        work_dir,
        workers=workers,
        partitions=partitions,
        topic=f"chaos-{name}",
        app_id=f"chaos-{name}",
        extra_env={
            "DEPLOYSTREAM_CLIENTS_FILE": str(write_clients_file(work_dir / "clients.yaml")),
            "DEPLOYSTREAM_TOKEN_SIGNING_KEY": SIGNING_KEY,
            **UNLIMITED,
            **(env or {}),
        },
    )
    services = start_services(config)
    return ChaosStack(
        services.config, services.workers, services.gateway, (CLIENT_ID, CLIENT_SECRET)
    )
