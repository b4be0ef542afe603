"""``python -m bench [--quick]``: start a broker, run every phase, write the results."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psutil

from bench.measure import MemoryWatch
from bench.phases import (
    Context,
    MainStack,
    apply_phase,
    ingest_phase,
    lookup_phase,
    main_stack,
    queries_phase,
    restart_phase,
    visibility_phase,
)
from bench.plan import FULL, QUICK
from bench.report import evaluate, machine_noise, summary_rows, write
from bench.stack import BENCH_CLIENT, BenchEnv
from deploystream.kafka.provision import provide_broker
from deploystream.load import Auth
from deploystream.registry.provision import provide_registry

__all__ = ["main"]

PHASES = ("ingest", "apply", "lookup", "queries", "visibility", "restart")
#: Used for the visibility load when the phases that measure them were not run.
FALLBACK_GATEWAY_RATE = 2000.0
FALLBACK_APPLY_RATE = 1000.0

NOTES = [
    "One machine: the broker (JVM), the worker(s), the gateway(s) and the load generator "
    "(this process, asyncio + aiohttp) share its cores; CPU % per process is reported per "
    "step (100 % = one core). Other work on the machine shows up as noise: compare ratios "
    "measured in the same run rather than absolute figures across runs.",
    "Ingest: the gateway writes to a topic no worker consumes, so the worker does not "
    "compete for CPU; closed loop (N requests in flight), concurrency raised 1, 4, 16, 64 "
    "until the gain is under 10 %. Pre-generated request bodies are cycled.",
    "Baseline: a bare confluent-kafka Producer with the gateway's producer_config (acks=all, "
    "idempotent, murmur2_random, lz4), every delivery awaited; 'pre-encoded' sends events "
    "built beforehand with gateway.events.deployment_submitted, 'encode+produce' builds "
    "each event in the loop as a client without the gateway would. The target ratio uses "
    "the pre-encoded rate.",
    "Apply: rate between the first and the last applied event of a fresh worker (start-up "
    "and group join excluded), from its Prometheus counter sampled every 0.25 s; the "
    "bare consumer is timed from its first record and decodes every value with the "
    "DeploymentEvent Avro codec.",
    "Visibility lag: 202 of a single-deployment submission → first 200 of its lookup "
    "through the gateway (polled every 5 ms, or 5 % of the lag so far), by 4 probe loops "
    "while background bulk-10 traffic runs open loop at the stated rate. 'Sustainable' is "
    "what the stack sustains end to end: from min(gateway bulk-10 saturation, worker apply "
    "rate), each measured alone, down in steps of 15 % until the gateway takes 97 % of the "
    "rate, the worker's backlog at the end of a run at that rate (8 s) is at most a "
    "second of it, and the probes' lag p99 in that run is at most a second.",
    "Lookups and restarts read tables restored from a state topic seeded with the project's "
    "own code (bench/seed.py): a worker applies ~1,000 events/s here, too slow to build a "
    "1,000,000-deployment table by applying events within a run. Seeded deployments have "
    "no request properties (the property index stays empty).",
    "Queries: each query of the query API (deployments of an issue, pipelines, latest "
    "deployment per environment, an environment's deployments) on its own, 16 clients closed "
    "loop over the lookup table, whose deployments name issues (about 100 deployments per "
    "issue key) across 48 pipelines x 5 environments per 25,000; random existing parameters, "
    "first pages at the default limit and, for half of the pages that have one, the next "
    "page by its cursor.",
    "Restart: from the signal to /readyz 200 and to a 200 lookup through a gateway. After a "
    "SIGKILL the new worker's group join waits until the dead member's session expires "
    "(DEPLOYSTREAM_SESSION_TIMEOUT_S), so that timeout is a floor of crash restarts.",
    "Memory: peak RSS (VmHWM) of every gateway and worker process, sampled every 0.5 s and "
    "before each kill.",
    "Profiles: py-spy (sampling, --gil --nonblocking, 200 Hz) in separate runs of the same "
    "load (ingest) or on the last apply run, which is left out of the medians when there "
    "are repeats.",
]


def _machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = {}
    for name in ("aiohttp", "confluent-kafka", "faust-streaming", "fastavro", "msgspec"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _run_phase(ctx: Context, name: str, results: dict[str, Any], call: Callable[[], Any]) -> Any:
    started_services = len(ctx.env.services)
    ctx.log(name, "starting")
    try:
        value = call()
    except Exception as exc:
        ctx.log(name, f"FAILED: {exc!r}")
        results.setdefault("errors", {})[name] = "".join(traceback.format_exception(exc))[-3000:]
        ctx.env.stop_all(since=started_services)
        return None
    if name in PHASES and value is not None:
        results[name] = value
    return value


#: How the load authenticates (``python -m bench`` and ``python -m bench.ab``).
auth_option = click.option(
    "--auth",
    type=click.Choice(["bearer", "basic"]),
    default="bearer",
    show_default=True,
    help="OAuth access tokens (client credentials) or Basic API tokens.",
)


def bench_credentials(auth: str, secret: str) -> Auth:
    """The bench client's credentials of kind ``auth`` (bearer or basic)."""
    return (
        Auth.oauth(BENCH_CLIENT, secret) if auth == "bearer" else Auth.basic(BENCH_CLIENT, secret)
    )


