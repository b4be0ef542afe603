"""Fault scenarios under steady load, each ending in a comparison with the reference model.

The same functions serve the e2e tests (short, few faults) and ``python -m chaos`` (long,
many faults): they return a :class:`ScenarioResult` and assert nothing themselves.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos.load import LoadRunner, Sample
from chaos.model import HistoryConfig, issue_pool
from chaos.queries import query_mismatches
from chaos.stack import ChaosStack, wait_ready
from chaos.verify import (
    Mismatch,
    lookup_all,
    lookup_mismatches,
    seen_of,
    state_topic_mismatches,
    table_differences,
)
from deploystream.kafka.broker import LocalKafka
from deploystream.stack import ServiceProcess

__all__ = [
    "LoadShape",
    "ScenarioResult",
    "broker_outage",
    "gateway_crashes",
    "worker_crashes",
]

#: Acknowledgements the load must reach before the first fault and after each recovery.
WARM_UP_ACKS = 20


@dataclass(frozen=True)
class LoadShape:
    """How much load, and its histories."""

    lanes: int = 4
    history: HistoryConfig = field(default_factory=HistoryConfig)
    #: Seconds between two faults: drawn uniformly from this range (seeded).
    gap_s: tuple[float, float] = (1.0, 4.0)
    #: Seconds a killed process stays down before its restart (seeded).
    down_s: tuple[float, float] = (0.0, 1.5)
    #: Pause of each lane between two requests: keeps the load below what one worker
    #: applies, so that the backlog after each crash is worked off in seconds.
    pause_s: float = 0.0
    #: How long a restarted process may take to be ready.
    ready_timeout_s: float = 90.0


@dataclass
class ScenarioResult:
    """What happened in one scenario, and how the end state compares with the model."""

    name: str
    seed: int
    duration_s: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    #: The reader's answers during the run, by status.
    reads: dict[str, int] = field(default_factory=dict)
    caught_up_s: float = 0.0
    keys_checked: int = 0
    lookup_mismatches: list[Mismatch] = field(default_factory=list)
    state_mismatches: list[Mismatch] = field(default_factory=list)
    #: Keys on which the tables (lookups) and the state topic rebuilt from scratch differ.
    table_differences: list[dict[str, Any]] = field(default_factory=list)
    #: Query answers that differ from what the lookups (checked against the model) imply.
    query_mismatches: list[dict[str, Any]] = field(default_factory=list)
    #: Queries walked, pages read, values listed.
    queries_checked: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Every request of the load (not part of the report).
    samples: list[Sample] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """No loss, no staleness, nothing unexpected."""
        return not (
            self.lookup_mismatches
            or self.state_mismatches
            or self.table_differences
            or self.query_mismatches
            or self.unexpected
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "seed": self.seed,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 2),
            "faults": self.faults,
            "statuses": self.statuses,
            "outcomes": self.outcomes,
            "reads": self.reads,
            "caught_up_s": round(self.caught_up_s, 2),
            "keys_checked": self.keys_checked,
            "lookup_mismatches": [m.as_dict() for m in self.lookup_mismatches],
            "state_mismatches": [m.as_dict() for m in self.state_mismatches],
            "table_differences": self.table_differences[:50],
            "queries_checked": self.queries_checked,
            "query_mismatches": self.query_mismatches[:50],
            "unexpected": self.unexpected[:50],
            "extra": self.extra,
        }

    def summary(self) -> str:
        """One paragraph for logs and test output."""
        lines = [
            f"{self.name} (seed {self.seed}): {'OK' if self.ok else 'FAILED'} in "
            f"{self.duration_s:.1f}s; {len(self.faults)} faults; answers {self.statuses}; "
            f"operations {self.outcomes}; reads {self.reads}; "
            f"caught up in {self.caught_up_s:.1f}s; "
            f"{self.keys_checked} keys checked: {len(self.lookup_mismatches)} wrong by lookup, "
            f"{len(self.state_mismatches)} wrong in the state topic, "
            f"{len(self.table_differences)} where table and state topic differ; "
            f"queries {self.queries_checked}: {len(self.query_mismatches)} wrong",
        ]
        lines += [f"  fault: {fault}" for fault in self.faults]
        lines += [f"  {key}: {value}" for key, value in self.extra.items()]
        lines += [f"  lookup mismatch: {m}" for m in self.lookup_mismatches[:10]]
        lines += [f"  state mismatch: {m}" for m in self.state_mismatches[:10]]
        lines += [f"  table vs state topic: {d}" for d in self.table_differences[:10]]
        lines += [f"  query mismatch: {m}" for m in self.query_mismatches[:10]]
        lines += [f"  unexpected: {u}" for u in self.unexpected[:10]]
        return "\n".join(lines)


def _finish(
    result: ScenarioResult, stack: ChaosStack, runner: LoadRunner, started: float
) -> ScenarioResult:
    """Stop the load, wait until the workers applied everything, compare with the model."""
    runner.stop()
    result.statuses = dict(runner.statuses())
    result.outcomes = dict(runner.outcomes())
    result.reads = dict(runner.reads)
    result.unexpected = list(runner.unexpected)
    result.samples = list(runner.samples)
    result.caught_up_s = stack.wait_caught_up()
    models = [(h.keys, h.model) for h in runner.histories]
    result.keys_checked, result.lookup_mismatches, bodies = lookup_mismatches(
        stack.base_url, stack.auth, models
    )
    _, result.state_mismatches, rebuilt = state_topic_mismatches(
        stack.config.bootstrap,
        stack.config.registry_url,
        stack.config.state_topic,
        stack.auth[0],
        models,
    )
    # Keys only the state topic has are looked up too: the table must agree on them.
    extra = [key for key in rebuilt if key not in bodies]
    bodies.update(lookup_all(stack.base_url, stack.auth, extra))
    result.table_differences = table_differences(
        {key: seen_of(body) for key, body in bodies.items()}, rebuilt
    )
    # What the lookups found decides what every query must answer.
    check = query_mismatches(stack.base_url, stack.auth, models, bodies, issue_pool(runner.history))
    result.query_mismatches = check.mismatches
    result.queries_checked = {
        "queries": check.queries,
        "pages": check.pages,
        "values": check.values,
    }
    result.duration_s = time.monotonic() - started
    return result


def _load(stack: ChaosStack, seed: int, shape: LoadShape, environment: str) -> LoadRunner:
    runner = LoadRunner(
        stack.base_url,
        stack.auth,
        lanes=shape.lanes,
        seed=seed,
        history=shape.history,
        environment=environment,
        pause_s=shape.pause_s,
    )
    return runner.start()


def _acks_after(runner: LoadRunner, moment: float, what: str, timeout: float = 60.0) -> None:
    runner.wait_for(lambda: runner.acked_since(moment) >= WARM_UP_ACKS, timeout, what)


def _run(
    name: str,
    stack: ChaosStack,
    seed: int,
    shape: LoadShape,
    fault: Callable[[random.Random, LoadRunner, int], dict[str, Any]],
    faults: int,
    environment: str,
    duration_s: float | None,
) -> ScenarioResult:
    """``faults`` faults; with ``duration_s``, faults until that many seconds passed (at least
    one, at most ``faults``)."""
    rng = random.Random(seed)  # noqa: S311 (test data)
    result = ScenarioResult(name, seed)
    started = time.monotonic()
    runner = _load(stack, seed, shape, environment)
    try:
        _acks_after(runner, started, "the load to start")
        for index in range(faults):
            if index and duration_s is not None and time.monotonic() - started > duration_s:
                break
            time.sleep(rng.uniform(*shape.gap_s))
            result.faults.append(fault(rng, runner, index))
        _acks_after(runner, time.monotonic(), "acknowledgements after the last fault")
    except BaseException:
        runner.stop()
        raise
    return _finish(result, stack, runner, started)


def _warnings(service: ServiceProcess, count: int = 20) -> str:
    """The last warnings and errors of a service's log."""
    lines = service.log_path.read_text(errors="replace").splitlines()
    return "\n".join([line for line in lines if "WARNING" in line or "ERROR" in line][-count:])


