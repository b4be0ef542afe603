"""The input offset the worker commits is the end of the run of acknowledged offsets that
starts at the committed one: a hole holds the commit back (faust 0.15 commits past a
single missing record, and past any number when nothing was committed yet)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import IllegalStateError
from faust.types import TP

from streams.deployments.intake import Intake, IntakeConsumer

INPUT = TP("deployments", 0)


def consumer_with(committed: int | None, acked: list[int]) -> Any:
    """An IntakeConsumer's commit bookkeeping, without a running consumer."""
    consumer: Any = IntakeConsumer.__new__(IntakeConsumer)
    consumer.transport = SimpleNamespace(intake=Intake("deployments", 10))
    consumer._acked = defaultdict(list, {INPUT: list(acked)})
    consumer._acked_index = defaultdict(set, {INPUT: set(acked)})
    consumer._committed_offset = defaultdict(lambda: None, {INPUT: committed})
    consumer.log_gaps = {}
    consumer.log = SimpleNamespace(warning=lambda *args: None)
    return consumer


def test_the_commit_covers_the_acknowledged_run_from_the_committed_offset() -> None:
    consumer = consumer_with(10, [12, 10, 11, 13])
    assert consumer._new_offset(INPUT) == 14
    assert consumer._acked[INPUT] == []


def test_a_missing_record_at_the_committed_offset_holds_the_commit_back() -> None:
    consumer = consumer_with(10, [11, 12, 13])
    assert consumer._new_offset(INPUT) is None
    assert consumer._acked[INPUT] == [11, 12, 13]


def test_a_hole_stops_the_commit_before_it() -> None:
    consumer = consumer_with(10, [10, 11, 13, 14])
    assert consumer._new_offset(INPUT) == 12
    assert consumer._acked[INPUT] == [13, 14]


def test_a_gap_of_the_log_is_passed_over() -> None:
    consumer = consumer_with(10, [10, 11, 15, 16])
    consumer.log_gaps[INPUT] = {12: 15}
    assert consumer._new_offset(INPUT) == 17
    assert consumer.log_gaps[INPUT] == {}


def test_nothing_committed_yet_commits_from_the_first_acknowledged() -> None:
    consumer = consumer_with(None, [0, 1, 2])
    assert consumer._new_offset(INPUT) == 3


def seeking_consumer(committed_by_broker: int, next_generation: int | None = None) -> Any:
    """An IntakeConsumer whose seek to the committed offsets reads ``committed_by_broker``
    (and, with ``next_generation``, sees a new rebalance begin while it waits)."""
    consumer: Any = consumer_with(committed=147, acked=[])  # a stale in-memory value
    consumer._read_offset = defaultdict(lambda: None)
    consumer.sought_generation = -1
    app = SimpleNamespace(consumer_generation_id=5)
    consumer.app = app

    async def seek_to_committed() -> dict[TP, int]:
        if next_generation is not None:
            app.consumer_generation_id = next_generation
        return {INPUT: committed_by_broker}

    consumer.seek_to_committed = seek_to_committed
    return consumer


def test_records_of_a_generation_wait_until_its_committed_offsets_are_read() -> None:
    consumer = seeking_consumer(131)
    assert consumer.sought_generation == -1
    asyncio.run(consumer.perform_seek())
    assert consumer.sought_generation == 5
    assert consumer.committed(INPUT) == 131  # the broker's, not the stale 147


def test_a_seek_overtaken_by_a_rebalance_does_not_open_the_new_generation() -> None:
    consumer = seeking_consumer(131, next_generation=6)
    asyncio.run(consumer.perform_seek())
    assert consumer.sought_generation == 5


class ConsumerThread:
    """A consumer thread as faust's: an event loop of its own in another thread, running
    what ``call_thread`` is given there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.seeks: list[tuple[TP, int, int]] = []
        self.assigned = {INPUT}

    async def call_thread(self, fun: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fun(), self.loop))

    def seek(self, tp: TP, offset: int) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.seeks.append((tp, offset, threading.get_ident()))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def threaded_consumer() -> Any:
    consumer: Any = IntakeConsumer.__new__(IntakeConsumer)
    consumer._thread = ConsumerThread()
    consumer._read_offset = defaultdict(lambda: None)
    consumer.log = SimpleNamespace(dev=lambda *args: None)
    return consumer


def test_a_seek_runs_in_the_consumer_thread_that_owns_the_fetched_records() -> None:
    # aiokafka's seek drops the partition's buffered fetch; from another thread it raced
    # the consumer thread handing that fetch out (KeyError in Fetcher.fetched_records).
    consumer = threaded_consumer()
    try:
        assert asyncio.run(consumer.seek_if_assigned(INPUT, 42))
    finally:
        consumer._thread.close()
    assert consumer._thread.seeks == [(INPUT, 42, consumer._thread.thread.ident)]
    assert consumer._read_offset[INPUT] == 42


def test_a_partition_revoked_before_its_seek_is_left_to_its_next_owner() -> None:
    # The seek waits for the consumer thread, where a rebalance may have revoked the
    # partition meanwhile: that must not crash the worker.
    consumer = threaded_consumer()
    consumer._thread.assigned = set()
    try:
        assert not asyncio.run(consumer.seek_if_assigned(INPUT, 42))
    finally:
        consumer._thread.close()
    assert consumer._thread.seeks == []
