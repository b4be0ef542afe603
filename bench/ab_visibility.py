"""Visibility-lag A/B: this tree's gateway and worker against another commit's, in one run.

Both sides' stacks (:func:`bench.ab_lookup.start_side`: a state topic of their own, seeded
alike) stay up; each round runs the bench's visibility load (background bulk-10 submissions
open loop at ``rate``, and probes that time a submission's 202 to its first found lookup) at
one side, then the other, alternating ABBA.
"""

from __future__ import annotations

import asyncio
from statistics import median
from typing import Any

from bench.ab_lookup import LookupSide
from bench.phases.common import Context, gateway_url
from bench.phases.visibility import visibility_run

__all__ = ["visibility_ab_rounds"]

_METRICS = ("lagP50Ms", "lagP99Ms", "achievedDeploymentsPerS")


def _run(ctx: Context, side: LookupSide, rate: float, seconds: float) -> dict[str, Any]:
    meter = ctx.cpu(gateway=side.gateway, worker=side.worker)
    run = asyncio.run(visibility_run(ctx, gateway_url(side.config), rate, 10, seconds))
    run["cpuPct"] = meter.stop()
    return run


def visibility_ab_rounds(
    ctx: Context, sides: dict[str, LookupSide], rounds: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Interleaved rounds over both sides; every round, the medians and the p99 ratio."""
    for side in sides.values():  # warm both: connections, token caches, the first batches
        _run(ctx, side, rate, 2.0)
    runs: list[dict[str, Any]] = []
    for index in range(rounds):
        order = ["baseline", "candidate"] if index % 2 == 0 else ["candidate", "baseline"]
        result: dict[str, Any] = {"round": index + 1}
        for name in order:
            result[name] = _run(ctx, sides[name], rate, seconds)
        base, cand = result["baseline"], result["candidate"]
        result["p99Ratio"] = round(cand["lagP99Ms"] / base["lagP99Ms"], 3)
        runs.append(result)
        ctx.log(
            "ab",
            f"round {index + 1}/{rounds} ({rate:,.0f} dep/s): baseline lag p50 "
            f"{base['lagP50Ms']:.0f} p99 {base['lagP99Ms']:.0f} ms, candidate p50 "
            f"{cand['lagP50Ms']:.0f} p99 {cand['lagP99Ms']:.0f} ms "
            f"(p99 x{result['p99Ratio']:.2f})",
        )
    return {
        "rate": rate,
        "seconds": seconds,
        "rounds": runs,
        "medians": {
            name: {metric: median(r[name][metric] for r in runs) for metric in _METRICS}
            for name in ("baseline", "candidate")
        },
        "worstP99Ms": {name: max(r[name]["lagP99Ms"] for r in runs) for name in sides},
        "medianP99Ratio": median(r["p99Ratio"] for r in runs),
    }
