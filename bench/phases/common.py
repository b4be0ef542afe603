"""What every phase shares: the run's :class:`Context` and the gateway load helpers."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import CpuMeter, MemoryWatch
from bench.plan import Plan
from bench.stack import BenchEnv
from deploystream.load import API, Auth, Request
from deploystream.stack import ServiceProcess, StackConfig

__all__ = ["Context", "bulk_requests", "gateway_url"]


@dataclass
class Context:
    """What every phase needs: the plan, the services' environment and the run's folders."""

    plan: Plan
    env: BenchEnv
    broker_pid: int | None
    out_dir: Path
    memory: MemoryWatch
    auth: Auth
    started: float = field(default_factory=time.monotonic)
    findings: list[str] = field(default_factory=list)

    def log(self, phase: str, message: str) -> None:
        """One progress line on stderr."""
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {phase:<10} {message}", file=sys.stderr, flush=True)

    def cpu(self, **services: ServiceProcess | None) -> CpuMeter:
        """A CPU meter over the broker, this process (the load client) and ``services``."""
        pids: dict[str, int | None] = {"broker": self.broker_pid, "client": os.getpid()}
        for name, service in services.items():
            pids[name] = service.process.pid if service and service.process else None
        return CpuMeter(pids).start()


def gateway_url(config: StackConfig) -> str:
    """The URL of the gateway started with ``config``."""
    return f"http://127.0.0.1:{config.gateway_port}"


def bulk_requests(bodies: list[bytes], bulk: int) -> Callable[[], Request]:
    """Bulk submissions of ``bulk`` deployments each, cycling through pre-encoded ``bodies``."""
    pool = itertools.cycle(bodies)
    path = f"{API}/bulk"
    return lambda: Request("POST", path, next(pool), bulk)
