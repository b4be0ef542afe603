"""Worker and gateway as child processes: what ``make run``, the e2e tests, the chaos runs
and the benchmarks start (the broker is :mod:`deploystream.kafka`'s)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from deploystream.kafka.broker import die_with_parent, free_port
from streams.settings import WorkerSettings
from streams.topics import ensure_topic, record_limit

__all__ = [
    "ServiceProcess",
    "Services",
    "StackConfig",
    "gateway_process",
    "start_services",
    "wait_http_ok",
    "worker_process",
]

logger = logging.getLogger(__name__)


def wait_http_ok(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail fast when ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            msg = f"process exited with {process.returncode} while waiting for {url}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    msg = f"{url} not ready within {timeout:.0f}s"
    raise TimeoutError(msg)


@dataclass
class ServiceProcess:
    """One service (``python -m <module>``) with its environment, log file and ready URL."""

    name: str
    module: str
    env: dict[str, str]
    ready_url: str
    log_path: Path
    #: Another checkout to run the service's code from (its own working directory and
    #: PYTHONPATH: ``python -m`` puts the working directory first on sys.path); None: ours.
    tree: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ServiceProcess:
        """Spawn the process in a process group of its own, so that a terminal's Ctrl-C or a
        SIGTERM to our group reaches only the parent, which stops the services in order;
        it dies with its parent (PR_SET_PDEATHSIG)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is not None:  # a restart after the process ended on its own
            self._log.close()
        self._log = self.log_path.open("ab")
        tree = {"PYTHONPATH": str(self.tree)} if self.tree is not None else {}
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env, **tree},
            cwd=self.tree,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509
            process_group=0,
        )
        return self

    def wait_ready(self, timeout: float = 90.0) -> ServiceProcess:
        """Block until the ready URL answers 200."""
        wait_http_ok(self.ready_url, timeout, self.process)
        return self

    def kill(self) -> None:
        """SIGKILL (fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode


@dataclass
class StackConfig:
    """Addresses and folders of one stack."""

    bootstrap: str
    #: The Confluent-compatible API of the schema registry both services register with.
    registry_url: str
    gateway_port: int
    worker_ports: list[int]
    data_dir: Path
    log_dir: Path
    partitions: int = 8
    topic: str = "deployments"
    app_id: str = "deploystream"
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Workers join their group as static members (DEPLOYSTREAM_GROUP_INSTANCE_ID).
    static_membership: bool = True
    #: Variables of the workers only and of the gateway only (e.g. each its own Kafka user).
    worker_env: dict[str, str] = field(default_factory=dict)
    gateway_env: dict[str, str] = field(default_factory=dict)
    #: The secret the gateway presents to the workers: a fresh one per stack.
    internal_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @classmethod
    def in_folder(
        cls, bootstrap: str, registry_url: str, folder: Path, *, workers: int = 1, **settings: Any
    ) -> StackConfig:
        """A stack on free ports with its data and logs under ``folder``."""
        return cls(
            bootstrap=bootstrap,
            registry_url=registry_url,
            gateway_port=free_port(),
            worker_ports=[free_port() for _ in range(workers)],
            data_dir=folder / "data",
            log_dir=folder / "logs",
            **settings,
        )

    @property
    def state_topic(self) -> str:
        """The workers' state topic, named after ``topic`` so that stacks sharing a broker
        (the tests) never share a table changelog: ``deployments`` -> ``deployments-state``."""
        return f"{self.topic}-state"

    @property
    def issues_topic(self) -> str:
        """The gateways' issue registry topic, named after ``topic`` like the state topic."""
        return f"{self.topic}-issues"

    def common_env(self) -> dict[str, str]:
        """Variables both services read."""
        return {
            "DEPLOYSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "DEPLOYSTREAM_SCHEMA_REGISTRY_URL": self.registry_url,
            "DEPLOYSTREAM_DEPLOYMENTS_TOPIC": self.topic,
            "DEPLOYSTREAM_STATE_TOPIC": self.state_topic,
            "DEPLOYSTREAM_ISSUES_TOPIC": self.issues_topic,
            "DEPLOYSTREAM_DEAD_LETTER_TOPIC": f"{self.topic}-dead-letter",
            "DEPLOYSTREAM_PARTITIONS": str(self.partitions),
            "DEPLOYSTREAM_APP_ID": self.app_id,
            "DEPLOYSTREAM_INTERNAL_SECRET": self.internal_secret,
            **self.extra_env,
        }

    def kafka_settings(self) -> WorkerSettings:
        """The Kafka settings (bootstrap, security, record limit) the workers of this stack
        read, for the stack's own Kafka clients."""
        names = ("DEPLOYSTREAM_KAFKA_", "DEPLOYSTREAM_MAX_RECORD_BYTES")
        values = {
            key.removeprefix("DEPLOYSTREAM_").lower(): value
            for key, value in {**self.common_env(), **self.worker_env}.items()
            if key.startswith(names)
        }
        return WorkerSettings.model_validate(values)


