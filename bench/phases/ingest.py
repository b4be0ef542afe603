"""Ingest: the gateway's deployments/s and latency by bulk size and concurrency, up to
saturation, side by side with a bare producer on the same events; and a gateway profile."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import profiling
from bench.kafka import bare_produce, encode_events, produce_all
from bench.measure import median
from bench.phases.common import Context, bulk_requests, gateway_url
from bench.stack import BENCH_CLIENT
from deploystream.load import DeploymentGenerator, GeneratorConfig, LoadResult, drive
from deploystream.stack import ServiceProcess

__all__ = ["ingest_phase"]


def _ingest_run(
    ctx: Context, url: str, bodies: list[bytes], bulk: int, concurrency: int, seconds: float
) -> LoadResult:
    return asyncio.run(
        drive(
            url, ctx.auth, bulk_requests(bodies, bulk), concurrency=concurrency, duration_s=seconds
        )
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
    url = gateway_url(config)
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
    codec = env.event_codec(topic)
    events = list(encode_events(generator, plan.bare_events, BENCH_CLIENT, codec))
    pairs = []
    for _ in range(plan.repeats):
        run = _ingest_run(ctx, url, pools[bulk], bulk, concurrency, plan.step_s)
        bare = bare_produce(env.bootstrap, topic, events)
        encode_and_produce = produce_all(
            env.bootstrap,
            topic,
            encode_events(generator, plan.bare_events // 5, BENCH_CLIENT, codec),
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
