"""``python -m bench.framing``: the cost of the Confluent wire format on the hot paths.

The gateway's per-deployment work (build and encode a DeploymentEvent) and the worker's
(decode the event, encode the StoredDeployment it stores) are timed with schemaless Avro
(``schemas.AvroCodec``, as before the registry) and framed (``schemas.registry.FramedCodec``),
in alternating rounds on the same records, so that machine noise hits both alike. A
registry is needed once, to register the schemas: ``--registry-url``, or an in-memory
Apicurio started here.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import orjson

from deploystream.load import DeploymentGenerator, GeneratorConfig
from deploystream.registry.apicurio import LocalRegistry, ensure_app
from gateway.events import EventCodecs, OutgoingEvent, deployment_submitted
from gateway.validation import DeploymentData, ProviderMetadata, parse_submission
from schemas import AvroCodec
from schemas.registry import FramedCodec, RecordCodec, SchemaRegistry, value_subject
from streams.deployments.gating import GatingPolicy
from streams.deployments.records import Put, apply_event

__all__ = ["main"]

Body = tuple[tuple[DeploymentData, ...], dict[str, str], ProviderMetadata | None]


@contextmanager
def _registry(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with LocalRegistry(ensure_app()) as local:  # in memory: nothing to keep
        yield local.url


def _bodies(count: int) -> list[Body]:
    generator = DeploymentGenerator(GeneratorConfig(seed=11))
    bodies = []
    for _ in range(count // 100):
        command = parse_submission(generator.encoded_body(100), max_deployments=100)
        bodies.append((command.deployments, command.properties, command.provider_metadata))
    return bodies


def _ingest(event: RecordCodec, bodies: list[Body]) -> Callable[[], int]:
    codecs = EventCodecs(event)

    def run() -> int:
        made = 0
        for deployments, properties, provider in bodies:
            for deployment in deployments:
                deployment_submitted(codecs, "tenant", deployment, properties, provider)
                made += 1
        return made

    return run


def _apply(event: RecordCodec, stored: RecordCodec, values: list[bytes]) -> Callable[[], int]:
    policy = GatingPolicy(frozenset({"production"}), "https://jira.example.com")

    def run() -> int:
        for value in values:
            outcome = apply_event(None, event.decode(value), policy)
            if isinstance(outcome, Put):
                stored.encode(outcome.value)
        return len(values)

    return run


def _us_per_record(run: Callable[[], int]) -> float:
    # CPU time of this process: other processes on a shared machine inflate wall time.
    started = time.process_time()
    count = run()
    return (time.process_time() - started) / count * 1e6


@click.command()
@click.option("--records", default=20_000, show_default=True, help="Deployments per round.")
@click.option("--rounds", default=7, show_default=True, help="Alternating rounds per codec.")
@click.option("--registry-url", envvar="DEPLOYSTREAM_SCHEMA_REGISTRY_URL", default=None)
def main(records: int, rounds: int, registry_url: str | None) -> None:
    """Time schemaless vs framed encode (gateway) and decode + store (worker): medians and
    bests of CPU microseconds per record."""
    bodies = _bodies(records)
    with _registry(registry_url) as url, SchemaRegistry(url) as registry:
        framed_event = FramedCodec("DeploymentEvent", registry)
        framed_event.register(value_subject("bench-framing"))
        framed_stored = FramedCodec("StoredDeployment", registry)
        framed_stored.register(value_subject("bench-framing-state"))
    plain_event, plain_stored = AvroCodec("DeploymentEvent"), AvroCodec("StoredDeployment")

    def values(codec: RecordCodec) -> list[bytes]:
        events: list[OutgoingEvent] = []
        codecs = EventCodecs(codec)
        for deployments, properties, provider in bodies:
            events.extend(
                deployment_submitted(codecs, "tenant", d, properties, provider) for d in deployments
            )
        return [event.value for event in events]

    runs = {
        ("ingest", "schemaless"): _ingest(plain_event, bodies),
        ("ingest", "framed"): _ingest(framed_event, bodies),
        ("apply", "schemaless"): _apply(plain_event, plain_stored, values(plain_event)),
        ("apply", "framed"): _apply(framed_event, framed_stored, values(framed_event)),
    }
    for run in runs.values():  # warm-up, untimed
        run()
    timings: dict[tuple[str, str], list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            timings[name].append(_us_per_record(run))
    result: dict[str, Any] = {"records": records, "rounds": rounds}
    for path in ("ingest", "apply"):
        plain = statistics.median(timings[(path, "schemaless")])
        framed = statistics.median(timings[(path, "framed")])
        result[path] = {
            "schemalessCpuUsPerRecord": round(plain, 2),
            "framedCpuUsPerRecord": round(framed, 2),
            "bestSchemaless": round(min(timings[(path, "schemaless")]), 2),
            "bestFramed": round(min(timings[(path, "framed")]), 2),
            "change": f"{(framed / plain - 1) * 100:+.1f}%",
            "roundsUs": {
                k[1]: [round(t, 2) for t in v] for k, v in timings.items() if k[0] == path
            },
        }
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
