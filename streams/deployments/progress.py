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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.types import TP

from streams.errors import StreamsError
from streams.topics import client_config

__all__ = ["SOURCE_OFFSET_HEADER", "Marks", "ReplayGuard", "marks_at"]

logger = logging.getLogger(__name__)

SOURCE_OFFSET_HEADER = "deploystream-source-offset"
#: No mark: nothing of the partition is known to be applied.
NONE = -1


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
    #: The table has data and the index none: rebuild the index before applying.
    index_missing: bool = False

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
        #: Called with (generation, partitions) when partitions have a table but no index.
        self.on_index_missing: Callable[[int, list[int]], None] | None = None
        #: Partitions whose index is being rebuilt (queries wait for them).
        self.rebuilding: set[int] = set()
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

    def _positions(self, partition: int) -> list[tuple[str, int, int | None]]:
        """(changelog, partition, persisted offset or None) of each table."""
        positions = []
        for table in self._tables:
            topic = table.changelog_topic.get_topic_name()
            positions.append((topic, partition, table.data.persisted_offset(TP(topic, partition))))
        return positions

    def index_missing(self, partition: int) -> bool:
        """Whether the partition's table has data and its index has none, for the current
        generation: the index must be rebuilt from the table (an installation upgraded from
        the bucketed property index of earlier versions)."""
        marks = self.marks(partition)
        return marks.index_missing

    def index_rebuilt(self, partition: int) -> None:
        """The index of ``partition`` was rebuilt from its table."""
        marks = self._marks.get(partition)
        if marks is not None:
            self._marks[partition] = replace(marks, index_missing=False)

    async def _on_rebalance_complete(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        generation = self._app.consumer_generation_id
        wanted = {
            tp.partition: self._positions(tp.partition)
            for tp in self._app.assignor.assigned_actives()
            if tp.topic == self._input_topic
        }
        flat = [
            (topic, partition, offset)
            for positions in wanted.values()
            for topic, partition, offset in positions
            if offset is not None
        ]
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
        self._marks = {}
        for partition, positions in wanted.items():
            state_persisted, index_persisted = (offset is not None for _, _, offset in positions)
            # A table without its index: the index is rebuilt from the table before anything
            # of the partition is applied, so it then reflects what the table does.
            missing = state_persisted and not index_persisted
            state_mark = mark_of.get((state_topic, partition), NONE)
            index_mark = state_mark if missing else mark_of.get((index_topic, partition), NONE)
            self._marks[partition] = Marks(
                generation, state_mark, index_mark, index_missing=missing
            )
        logger.info(
            "generation %d: input records below these offsets are in the tables already: %s",
            generation,
            {p: (m.state, m.index) for p, m in self._marks.items() if m.state != NONE},
        )
        if missing_index := [p for p, m in self._marks.items() if m.index_missing]:
            logger.warning(
                "generation %d: partitions %s have a table but no index: rebuilding it",
                generation,
                missing_index,
            )
            self.rebuilding = set(missing_index)
            if self.on_index_missing is not None:
                self.on_index_missing(generation, missing_index)
        else:
            self.rebuilding = set()
