"""The summary table, the JSON and Markdown result files, and ``python -m bench.report``."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

import click
import orjson

from bench.profiling import analyse
from bench.targets import TARGETS, Target, evaluate, percent

__all__ = [
    "TARGETS",
    "Target",
    "evaluate",
    "machine_noise",
    "main",
    "markdown",
    "rerender",
    "summary_rows",
    "write",
]


def _n(value: Any, digits: int = 0) -> str:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _restart_cell(result: dict[str, Any] | None) -> str:
    if not result:
        return "not measured"
    if not result.get("served"):
        return f"not serving after {result['timeoutS']:.0f} s"
    return f"ready {result['readyS']:.1f} s, serving {result['servingS']:.1f} s"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(measure, value) rows answering the four questions, plus memory."""
    rows: list[tuple[str, str]] = []
    ingest = results.get("ingest") or {}
    for bulk, step in (ingest.get("saturation") or {}).items():
        rows.append(
            (
                f"Ingest, bulk {bulk} (saturation)",
                f"{_n(step['deploymentsPerS'])} deployments/s at {step['concurrency']} in flight"
                f" (p50 {step['p50Ms']:.1f} ms, p99 {step['p99Ms']:.1f} ms)",
            )
        )
    baseline = ingest.get("baseline") or {}
    if baseline:
        rows.append(
            (
                "Bare producer, same events (pre-encoded / encode+produce)",
                f"{_n(baseline['bareEventsPerS'])} / {_n(baseline['encodeAndProduceEventsPerS'])}"
                f" events/s (gateway {percent(baseline['ratio'])} / "
                f"{percent(baseline['ratioToEncodeAndProduce'])} of them)",
            )
        )
    apply = results.get("apply") or {}
    if apply:
        rows.append(
            (
                "Worker apply (vs bare consumer + decode)",
                f"{_n(apply['eventsPerS'])} events/s vs {_n(apply['bareEventsPerS'])} "
                f"({percent(apply['ratio'])})",
            )
        )
    visibility = results.get("visibility") or {}
    if "aloneDeploymentsPerS" in visibility:
        rows.append(
            (
                "Sustainable load (end to end; from the lower of gateway and worker alone)",
                f"{_n(visibility['sustainableDeploymentsPerS'])} deployments/s "
                f"(from {_n(visibility['aloneDeploymentsPerS'])})",
            )
        )
    for key, label in (
        ("atHalf", "Visibility lag, half the sustainable load"),
        ("at80", "Visibility lag, 80% of the sustainable load"),
    ):
        level = visibility.get(key)
        if level:
            rows.append(
                (
                    label,
                    f"p99 {', '.join(_n(p) for p in level['p99Ms'])} ms in "
                    f"{len(level['p99Ms'])} runs (worst {_n(level['worstP99Ms'])}, median p50 "
                    f"{_n(level['medianP50Ms'])}) at {_n(level['achievedDeploymentsPerS'])} "
                    "deployments/s",
                )
            )
    for key, label in (
        ("halfGatewaySaturation", "Visibility lag, half the gateway's saturation (overload)"),
    ):
        run = visibility.get(key)
        if run:
            rows.append(
                (
                    label,
                    f"p50 {_n(run['lagP50Ms'])} ms, p99 {_n(run['lagP99Ms'])} ms at "
                    f"{_n(run['achievedDeploymentsPerS'])} deployments/s ({run['probes']} probes,"
                    f" {run['seconds']:.0f} s)",
                )
            )
    lookup = results.get("lookup") or {}
    if lookup:
        rows.append(
            (
                f"Lookup, {lookup['clients']} clients, {_n(lookup['storedDeployments'])} stored",
                f"{_n(lookup['requestsPerS'])} requests/s, p50 {lookup['p50Ms']:.1f} ms, "
                f"p99 {lookup['p99Ms']:.1f} ms",
            )
        )
        single = lookup.get("oneClient")
        if single:
            rows.append(
                (
                    "Lookup, 1 client (unloaded)",
                    f"{_n(single['requestsPerS'])} requests/s, p50 {single['p50Ms']:.1f} ms, "
                    f"p99 {single['p99Ms']:.1f} ms",
                )
            )
    queries = results.get("queries") or {}
    for name in ("issue", "pipelines", "environments", "history"):
        run = queries.get(name)
        if run:
            rows.append(
                (
                    f"Query {name}, {queries['clients']} clients, "
                    f"{_n(queries['storedDeployments'])} stored",
                    f"{_n(run['requestsPerS'])} requests/s, p50 {run['p50Ms']:.1f} ms, "
                    f"p99 {run['p99Ms']:.1f} ms ({run['pages']['first']} first and "
                    f"{run['pages']['next']} next pages, {run['valuesPerPage']} values/page)",
                )
            )
    restart = results.get("restart") or {}
    if restart:
        n = _n(restart.get("deployments"))
        rows.append((f"First start, {n} stored (restore)", f"{restart['firstStartS']:.1f} s"))
        for mode, label in (
            ("kill", "SIGKILL restart, RocksDB kept, static membership"),
            ("wipe", "SIGKILL restart, RocksDB deleted"),
            ("term", "SIGTERM restart"),
            ("killDynamic", "SIGKILL restart, dynamic membership, 6 s session timeout"),
        ):
            rows.append((f"{label} ({n} stored)", _restart_cell(restart.get(mode))))
    memory = results.get("memory") or {}
    for role, label in (("gateway", "Gateway peak RSS"), ("worker", "Worker peak RSS (any)")):
        if memory.get(role) is not None:
            rows.append((label, f"{memory[role]:.0f} MB"))
    return rows


