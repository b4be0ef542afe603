"""Which input records a partition's tables already reflect, so that a replay skips them.

Processing is at-least-once: after a worker dies, its partitions are processed again from the
last committed offset. The tables, restored from their changelogs, can already include the
effects of records after that offset (changelog writes made since the last commit survive
the crash). Applying those records a second time over a newer state is not harmless: a
submission the first pass ignored (a lower number) finds the key absent when a later delete is
already in the table, and comes back.

So every changelog write carries the offset of the input record that caused it (a header).
A partition is written by one agent, in input order, so the last record of a changelog
partition names an input offset whose writes, and all earlier ones, are in Kafka. Before the
first record of a new assignment is applied, the worker reads the last record of both
changelogs of that partition:

- records below the state topic's mark are skipped: the table has their effects. Those above
  the property index's mark may have lost their index writes, so the index is re-derived
  from the stored value for their keys;
- the record at the mark is applied again: it may have written only part of its records (a
  delete by properties), and applying it over its own partial effects completes it;
- the records after the mark are applied as usual.

Changelogs written before this header existed give no mark: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.streams import current_event
from faust.types import TP

from streams.errors import StreamsError
from streams.topics import client_config

__all__ = ["SOURCE_OFFSET_HEADER", "Marks", "ReplayGuard", "SourceOffsetTable", "marks_at"]

logger = logging.getLogger(__name__)

SOURCE_OFFSET_HEADER = "deploystream-source-offset"
#: No mark: nothing of the partition is known to be applied.
NONE = -1


class SourceOffsetTable(faust.Table):
    """A faust table whose changelog writes name the input offset that caused them."""

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        event = current_event()
        headers = None
        if event is not None:
            headers = [(SOURCE_OFFSET_HEADER, str(event.message.offset).encode())]
        return self.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            key_serializer=self.key_serializer if key_serializer is None else key_serializer,
            value_serializer=(
                self.value_serializer if value_serializer is None else value_serializer
            ),
            headers=headers,
            callback=self._on_changelog_sent,
            # As faust's own: the final partition must be known when the future is returned.
            eager_partitioning=True,
        )


def _mark_of(headers: Any) -> int:
    """The mark in a record's headers (confluent-kafka gives a list of pairs, or None)."""
    for name, value in headers or ():
        if name == SOURCE_OFFSET_HEADER and value:
            return int(value)
    return NONE


def marks_at(
    bootstrap: str | Mapping[str, str], positions: Sequence[tuple[str, int, int]], timeout: float
) -> list[int]:
    """The source-offset mark of the record at each (topic, partition, offset); NONE for a
    record that is not there any more (compacted away: its successor is not the same
    record, so it says nothing about what the table reflects)."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": "deploystream-replay-guard",
            "enable.auto.commit": False,
            # The record is there already: no reason to wait for more.
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        offsets = {(t, p): o for t, p, o in positions}
        found: dict[tuple[str, int], int] = {}
        consumer.assign([TopicPartition(t, p, o) for t, p, o in positions])
        deadline = time.monotonic() + timeout
        while len(found) < len(positions):
            if time.monotonic() > deadline:
                msg = f"could not read the changelog records at {positions}"
                raise StreamsError(msg)
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            where = (str(message.topic()), int(message.partition() or 0))
            if where in found:
                continue
            exact = message.offset() == offsets[where]
            found[where] = _mark_of(message.headers()) if exact else NONE
        return [found[(t, p)] for t, p, _ in positions]
    except KafkaException as exc:
        msg = f"could not read the changelog marks: {exc}"
        raise StreamsError(msg) from exc
    finally:
        consumer.close()


@dataclass(frozen=True)
class Marks:
    """Where a partition's tables stand, for one consumer generation."""

    generation: int
    state: int
    index: int

    def skip(self, offset: int) -> bool:
        """The table already reflects this record."""
        return offset < self.state

    def repair_index(self, offset: int) -> bool:
        """This record's index writes may be missing: re-derive the index of its key."""
        return self.index < offset <= self.state


class ReplayGuard:
    """The marks of the partitions this worker applies, read once per consumer generation.

    A mark comes from the changelog record at the table's *persisted offset*: the last
    changelog record the local table has (restored, or written and acknowledged). Records
    written to the changelog after that (a previous owner's late writes) are not in the
    local table, so they must not count. The marks are read when faust signals that the
    rebalance is complete: the tables are recovered and the streams have not resumed yet.
    """

    def __init__(
        self,
        app: faust.App,
        bootstrap: str | Mapping[str, str],
        input_topic: str,
        table: Any,
        index: Any,
    ) -> None:
        self._app = app
        self._bootstrap = bootstrap
        self._input_topic = input_topic
        self._tables = (table, index)
        self._marks: dict[int, Marks] = {}
        # faust's stubs want a receiver with a positional-only sender; it passes it by position.
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]

    def marks(self, partition: int) -> Marks:
        """The marks of ``partition``; none (nothing skipped) when they were not read for
        the current generation."""
        generation = self._app.consumer_generation_id
        marks = self._marks.get(partition)
        if marks is None or marks.generation != generation:
            # Kept, so that the apply loop does not build one per record.
            marks = self._marks[partition] = Marks(generation, NONE, NONE)
        return marks

    def _positions(self, partition: int) -> list[tuple[str, int, int]] | None:
        """(changelog, partition, persisted offset) of each table; None when a table has
        nothing persisted for the partition yet."""
        positions = []
        for table in self._tables:
            topic = table.changelog_topic.get_topic_name()
            offset = table.data.persisted_offset(TP(topic, partition))
            if offset is None:
                return None
            positions.append((topic, partition, offset))
        return positions

    async def _on_rebalance_complete(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        generation = self._app.consumer_generation_id
        wanted = {
            tp.partition: positions
            for tp in self._app.assignor.assigned_actives()
            if tp.topic == self._input_topic
            and (positions := self._positions(tp.partition)) is not None
        }
        flat = [position for positions in wanted.values() for position in positions]
        read = [NONE] * len(flat)
        for attempt in range(3):
            try:
                if flat:
                    read = await asyncio.to_thread(marks_at, self._bootstrap, flat, 10.0)
                break
            except StreamsError as exc:
                # Without marks the partitions are applied from the committed offset, as
                # before: never wrong by skipping, possibly wrong by applying twice.
                logger.warning("%s (attempt %d of 3)", exc, attempt + 1)
        mark_of = dict(zip(((t, p) for t, p, _ in flat), read, strict=True))
        state_topic, index_topic = (t.changelog_topic.get_topic_name() for t in self._tables)
        self._marks = {
            partition: Marks(
                generation, mark_of[(state_topic, partition)], mark_of[(index_topic, partition)]
            )
            for partition in wanted
        }
        logger.info(
            "generation %d: input records below these offsets are in the tables already: %s",
            generation,
            {p: (m.state, m.index) for p, m in self._marks.items() if m.state != NONE},
        )