def worker_crashes(
    stack: ChaosStack,
    *,
    seed: int,
    kills: int = 3,
    shape: LoadShape | None = None,
    environment: str = "worker-crash",
    duration_s: float | None = None,
) -> ScenarioResult:
    """SIGKILL a worker ``kills`` times at random moments under load, restart it each time."""
    shape = shape or LoadShape()

    def kill_worker(rng: random.Random, runner: LoadRunner, index: int) -> dict[str, Any]:
        victim = rng.randrange(len(stack.workers))
        worker = stack.workers[victim]
        lag = stack.lag()  # evidence that the kill interrupts work in progress
        moment = time.monotonic()
        worker.kill()
        down = rng.uniform(*shape.down_s)
        time.sleep(down)
        worker.start()
        try:
            worker.wait_ready(shape.ready_timeout_s)
        except TimeoutError as exc:
            msg = f"{exc}; the worker's last warnings:\n{_warnings(worker)}"
            raise TimeoutError(msg) from exc
        return {
            "fault": "SIGKILL worker",
            "index": index,
            "worker": victim,
            "down_s": round(down, 2),
            "ready_after_kill_s": round(time.monotonic() - moment, 2),
            "records_not_yet_committed_at_kill": lag,
        }

    return _run("worker crashes", stack, seed, shape, kill_worker, kills, environment, duration_s)


