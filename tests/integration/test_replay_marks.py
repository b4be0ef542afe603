"""The replay guard reads the source-offset mark of exact changelog records from Kafka."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer

from deploystream.kafka.provision import ProvidedBroker
from streams.deployments.progress import NONE, SOURCE_OFFSET_HEADER, marks_at


def test_marks_are_read_from_the_record_at_each_persisted_offset(
    kafka: ProvidedBroker,
    create_topic: Callable[[str, int], str],
    unique: Callable[[str], str],
) -> None:
    state, index = create_topic(unique("state"), 2), create_topic(unique("index"), 2)
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for source in (10, 11, 12):
        headers = [(SOURCE_OFFSET_HEADER, str(source).encode())]
        producer.produce(state, b"v", key=b"k", partition=1, headers=headers)
    producer.produce(index, b"v", key=b"k", partition=1)  # written before marks existed
    producer.produce(index, b"v", key=b"k", partition=1, headers=[(SOURCE_OFFSET_HEADER, b"7")])
    assert producer.flush(30) == 0

    assert marks_at(kafka.bootstrap, [(state, 1, 1), (index, 1, 1)], 30.0) == [11, 7]
    assert marks_at(kafka.bootstrap, [(state, 1, 2), (index, 1, 0)], 30.0) == [12, NONE]
