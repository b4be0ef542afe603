"""The Kafka ACLs a production installation grants the two services, and nothing more.

``tests/e2e/test_kafka_security.py`` runs the stack against a broker that enforces exactly
these (StandardAuthorizer, no ACL means denied), so the list is known to be sufficient; the
README shows it as ``deploystream kafka-acls`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Acl", "kafka_acls_commands", "service_acls"]


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: ``principal`` may do ``operation`` on a resource."""

    principal: str
    resource: str  # TOPIC or GROUP
    name: str
    pattern: str  # LITERAL or PREFIXED
    operation: str  # Kafka's AclOperation name (READ, WRITE, CREATE, DESCRIBE, ...)


def _allow(principal: str, resource: str, name: str, operations: str, pattern: str) -> list[Acl]:
    return [Acl(principal, resource, name, pattern, op) for op in operations.split()]


def service_acls(
    gateway_user: str,
    worker_user: str,
    *,
    deployments_topic: str = "deployments",
    state_topic: str = "deployments-state",
    dead_letter_topic: str = "deployments-dead-letter",
    issues_topic: str = "deployments-issues",
    app_id: str = "deploystream",
) -> list[Acl]:
    """The ACLs of one installation (its topic names and faust app id)."""
    gateway, worker = f"User:{gateway_user}", f"User:{worker_user}"
    topic, group = "TOPIC", "GROUP"
    literal, prefixed = "LITERAL", "PREFIXED"
    # The worker creates its topics when they are missing and checks their configuration.
    own = "CREATE DESCRIBE DESCRIBE_CONFIGS"
    return sorted(
        [
            # The gateway writes events (idempotent producer: WRITE is enough on Kafka 3+).
            *_allow(gateway, topic, deployments_topic, "WRITE DESCRIBE", literal),
            # The change stream reads the public state topic (assigned partitions, no group,
            # nothing committed); only workers write it.
            *_allow(gateway, topic, state_topic, "READ DESCRIBE", literal),
            # The issue registry: created, replicated (read) and fed (webhook) by gateways.
            *_allow(gateway, topic, issues_topic, f"READ WRITE {own}", literal),
            *_allow(worker, topic, deployments_topic, f"READ {own}", literal),
            *_allow(worker, topic, state_topic, f"READ WRITE {own}", literal),
            *_allow(worker, topic, dead_letter_topic, f"WRITE {own}", literal),
            # faust's own topics: the property index changelog and its assignor's topic.
            *_allow(worker, topic, f"{app_id}-", f"READ WRITE {own}", prefixed),
            # The workers' consumer group. (The replay guard reads changelogs at explicit
            # offsets and commits nothing: it needs no group.)
            *_allow(worker, group, app_id, "READ", literal),
        ]
    )


def kafka_acls_commands(acls: list[Acl], bootstrap: str = "BROKER:9093") -> str:
    """The ``kafka-acls.sh`` commands that create ``acls`` (one per resource and principal)."""
    grouped: dict[tuple[str, str, str, str], list[str]] = {}
    for acl in acls:
        grouped.setdefault((acl.principal, acl.resource, acl.name, acl.pattern), []).append(
            acl.operation
        )
    lines = []
    for (principal, resource, name, pattern), operations in sorted(grouped.items()):
        ops = " ".join(f"--operation {op.title().replace('_', '')}" for op in operations)
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config admin.properties "
            f"--add --allow-principal {principal} {ops} "
            f"--{resource.lower()} {name} --resource-pattern-type {pattern.lower()}"
        )
    return "\n".join(lines)
