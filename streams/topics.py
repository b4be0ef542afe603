"""Creates the worker's topics with the partition count (and cleanup policy) the table relies on."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams.errors import TopicSetupError

__all__ = [
    "COMPACTED",
    "DEAD_LETTER_HEADROOM_BYTES",
    "client_config",
    "ensure_topic",
    "record_limit",
]

logger = logging.getLogger(__name__)

#: Topic configuration of a current-state topic: latest value per key, tombstones delete.
#: No time retention: faust restores tables from it (stream-anchors pitfall 6).
COMPACTED: Mapping[str, str] = {"cleanup.policy": "compact"}
#: A dead letter holds a whole refused record plus where it came from and why: its topic's
#: record limit (and the producer's largest request) is this much above the others'.
DEAD_LETTER_HEADROOM_BYTES = 64 * 1024
#: Settings a topic must have at least the value of (a larger record limit is fine).
_AT_LEAST = frozenset({"max.message.bytes"})


def record_limit(max_record_bytes: int) -> dict[str, str]:
    """Topic configuration for DEPLOYSTREAM_MAX_RECORD_BYTES: the largest record accepted."""
    return {"max.message.bytes": str(max_record_bytes)}


def client_config(client: str | Mapping[str, str]) -> dict[str, str]:
    """confluent-kafka options: a bootstrap string alone means a plaintext cluster, a mapping
    is what :meth:`WorkerSettings.librdkafka_config` gives (bootstrap and security)."""
    return {"bootstrap.servers": client} if isinstance(client, str) else dict(client)


def _fits(key: str, actual: str | None, wanted: str) -> bool:
    if key in _AT_LEAST and actual is not None and actual.isdigit():
        return int(actual) >= int(wanted)
    return actual == wanted


def ensure_topic(
    client: str | Mapping[str, str],
    name: str,
    partitions: int,
    replication: int,
    config: Mapping[str, str] | None = None,
    *,
    exact_partitions: bool = True,
) -> None:
    """Create ``name`` if missing; refuse to run on a topic of another shape.

    A different partition count would change which partition (and so which worker) owns a key;
    a different ``config`` value (e.g. ``cleanup.policy``) would change what the topic keeps,
    a smaller ``max.message.bytes`` would refuse records the services produce. ``client`` is a
    bootstrap string or confluent-kafka options (see :func:`client_config`).
    """
    wanted = dict(config or {})
    options: dict[str, str | int | float | bool] = {**client_config(client)}
    bootstrap = options["bootstrap.servers"]
    admin = AdminClient(options)
    try:
        metadata = admin.list_topics(timeout=30)
        existing = metadata.topics.get(name)
        if existing is None:
            new = NewTopic(
                name, num_partitions=partitions, replication_factor=replication, config=wanted
            )
            futures = admin.create_topics([new])
            try:
                futures[name].result(30)
                logger.info("created topic %s with %d partitions %s", name, partitions, wanted)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            existing = _wait_for_partitions(admin, name)
        actual = _configs(admin, name, wanted) if wanted else {}
    except KafkaException as exc:
        msg = f"cannot set up topic {name!r} at {bootstrap}: {exc}"
        raise TopicSetupError(msg) from exc
    if existing is None or (exact_partitions and len(existing.partitions) != partitions):
        count = len(existing.partitions) if existing else 0
        msg = f"topic {name!r} has {count} partitions, the worker is configured for {partitions}"
        raise TopicSetupError(msg)
    wrong = {k: actual.get(k) for k, v in wanted.items() if not _fits(k, actual.get(k), v)}
    if wrong:
        msg = f"topic {name!r} has {wrong}, the worker needs {wanted}"
        raise TopicSetupError(msg)


def _wait_for_partitions(admin: AdminClient, name: str, timeout: float = 30.0) -> Any:
    # A just-created topic can show up in metadata before its partitions do.
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(name, timeout=timeout).topics.get(name)
        if (topic is not None and topic.partitions) or time.monotonic() > deadline:
            return topic
        time.sleep(0.1)


def _configs(admin: AdminClient, name: str, keys: Mapping[str, str]) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    entries = admin.describe_configs([resource])[resource].result(30)
    return {key: entries[key].value for key in keys if key in entries}
