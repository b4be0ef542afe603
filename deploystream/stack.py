"""Broker, worker and gateway as child processes: what ``make run`` and the e2e tests start."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from deploystream.kafka.broker import die_with_parent

__all__ = ["ServiceProcess", "StackConfig", "gateway_process", "wait_http_ok", "worker_process"]

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
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ServiceProcess:
        """Spawn the process; it dies with its parent (PR_SET_PDEATHSIG)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is not None:  # a restart after the process ended on its own
            self._log.close()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509
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
    gateway_port: int
    worker_ports: list[int]
    data_dir: Path
    log_dir: Path
    partitions: int = 8
    topic: str = "deployments"
    app_id: str = "deploystream"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def state_topic(self) -> str:
        """The workers' state topic, named after ``topic`` so that stacks sharing a broker
        (the tests) never share a table changelog: ``deployments`` -> ``deployments-state``."""
        return f"{self.topic}-state"

    def common_env(self) -> dict[str, str]:
        """Variables both services read."""
        return {
            "DEPLOYSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "DEPLOYSTREAM_DEPLOYMENTS_TOPIC": self.topic,
            "DEPLOYSTREAM_STATE_TOPIC": self.state_topic,
            "DEPLOYSTREAM_DEAD_LETTER_TOPIC": f"{self.topic}-dead-letter",
            "DEPLOYSTREAM_PARTITIONS": str(self.partitions),
            "DEPLOYSTREAM_APP_ID": self.app_id,
            **self.extra_env,
        }


def worker_process(config: StackConfig, index: int = 0) -> ServiceProcess:
    """The ``index``-th worker of ``config`` (own port, own RocksDB folder)."""
    port = config.worker_ports[index]
    env = {
        **config.common_env(),
        "DEPLOYSTREAM_WORKER_PORT": str(port),
        "DEPLOYSTREAM_DATA_DIR": str(config.data_dir / f"worker-{index}"),
    }
    return ServiceProcess(
        f"worker-{index}",
        "streams",
        env,
        f"http://127.0.0.1:{port}/readyz",
        config.log_dir / f"worker-{index}.log",
    )


def gateway_process(config: StackConfig) -> ServiceProcess:
    """The gateway of ``config``, pointed at every worker."""
    urls = [f"http://127.0.0.1:{p}" for p in config.worker_ports]
    env = {
        **config.common_env(),
        "DEPLOYSTREAM_GATEWAY_PORT": str(config.gateway_port),
        "DEPLOYSTREAM_WORKER_URLS": json.dumps(urls),
    }
    return ServiceProcess(
        "gateway",
        "gateway",
        env,
        f"http://127.0.0.1:{config.gateway_port}/readyz",
        config.log_dir / "gateway.log",
    )
