"""Apply: the events/s a fresh worker applies from a pre-filled topic, side by side with a
bare consumer that reads and decodes the same topic; and a restore check of that table."""

from __future__ import annotations

import time
from typing import Any

from bench import profiling
from bench.kafka import bare_consume, encode_events, produce_all
from bench.measure import CpuMeter, median
from bench.phases.common import Context
from bench.phases.restart import restart_words, restart_worker
from bench.stack import BENCH_CLIENT, scrape_metric, wait_committed
from deploystream.load import DeploymentGenerator, GeneratorConfig
from deploystream.stack import ServiceProcess, StackConfig

__all__ = ["apply_phase", "watch_apply"]

APPLIED_METRIC = "deploystream_worker_events_total"
DEAD_METRIC = "deploystream_worker_poison_records_total"


def watch_apply(
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
    events = encode_events(generator, count, BENCH_CLIENT, env.event_codec(topic))
    produced = produce_all(env.bootstrap, topic, events)
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
        run = watch_apply(ctx, worker, config, count, "worker-apply" if is_profiled else None)
        bare = bare_consume(env.bootstrap, env.registry_url, topic, env.partitions, count)
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
        restore = restart_worker(ctx, worker, config, None, "wipe", plan.session_timeout_s + 60)
        if restore.get("recoveryError"):
            ctx.log("apply", f"recovery error in the worker's log: {restore['recoveryError']}")
        ctx.log(
            "apply",
            f"restore of this table (SIGKILL, local RocksDB deleted): {restart_words(restore)}",
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