def machine_noise(results: dict[str, Any]) -> float | None:
    """Mean CPU (% of one core) that processes outside the benchmark used while it measured."""
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            cpu = value.get("cpuPct")
            if isinstance(cpu, dict) and isinstance(cpu.get("other"), int | float):
                found.append(float(cpu["other"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: v for k, v in results.items() if k != "meta"})
    return sum(found) / len(found) if found else None


#: How a table column gets its cell from a row: the value under a key, or a function of it.
Cell = str | Callable[[Any], object]


def _table(rows: Iterable[Any], columns: Mapping[str, Cell]) -> list[str]:
    """A Markdown table of ``rows``, one column per ``header: cell`` (in order), and the
    blank line that ends it."""
    cells: list[Callable[[Any], object]] = [
        itemgetter(c) if isinstance(c, str) else c for c in columns.values()
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell(row)) for cell in cells) + " |" for row in rows]
    return [*lines, ""]


def _code(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: f"`{row[key]}`"


#: The tables of a profile: intro, list in the profile, first column, cell, rows shown.
_PROFILE_TABLES: tuple[tuple[str, str, str, Cell, int | None], ...] = (
    (
        "By category (first matching frame from the top of the stack):",
        "categories",
        "category",
        "function",
        None,
    ),
    (
        "Innermost function of our own code on the stack (library time charged to its caller):",
        "ownCode",
        "function",
        _code("function"),
        12,
    ),
    ("Where the CPU was (top of stack, any code):", "leaf", "function", _code("function"), 12),
)


def _profile_lines(title: str, profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    if "error" in profile:
        return [f"### {title}", "", f"No profile: {profile['error']}", ""]
    lines = [
        f"### {title}",
        "",
        f"`{profile['file']}` — {profile['samples']} samples of the thread holding the GIL "
        "(collapsed stacks; open with speedscope or flamegraph.pl); "
        f"{profile.get('partialPct', 0)}% of them are partial stacks (frames resumed from C, "
        "e.g. async generators, that py-spy cannot unwind to their callers).",
        "",
    ]
    for intro, key, header, cell, shown in _PROFILE_TABLES:
        lines += [intro, ""]
        lines += _table(profile.get(key, [])[:shown], {header: cell, "% of samples": "pct"})
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The human-readable report."""
    meta = results["meta"]
    lines = [
        f"# deploystream benchmark — {meta['mode']} run, {meta['startedAt']}",
        "",
        f"{meta['machine']}. Broker, worker(s), gateway(s) and the load generator share "
        f"these cores: every figure is for the whole set on one machine. Run took "
        f"{meta['durationS']:.0f} s.",
        "",
    ]
    noise = machine_noise(results)
    if noise is not None and noise > 25:
        lines += [
            f"**The machine was busy with other work during this run**: processes outside the "
            f"benchmark used {noise:.0f}% of a core on average while it measured (column "
            "'other' below). Absolute figures are depressed and noisy; the side-by-side "
            "ratios are the more meaningful ones.",
            "",
        ]
    if meta["mode"] == "quick":
        lines += [
            "**Quick run**: smaller tables and single short runs (no medians), so figures are "
            f"rough. Lookups over {_n(meta['plan']['lookup_deployments'])} and restarts with "
            f"{_n(meta['plan']['restart_deployments'])} stored deployments (the full run uses "
            "100,000 and 1,000,000); session timeout "
            f"{meta['plan']['session_timeout_s']:.0f} s.",
            "",
        ]
    lines += ["## Targets", ""]
    lines += _table(
        results["targets"],
        {
            "figure": "name",
            "measured": "shown",
            "target": "target",
            "result": lambda t: f"**{t['result']}**",
        },
    )
    lines += ["## Summary", ""]
    lines += _table(summary_rows(results), {"measure": itemgetter(0), "value": itemgetter(1)})
    if results.get("findings"):
        lines += ["## Noticed during the run", ""]
        lines += [f"- {f}" for f in results["findings"]] + [""]
    ingest = results.get("ingest") or {}
    if ingest:
        lines += ["## Ingest", "", "Closed loop; each figure is the median of the repeats.", ""]
        lines += _table(
            ingest["steps"],
            {
                "bulk": "bulk",
                "in flight": "concurrency",
                "deployments/s": lambda s: _n(s["deploymentsPerS"]),
                "requests/s": lambda s: _n(s["requestsPerS"]),
                "p50 ms": "p50Ms",
                "p99 ms": "p99Ms",
                "CPU %": lambda s: ", ".join(f"{k} {v:.0f}" for k, v in s["cpuPct"].items()),
            },
        )
        baseline = ingest["baseline"]
        lines += [
            f"Side by side (bulk {baseline['bulk']}, {baseline['concurrency']} in flight; "
            f"bare producer: {_n(baseline['events'])} pre-encoded events of "
            f"{baseline['meanEventBytes']:.0f} bytes on average, gateway's producer "
            "settings, every delivery awaited):",
            "",
        ]
        lines += _table(
            baseline["pairs"],
            {
                "gateway dep/s": lambda p: _n(p["gatewayDeploymentsPerS"]),
                "bare producer ev/s": lambda p: _n(p["bareEventsPerS"]),
                "encode+produce ev/s": lambda p: _n(p["encodeAndProduceEventsPerS"]),
                "ratio": lambda p: percent(p["ratio"]),
            },
        )
    apply = results.get("apply") or {}
    if apply:
        lines += [
            "## Apply",
            "",
            f"{_n(apply['events'])} events ({percent(apply['outOfOrderFraction'])} out of order) "
            "pre-produced; a fresh worker (new consumer group and table) per run; rate from "
            "its `deploystream_worker_events_total` between the first and the last applied "
            "event; the bare consumer (confluent-kafka, Avro decode of each value) reads the "
            "same topic right after.",
            "",
        ]
        lines += _table(
            apply["runs"],
            {
                "worker ev/s": lambda r: _n(r["eventsPerS"]),
                "bare consumer ev/s": lambda r: _n(r["bareEventsPerS"]),
                "ratio": lambda r: percent(r["ratio"]),
                "worker CPU %": lambda r: _n(r["cpuPct"].get("worker")),
                "profiled": lambda r: "yes" if r["profiled"] else "",
            },
        )
        restore = apply.get("restoreWithoutRocksDb")
        if restore:
            lines += [
                f"Restart of that worker with its RocksDB deleted: {_restart_cell(restore)}.",
                "",
            ]
    for key in ("visibility", "lookup", "queries", "restart", "memory"):
        if results.get(key):
            lines += [f"## {key.title()}", "", "```json"]
            lines += [orjson.dumps(results[key], option=orjson.OPT_INDENT_2).decode(), "```", ""]
    lines += ["## Profiles", ""]
    lines += _profile_lines("Gateway during ingest", ingest.get("profile"))
    lines += _profile_lines("Worker during apply", apply.get("profile"))
    lines += ["## Method", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(lines)


def write(results: dict[str, Any], directory: Path, stamp: str) -> tuple[Path, Path]:
    """``bench-<stamp>.json`` / ``.md`` and copies as ``latest.json`` / ``latest.md``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"bench-{stamp}.json"
    md_path = directory / f"bench-{stamp}.md"
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown(results))
    shutil.copyfile(json_path, directory / "latest.json")
    shutil.copyfile(md_path, directory / "latest.md")
    return json_path, md_path


def rerender(source: Path) -> Path:
    """Analyse ``source``'s profiles again, re-check the targets, and rewrite ``source`` and
    its Markdown next to it; the Markdown's path."""
    document = orjson.loads(source.read_bytes())
    # Profiles are analysed again from their files (the analysis may have grown since).
    run_dir = source.with_suffix("")
    for phase in ("ingest", "apply"):
        profile = (document.get(phase) or {}).get("profile") or {}
        if profile.get("file") and (run_dir / profile["file"]).exists():
            summary = analyse(run_dir / profile["file"]).summary()
            document[phase]["profile"] = {"file": profile["file"], **summary}
    document["targets"] = evaluate(document)
    source.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    md_path = source.with_suffix(".md")
    md_path.write_text(markdown(document))
    return md_path


@click.command()
@click.argument(
    "result", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
def main(result: Path) -> None:
    """Re-render a benchmark result: RESULT is a bench/results/bench-<stamp>.json.

    Profiles are analysed again from the run's folder (bench-<stamp>/), the targets
    re-checked, and RESULT and its .md rewritten in place.
    """
    click.echo(f"rewrote {result} and {rerender(result)}")


if __name__ == "__main__":
    main()
