"""``deploystream issues import``: backfill the issue registry from Jira's search API.

Save the pages of ``GET /rest/api/3/search?jql=...&fields=summary,status,project,updated``
(or ``/rest/api/3/search/jql``) as JSON files, then::

    deploystream issues import --tenant jenkins-prod page-1.json page-2.json

The command reads the registry topic first (``DEPLOYSTREAM_KAFKA_BOOTSTRAP``,
``DEPLOYSTREAM_ISSUES_TOPIC``; it creates the topic when no gateway has yet), then writes only
what changes it: an issue it already has, equal, is not written again, and one it has in a newer
state (a webhook came after the search) is left alone. So importing the same files twice writes
nothing the second time.
"""

from __future__ import annotations

from typing import IO

import click
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from gateway.events import OutgoingEvent, Tombstone
from gateway.issues.changes import recording
from gateway.issues.jira import JiraIssue, JiraPayloadError, decode_search_results
from gateway.issues.records import IssueCodecs
from gateway.issues.replica import IssueReplica
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from schemas.registry import (
    FramedCodec,
    RegistryError,
    SchemaRegistry,
    key_subject,
    schema_of,
    value_subject,
)

__all__ = ["issues"]


@click.group()
def issues() -> None:
    """The issue registry: the issue keys each tenant's Jira site knows."""


def _read(files: tuple[IO[bytes], ...]) -> list[JiraIssue]:
    found: list[JiraIssue] = []
    for file in files:
        try:
            found.extend(decode_search_results(file.read()).issues)
        except JiraPayloadError as exc:
            msg = f"{file.name}: {exc}"
            raise click.ClickException(msg) from exc
    return found


def _produce(settings: GatewaySettings, records: list[OutgoingEvent | Tombstone]) -> None:
    """Write ``records`` with the gateway's producer settings (same partitioner, so a key's
    records share a partition whoever writes them); raise unless every one is acknowledged."""
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer(producer_config(settings))
    try:
        for record in records:
            producer.produce(settings.issues_topic, record.value, record.key, on_delivery=delivered)
            producer.poll(0)
    except (BufferError, KafkaException) as exc:
        msg = f"cannot write to {settings.issues_topic}: {exc}"
        raise click.ClickException(msg) from exc
    remaining = producer.flush(settings.produce_timeout_s * 3)
    if remaining or failures:
        msg = (
            f"{remaining} records not acknowledged, {len(failures)} refused "
            f"({failures[0] if failures else 'timeout'}); run the import again"
        )
        raise click.ClickException(msg)


@issues.command("import")
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@click.option("--tenant", required=True, help="Client id (tenant) whose Jira site it is.")
@click.option(
    "--timeout", default=60.0, show_default=True, help="Seconds to wait for the registry."
)
def import_issues(files: tuple[IO[bytes], ...], tenant: str, timeout: float) -> None:
    """Record the issues of Jira search results (FILES, one page each; - is stdin)."""
    found = _read(files)
    settings = GatewaySettings()
    with SchemaRegistry(settings.schema_registry_url) as registry:
        counts = _import(settings, registry, tenant, found, timeout)
    click.echo(
        f"{len(found)} issues for tenant {tenant!r}: {counts['recorded']} recorded, "
        f"{counts['unchanged']} unchanged, {counts['stale']} older than the registry's, "
        f"{counts['moved']} old keys of moved issues removed"
    )


def _import(
    settings: GatewaySettings,
    registry: SchemaRegistry,
    tenant: str,
    found: list[JiraIssue],
    timeout: float,
) -> dict[str, int]:
    writer = FramedCodec("KnownIssue", registry)
    try:
        writer.register(value_subject(settings.issues_topic))
        registry.register(key_subject(settings.issues_topic), schema_of("IssueKey"))
    except RegistryError as exc:
        msg = f"cannot register the issue registry's schemas: {exc}"
        raise click.ClickException(msg) from exc
    codecs = IssueCodecs(writer)
    replica = IssueReplica(settings, IssueCodecs(FramedCodec("KnownIssue", registry)))
    replica.start()
    try:
        if not replica.wait_caught_up(timeout):
            msg = (
                f"could not read the issue registry ({settings.issues_topic} at "
                f"{settings.kafka_bootstrap}) within {timeout:.0f}s"
            )
            raise click.ClickException(msg)
        records: list[OutgoingEvent | Tombstone] = []
        counts = {"recorded": 0, "unchanged": 0, "stale": 0, "moved": 0}
        for issue in found:
            changes, outcome = recording(replica.index.tenant(tenant), issue.info())
            counts[outcome] += 1
            for change in changes:
                if change.issue is None:
                    counts["moved"] += 1
                    records.append(codecs.tombstone(tenant, change.key))
                else:
                    records.append(codecs.record(tenant, change.issue, "import"))
                # Later issues of this import see this one (a page may repeat an issue).
                replica.index.apply(tenant, change.key, change.issue)
        _produce(settings, records)
    finally:
        replica.close()
    return counts
