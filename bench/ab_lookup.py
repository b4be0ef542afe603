"""Lookups (or queries) A/B: this tree's gateway and worker against another commit's, in one
run.

Each side gets its own state topic, seeded with the same stored deployments by its own
code, and its own worker and gateway (the baseline's run from its git worktree: working
directory and ``PYTHONPATH``). Both stacks stay up for the whole run; rounds drive the same
closed-loop load (``clients`` requests in flight: the bench's keys in the same order, or one
query's pages as the bench's queries phase browses them, from the same seed) at one side,
then the other, alternating ABBA so that drift in the machine's load hits both alike.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from bench.phases.common import Context, gateway_url
from bench.phases.queries import Browse, first_pages
from bench.stack import BENCH_CLIENT
from deploystream.load import Request, drive, lookup_path
from deploystream.load.results import LoadResult
from deploystream.stack import ServiceProcess, StackConfig, gateway_process, worker_process

__all__ = ["LookupSide", "lookup_ab_rounds", "lookups", "queries", "start_side"]

#: A prime: consecutive lookups hit keys far apart.
_STRIDE = 7919


@dataclass
class LookupSide:
    """One side's stack."""

    name: str
    config: StackConfig
    worker: ServiceProcess
    gateway: ServiceProcess
    keys: list[tuple[str, str, int]]
    #: Issue keys the stored deployments name (none when the side's seeding does not say).
    issues: list[str]


_SEED = """
import json, sys
from bench.seed import seed_state_topic
args = json.loads(sys.argv[1])
result = seed_state_topic(*args["positional"], **args["named"])
print(json.dumps([result.count, result.keys, sorted(getattr(result, "issues", []))]))
"""