def gateway_crashes(
    stack: ChaosStack,
    *,
    seed: int,
    kills: int = 3,
    shape: LoadShape | None = None,
    environment: str = "gateway-crash",
    duration_s: float | None = None,
) -> ScenarioResult:
    """SIGKILL the gateway ``kills`` times while requests are in flight, restart it each time.
    The requests it took down with it are unknown to the model; every 202 must survive."""
    shape = shape or LoadShape()

    def kill_gateway(rng: random.Random, runner: LoadRunner, index: int) -> dict[str, Any]:
        runner.wait_for(lambda: runner.in_flight > 0, 30, "a request in flight")
        in_flight = runner.in_flight
        moment = time.monotonic()
        stack.gateway.kill()
        down = rng.uniform(*shape.down_s)
        time.sleep(down)
        stack.gateway.start().wait_ready(shape.ready_timeout_s)
        restarted = time.monotonic()
        _acks_after(runner, restarted, "acknowledgements from the restarted gateway")
        return {
            "fault": "SIGKILL gateway",
            "index": index,
            "in_flight_at_kill": in_flight,
            "down_s": round(down, 2),
            "ready_after_kill_s": round(restarted - moment, 2),
        }

    return _run("gateway crashes", stack, seed, shape, kill_gateway, kills, environment, duration_s)


@dataclass
class _Outage:
    """Observations of one broker outage."""

    down_at: float
    up_at: float = 0.0
    readyz: list[tuple[float, int]] = field(default_factory=list)


def _readyz(url: str) -> int:
    try:
        return httpx.get(url, timeout=10.0).status_code
    except httpx.TransportError:
        return 0


def broker_outage(
    stack: ChaosStack,
    broker: LocalKafka,
    *,
    seed: int,
    outages: int = 1,
    outage_s: float = 8.0,
    graceful: bool | None = False,
    shape: LoadShape | None = None,
    environment: str = "broker-outage",
    recovery_timeout_s: float = 120.0,
    duration_s: float | None = None,
) -> ScenarioResult:
    """Take the stack's only broker away (SIGKILL, SIGTERM with ``graceful``, each in turn
    with ``None``) for ``outage_s`` seconds under load, ``outages`` times, and start it again
    on the same port and data. Gateway and workers are never restarted: they must recover by
    themselves.

    ``extra`` reports what the test asserts: answers to requests sent and answered while the
    broker was down (only 503 with Retry-After is right), the gateway's readiness meanwhile,
    how long recovery took, and whether gateway and workers are still the same processes.
    """
    shape = shape or LoadShape()
    pids = {s.name: s.process.pid for s in (stack.gateway, *stack.workers) if s.process}
    windows: list[_Outage] = []
    gateway_readyz = f"{stack.base_url}/readyz"
    worker_readyz = [w.ready_url for w in stack.workers]

    def outage(rng: random.Random, runner: LoadRunner, index: int) -> dict[str, Any]:
        del rng
        term = graceful if graceful is not None else index % 2 == 1
        if term:
            broker.stop(remove=False)
        else:
            broker.kill()
        window = _Outage(time.monotonic())
        windows.append(window)
        deadline = window.down_at + outage_s
        while time.monotonic() < deadline:
            window.readyz.append((time.monotonic(), _readyz(gateway_readyz)))
            time.sleep(0.5)
        restart = time.monotonic()
        window.up_at = restart
        broker.start(timeout=180)
        broker_up = time.monotonic() - restart
        gateway_ready = wait_ready(gateway_readyz, recovery_timeout_s)
        _acks_after(runner, restart, "202s after the broker returned", recovery_timeout_s)
        acked = time.monotonic() - restart
        workers_ready = max(wait_ready(url, recovery_timeout_s) for url in worker_readyz)
        return {
            "fault": "SIGTERM broker" if term else "SIGKILL broker",
            "index": index,
            "down_s": round(restart - window.down_at, 2),
            "broker_restart_s": round(broker_up, 2),
            "gateway_ready_after_restart_s": round(gateway_ready + broker_up, 2),
            "acks_after_restart_s": round(acked, 2),
            "workers_ready_after_restart_s": round(workers_ready + acked, 2),
        }

    result = _run("broker outage", stack, seed, shape, outage, outages, environment, duration_s)
    result.extra.update(_outage_report(windows, result.samples, stack, pids))
    return result


def _outage_report(
    windows: list[_Outage], samples: list[Sample], stack: ChaosStack, pids: dict[str, int]
) -> dict[str, Any]:
    # Requests sent after the broker was gone and answered before it was started again: the
    # broker was down for the whole of each, so only a 503 with Retry-After is right.
    while_down = [
        s for w in windows for s in samples if s.started >= w.down_at and s.finished <= w.up_at
    ]
    answers = Counter(str(s.status) if s.status is not None else str(s.error) for s in while_down)
    return {
        "outages": len(windows),
        "answers_while_down": dict(answers),
        "acked_while_down": sum(1 for s in while_down if s.status == 202),
        "503_without_retry_after": sum(
            1 for s in while_down if s.status == 503 and not s.retry_after
        ),
        # (seconds after the broker went down, status of the gateway's /readyz)
        "readyz_while_down": [
            (round(at - w.down_at, 1), status) for w in windows for at, status in w.readyz
        ],
        "same_processes": {
            s.name: bool(
                s.process and s.process.poll() is None and s.process.pid == pids.get(s.name)
            )
            for s in (stack.gateway, *stack.workers)
        },
    }
