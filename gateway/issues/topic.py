"""The registry topic is created by whoever needs it first: a gateway at start, or
``deploystream issues import`` before any gateway ran; both call :func:`ensure_issues_topic`."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from gateway.errors import GatewayError

__all__ = ["IssuesTopicError", "ensure_issues_topic"]

logger = logging.getLogger(__name__)

#: Latest record per key, tombstones delete, no time retention: the topic is the registry.
CONFIG = {"cleanup.policy": "compact"}


class IssuesTopicError(GatewayError):
    """The registry topic cannot be created, or exists with a policy that would lose keys."""


def ensure_issues_topic(
    client_config: dict[str, Any], name: str, partitions: int, replication: int
) -> int:
    """Create ``name`` (compacted) unless it exists; its partition count.

    Raises IssuesTopicError when Kafka cannot be asked, or when the topic exists without
    ``cleanup.policy=compact`` (time retention would forget issues that did not change).
    """
    admin = AdminClient(client_config)
    try:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        if topic is None or topic.error is not None:
            futures = admin.create_topics([NewTopic(name, partitions, replication, config=CONFIG)])
            try:
                futures[name].result(30)
                logger.info("created issue registry topic %s (%d partitions)", name, partitions)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        count = _partitions(admin, name)
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        policy = admin.describe_configs([resource])[resource].result(30)["cleanup.policy"].value
    except KafkaException as exc:
        msg = f"cannot set up the issue registry topic {name!r}: {exc}"
        raise IssuesTopicError(msg) from exc
    if "compact" not in policy.split(","):
        msg = f"topic {name!r} has cleanup.policy={policy}; the issue registry needs compact"
        raise IssuesTopicError(msg)
    return count


def _partitions(admin: AdminClient, name: str) -> int:
    # A just-created topic can show up in metadata before its partitions do.
    for _ in range(100):
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and topic.partitions:
            return len(topic.partitions)
        time.sleep(0.1)
    msg = f"topic {name!r} shows no partitions"
    raise IssuesTopicError(msg)