def worker_process(config: StackConfig, index: int = 0, name: str | None = None) -> ServiceProcess:
    """The ``index``-th worker of ``config`` (own port, own RocksDB folder), logging to
    ``<name>.log`` (default name ``worker-<index>``)."""
    port = config.worker_ports[index]
    name = name or f"worker-{index}"
    env = {
        **config.common_env(),
        "DEPLOYSTREAM_WORKER_PORT": str(port),
        "DEPLOYSTREAM_DATA_DIR": str(config.data_dir / f"worker-{index}"),
        **config.worker_env,
    }
    if config.static_membership:
        # Stable across restarts of this worker, unique within the stack.
        env["DEPLOYSTREAM_GROUP_INSTANCE_ID"] = f"{config.app_id}-worker-{index}"
    return ServiceProcess(
        name,
        "streams",
        env,
        f"http://127.0.0.1:{port}/readyz",
        config.log_dir / f"{name}.log",
    )


def gateway_process(config: StackConfig, name: str = "gateway") -> ServiceProcess:
    """The gateway of ``config``, pointed at every worker, logging to ``<name>.log``."""
    urls = [f"http://127.0.0.1:{p}" for p in config.worker_ports]
    env = {
        **config.common_env(),
        "DEPLOYSTREAM_GATEWAY_PORT": str(config.gateway_port),
        "DEPLOYSTREAM_WORKER_URLS": json.dumps(urls),
        **config.gateway_env,
    }
    return ServiceProcess(
        name,
        "gateway",
        env,
        f"http://127.0.0.1:{config.gateway_port}/readyz",
        config.log_dir / f"{name}.log",
    )


@dataclass
class Services:
    """The workers and the gateway of one stack, as :func:`start_services` leaves them."""

    config: StackConfig
    workers: list[ServiceProcess]
    gateway: ServiceProcess

    @property
    def base_url(self) -> str:
        """The gateway's URL."""
        return f"http://127.0.0.1:{self.config.gateway_port}"

    @property
    def processes(self) -> list[ServiceProcess]:
        """Every service, gateway first: the order to stop them in, so that no request is
        routed to a worker that is already gone."""
        return [self.gateway, *self.workers]

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service (then SIGKILL after ``timeout``); exit codes by name."""
        return {service.name: service.stop(timeout) for service in self.processes}


def _log_tails(services: list[ServiceProcess], chars: int) -> None:
    for service in services:
        try:
            tail = service.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            tail = f"(no log: {exc})"
        logger.error("--- %s log (%s) ---\n%s", service.name, service.log_path, tail)


def start_services(
    config: StackConfig,
    *,
    worker_timeout: float = 120.0,
    gateway_timeout: float = 60.0,
    log_tail_chars: int = 5000,
) -> Services:
    """Create ``config``'s topic, start a worker per port of ``config.worker_ports`` and a
    gateway, and wait until all of them are ready.

    When one fails to start or get ready in time, everything started is stopped, the end of
    each log is logged (the services' own output says why) and the error re-raised: a
    caller never has to clean up a half-started stack.
    """
    settings = config.kafka_settings()
    ensure_topic(
        settings.librdkafka_config(),
        config.topic,
        config.partitions,
        1,
        record_limit(settings.max_record_bytes),
    )
    services: list[ServiceProcess] = []
    try:
        workers = [worker_process(config, index) for index in range(len(config.worker_ports))]
        gateway = gateway_process(config)
        for service in (*workers, gateway):
            services.append(service.start())
        for worker in workers:
            worker.wait_ready(worker_timeout)
        gateway.wait_ready(gateway_timeout)
    except Exception:
        for service in reversed(services):
            service.stop()
        _log_tails(services, log_tail_chars)
        raise
    return Services(config, workers, gateway)
