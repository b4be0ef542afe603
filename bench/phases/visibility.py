"""Visibility lag: from a submission's 202 to the first 200 of its lookup, under background
load at half the sustainable rate and, when the gateway outruns the worker, in overload."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import orjson

from bench.measure import median, percentiles_ms
from bench.phases.common import Context, bulk_requests
from bench.phases.lookup import MainStack
from bench.stack import wait_committed
from deploystream.load import API, DeploymentGenerator, GeneratorConfig, drive, lookup_path

__all__ = ["visibility_phase"]

_PROBE_RUNS = itertools.count()


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


def _level(ctx: Context, stack: MainStack, name: str, rate: float, bulk: int) -> dict[str, Any]:
    """``plan.visibility_repeats`` runs at ``rate``: each run's figures and the worst p99."""
    runs = []
    for repeat in range(ctx.plan.visibility_repeats):
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        run = asyncio.run(_visibility_run(ctx, stack, rate, bulk, ctx.plan.visibility_s))
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
    """Visibility lag at half and at 80 % of the sustainable load (what both the gateway and
    the worker keep up with), repeated; then at half the gateway's saturation when that is
    more than the worker applies (an overload: lag then grows with the run's length)."""
    sustainable = min(gateway_saturation, apply_rate)
    result: dict[str, Any] = {"sustainableDeploymentsPerS": sustainable}
    for name, fraction in LEVELS:
        result[name] = _level(ctx, stack, name, fraction * sustainable, bulk)
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