@click.command()
@click.option("--quick", is_flag=True, help="Smaller and shorter (under 2 minutes).")
@click.option(
    "--out",
    default=Path("bench/results"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Where results, profiles and logs go.",
)
@auth_option
@click.option("--only", multiple=True, type=click.Choice(PHASES), help="Run only these phases.")
def main(quick: bool, out: Path, auth: str, only: tuple[str, ...]) -> None:
    """Measure ingest, apply, visibility lag, lookups, queries, restarts and memory; write
    bench/results/bench-<time>-<mode>.{json,md} and latest.{json,md}."""
    logging.basicConfig(level=logging.WARNING)
    plan = QUICK if quick else FULL
    selected = set(only or PHASES)
    started_at = datetime.now(UTC)
    stamp = f"{started_at:%Y%m%dT%H%M%SZ}-{plan.name}"
    run_dir = (out / f"bench-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deploystream-bench-"))
    memory = MemoryWatch().start()
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        with (
            provide_broker(work_dir=work / "kafka") as broker,
            provide_registry(broker.bootstrap, work_dir=work / "registry") as registry,
        ):
            env = BenchEnv(
                broker.bootstrap,
                registry.url,
                work,
                session_timeout_s=plan.session_timeout_s,
                log_dir=run_dir / "logs",
            )
            credentials = bench_credentials(auth, env.secret)
            broker_pid = broker.local.pid if broker.local else None
            memory.watch("broker", broker_pid)
            memory.watch("registry", registry.local.pid if registry.local else None)
            ctx = Context(plan, env, broker_pid, run_dir, memory, credentials, started=t0)
            ctx.log(
                "setup",
                f"{plan.name} run; {broker.kind} broker at {broker.bootstrap}, "
                f"{registry.kind} schema registry at {registry.url}",
            )
            try:
                _phases(ctx, selected, results)
            finally:
                env.stop_all()
    finally:
        memory.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["memory"] = {role: round(kb / 1024, 1) for role, kb in sorted(memory.peaks_kb.items())}
    results["findings"] = ctx.findings
    results["meta"] = {
        "mode": plan.name,
        "startedAt": f"{started_at:%Y-%m-%d %H:%M:%S} UTC",
        "durationS": round(time.monotonic() - t0, 1),
        "machine": _machine(),
        "versions": _versions(),
        "auth": auth,
        "plan": plan.__dict__,
        "notes": NOTES,
    }
    results["targets"] = evaluate(results)
    json_path, md_path = write(results, out, stamp)
    _print_summary(results, json_path, md_path)


def _phases(ctx: Context, selected: set[str], results: dict[str, Any]) -> None:
    if "ingest" in selected:
        _run_phase(ctx, "ingest", results, lambda: ingest_phase(ctx))
    if "apply" in selected:
        _run_phase(ctx, "apply", results, lambda: apply_phase(ctx))
    if selected & {"lookup", "queries", "visibility"}:
        stack: MainStack | None = _run_phase(ctx, "main", results, lambda: main_stack(ctx))
        if stack is not None:
            if "lookup" in selected:
                _run_phase(ctx, "lookup", results, lambda: lookup_phase(ctx, stack))
            if "queries" in selected:
                _run_phase(ctx, "queries", results, lambda: queries_phase(ctx, stack))
            if "visibility" in selected:
                saturation = (
                    (results.get("ingest") or {}).get("saturation", {}).get("10", {})
                ).get("deploymentsPerS") or FALLBACK_GATEWAY_RATE
                apply_rate = (results.get("apply") or {}).get("eventsPerS") or (FALLBACK_APPLY_RATE)
                _run_phase(
                    ctx,
                    "visibility",
                    results,
                    lambda: visibility_phase(ctx, stack, saturation, apply_rate),
                )
            stack.worker.stop()
            stack.gateway.stop()
    if "restart" in selected:
        _run_phase(ctx, "restart", results, lambda: restart_phase(ctx))


def _print_summary(results: dict[str, Any], json_path: Path, md_path: Path) -> None:
    rows = summary_rows(results)
    width = max((len(r[0]) for r in rows), default=20)
    lines = ["", f"deploystream benchmark ({results['meta']['mode']})", ""]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += ["", "  targets:"]
    for target in results["targets"]:
        lines.append(
            f"    {target['result'].upper():<4}  {target['name']}: {target['shown']} "
            f"(target {target['target']})"
        )
    noise = machine_noise(results)
    if noise is not None and noise > 25:
        lines += [
            "",
            f"  note: other processes used {noise:.0f}% of a core on average during the "
            "measurements: figures are depressed and noisy.",
        ]
    if results.get("errors"):
        lines += ["", f"  phases that failed: {', '.join(results['errors'])}"]
    lines += ["", f"  results: {json_path}", f"           {md_path}", ""]
    click.echo("\n".join(lines))
    if results.get("errors"):
        sys.exit(1)
