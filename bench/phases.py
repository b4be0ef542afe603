"""The measurements: ingest (with the bare-producer baseline), apply (with the bare-consumer
baseline), visibility lag, lookups and restarts. Each phase returns a JSON-ready dict."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import profiling
from bench.kafka import bare_consume, bare_produce, encode_events, produce_all
from bench.measure import CpuMeter, MemoryWatch, median, percentiles_ms
from bench.plan import Plan
from bench.seed import seed_state_topic
from bench.stack import BENCH_CLIENT, BenchEnv, http_status, scrape_metric, wait_committed
from deploystream.load import (
    API,
    Auth,
    DeploymentGenerator,
    GeneratorConfig,
    LoadResult,
    Request,
    drive,
    lookup_path,
)
from deploystream.stack import ServiceProcess, StackConfig

__all__ = [
    "Context",
    "apply_phase",
    "ingest_phase",
    "lookup_phase",
    "restart_phase",
    "visibility_phase",
]

APPLIED_METRIC = "deploystream_worker_events_total"
_PROBE_RUNS = itertools.count()
DEAD_METRIC = "deploystream_worker_poison_records_total"


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


def _url(config: StackConfig) -> str:
    return f"http://127.0.0.1:{config.gateway_port}"


def _cycle(bodies: list[bytes], bulk: int) -> Callable[[], Request]:
    pool = itertools.cycle(bodies)
    path = f"{API}/bulk"
    return lambda: Request("POST", path, next(pool), bulk)


def _step(result: LoadResult) -> dict[str, Any]:
    latency = percentiles_ms(result.latencies_s)
    return {
        "deploymentsPerS": round(result.item_rate, 1),
        "requestsPerS": round(result.request_rate, 1),
        "p50Ms": latency["p50"],
        "p99Ms": latency["p99"],
        "statuses": dict(result.statuses),
    }


# -- ingest -------------------------------------------------------------------------------


def _ingest_run(
    ctx: Context, url: str, bodies: list[bytes], bulk: int, concurrency: int, seconds: float
) -> LoadResult:
    return asyncio.run(
        drive(url, ctx.auth, _cycle(bodies, bulk), concurrency=concurrency, duration_s=seconds)
    )


def ingest_phase(ctx: Context) -> dict[str, Any]:
    """Gateway deployments/s and latency by bulk size and concurrency, up to saturation, and
    the bare producer on the same events side by side."""
    plan, env = ctx.plan, ctx.env
    topic = env.topic("bench-ingest")
    # No worker consumes this topic: the gateway is measured alone (2 cores are shared).
    config = env.config(topic, "bench-ingest")
    gateway = env.gateway(config, "gateway-ingest").wait_ready(60)
    ctx.memory.watch("gateway", gateway.process.pid if gateway.process else None)
    url = _url(config)
    generator = DeploymentGenerator(GeneratorConfig(seed=1, namespace="ingest-"))
    pools = {
        bulk: [generator.encoded_body(bulk) for _ in range(max(300, 40_000 // bulk))]
        for bulk in plan.bulk_sizes
    }
    _ingest_run(ctx, url, pools[plan.bulk_sizes[-1]], plan.bulk_sizes[-1], 4, 1.0)  # warm-up
    steps: list[dict[str, Any]] = []
    saturation: dict[int, dict[str, Any]] = {}
    for bulk in plan.bulk_sizes:
        best: dict[str, Any] | None = None
        for concurrency in plan.concurrencies:
            runs, cpus = [], []
            for _ in range(plan.repeats):
                meter = ctx.cpu(gateway=gateway)
                runs.append(_ingest_run(ctx, url, pools[bulk], bulk, concurrency, plan.step_s))
                cpus.append(meter.stop())
            step = {
                "bulk": bulk,
                "concurrency": concurrency,
                "deploymentsPerS": round(median([r.item_rate for r in runs]), 1),
                "requestsPerS": round(median([r.request_rate for r in runs]), 1),
                "p50Ms": round(median([r.latency_ms(50) for r in runs]), 2),
                "p99Ms": round(median([r.latency_ms(99) for r in runs]), 2),
                "statuses": dict(sum((r.statuses for r in runs), Counter())),
                "cpuPct": {k: median([c[k] for c in cpus]) for k in cpus[0]},
            }
            steps.append(step)
            ctx.log(
                "ingest",
                f"bulk={bulk:<3} c={concurrency:<3} {step['deploymentsPerS']:>9,.0f} dep/s "
                f"{step['requestsPerS']:>7,.0f} req/s  p50 {step['p50Ms']:.1f} ms  "
                f"p99 {step['p99Ms']:.1f} ms  cpu {step['cpuPct']}",
            )
            gain = best is None or step["deploymentsPerS"] >= 1.10 * best["deploymentsPerS"]
            if best is None or step["deploymentsPerS"] > best["deploymentsPerS"]:
                best = step
            if not gain:
                break  # saturated: another step up buys less than 10 %
        assert best is not None
        saturation[bulk] = best
    # Side by side: gateway bulk-100 at its saturating concurrency vs the bare producer.
    bulk = max(plan.bulk_sizes)
    concurrency = saturation[bulk]["concurrency"]
    ctx.log("baseline", f"encoding {plan.bare_events:,} events as the gateway does")
    events = list(encode_events(generator, plan.bare_events, BENCH_CLIENT))
    pairs = []
    for _ in range(plan.repeats):
        run = _ingest_run(ctx, url, pools[bulk], bulk, concurrency, plan.step_s)
        bare = bare_produce(env.bootstrap, topic, events)
        encode_and_produce = produce_all(
            env.bootstrap,
            topic,
            encode_events(generator, plan.bare_events // 5, BENCH_CLIENT),
            warm_up=True,
        )
        pair = {
            "gatewayDeploymentsPerS": round(run.item_rate, 1),
            "bareEventsPerS": round(bare.rate, 1),
            "encodeAndProduceEventsPerS": round(encode_and_produce.rate, 1),
            "ratio": round(run.item_rate / bare.rate, 4),
            "ratioToEncodeAndProduce": round(run.item_rate / encode_and_produce.rate, 4),
        }
        pairs.append(pair)
        ctx.log(
            "baseline",
            f"gateway bulk-{bulk} {pair['gatewayDeploymentsPerS']:,.0f} dep/s | bare producer "
            f"{pair['bareEventsPerS']:,.0f} ev/s | encode+produce "
            f"{pair['encodeAndProduceEventsPerS']:,.0f} ev/s | ratio {pair['ratio']:.3f}",
        )
    profile = _profile_service(
        ctx,
        gateway,
        "gateway-ingest",
        lambda: _ingest_run(ctx, url, pools[bulk], bulk, concurrency, plan.profile_s),
    )
    gateway.stop()
    return {
        "steps": steps,
        "saturation": {str(b): s for b, s in saturation.items()},
        "baseline": {
            "pairs": pairs,
            "bulk": bulk,
            "concurrency": concurrency,
            "events": plan.bare_events,
            "gatewayDeploymentsPerS": median([p["gatewayDeploymentsPerS"] for p in pairs]),
            "bareEventsPerS": median([p["bareEventsPerS"] for p in pairs]),
            "encodeAndProduceEventsPerS": median([p["encodeAndProduceEventsPerS"] for p in pairs]),
            "ratio": median([p["ratio"] for p in pairs]),
            "ratioToEncodeAndProduce": median([p["ratioToEncodeAndProduce"] for p in pairs]),
            "meanEventBytes": round(sum(len(e.value) for e in events) / len(events), 1),
        },
        "profile": profile,
    }


def _profile_service(
    ctx: Context, service: ServiceProcess, name: str, load: Callable[[], object]
) -> dict[str, Any]:
    """Sample ``service`` with py-spy while ``load`` runs; the analysed profile."""
    if service.process is None:
        return {"error": "not running"}
    out = ctx.out_dir / f"profile-{name}.txt"
    recording = profiling.record(service.process.pid, ctx.plan.profile_s, out)
    load()
    path = recording.wait()
    if path is None:
        ctx.log("profile", f"{name}: no profile ({recording.error})")
        return {"error": recording.error}
    profile = profiling.analyse(path)
    ctx.log("profile", f"{name}: {profile.samples} samples -> {out.name}")
    return {"file": out.name, **profile.summary()}


# -- apply --------------------------------------------------------------------------------


def _watch_apply(
    ctx: Context,
    worker: ServiceProcess,
    config: StackConfig,
    expected: int,
    profile_name: str | None,
) -> dict[str, Any]:
    """Follow a fresh worker through ``expected`` events: the rate between its first and
    its last applied event (its counter), done when its group committed every offset."""
    port = config.worker_ports[0]
    started = time.perf_counter()
    deadline = started + 60 + expected / 100
    first: tuple[float, float] | None = None
    last: tuple[float, float] = (started, 0.0)
    meter: CpuMeter | None = None
    recording: profiling.Recording | None = None
    committed_at: float | None = None
    while committed_at is None:
        if time.perf_counter() > deadline:
            msg = f"{worker.name} applied {last[1]:.0f} of {expected} events in time"
            raise TimeoutError(msg)
        if worker.process is not None and worker.process.poll() is not None:
            msg = f"{worker.name} exited ({worker.process.returncode}); see {worker.log_path}"
            raise RuntimeError(msg)
        count = (scrape_metric(port, APPLIED_METRIC) or 0.0) + (
            scrape_metric(port, DEAD_METRIC) or 0.0
        )
        now = time.perf_counter()
        if count and first is None:
            first = (now, count)
            meter = ctx.cpu(worker=worker)
            if profile_name and worker.process is not None:
                out = ctx.out_dir / f"profile-{profile_name}.txt"
                recording = profiling.record(worker.process.pid, ctx.plan.profile_s, out)
        if count > last[1]:
            last = (now, count)
        elif first is not None and (count >= expected or now - last[0] > 1.0):
            # Quiet for a moment (or all counted): has the group committed everything?
            try:
                wait_committed(config, 0)
                committed_at = now
            except TimeoutError:
                pass
        time.sleep(0.25)
    cpu = meter.stop() if meter else {}
    assert first is not None
    rate = (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else float("nan")
    result: dict[str, Any] = {
        "events": expected,
        "counted": int(last[1]),
        "eventsPerS": round(rate, 1),
        "firstAppliedAfterS": round(first[0] - started, 2),
        "allAppliedAfterS": round(last[0] - started, 2),
        "committedAfterS": round(committed_at - started, 2),
        "cpuPct": cpu,
    }
    if recording is not None:
        path = recording.wait()
        if path is not None:
            profile = profiling.analyse(path)
            result["profile"] = {"file": path.name, **profile.summary()}
            ctx.log("profile", f"{profile_name}: {profile.samples} samples -> {path.name}")
        else:
            result["profile"] = {"error": recording.error}
    return result


def apply_phase(ctx: Context) -> dict[str, Any]:
    """Events/s a fresh worker applies from a pre-filled topic, against a bare consumer that
    reads and decodes the same topic; then a restore check of that real table."""
    plan, env = ctx.plan, ctx.env
    topic = env.topic("bench-apply")
    generator = DeploymentGenerator(GeneratorConfig(seed=2, namespace="apply-"))
    count = plan.apply_events
    produced = produce_all(env.bootstrap, topic, encode_events(generator, count, BENCH_CLIENT))
    ctx.log(
        "apply",
        f"pre-produced {count:,} events ({100 * generator.late / generator.generated:.1f}% "
        f"out of order) in {produced.seconds:.1f}s",
    )
    runs: list[dict[str, Any]] = []
    profiled: dict[str, Any] | None = None
    # The last run is profiled; with repeats > 1 it is left out of the medians.
    total = plan.repeats + (1 if plan.repeats > 1 else 0)
    worker: ServiceProcess | None = None
    config: StackConfig | None = None
    for index in range(total):
        is_profiled = index == total - 1
        if worker is not None:
            worker.stop()
        config = env.config(topic, f"bench-apply-{index}")
        worker = env.worker(config, f"worker-apply-{index}")
        ctx.memory.watch("worker", worker.process.pid if worker.process else None)
        run = _watch_apply(ctx, worker, config, count, "worker-apply" if is_profiled else None)
        bare = bare_consume(env.bootstrap, topic, env.partitions, count)
        run["bareEventsPerS"] = round(bare.rate, 1)
        run["ratio"] = round(run["eventsPerS"] / bare.rate, 4)
        run["profiled"] = is_profiled
        ctx.log(
            "apply",
            f"run {index + 1}/{total}{' (profiled)' if is_profiled else ''}: worker "
            f"{run['eventsPerS']:,.0f} ev/s | bare consumer+decode {bare.rate:,.0f} ev/s | "
            f"ratio {run['ratio']:.3f} | cpu {run['cpuPct']}",
        )
        runs.append(run)
        if is_profiled:
            profiled = run
    measured = [r for r in runs if not r["profiled"]] or runs
    assert worker is not None
    assert config is not None
    restore: dict[str, Any] | None = None
    if plan.restore_check:
        restore = _restart(ctx, worker, config, None, "wipe", plan.session_timeout_s + 60)
        if restore.get("recoveryError"):
            ctx.log("apply", f"recovery error in the worker's log: {restore['recoveryError']}")
        ctx.log(
            "apply",
            f"restore of this table (SIGKILL, local RocksDB deleted): {_restart_words(restore)}",
        )
        if not restore["served"]:
            ctx.findings.append(
                f"A worker whose table was built by applying events (with request properties, so "
                f"with property-index entries) did not become ready within "
                f"{restore['timeoutS']:.0f}s after a restart without its local RocksDB; its log "
                f"({worker.log_path.name}) says 'Error in recovery "
                f"{restore.get('recoveryError') or '?'}'."
            )
    worker.stop()
    return {
        "events": count,
        "outOfOrderFraction": round(generator.late / max(1, generator.generated), 4),
        "runs": runs,
        "eventsPerS": median([r["eventsPerS"] for r in measured]),
        "bareEventsPerS": median([r["bareEventsPerS"] for r in measured]),
        "ratio": median([r["ratio"] for r in measured]),
        "profile": (profiled or {}).get("profile"),
        "restoreWithoutRocksDb": restore,
    }


# -- restarts -----------------------------------------------------------------------------


def _restart_words(result: dict[str, Any]) -> str:
    if not result["served"]:
        return f"NOT serving after {result['timeoutS']:.0f}s"
    return f"ready after {result['readyS']:.1f}s, serving after {result['servingS']:.1f}s"


def _lookup_ok(url: str, auth_header: str, path: str) -> bool:
    async def once() -> int:
        timeout = aiohttp.ClientTimeout(total=3)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url + path, headers={"Authorization": auth_header}) as response,
        ):
            await response.read()
            return response.status

    try:
        return asyncio.run(once()) == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _restart(
    ctx: Context,
    worker: ServiceProcess,
    config: StackConfig,
    lookup: tuple[str, str, str] | None,
    mode: str,
    timeout: float,
) -> dict[str, Any]:
    """Stop ``worker`` (``kill``: SIGKILL, ``wipe``: SIGKILL and delete its RocksDB folder,
    ``term``: SIGTERM), start it again, and time until /readyz answers 200 and (with
    ``lookup`` = (gateway URL, Authorization, path)) a lookup through the gateway is 200."""
    ctx.memory.sample()
    started = time.perf_counter()
    if mode == "term":
        worker.stop()
    else:
        worker.kill()
    stopped = time.perf_counter() - started
    if mode == "wipe":
        shutil.rmtree(config.data_dir / "worker-0", ignore_errors=True)
    log_offset = worker.log_path.stat().st_size if worker.log_path.exists() else 0
    worker.start()
    ctx.memory.watch("worker", worker.process.pid if worker.process else None)
    ready_url = f"http://127.0.0.1:{config.worker_ports[0]}/readyz"
    deadline = started + timeout
    ready = serving = None
    failure: str | None = None
    while time.perf_counter() < deadline:
        if ready is None and http_status(ready_url, timeout=1) == 200:
            ready = time.perf_counter() - started
        if ready is not None and (lookup is None or _lookup_ok(*lookup)):
            serving = time.perf_counter() - started
            break
        if ready is None and failure is None:
            failure = _recovery_error(worker.log_path, log_offset)
            if failure is not None:
                # Recovery failed; give it a few seconds to prove otherwise, then stop waiting.
                deadline = min(deadline, time.perf_counter() + 5)
        time.sleep(0.1)
    return {
        "mode": mode,
        "stopS": round(stopped, 2),
        "readyS": round(ready, 2) if ready is not None else None,
        "servingS": round(serving, 2) if serving is not None else None,
        "served": serving is not None,
        "timeoutS": round(time.perf_counter() - started if serving is None else timeout, 1),
        "recoveryError": failure,
    }


def _recovery_error(log: Path, offset: int) -> str | None:
    """The first line faust logs when table recovery fails, written after ``offset``."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "Error in recovery" in line:
            return line.split("Error in recovery", 1)[1].strip()[:300]
    return None


