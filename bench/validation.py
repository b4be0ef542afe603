"""CPU cost of validating a 100-deployment submission: this tree against an earlier revision.

``python -m bench.validation --against b539001`` loads ``gateway/validation.py`` as it was at
that revision (``git show``) beside the current one and times ``parse_submission`` of the same
bodies with both, interleaved round by round, so that the load of a shared machine hits both
alike. It reports the median microseconds per deployment of each and their ratio.

Bodies: ``generated`` (what :class:`deploystream.load.DeploymentGenerator` sends: associations,
commits, labels, a few numeric strings) and ``minimal`` (required fields and one issue key).
``+ registry`` rows add what a tenant with an issue registry pays on top: the check of every
issue key and issue association value against a registry that knows them all.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import orjson

from deploystream.load import DeploymentGenerator
from gateway import validation
from gateway.duplicates import find_duplicates
from gateway.issues.check import check_issues
from gateway.issues.index import IssueIndex, TenantIssues
from gateway.issues.records import IssueInfo

__all__ = ["main"]

DEPLOYMENTS = 100


def load_revision(revision: str) -> ModuleType:
    """``gateway/validation.py`` at ``revision`` as a module of its own."""
    source = subprocess.run(  # noqa: S603
        ["git", "show", f"{revision}:gateway/validation.py"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    ).stdout
    name = f"validation_at_{revision.replace('/', '_')}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, f"{revision}:gateway/validation.py", "exec"), module.__dict__)  # noqa: S102
    return module


def minimal_body(count: int) -> bytes:
    """``count`` deployments with the required fields and one issue key each."""
    deployments: list[dict[str, Any]] = [
        {
            "deploymentSequenceNumber": n,
            "updateSequenceNumber": 1,
            "displayName": f"Deploy {n}",
            "url": f"https://ci.example.com/deploy/{n}",
            "description": "a deployment",
            "lastUpdated": "2026-01-01T12:00:00.123Z",
            "state": "successful",
            "issueKeys": ["OPS-1"],
            "pipeline": {"id": "web", "displayName": "Web", "url": "https://ci.example.com/web"},
            "environment": {"id": "prod", "displayName": "Production", "type": "production"},
        }
        for n in range(count)
    ]
    return orjson.dumps({"deployments": deployments})


def registry_knowing(body: bytes) -> TenantIssues:
    """A registry that knows every issue key and id ``body`` mentions."""
    index = IssueIndex()
    for item in orjson.loads(body)["deployments"]:
        values = list(item.get("issueKeys") or [])
        for association in item.get("associations") or []:
            if association["associationType"] in ("issueKeys", "issueIdOrKeys"):
                values.extend(association["values"])
        for value in values:
            index.apply("t", value, IssueInfo(value, summary="known"))
    return index.tenant("t")


def parse_and_check(body: bytes, issues: TenantIssues) -> object:
    """What the gateway does for a registry tenant."""
    return check_issues(validation.parse_submission(body, max_deployments=DEPLOYMENTS), issues)


def per_deployment_us(parse: Callable[[], object], iterations: int) -> float:
    """Microseconds per deployment of ``iterations`` calls of ``parse``."""
    started = time.perf_counter()
    for _ in range(iterations):
        parse()
    return (time.perf_counter() - started) / iterations / DEPLOYMENTS * 1e6


def breakdown(body: bytes, issues: TenantIssues, iterations: int) -> dict[str, float]:
    """Microseconds per deployment of each step of the current path, for ``body``."""
    envelope = validation._ENVELOPE_DECODER.decode(body)
    items = envelope.deployments
    decoded = [validation._decode_fast(raw) for raw in items]
    valid = [d for d in decoded if d is not None]
    command = validation.parse_submission(body, max_deployments=DEPLOYMENTS)
    steps: dict[str, Callable[[], object]] = {
        "UTF-8 check + envelope decode": lambda: (
            body.decode("utf-8"),
            validation._ENVELOPE_DECODER.decode(body),
        ),
        "duplicate-key pass": lambda: find_duplicates(body.decode("utf-8")),
        "decode each deployment": lambda: [validation._decode_fast(raw) for raw in items],
        "rules (dates, cap, either-or)": lambda: [validation._rules_hold(d) for d in valid],
        "registry check": lambda: check_issues(command, issues),
    }
    return {name: per_deployment_us(step, iterations) for name, step in steps.items()}


@click.command()
@click.option("--against", default="b539001", show_default=True, help="Git revision to compare.")
@click.option("--rounds", default=15, show_default=True, help="Interleaved rounds.")
@click.option("--iterations", default=40, show_default=True, help="Parses per round and side.")
@click.option("--steps", is_flag=True, help="Also time each step of the current path.")
def main(against: str, rounds: int, iterations: int, steps: bool) -> None:
    """Time parse_submission of 100-deployment bodies, this tree against AGAINST."""
    old = load_revision(against)
    generated = DeploymentGenerator().encoded_body(DEPLOYMENTS)
    minimal = minimal_body(DEPLOYMENTS)
    bodies = {
        "generated": (generated, None),
        "minimal": (minimal, None),
        "generated + registry": (generated, registry_knowing(generated)),
        "minimal + registry": (minimal, registry_knowing(minimal)),
    }
    click.echo(f"python {sys.version.split()[0]}; {rounds} rounds x {iterations} parses per side")
    header = f"{'body':<20} {'bytes':>7} {against + ' µs/dep':>16} {'now µs/dep':>11}"
    click.echo(f"{header} {'ratio':>6}")
    for name, (body, issues) in bodies.items():
        sides: dict[str, Callable[[], object]] = {
            "old": partial(old.parse_submission, body, max_deployments=DEPLOYMENTS),
            "new": (
                partial(validation.parse_submission, body, max_deployments=DEPLOYMENTS)
                if issues is None
                else partial(parse_and_check, body, issues)
            ),
        }
        for parse in sides.values():
            parse()  # warm caches (regex compilation, type info) outside the timing
        samples: dict[str, list[float]] = {side: [] for side in sides}
        for round_ in range(rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                samples[side].append(per_deployment_us(sides[side], iterations))
        before, after = (statistics.median(samples[side]) for side in ("old", "new"))
        click.echo(
            f"{name:<20} {len(body):>7} {before:>16.2f} {after:>11.2f} {after / before:>6.2f}"
        )
    if steps:
        for name, body in (("generated", generated), ("minimal", minimal)):
            click.echo(f"\nsteps now, {name} body (µs/deployment, best of {rounds}):")
            issues = registry_knowing(body)
            runs = [breakdown(body, issues, iterations) for _ in range(rounds)]
            for step in runs[0]:
                click.echo(f"  {step:<32} {min(run[step] for run in runs):>6.2f}")


if __name__ == "__main__":
    main()
