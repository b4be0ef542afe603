"""``python -m bench.ab --baseline REV``: the worker's apply rate (or, with ``--phase lookup``,
lookups through the gateway, and with ``--phase queries --query NAME`` one query of the query
API: :mod:`bench.ab_lookup`; with ``--phase visibility --rate R`` the visibility lag:
:mod:`bench.ab_visibility`), this tree against another commit, interleaved on the same broker
in the same run.

The baseline commit is checked out into a temporary git worktree and its worker runs from
there (its working directory and ``PYTHONPATH``; same virtualenv, so only the project's
code differs). One topic is filled once; then each round starts a fresh worker of each side
on it (order alternating ABBA, so drift in the machine's load hits both sides alike) and
times it from its first to its last applied event, as ``python -m bench``'s apply phase
does. A bare consumer that reads and decodes the same topic is timed once per round too.
The report gives every round, the medians and the median of the per-round ratios (this
tree / baseline).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import click

from bench.ab_lookup import lookup_ab_rounds, lookups, queries, start_side
from bench.ab_visibility import visibility_ab_rounds
from bench.kafka import bare_consume, encode_events, produce_all
from bench.measure import MemoryWatch
from bench.phases.apply import watch_apply
from bench.phases.common import Context
from bench.phases.queries import QUERIES
from bench.plan import FULL
from bench.runner import auth_option, bench_credentials
from bench.stack import BENCH_CLIENT, BenchEnv
from deploystream.kafka.provision import provide_broker
from deploystream.load import DeploymentGenerator, GeneratorConfig
from deploystream.registry.provision import provide_registry
from deploystream.stack import worker_process
from schemas import AvroCodec

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _worktree(revision: str) -> Any:
    """``revision`` checked out in a temporary folder (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="deploystream-ab-")) / "tree"
    subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision],  # noqa: S607
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],  # noqa: S607
            check=False,
            capture_output=True,
        )


