"""Restarts: how long a worker takes to serve again after SIGKILL (with and without its
local RocksDB) and SIGTERM, over a table restored from a seeded state topic."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bench.phases.common import Context, gateway_url
from bench.seed import seed_state_topic
from bench.stack import BENCH_CLIENT, http_status
from deploystream.load import Auth, lookup_path
from deploystream.stack import ServiceProcess, StackConfig

__all__ = ["restart_phase", "restart_words", "restart_worker"]

#: Session timeout of the dynamic-membership alternative (Kafka's minimum by default).
SHORT_SESSION_S = 6.0


def restart_words(result: dict[str, Any]) -> str:
    """A restart result for the progress log."""
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


def restart_worker(
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
        env.bootstrap,
        env.registry_url,
        state_topic,
        env.partitions,
        BENCH_CLIENT,
        plan.restart_deployments,
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
    url = gateway_url(config)
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
        result = restart_worker(ctx, worker, config, lookup, mode, timeout)
        ctx.memory.watch("worker-restart", worker.process.pid if worker.process else None)
        results[mode] = result
        ctx.log("restart", f"{label}: {restart_words(result)}")
    results["staticMembership"] = config.static_membership
    results["sessionTimeoutS"] = plan.session_timeout_s
    # The alternative to static membership: a dynamic member with a short session timeout.
    worker.stop()
    dynamic = replace(
        config,
        static_membership=False,
        extra_env={**config.extra_env, "DEPLOYSTREAM_SESSION_TIMEOUT_S": str(SHORT_SESSION_S)},
    )
    worker = env.worker(dynamic, "worker-restart-dynamic")
    ctx.memory.watch("worker-restart", worker.process.pid if worker.process else None)
    # The static member just stopped stays in the group until its session times out.
    worker.wait_ready(plan.restore_timeout_s + plan.session_timeout_s)
    result = restart_worker(ctx, worker, dynamic, lookup, "kill", timeout)
    results["killDynamic"] = {**result, "sessionTimeoutS": SHORT_SESSION_S}
    ctx.log(
        "restart",
        f"SIGKILL, dynamic membership, {SHORT_SESSION_S:.0f} s session timeout: "
        f"{restart_words(result)}",
    )
    ctx.memory.sample()
    results["workerPeakRssMb"] = ctx.memory.peak_mb("worker-restart")
    worker.stop()
    gateway.stop()
    return results


async def _authorization(auth: Auth, url: str) -> str:
    async with aiohttp.ClientSession() as session:
        return await auth.authorization(session, url)