def restart_phase(ctx: Context) -> dict[str, Any]:
    """A worker with ``plan.restart_deployments`` stored deployments: first start (restore
    from the state topic), then SIGKILL with its RocksDB kept, SIGKILL with it deleted, and a
    graceful SIGTERM restart; each timed until it serves a lookup through a gateway."""
    plan, env = ctx.plan, ctx.env
    topic = env.topic("bench-restart")
    config = env.config(topic, "bench-restart")
    state_topic = config.extra_env["DEPLOYSTREAM_STATE_TOPIC"]
    ctx.log("restart", f"seeding {plan.restart_deployments:,} stored deployments")
    t0 = time.perf_counter()
    seeded = seed_state_topic(
        env.bootstrap, state_topic, env.partitions, BENCH_CLIENT, plan.restart_deployments
    )
    seed_s = time.perf_counter() - t0
    ctx.log("restart", f"seeded {seeded.count:,} in {seed_s:.0f}s; first start (restore)")
    t0 = time.perf_counter()
    worker = env.worker(config, "worker-restart")
    ctx.memory.watch("worker", worker.process.pid if worker.process else None)
    ctx.memory.watch("worker-restart", worker.process.pid if worker.process else None)
    worker.wait_ready(plan.restore_timeout_s)
    first_start = time.perf_counter() - t0
    ctx.log("restart", f"first start, empty RocksDB: ready after {first_start:.1f}s")
    gateway = env.gateway(config, "gateway-restart").wait_ready(60)
    ctx.memory.watch("gateway", gateway.process.pid if gateway.process else None)
    url = _url(config)
    header = asyncio.run(_authorization(ctx.auth, url))
    pipeline, environment, number = seeded.keys[len(seeded.keys) // 2]
    lookup = (url, header, lookup_path(pipeline, environment, number))
    if not _lookup_ok(*lookup):
        ctx.findings.append("restart: a seeded deployment was not found through the gateway")
    results: dict[str, Any] = {"deployments": seeded.count, "seedS": round(seed_s, 1)}
    results["firstStartS"] = round(first_start, 2)
    timeout = plan.session_timeout_s + plan.restore_timeout_s
    for mode, label in (
        ("kill", "SIGKILL, RocksDB kept"),
        ("wipe", "SIGKILL, RocksDB deleted (changelog restore)"),
        ("term", "SIGTERM (graceful), RocksDB kept"),
    ):
        ctx.memory.watch("worker-restart", worker.process.pid if worker.process else None)
        result = _restart(ctx, worker, config, lookup, mode, timeout)
        ctx.memory.watch("worker-restart", worker.process.pid if worker.process else None)
        results[mode] = result
        ctx.log("restart", f"{label}: {_restart_words(result)}")
    ctx.memory.sample()
    results["workerPeakRssMb"] = ctx.memory.peak_mb("worker-restart")
    results["sessionTimeoutS"] = plan.session_timeout_s
    worker.stop()
    gateway.stop()
    return results


async def _authorization(auth: Auth, url: str) -> str:
    async with aiohttp.ClientSession() as session:
        return await auth.authorization(session, url)


# -- lookups and visibility -----------------------------------------------------------------


@dataclass
class MainStack:
    """Worker and gateway over a table of ``plan.lookup_deployments`` deployments."""

    config: StackConfig
    worker: ServiceProcess
    gateway: ServiceProcess
    keys: list[tuple[str, str, int]]

    @property
    def url(self) -> str:
        """The gateway's URL."""
        return _url(self.config)


def main_stack(ctx: Context) -> MainStack:
    """Seed, then start a worker (restoring the table) and a gateway."""
    plan, env = ctx.plan, ctx.env
    topic = env.topic("bench-main")
    config = env.config(topic, "bench-main")
    seeded = seed_state_topic(
        env.bootstrap,
        config.extra_env["DEPLOYSTREAM_STATE_TOPIC"],
        env.partitions,
        BENCH_CLIENT,
        plan.lookup_deployments,
        keys_wanted=plan.lookup_deployments,
    )
    worker = env.worker(config, "worker-main")
    gateway = env.gateway(config, "gateway-main")
    ctx.memory.watch("worker", worker.process.pid if worker.process else None)
    ctx.memory.watch("gateway", gateway.process.pid if gateway.process else None)
    worker.wait_ready(plan.restore_timeout_s)
    gateway.wait_ready(60)
    ctx.log("lookup", f"worker and gateway ready over {seeded.count:,} stored deployments")
    return MainStack(config, worker, gateway, seeded.keys)


def lookup_phase(ctx: Context, stack: MainStack, clients: int = 64) -> dict[str, Any]:
    """Lookups of stored deployments through the gateway by ``clients`` concurrent clients."""
    keys = stack.keys
    order = itertools.cycle(range(len(keys)))
    stride = 7919  # a prime: consecutive lookups hit keys far apart

    def next_request() -> Request:
        pipeline, environment, number = keys[(next(order) * stride) % len(keys)]
        return Request("GET", lookup_path(pipeline, environment, number))

    runs, cpus = [], []
    asyncio.run(drive(stack.url, ctx.auth, next_request, concurrency=clients, duration_s=1.0))
    for _ in range(ctx.plan.repeats):
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        runs.append(
            asyncio.run(
                drive(
                    stack.url,
                    ctx.auth,
                    next_request,
                    concurrency=clients,
                    duration_s=ctx.plan.lookup_s,
                )
            )
        )
        cpus.append(meter.stop())
    result = {
        "storedDeployments": ctx.plan.lookup_deployments,
        "clients": clients,
        "requestsPerS": round(median([r.request_rate for r in runs]), 1),
        "p50Ms": round(median([r.latency_ms(50) for r in runs]), 2),
        "p99Ms": round(median([r.latency_ms(99) for r in runs]), 2),
        "statuses": dict(sum((r.statuses for r in runs), Counter())),
        "cpuPct": {k: median([c[k] for c in cpus]) for k in cpus[0]},
    }
    ctx.log(
        "lookup",
        f"{clients} clients: {result['requestsPerS']:,.0f} req/s  p50 {result['p50Ms']:.1f} ms"
        f"  p99 {result['p99Ms']:.1f} ms  statuses {result['statuses']}  cpu {result['cpuPct']}",
    )
    # Unloaded latency: one client, one request at a time (with 64 in flight, a request
    # waits for the others: p50 is about 64 / throughput, Little's law).
    single = asyncio.run(
        drive(stack.url, ctx.auth, next_request, concurrency=1, duration_s=ctx.plan.lookup_s / 2)
    )
    result["oneClient"] = {
        "requestsPerS": round(single.request_rate, 1),
        "p50Ms": round(single.latency_ms(50), 2),
        "p99Ms": round(single.latency_ms(99), 2),
    }
    ctx.log(
        "lookup",
        f"1 client: {single.request_rate:,.0f} req/s  p50 {single.latency_ms(50):.1f} ms  "
        f"p99 {single.latency_ms(99):.1f} ms",
    )
    return result


async def _visibility_run(
    ctx: Context,
    stack: MainStack,
    rate_deployments: float,
    bulk: int,
    seconds: float,
    probes: int = 4,
) -> dict[str, Any]:
    """Background load at ``rate_deployments`` (bulk-``bulk`` requests, open loop) while
    ``probes`` loops each submit one new deployment and poll its lookup until it is there."""
    # Probe keys must be new in every run: a key stored by an earlier run is found at once.
    runs = next(_PROBE_RUNS)
    background = DeploymentGenerator(GeneratorConfig(seed=3, namespace=f"vis{runs}-"))
    bodies = [background.encoded_body(bulk) for _ in range(max(200, int(rate_deployments)))]
    prober = DeploymentGenerator(
        GeneratorConfig(seed=4, namespace=f"probe{runs}-", lifecycle=False)
    )
    lags: list[float] = []
    halves: tuple[list[float], list[float]] = ([], [])
    failures = 0
    url = stack.url
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), connector=aiohttp.TCPConnector(limit=probes)
    ) as session:
        header = await ctx.auth.authorization(session, url)
        deadline = time.perf_counter() + seconds

        async def probe_loop() -> None:
            nonlocal failures
            while time.perf_counter() < deadline:
                item = prober.deployment()
                body = orjson.dumps({"deployments": [item]})
                deployment = prober.key_of(item)
                headers = {"Authorization": header, "Content-Type": "application/json"}
                async with session.post(f"{url}{API}/bulk", data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 202:
                        failures += 1
                        continue
                accepted = time.perf_counter()
                path = lookup_path(*deployment)
                while True:
                    async with session.get(url + path, headers={"Authorization": header}) as r:
                        await r.read()
                        status = r.status
                    now = time.perf_counter()
                    if status == 200:
                        lags.append(now - accepted)
                        halves[accepted > deadline - seconds / 2].append(now - accepted)
                        break
                    if now - accepted > 120:
                        failures += 1
                        break
                    # Poll every 5 ms, or 5 % of the lag so far once it is long.
                    await asyncio.sleep(max(0.005, 0.05 * (now - accepted)))

        load = drive(
            url,
            ctx.auth,
            _cycle(bodies, bulk),
            concurrency=64,
            rate=rate_deployments / bulk,
            duration_s=seconds,
        )
        traffic = asyncio.ensure_future(load)
        await asyncio.gather(*(probe_loop() for _ in range(probes)))
        result = await traffic
    latency = percentiles_ms(lags)
    return {
        "targetDeploymentsPerS": round(rate_deployments, 1),
        "achievedDeploymentsPerS": round(result.item_rate, 1),
        "bulk": bulk,
        "seconds": seconds,
        "probes": len(lags),
        "probeFailures": failures,
        "lagP50Ms": latency["p50"],
        "lagP99Ms": latency["p99"],
        "lagMaxMs": latency["max"],
        # A lag that grows from the first half of the run to the second: the worker falls
        # behind at this load (a backlog builds up).
        "lagP50FirstHalfMs": percentiles_ms(halves[0])["p50"],
        "lagP50SecondHalfMs": percentiles_ms(halves[1])["p50"],
        "statuses": dict(result.statuses),
    }


def visibility_phase(
    ctx: Context,
    stack: MainStack,
    gateway_saturation: float,
    apply_rate: float,
    bulk: int = 10,
) -> dict[str, Any]:
    """Visibility lag at half the sustainable load (half of what both the gateway and the
    worker keep up with), and at half the gateway's saturation when that is more than the
    worker applies (an overload: lag then grows with the run's length)."""
    sustainable = min(gateway_saturation, apply_rate)
    half = 0.5 * sustainable
    meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
    normal = asyncio.run(_visibility_run(ctx, stack, half, bulk, ctx.plan.visibility_s))
    normal["cpuPct"] = meter.stop()
    ctx.log(
        "visibility",
        f"at {half:,.0f} dep/s (half of min(gateway {gateway_saturation:,.0f}, apply "
        f"{apply_rate:,.0f})): lag p50 {normal['lagP50Ms']:.0f} ms p99 "
        f"{normal['lagP99Ms']:.0f} ms over {normal['probes']} probes (p50 first/second half "
        f"{normal['lagP50FirstHalfMs']:.0f}/{normal['lagP50SecondHalfMs']:.0f} ms) "
        f"cpu {normal['cpuPct']}",
    )
    result: dict[str, Any] = {"halfSustainable": normal, "sustainableDeploymentsPerS": sustainable}
    literal = 0.5 * gateway_saturation
    if literal > apply_rate and ctx.plan.overload_s > 0:
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        overload = asyncio.run(_visibility_run(ctx, stack, literal, bulk, ctx.plan.overload_s))
        overload["cpuPct"] = meter.stop()
        ctx.log(
            "visibility",
            f"at {literal:,.0f} dep/s (half the gateway's saturation, above the apply rate) "
            f"for {ctx.plan.overload_s:.0f}s: lag p50 {overload['lagP50Ms']:.0f} ms p99 "
            f"{overload['lagP99Ms']:.0f} ms",
        )
        result["halfGatewaySaturation"] = overload
        drained = wait_committed(stack.config, ctx.plan.restore_timeout_s)
        ctx.log("visibility", f"backlog drained {drained:.1f}s after the overload")
        result["drainS"] = round(drained, 1)
    return result
