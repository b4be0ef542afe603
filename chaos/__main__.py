"""``python -m chaos`` (``make chaos``): long fault-injection runs, written up like a benchmark.

Starts a broker of its own (Maven-jar Kafka on a free port, data under ``var/chaos/``), and
for each scenario a stack on it (own topic and app id), then runs the scenario for
``--duration`` seconds of faults under load and compares the end state with the reference
model. Results go to ``chaos/results/chaos-<UTC time>.json`` and ``.md``; the exit code is 1
when any scenario lost, staled or resurrected a key or got an unexpected answer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chaos.model import HistoryConfig
from chaos.scenarios import (
    LoadShape,
    ScenarioResult,
    broker_outage,
    gateway_crashes,
    worker_crashes,
)
from chaos.stack import ChaosStack, start_stack
from deploystream.kafka.broker import LocalKafka, free_port
from deploystream.kafka.jars import ensure_libs
from deploystream.registry.provision import provide_registry

SCENARIOS = ("worker", "gateway", "broker")
#: Whatever the options say, no scenario injects faults for longer than this.
MAX_DURATION_S = 4 * 3600.0
MAX_FAULTS = 10_000
SESSION_TIMEOUT_S = 6


def _stack(
    broker: LocalKafka, registry_url: str, root: Path, name: str, workers: int, partitions: int
) -> ChaosStack:
    return start_stack(
        broker.bootstrap,
        registry_url,
        root / name,
        name=name,
        workers=workers,
        partitions=partitions,
        env={
            "DEPLOYSTREAM_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S),
            "DEPLOYSTREAM_PRODUCE_TIMEOUT_S": "2",
            "DEPLOYSTREAM_RETRY_AFTER_S": "1",
        },
    )


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"3,5,9"`` or a mix (``"1-3,7"``): the seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError as exc:
            msg = f"not a seed or seed range: {part!r}"
            raise click.BadParameter(msg) from exc
        if last < first:
            msg = f"empty seed range: {part!r}"
            raise click.BadParameter(msg)
        seeds.extend(range(first, last + 1))
    return seeds


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# deploystream chaos run {report['started']}",
        "",
        f"Seeds **{', '.join(map(str, report['seeds']))}**, "
        f"{report['options']['duration_s']:.0f} s of faults per "
        f"scenario, {report['options']['lanes']} load lanes x "
        f"{report['options']['keys_per_lane']} keys, {report['options']['workers']} worker(s), "
        f"{report['options']['partitions']} partitions. Machine: {report['machine']['cpus']} "
        f"CPUs, Python {report['machine']['python']}. Verdict: "
        f"**{'OK' if report['ok'] else 'FAILED'}**.",
        "",
        "| scenario | seed | verdict | faults | requests | 202 | unknown | not applied | keys |"
        " lost | stale | resurrected | wrong | state-topic mismatches | table != state topic |"
        " unexpected | caught up s | duration s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in report["scenarios"]:
        kinds = [m["kind"] for m in result["lookup_mismatches"]]
        outcomes = result["outcomes"]
        lines.append(
            f"| {result['name']} | {result['seed']} | {'OK' if result['ok'] else 'FAILED'} "
            f"| {len(result['faults'])} | {sum(result['statuses'].values())} "
            f"| {outcomes.get('acked', 0)} | {outcomes.get('unknown', 0)} "
            f"| {outcomes.get('not-applied', 0)} | {result['keys_checked']} "
            f"| {kinds.count('lost')} | {kinds.count('stale')} | {kinds.count('resurrected')} "
            f"| {kinds.count('wrong')} | {len(result['state_mismatches'])} "
            f"| {len(result['table_differences'])} | {len(result['unexpected'])} "
            f"| {result['caught_up_s']} | {result['duration_s']} |"
        )
    for result in report["scenarios"]:
        lines += [
            "",
            f"## {result['name']}, seed {result['seed']}",
            "",
            f"Answers: `{result['statuses']}`",
            "",
        ]
        recovery = [f.get("ready_after_kill_s") for f in result["faults"]]
        recovery += [f.get("acks_after_restart_s") for f in result["faults"]]
        times = [t for t in recovery if t is not None]
        if times:
            lines += [
                f"Recovery after each fault: mean {sum(times) / len(times):.1f} s, "
                f"max {max(times):.1f} s.",
                "",
            ]
        for key, value in result["extra"].items():
            lines.append(f"- {key}: `{value}`")
        lines += ["", "<details><summary>faults</summary>", ""]
        lines += [f"- `{fault}`" for fault in result["faults"]]
        lines += ["", "</details>"]
        for mismatch in (result["lookup_mismatches"] + result["state_mismatches"])[:20]:
            lines.append(f"- mismatch: `{mismatch}`")
        for difference in result["table_differences"][:20]:
            lines.append(f"- table != state topic: `{difference}`")
        for unexpected in result["unexpected"][:20]:
            lines.append(f"- unexpected answer: `{unexpected}`")
    return "\n".join(lines) + "\n"


@click.command()
@click.option(
    "--duration",
    "duration_s",
    default=120.0,
    show_default=True,
    help="Seconds of fault injection per scenario.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(SCENARIOS),
    help="Scenarios to run (repeatable); all by default.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of histories and fault timing (random, and reported, by default).",
)
@click.option(
    "--seeds",
    "seed_list",
    default=None,
    help="Run every scenario once per seed, each on a fresh stack: a range or list, "
    "e.g. 1-20 or 1,5,9 (overrides --seed).",
)
@click.option("--lanes", default=6, show_default=True, help="Concurrent load lanes.")
@click.option("--keys-per-lane", default=150, show_default=True)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    help="Workers per stack (more than one: kills trigger rebalances).",
)
@click.option("--partitions", default=8, show_default=True)
@click.option(
    "--outage",
    "outage_s",
    default=10.0,
    show_default=True,
    help="Seconds the broker stays down in each outage.",
)
@click.option(
    "--pause",
    "pause_s",
    default=0.05,
    show_default=True,
    help="Pause of each lane between requests: steady load a worker keeps up with.",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(path_type=Path),
    default=Path("chaos/results"),
    show_default=True,
)
@click.option("--keep", is_flag=True, help="Keep broker data and logs under var/chaos/.")
def main(
    duration_s: float,
    scenarios: tuple[str, ...],
    seed: int | None,
    seed_list: str | None,
    lanes: int,
    keys_per_lane: int,
    workers: int,
    partitions: int,
    outage_s: float,
    pause_s: float,
    results_dir: Path,
    keep: bool,
) -> None:
    """Run fault scenarios under load and write the results under chaos/results/."""
    duration_s = min(duration_s, MAX_DURATION_S)
    if seed_list is not None:
        seeds = parse_seeds(seed_list)
    else:
        seeds = [seed if seed is not None else random.SystemRandom().randrange(2**31)]
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    root = Path("var/chaos") / stamp
    shape = LoadShape(
        lanes=lanes,
        history=HistoryConfig(keys_per_lane=keys_per_lane),
        pause_s=pause_s,
        ready_timeout_s=120,
    )
    click.echo(f"chaos run {stamp}: seeds {seeds}, {duration_s:.0f}s per scenario, data in {root}")
    broker = LocalKafka(ensure_libs(), work_dir=root / "kafka", port=free_port())
    broker.start()
    results: list[ScenarioResult] = []
    runs: dict[str, Callable[[ChaosStack, int], ScenarioResult]] = {
        "worker": lambda stack, seed: worker_crashes(
            stack, seed=seed, kills=MAX_FAULTS, shape=shape, duration_s=duration_s
        ),
        "gateway": lambda stack, seed: gateway_crashes(
            stack, seed=seed, kills=MAX_FAULTS, shape=shape, duration_s=duration_s
        ),
        "broker": lambda stack, seed: broker_outage(
            stack,
            broker,
            seed=seed,
            outages=MAX_FAULTS,
            outage_s=outage_s,
            graceful=None,
            shape=shape,
            duration_s=duration_s,
        ),
    }
    try:
        # Its schemas live on the broker the broker scenario takes away: the services have
        # theirs cached by then, which is what that scenario checks too.
        with provide_registry(broker.bootstrap, work_dir=root / "registry") as registry:
            for run_seed in seeds:
                for name in scenarios or SCENARIOS:
                    click.echo(f"--- {name}, seed {run_seed}: starting a stack")
                    stack = _stack(
                        broker, registry.url, root, f"{name}-{run_seed}", workers, partitions
                    )
                    try:
                        result = runs[name](stack, run_seed)
                    finally:
                        stack.stop()
                    results.append(result)
                    click.echo(result.summary())
    finally:
        broker.stop(remove=False)
    ok = all(r.ok for r in results)
    report = {
        "started": started.isoformat(timespec="seconds"),
        "seeds": seeds,
        "ok": ok,
        "options": {
            "duration_s": duration_s,
            "lanes": lanes,
            "keys_per_lane": keys_per_lane,
            "workers": workers,
            "partitions": partitions,
            "outage_s": outage_s,
            "pause_s": pause_s,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scenarios": [r.as_dict() for r in results],
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"chaos-{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(_markdown(report))
    failed = [f"{r.name} seed {r.seed}" for r in results if not r.ok]
    click.echo(
        f"{len(results) - len(failed)} of {len(results)} runs OK"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    click.echo(f"results: {json_path} and {md_path}")
    if ok and not keep:
        shutil.rmtree(root, ignore_errors=True)
    elif not ok:
        click.echo(f"logs kept in {root}", err=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
