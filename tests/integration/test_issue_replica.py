"""The gateway's copy of the issue registry against the real broker: it creates the compacted
topic, reads what is there before it says it has caught up, follows what comes after, skips
records that are not the registry's, and refuses a topic that would forget issues."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from deploystream.kafka.provision import ProvidedBroker
from gateway.issues.records import IssueCodecs, IssueInfo
from gateway.issues.replica import IssueReplica, client_config
from gateway.issues.topic import IssuesTopicError, ensure_issues_topic
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from schemas import AvroCodec

CODECS = IssueCodecs(AvroCodec("KnownIssue"))


def produce(settings: GatewaySettings, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in records:
        producer.produce(settings.issues_topic, value, key)
    assert producer.flush(30) == 0


def record(tenant: str, info: IssueInfo) -> tuple[bytes, bytes | None]:
    written = CODECS.record(tenant, info, "import")
    return written.key or b"", written.value


@pytest.fixture
def settings(kafka: ProvidedBroker, unique: Callable[[str], str]) -> GatewaySettings:
    return GatewaySettings(
        kafka_bootstrap=kafka.bootstrap, issues_topic=unique("issues"), issues_partitions=3
    )


@pytest.fixture
def replica(settings: GatewaySettings) -> Iterator[IssueReplica]:
    running = IssueReplica(settings, CODECS)
    yield running
    running.close()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_replica_creates_a_compacted_topic_on_a_fresh_broker(
    settings: GatewaySettings, replica: IssueReplica
) -> None:
    replica.start()
    assert replica.wait_caught_up(30)
    assert replica.freshness() == {"caughtUp": True, "lag": 0, "known": 0}
    admin = AdminClient(client_config(settings))
    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.issues_topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["cleanup.policy"].value == "compact"
    topic = admin.list_topics(settings.issues_topic, timeout=10).topics[settings.issues_topic]
    assert len(topic.partitions) == 3


def test_it_has_caught_up_only_after_reading_what_was_there(
    settings: GatewaySettings, replica: IssueReplica
) -> None:
    ensure_issues_topic(client_config(settings), settings.issues_topic, 3, 1)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    records = [record("alpha", IssueInfo(f"ABC-{n}", str(n), updated=when)) for n in range(500)]
    records += [(CODECS.encode_key("alpha", "ABC-7"), None), record("beta", IssueInfo("ABC-7"))]
    produce(settings, records)

    replica.start()
    assert replica.wait_caught_up(30)

    assert len(replica.index) == 500  # 500 of alpha, one deleted, one of beta
    assert replica.known("alpha", "ABC-7") is None
    assert replica.known("beta", "ABC-7") == IssueInfo("ABC-7")
    assert replica.known("alpha", "ABC-499") == IssueInfo("ABC-499", "499", updated=when)
    assert replica.index.tenant("alpha").knows("12")


def test_it_follows_records_written_after_it_caught_up_and_skips_foreign_ones(
    settings: GatewaySettings, replica: IssueReplica
) -> None:
    replica.start()
    assert replica.wait_caught_up(30)
    produce(
        settings,
        [
            (b"not an IssueKey", b"\x00\x01"),
            record("alpha", IssueInfo("NEW-1", "1", status="To Do")),
            (CODECS.encode_key("alpha", "NEW-2"), b"\xff not a KnownIssue"),
        ],
    )
    wait_for(lambda: replica.known("alpha", "NEW-1") is not None)
    wait_for(lambda: replica.undecodable == 2)
    assert replica.known("alpha", "NEW-1") == IssueInfo("NEW-1", "1", status="To Do")
    assert replica.known("alpha", "NEW-2") is None
    wait_for(lambda: replica.freshness()["lag"] == 0)


def test_a_topic_that_is_not_compacted_is_refused(
    settings: GatewaySettings, kafka: ProvidedBroker
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    new = NewTopic(settings.issues_topic, 1, 1, config={"cleanup.policy": "delete"})
    admin.create_topics([new])[settings.issues_topic].result(30)

    with pytest.raises(IssuesTopicError, match=r"cleanup.policy=delete"):
        ensure_issues_topic(client_config(settings), settings.issues_topic, 1, 1)