def _commit(where: Path, revision: str = "HEAD") -> str:
    done = subprocess.run(  # noqa: S603
        ["git", "-C", str(where), "rev-parse", "--short", revision],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _apply_once(
    ctx: Context, topic: str, count: int, name: str, tree: Path | None
) -> dict[str, Any]:
    config = ctx.env.config(topic, name)
    worker = worker_process(config, name=name)
    worker.tree = tree
    ctx.env.services.append(worker.start())
    try:
        return watch_apply(ctx, worker, config, count, None)
    finally:
        worker.stop()


@click.command()
@click.option("--baseline", default="HEAD~1", show_default=True, help="Commit to compare with.")
@click.option("--rounds", default=5, show_default=True, help="Rounds (one run of each side).")
@click.option("--events", default=30_000, show_default=True, help="Events in the topic.")
@click.option(
    "--phase",
    type=click.Choice(["apply", "lookup", "queries", "visibility"]),
    default="apply",
    show_default=True,
    help="apply: the worker's apply rate; lookup: lookups through the gateway; queries: one "
    "query; visibility: the lag from a submission's 202 to its lookup, under load.",
)
@click.option(
    "--rate",
    default=1000.0,
    show_default=True,
    help="visibility: background submissions per second (deployments, bulk 10).",
)
@click.option(
    "--deployments", default=100_000, show_default=True, help="lookup: stored deployments."
)
@click.option(
    "--query",
    type=click.Choice(list(QUERIES)),
    default="issue",
    show_default=True,
    help="queries: which query.",
)
@click.option(
    "--clients",
    type=int,
    default=None,
    help="lookup/queries: requests in flight (64 for lookups, 16 for queries, as the bench).",
)
@click.option(
    "--seconds", default=10.0, show_default=True, help="lookup/queries/visibility: seconds per run."
)
@auth_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("bench/results"),
    show_default=True,
)
def main(
    baseline: str,
    rounds: int,
    events: int,
    phase: str,
    rate: float,
    deployments: int,
    query: str,
    clients: int | None,
    seconds: float,
    auth: str,
    out_dir: Path,
) -> None:
    """Interleaved A/B of the worker's apply rate or of lookups: this tree against BASELINE."""
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deploystream-ab-run-"))
    with (
        _worktree(baseline) as tree,
        provide_broker(work_dir=work / "kafka") as broker,
        provide_registry(broker.bootstrap, work_dir=work / "registry") as registry,
    ):
        env = BenchEnv(broker.bootstrap, registry.url, work, log_dir=out_dir / f"ab-{stamp}-logs")
        broker_pid = broker.local.pid if broker.local else None
        credentials = bench_credentials(auth, env.secret)
        ctx = Context(FULL, env, broker_pid, out_dir, MemoryWatch(), credentials)
        if phase == "visibility":
            try:
                stacks = {
                    "baseline": start_side(ctx, "baseline", tree, deployments),
                    "candidate": start_side(ctx, "candidate", None, deployments),
                }
                results = visibility_ab_rounds(ctx, stacks, rounds, rate, seconds)
            finally:
                env.stop_all()
            _report_visibility(results, _Sides(baseline, tree, deployments, out_dir, stamp))
            return
        if phase in ("lookup", "queries"):
            load = lookups if phase == "lookup" else queries(query)
            in_flight = clients or (64 if phase == "lookup" else 16)
            try:
                stacks = {
                    "baseline": start_side(ctx, "baseline", tree, deployments),
                    "candidate": start_side(ctx, "candidate", None, deployments),
                }
                results = lookup_ab_rounds(ctx, stacks, rounds, in_flight, seconds, load)
            finally:
                env.stop_all()
            what = "lookup" if phase == "lookup" else f"query {query}"
            _report_load(
                what, {**results, "auth": auth}, _Sides(baseline, tree, deployments, out_dir, stamp)
            )
            return
        # The same events twice: framed for a tree that reads the Confluent wire format,
        # schemaless for one from before the schema registry.
        framed, plain = env.topic("bench-ab-framed"), env.topic("bench-ab-plain")
        for target, codec in (
            (framed, env.event_codec(framed)),
            (plain, AvroCodec("DeploymentEvent")),
        ):
            generator = DeploymentGenerator(GeneratorConfig(seed=2, namespace="ab-"))
            produce_all(
                env.bootstrap, target, encode_events(generator, events, BENCH_CLIENT, codec)
            )
        sides = {"baseline": tree, "candidate": None}
        inputs = {
            "baseline": framed if (tree / "schemas" / "registry.py").exists() else plain,
            "candidate": framed,
        }
        runs: list[dict[str, Any]] = []
        for index in range(rounds):
            order = ["baseline", "candidate"] if index % 2 == 0 else ["candidate", "baseline"]
            result: dict[str, Any] = {"round": index + 1}
            for side in order:
                run = _apply_once(ctx, inputs[side], events, f"ab-{side}-{index}", sides[side])
                result[side] = run["eventsPerS"]
            bare = bare_consume(env.bootstrap, env.registry_url, framed, env.partitions, events)
            result["bare"] = round(bare.rate, 1)
            result["ratio"] = round(result["candidate"] / result["baseline"], 3)
            runs.append(result)
            ctx.log(
                "ab",
                f"round {index + 1}/{rounds}: baseline {result['baseline']:,.0f} ev/s, "
                f"candidate {result['candidate']:,.0f} ev/s (x{result['ratio']:.2f}), "
                f"bare consumer+decode {result['bare']:,.0f} ev/s",
            )
        report = {
            "started": started.isoformat(timespec="seconds"),
            "baseline": {"revision": baseline, "commit": _commit(tree)},
            "candidate": {"commit": _commit(ROOT), "dirty": _dirty()},
            "events": events,
            "rounds": runs,
            "medians": {
                side: median(r[side] for r in runs) for side in ("baseline", "candidate", "bare")
            },
            "medianRatio": median(r["ratio"] for r in runs),
        }
    medians = report["medians"]
    report["candidateOfBare"] = round(medians["candidate"] / medians["bare"], 4)
    path = out_dir / f"ab-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    click.echo(
        f"\napply A/B over {rounds} interleaved rounds ({events:,} events):\n"
        f"  baseline  {report['baseline']['commit']:<10} "
        f"median {medians['baseline']:>9,.0f} ev/s\n"
        f"  candidate {report['candidate']['commit']:<10} "
        f"median {medians['candidate']:>9,.0f} ev/s"
        f"{' (uncommitted changes)' if report['candidate']['dirty'] else ''}\n"
        f"  bare consumer + decode median {medians['bare']:>9,.0f} ev/s\n"
        f"  candidate / baseline, median of rounds: x{report['medianRatio']:.2f}\n"
        f"  candidate / bare: {100 * report['candidateOfBare']:.1f} %\n"
        f"  results: {path}"
    )


