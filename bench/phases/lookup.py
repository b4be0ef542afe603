"""Lookups: requests/s and latency of lookups through the gateway over a table of
``plan.lookup_deployments`` stored deployments (the main stack, shared with visibility)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.measure import median
from bench.phases.common import Context, gateway_url
from bench.seed import seed_state_topic
from bench.stack import BENCH_CLIENT
from deploystream.load import Request, drive, lookup_path
from deploystream.stack import ServiceProcess, StackConfig

__all__ = ["MainStack", "lookup_phase", "main_stack"]


@dataclass
class MainStack:
    """Worker and gateway over a table of ``plan.lookup_deployments`` deployments."""

    config: StackConfig
    worker: ServiceProcess
    gateway: ServiceProcess
    keys: list[tuple[str, str, int]]
    #: Every issue key the stored deployments name.
    issues: list[str]

    @property
    def url(self) -> str:
        """The gateway's URL."""
        return gateway_url(self.config)


def main_stack(ctx: Context) -> MainStack:
    """Seed, then start a worker (restoring the table) and a gateway."""
    plan, env = ctx.plan, ctx.env
    topic = env.topic("bench-main")
    config = env.config(topic, "bench-main")
    seeded = seed_state_topic(
        env.bootstrap,
        env.registry_url,
        config.extra_env["DEPLOYSTREAM_STATE_TOPIC"],
        env.partitions,
        BENCH_CLIENT,
        plan.lookup_deployments,
        keys_wanted=plan.lookup_deployments,
        issues_per_project=plan.issues_per_project,
    )
    worker = env.worker(config, "worker-main")
    gateway = env.gateway(config, "gateway-main")
    ctx.memory.watch("worker", worker.process.pid if worker.process else None)
    ctx.memory.watch("gateway", gateway.process.pid if gateway.process else None)
    worker.wait_ready(plan.restore_timeout_s)
    gateway.wait_ready(60)
    ctx.log("lookup", f"worker and gateway ready over {seeded.count:,} stored deployments")
    return MainStack(config, worker, gateway, seeded.keys, seeded.issues)


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
