"""Visibility lag: from a submission's 202 to the first 200 of its lookup, under background
load at half and 80 % of the rate the whole stack sustains and, when the gateway outruns the
worker, in overload.

The sustainable rate is measured end to end: the gateway's saturation and the worker's apply
rate are each measured alone, but here broker, gateway, worker and load generator share the
machine's cores, so the lower of the two overstates what they sustain together. Starting from
it, the rate is lowered until a run at that rate is taken in full by the gateway and applied
by the worker as it comes (:func:`sustainable_rate`)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import orjson

from bench.measure import median, percentiles_ms
from bench.phases.apply import APPLIED_METRIC
from bench.phases.common import Context, bulk_requests
from bench.phases.lookup import MainStack
from bench.stack import scrape_metric, wait_committed
from deploystream.load import API, DeploymentGenerator, GeneratorConfig, drive, lookup_path

__all__ = ["applied_events", "judge", "sustainable_rate", "visibility_phase", "visibility_run"]

_PROBE_RUNS = itertools.count()


async def visibility_run(
    ctx: Context,
    url: str,
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
            bulk_requests(bodies, bulk),
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


#: Loads the lag is measured at, as fractions of the sustainable rate.
LEVELS = (("atHalf", 0.5), ("at80", 0.8))
#: A rate is sustained when the gateway takes this share of it...
_TAKEN = 0.97
#: ... and the worker's backlog, at the end of the run and at any time (the probes' lag
#: p99), is at most this many seconds of it.
_BACKLOG_S = 1.0
#: Each step down from a rate that was not sustained.
_STEP_DOWN = 0.85
_MAX_STEPS = 8


def applied_events(worker_port: int) -> float:
    """Input records the worker applied so far (every outcome), from its ``/metrics``."""
    applied = scrape_metric(worker_port, APPLIED_METRIC, timeout=10.0)
    if applied is None:
        msg = f"the worker on port {worker_port} did not answer /metrics"
        raise RuntimeError(msg)
    return applied


def judge(rate: float, seconds: float, run: dict[str, Any], applied: float) -> tuple[bool, float]:
    """Whether a ``seconds`` run at ``rate`` (a :func:`visibility_run` result), during which
    the worker applied ``applied`` records, was sustained; and the worker's backlog at its
    end, in seconds of the rate."""
    taken = run["achievedDeploymentsPerS"] * seconds + run["probes"]
    backlog_s = max(taken - applied, 0.0) / rate
    sustained = (
        run["achievedDeploymentsPerS"] >= _TAKEN * rate
        and backlog_s <= _BACKLOG_S
        and run["lagP99Ms"] <= 1000 * _BACKLOG_S
    )
    return sustained, backlog_s


def sustainable_rate(
    ctx: Context, stack: MainStack, ceiling: float, bulk: int, seconds: float
) -> dict[str, Any]:
    """The highest rate, from ``ceiling`` down in steps of 15 %, that a ``seconds`` run of
    the visibility load (background and probes) sustains: the gateway takes at least 97 %
    of it, at the end of the run the worker has applied all but at most a second of what
    was taken, and the probes' lag p99 stays under a second. (The bench's load makes new
    deployments first and updates later, which cost less: a worker that falls seconds
    behind early in a run can catch up by its end.)"""
    worker_port = stack.config.worker_ports[0]
    rate = ceiling
    steps: list[dict[str, Any]] = []
    for _ in range(_MAX_STEPS):
        before = applied_events(worker_port)
        run = asyncio.run(visibility_run(ctx, stack.url, rate, bulk, seconds))
        applied = applied_events(worker_port) - before
        sustained, backlog_s = judge(rate, seconds, run, applied)
        steps.append(
            {
                "deploymentsPerS": round(rate, 1),
                "achievedDeploymentsPerS": run["achievedDeploymentsPerS"],
                "backlogS": round(backlog_s, 2),
                "lagP99Ms": run["lagP99Ms"],
                "sustained": sustained,
            }
        )
        ctx.log(
            "visibility",
            f"sustainable? {rate:,.0f} dep/s: {run['achievedDeploymentsPerS']:,.0f} taken, "
            f"backlog {backlog_s:.1f} s at the end, lag p99 {run['lagP99Ms']:.0f} ms: "
            f"{'yes' if sustained else 'no'}",
        )
        if sustained:
            break
        # What the worker keeps up with may drain before the next step.
        wait_committed(stack.config, ctx.plan.restore_timeout_s)
        rate *= _STEP_DOWN
    return {"deploymentsPerS": round(rate, 1), "steps": steps}


def _level(ctx: Context, stack: MainStack, name: str, rate: float, bulk: int) -> dict[str, Any]:
    """``plan.visibility_repeats`` runs at ``rate``: each run's figures and the worst p99."""
    runs = []
    for repeat in range(ctx.plan.visibility_repeats):
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        run = asyncio.run(visibility_run(ctx, stack.url, rate, bulk, ctx.plan.visibility_s))
        run["cpuPct"] = meter.stop()
        runs.append(run)
        ctx.log(
            "visibility",
            f"{name} {repeat + 1}/{ctx.plan.visibility_repeats}: {rate:,.0f} dep/s target, "
            f"{run['achievedDeploymentsPerS']:,.0f} achieved: lag p50 {run['lagP50Ms']:.0f} ms "
            f"p99 {run['lagP99Ms']:.0f} ms over {run['probes']} probes (p50 first/second half "
            f"{run['lagP50FirstHalfMs']:.0f}/{run['lagP50SecondHalfMs']:.0f} ms) "
            f"cpu {run['cpuPct']}",
        )
    p99s = [run["lagP99Ms"] for run in runs]
    return {
        "targetDeploymentsPerS": round(rate, 1),
        "runs": runs,
        "p99Ms": p99s,
        "worstP99Ms": max(p99s),
        "medianP99Ms": median(p99s),
        "medianP50Ms": median([run["lagP50Ms"] for run in runs]),
        "achievedDeploymentsPerS": median([run["achievedDeploymentsPerS"] for run in runs]),
    }


def visibility_phase(
    ctx: Context,
    stack: MainStack,
    gateway_saturation: float,
    apply_rate: float,
    bulk: int = 10,
) -> dict[str, Any]:
    """Visibility lag at half and at 80 % of the sustainable load (what gateway and worker
    keep up with together, see the module's docstring), repeated; then at half the gateway's
    saturation when that is more than the worker applies (an overload: lag then grows with
    the run's length)."""
    alone = min(gateway_saturation, apply_rate)
    found = sustainable_rate(ctx, stack, alone, bulk, ctx.plan.sustain_s)
    sustainable = found["deploymentsPerS"]
    result: dict[str, Any] = {
        "sustainableDeploymentsPerS": sustainable,
        "sustainableSearch": found["steps"],
        "aloneDeploymentsPerS": round(alone, 1),
    }
    for name, fraction in LEVELS:
        result[name] = _level(ctx, stack, name, fraction * sustainable, bulk)
    literal = 0.5 * gateway_saturation
    if literal > apply_rate and ctx.plan.overload_s > 0:
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        overload = asyncio.run(visibility_run(ctx, stack.url, literal, bulk, ctx.plan.overload_s))
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
