"""Creates the deployments topic with the partition count the table relies on."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import TopicSetupError

__all__ = ["ensure_topic"]

logger = logging.getLogger(__name__)


def ensure_topic(bootstrap: str, name: str, partitions: int, replication: int) -> None:
    """Create ``name`` if missing; refuse to run on a topic with another partition count.

    A different count would change which partition (and so which worker) owns a key.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        metadata = admin.list_topics(timeout=30)
        existing = metadata.topics.get(name)
        if existing is None:
            futures = admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=replication)]
            )
            try:
                futures[name].result(30)
                logger.info("created topic %s with %d partitions", name, partitions)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            existing = admin.list_topics(name, timeout=30).topics.get(name)
    except KafkaException as exc:
        msg = f"cannot set up topic {name!r} at {bootstrap}: {exc}"
        raise TopicSetupError(msg) from exc
    if existing is None or len(existing.partitions) != partitions:
        count = len(existing.partitions) if existing else 0
        msg = f"topic {name!r} has {count} partitions, the worker is configured for {partitions}"
        raise TopicSetupError(msg)
