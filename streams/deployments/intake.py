"""The worker's intake: input records handed over a fetch at a time, not one by one.

faust delivers each record to an agent through the conductor, a queue and a stream — about
85 µs of bookkeeping per record on our CI machine, several times the cost of applying it.
The worker keeps faust's consumer (group membership, its partition assignor with standbys,
committing acknowledged offsets, pausing for recovery), and replaces only the last step of
its fetch loop: records of the input topic go, a whole fetch at a time, into the
:class:`Intake`; records of every other topic (the changelogs faust reads while recovering)
take faust's own path.

Which records the apply loop may take is decided here, from positions, rather than by
faust's queue clearing and read offsets (both can drop records fetched after a rebalance's
seek, with nothing fetching them again). Every rebalance starts each partition afresh at its
committed offset (a new aiokafka assignment, then faust's seek to the committed offsets: the
same place, so a partition can be fetched twice from there). For each partition the intake
hands out the records of the current consumer generation once each, in order, from its
committed offset — or, with nothing committed, from the first record of its log, sought
explicitly: records of an older generation and records already handed out are dropped, and
a jump in offsets is sought back, then taken as the log's (retention) when it comes again.
While a rebalance is under way (faust's flow control suspended, input partitions paused),
and until faust has read the new generation's committed offsets from the broker
(:attr:`IntakeConsumer.sought_generation`: it resumes the flow before that), nothing is
handed out and what is buffered is dropped: the new generation fetches it again (with
nothing committed, only because of that explicit seek).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

__all__ = ["Intake", "IntakeConsumer", "IntakeTransport"]

logger = logging.getLogger(__name__)


class Intake:
    """Input records fetched and not yet taken by the apply loop (faust ``Message`` s)."""

    def __init__(self, topic: str, capacity: int) -> None:
        self.topic = topic
        self.capacity = capacity
        self._records: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        #: Next offset to hand out per partition, for ``_generation``.
        self._positions: dict[TP, int] = {}
        self._generation = -1
        #: Partitions whose offsets jumped: (offset due, offset fetched); due is None for a
        #: partition without a committed offset (it starts at its log's first record).
        self.misaligned: dict[TP, tuple[int | None, int]] = {}
        #: Partitions sought back, and the offset their first record must have.
        self._expected: dict[TP, int] = {}

    def __len__(self) -> int:
        return len(self._records)

    async def put(self, records: list[Any]) -> None:
        """Add a fetch's records, waiting while the intake is full."""
        while len(self._records) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        self._records.extend(records)
        self._ready.set()

    async def wait(self) -> None:
        """Until there is at least one record."""
        while not self._records:
            self._ready.clear()
            await self._ready.wait()

    async def fill(self, count: int, within: float) -> None:
        """Until there are ``count`` records, or ``within`` seconds passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self._records) < count:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), left)
            except TimeoutError:
                return

    def clear(self) -> None:
        """Drop every buffered record (a rebalance is under way: they are fetched again)."""
        self._records.clear()
        self._space.set()

    def take(self, limit: int, generation: int, committed: Callable[[TP], int | None]) -> list[Any]:
        """Up to ``limit`` records to apply, in order, for consumer ``generation``.

        Offsets must follow each other: a partition's first record of a generation is at
        its committed offset (when one is known), each next record at the offset after the
        last. A partition that jumps, or has no committed offset, is set aside in
        :attr:`misaligned` as (offset due or None, offset fetched), and none of its records is
        handed out until the apply loop has sought it back (:meth:`expect`) or found that the
        log has nothing in between (:meth:`accept_gap`).
        """
        records = self._records
        if generation != self._generation:
            self._generation = generation
            self._positions = {}
            self._expected = {}
            self.misaligned = {}
        positions, expected, misaligned = self._positions, self._expected, self.misaligned
        taken: list[Any] = []
        while records and len(taken) < limit:
            record = records.popleft()
            if record.generation_id != generation:
                continue
            tp, offset = record.tp, record.offset
            if tp in misaligned:
                continue
            due = positions.get(tp)
            first = due is None
            if first:
                due = expected.get(tp, committed(tp))
                if due is None:
                    # Nothing committed: the partition starts where its log does, which is
                    # not known here. Records fetched from there may have been dropped
                    # during a rebalance, and nothing fetches them again without a seek.
                    misaligned[tp] = (None, offset)
                    continue
            if offset != due:
                if offset < due or (first and tp in expected):
                    continue  # applied or committed already, or fetched before a seek back
                misaligned[tp] = (due, offset)
                logger.warning(
                    "generation %d: %s fetched offset %d where %d was due",
                    generation,
                    tp,
                    offset,
                    due,
                )
                continue
            if first:
                expected.pop(tp, None)
                logger.info("generation %d: %s applied from offset %d", generation, tp, offset)
            positions[tp] = offset + 1
            taken.append(record)
        if len(records) < self.capacity:
            self._space.set()
        return taken

    def expect(self, tp: TP, offset: int) -> None:
        """``tp`` was sought to ``offset``: hand it out from the record at ``offset`` on,
        dropping whatever was fetched before."""
        self.misaligned.pop(tp, None)
        self._positions.pop(tp, None)
        self._expected[tp] = offset

    def accept_gap(self, tp: TP, offset: int) -> None:
        """The log of ``tp`` has nothing before ``offset`` (down to where it was due): go
        on from there."""
        self.misaligned.pop(tp, None)
        self._expected.pop(tp, None)
        self._positions[tp] = offset


class IntakeConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetch loop hands input records to the intake, and
    which never commits an input offset past a record that was not acknowledged."""

    #: Per input partition, ranges of offsets the log has no record for (from: to), found
    #: by the apply loop: a commit passes over them.
    log_gaps: dict[TP, dict[int, int]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_gaps = {}
        #: The consumer generation whose committed offsets faust has read from the broker
        #: and sought to (:meth:`perform_seek`); the intake hands out nothing of a newer one.
        self.sought_generation = -1

    async def perform_seek(self) -> None:
        """faust's seek to the committed offsets of a new assignment, which also reads them
        into :meth:`committed`; afterwards the generation's records may be handed out."""
        generation = self.app.consumer_generation_id
        await super().perform_seek()
        self.sought_generation = generation

    async def _seek(self, partition: TP, offset: int) -> None:
        # faust seeks from the event loop's thread (ThreadDelegateConsumer._seek), while
        # aiokafka's fetcher runs in the consumer's thread: a seek drops the partition's
        # buffered fetch, and could do so while that thread was handing it out (KeyError
        # in Fetcher.fetched_records: the worker crashed). The seek runs in that thread.
        thread = self._thread

        async def seek() -> None:
            thread.seek(partition, offset)

        await thread.call_thread(seek)

    async def seek_if_assigned(self, tp: TP, offset: int) -> bool:
        """Seek ``tp`` to ``offset``; False when it is no longer assigned (a rebalance
        revoked it after its records were fetched: its next owner starts afresh from the
        committed offset)."""
        try:
            await self.seek(tp, offset)
        except IllegalStateError:
            logger.info("%s: revoked before it could be sought to offset %d", tp, offset)
            return False
        return True

    def committed(self, tp: TP) -> int | None:
        """The committed offset faust knows for ``tp`` (None: none yet)."""
        return self._committed_offset.get(tp)

    def _new_offset(self, tp: TP) -> int | None:
        # faust 0.15 commits past a single missing record at the committed offset (it
        # compares min(acked) - committed with > 1), and past any number when nothing was
        # committed yet. Input records are acknowledged in order, so the offset to commit
        # is the end of the run of acknowledged offsets (and known log gaps) that starts at
        # the committed offset: a hole holds the commit back instead of being skipped.
        if tp.topic != cast(IntakeTransport, self.transport).intake.topic:
            return super()._new_offset(tp)
        acked = self._acked[tp]
        if not acked:
            return None
        done = set(acked)
        committed = self._committed_offset[tp]
        start = committed if committed is not None else min(done)
        gaps = self.log_gaps.get(tp, {})
        end = start
        while True:
            if end in done:
                end += 1
            elif end in gaps:
                end = gaps[end]
            else:
                break
        if end == start:
            if min(done) > start:
                self.log.warning(
                    "%s: acknowledged from %d, committed is %d: commit held back",
                    tp,
                    min(done),
                    start,
                )
            return None
        acked[:] = [offset for offset in acked if offset >= end]
        self._acked_index[tp].difference_update(range(start, end))
        for begin in [begin for begin in gaps if begin < end]:
            del gaps[begin]
        return end

    async def _deliver(self, tp: TP, message: Any) -> None:
        """faust's own handling of one record of another topic (a changelog)."""
        offset = message.offset
        r_offset = self._read_offset[tp]
        if r_offset is not None and offset < r_offset:
            return  # read already (faust: "DROPPED MESSAGE ROFF")
        if r_offset and offset - r_offset > 1 and self.app.topics.acks_enabled_for(tp.topic):
            await self._add_gap(tp, r_offset + 1, offset)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        await self.wait_first(self.callback(message), self.suspend_flow.wait())
        self._read_offset[tp] = offset

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - faust's loop
        # faust's Consumer._drain_messages (0.15), with the per-record conductor callback
        # replaced by one hand-over per fetch for the input topic.
        intake: Intake = cast(IntakeTransport, self.transport).intake
        topic = intake.topic
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records = getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch: list[Any] = []
                async for tp, message in records:
                    offset = message.offset
                    if tp.topic == topic:
                        # Every input record goes to the intake, which knows what it
                        # handed out already (faust's read offsets can skip records here).
                        batch.append(message)
                        read_offset[tp] = offset
                        continue
                    await self._deliver(tp, message)
                if batch:
                    await intake.put(batch)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class IntakeTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport, creating :class:`IntakeConsumer` s."""

    Consumer = IntakeConsumer
    intake: Intake