@dataclass(frozen=True)
class _Sides:
    """What a load or visibility report says of the run: both sides and where it goes."""

    baseline: str
    tree: Path
    deployments: int
    out_dir: Path
    stamp: str


def _write_report(what: str, results: dict[str, Any], sides: _Sides) -> tuple[dict[str, Any], Path]:
    """The report of a load or visibility A/B, written as ``ab-<what>-<stamp>.json``."""
    report = {
        "phase": what,
        "baseline": {"revision": sides.baseline, "commit": _commit(sides.tree)},
        "candidate": {"commit": _commit(ROOT), "dirty": _dirty()},
        "storedDeployments": sides.deployments,
        **results,
    }
    path = sides.out_dir / f"ab-{what.replace(' ', '-')}-{sides.stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report, path


def _dirty_mark(report: dict[str, Any]) -> str:
    return " (uncommitted changes)" if report["candidate"]["dirty"] else ""


def _report_load(what: str, results: dict[str, Any], sides: _Sides) -> None:
    report, path = _write_report(what, results, sides)
    medians = report["medians"]
    lines = [
        f"\n{what} A/B over {len(results['rounds'])} interleaved rounds "
        f"({results['clients']} clients, {sides.deployments:,} stored deployments):"
    ]
    for side in ("baseline", "candidate"):
        m = medians[side]
        lines.append(
            f"  {side:<9} {report[side]['commit']:<10} median {m['requestsPerS']:>8,.0f} req/s"
            f"  p50 {m['p50Ms']:>6.1f} ms  p99 {m['p99Ms']:>6.1f} ms"
        )
    lines.append(
        f"  candidate / baseline, median of rounds: throughput "
        f"x{report['medianThroughputRatio']:.2f}, p99 x{report['medianP99Ratio']:.2f}"
        f"{_dirty_mark(report)}"
    )
    lines.append(f"  results: {path}")
    click.echo("\n".join(lines))


def _report_visibility(results: dict[str, Any], sides: _Sides) -> None:
    report, path = _write_report("visibility", results, sides)
    lines = [
        f"\nvisibility lag A/B over {len(results['rounds'])} interleaved rounds "
        f"({results['rate']:,.0f} deployments/s, {sides.deployments:,} stored deployments):"
    ]
    for side in ("baseline", "candidate"):
        m = report["medians"][side]
        lines.append(
            f"  {side:<9} {report[side]['commit']:<10} median lag p50 {m['lagP50Ms']:>6.0f} ms"
            f"  p99 {m['lagP99Ms']:>6.0f} ms  worst p99 {results['worstP99Ms'][side]:>6.0f} ms"
        )
    lines.append(
        f"  candidate / baseline, median of rounds: p99 x{report['medianP99Ratio']:.2f}"
        f"{_dirty_mark(report)}"
    )
    lines.append(f"  results: {path}")
    click.echo("\n".join(lines))


def _dirty() -> bool:
    done = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    return bool(done.stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