def _seed(
    ctx: Context, tree: Path | None, state_topic: str, deployments: int
) -> tuple[int, list[tuple[str, str, int]], list[str]]:
    """Seed with the side's own code: the stored format is the side's (a tree from before
    the schema registry writes schemaless values and takes no registry URL)."""
    env = ctx.env
    framed = tree is None or (tree / "schemas" / "registry.py").exists()
    positional: list[Any] = [env.bootstrap]
    if framed:
        positional.append(env.registry_url)
    positional += [state_topic, env.partitions, BENCH_CLIENT, deployments]
    named: dict[str, Any] = {"keys_wanted": min(deployments, 20_000)}
    seeding = (tree or Path.cwd()) / "bench" / "seed.py"
    if "issues_per_project" in seeding.read_text():
        # The bench's dataset: about 100 deployments name each issue (what queries list).
        named["issues_per_project"] = ctx.plan.issues_per_project
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _SEED, json.dumps({"positional": positional, "named": named})],
        env={**os.environ, **({"PYTHONPATH": str(tree)} if tree is not None else {})},
        # ``-c`` puts the working directory first on sys.path: it must be the side's tree.
        cwd=tree or Path.cwd(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"seeding with {tree or 'this tree'} failed: {done.stderr[-3000:]}"
        raise RuntimeError(msg)
    count, keys, issues = json.loads(done.stdout.strip().splitlines()[-1])
    return count, [(p, e, n) for p, e, n in keys], issues


def start_side(ctx: Context, name: str, tree: Path | None, deployments: int) -> LookupSide:
    """Seed a state topic of its own and start a worker and a gateway of ``tree`` on it."""
    env = ctx.env
    topic = env.topic(f"bench-ab-lookup-{name}")
    config = env.config(topic, f"ab-lookup-{name}")
    count, keys, issues = _seed(
        ctx, tree, config.extra_env["DEPLOYSTREAM_STATE_TOPIC"], deployments
    )
    worker = worker_process(config, name=f"worker-{name}")
    gateway = gateway_process(config, f"gateway-{name}")
    for service in (worker, gateway):
        service.tree = tree
        env.services.append(service.start())
    worker.wait_ready(ctx.plan.restore_timeout_s)
    gateway.wait_ready(60)
    ctx.log("ab", f"{name}: worker and gateway ready over {count:,} deployments")
    return LookupSide(name, config, worker, gateway, sorted(keys), issues)


#: What a run drives at one side: the next request, and what to do with each answer.
Load = tuple[Callable[[], Request], Callable[[Request, int, bytes, float], None] | None]


def lookups(side: LookupSide, _run: int) -> Load:
    """Lookups of the side's sampled keys, far apart, in the same order on both sides."""
    keys = side.keys
    order = itertools.cycle(range(len(keys)))

    def next_request() -> Request:
        pipeline, environment, number = keys[(next(order) * _STRIDE) % len(keys)]
        return Request("GET", lookup_path(pipeline, environment, number))

    return next_request, None


def queries(name: str) -> Callable[[LookupSide, int], Load]:
    """Pages of query ``name``, browsed as the bench's queries phase does; run ``n`` of
    both sides draws the same parameters."""

    def load(side: LookupSide, run: int) -> Load:
        browse = Browse(first_pages(side.keys, side.issues)[name], seed=run)
        return browse.request, browse.answered

    return load


def _run(
    ctx: Context,
    side: LookupSide,
    clients: int,
    seconds: float,
    load: Load,
) -> dict[str, Any]:
    meter = ctx.cpu(gateway=side.gateway, worker=side.worker)
    next_request, on_answer = load
    result: LoadResult = asyncio.run(
        drive(
            gateway_url(side.config),
            ctx.auth,
            next_request,
            concurrency=clients,
            duration_s=seconds,
            on_answer=on_answer,
        )
    )
    cpu = meter.stop()
    return {
        "requestsPerS": round(result.request_rate, 1),
        "p50Ms": round(result.latency_ms(50), 2),
        "p99Ms": round(result.latency_ms(99), 2),
        "statuses": dict(result.statuses),
        "cpuPct": cpu,
    }


def lookup_ab_rounds(
    ctx: Context,
    sides: dict[str, LookupSide],
    rounds: int,
    clients: int,
    seconds: float,
    load: Callable[[LookupSide, int], Load] = lookups,
) -> dict[str, Any]:
    """Interleaved rounds over both sides; every round, the medians and their ratios."""
    for side in sides.values():  # warm both: connection pools, caches, JIT-free but lazy imports
        _run(ctx, side, clients, 2.0, load(side, 0))
    runs: list[dict[str, Any]] = []
    for index in range(rounds):
        order = ["baseline", "candidate"] if index % 2 == 0 else ["candidate", "baseline"]
        result: dict[str, Any] = {"round": index + 1}
        for name in order:
            result[name] = _run(ctx, sides[name], clients, seconds, load(sides[name], index + 1))
        base, cand = result["baseline"], result["candidate"]
        result["throughputRatio"] = round(cand["requestsPerS"] / base["requestsPerS"], 3)
        result["p99Ratio"] = round(cand["p99Ms"] / base["p99Ms"], 3)
        runs.append(result)
        ctx.log(
            "ab",
            f"round {index + 1}/{rounds} ({clients} clients): "
            f"baseline {base['requestsPerS']:,.0f} req/s p99 {base['p99Ms']:.1f} ms, "
            f"candidate {cand['requestsPerS']:,.0f} req/s p99 {cand['p99Ms']:.1f} ms "
            f"(x{result['throughputRatio']:.2f} throughput)",
        )
    return {
        "clients": clients,
        "seconds": seconds,
        "rounds": runs,
        "medians": {
            name: {
                metric: median(r[name][metric] for r in runs)
                for metric in ("requestsPerS", "p50Ms", "p99Ms")
            }
            for name in ("baseline", "candidate")
        },
        "medianThroughputRatio": median(r["throughputRatio"] for r in runs),
        "medianP99Ratio": median(r["p99Ratio"] for r in runs),
    }
