"""The table's changelog records reach Kafka before the index's: the index changelog never
holds a change whose table record is missing (a delete-by-properties replayed after its
index removals had landed found nothing to delete)."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.deployments.writer import ChangelogWriter, Outgoing

STATE: list[Outgoing] = [("state", 0, b"k1", b"v1", None), ("state", 0, b"k2", None, None)]
INDEX: list[Outgoing] = [("index", 0, b"e1", None, None)]


class Delivered:
    """A delivery report's message."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]


class Producer:
    """confluent-kafka's Producer as the writer uses it: what was produced and flushed, in
    order; a flush acknowledges everything produced unless the broker is ``away``."""

    def __init__(self, away: bool = False) -> None:
        self.away = away
        self.calls: list[str] = []
        self._pending: list[tuple[str, int, Any]] = []
        self._next_offset = 0

    def produce(self, topic: str, value: Any, key: Any, **options: Any) -> None:
        self.calls.append(f"produce {topic}")
        self._pending.append((topic, options.get("partition", 0), options["on_delivery"]))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        self.calls.append("flush")
        if self.away:
            return len(self._pending)
        for topic, partition, report in self._pending:
            report(None, Delivered(topic, partition, self._next_offset))
            self._next_offset += 1
        self._pending.clear()
        return 0


def writer_with(producer: Producer, *, stopping: bool = False) -> ChangelogWriter:
    writer = ChangelogWriter({}, stopping=lambda: stopping, stop_grace_s=0.0)
    writer._client = producer  # type: ignore[assignment]
    return writer


def test_index_records_are_produced_once_the_table_records_are_acknowledged() -> None:
    producer = Producer()
    offsets = asyncio.run(writer_with(producer).deliver_in_order([STATE, INDEX]))
    assert producer.calls == [
        "produce state",
        "produce state",
        "flush",
        "produce index",
        "flush",
    ]
    assert offsets == {("state", 0): 1, ("index", 0): 2}


def test_a_stop_before_the_table_records_are_acknowledged_sends_no_index_record() -> None:
    producer = Producer(away=True)
    offsets = asyncio.run(writer_with(producer, stopping=True).deliver_in_order([STATE, INDEX]))
    assert offsets is None
    assert "produce index" not in producer.calls


def test_an_empty_phase_is_skipped() -> None:
    producer = Producer()
    offsets = asyncio.run(writer_with(producer).deliver_in_order([[], INDEX]))
    assert producer.calls == ["produce index", "flush"]
    assert offsets == {("index", 0): 0}
