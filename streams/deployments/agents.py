"""The apply loop: DeploymentEvents applied in batches, changelog first.

Not a faust ``@app.agent``: faust's per-record stream costs several times the work of
applying a record, and a faust table cannot be written from a batch (``take_events`` runs
outside the stream's context). The loop is a service of the faust app instead. It takes up
to ``apply_batch_max`` records from the :class:`~streams.deployments.intake.Intake` (waiting
up to ``apply_batch_ms`` for more after the first), and for each batch:

1. applies every record to its partition's overlay (:class:`PartitionBatch`), in input
   order, skipping what the tables already reflect after a takeover (:class:`ReplayGuard`);
   a record that cannot be decoded or applied leaves nothing there and becomes a dead letter;
2. delivers the changelog records and dead letters, and waits for Kafka to acknowledge
   every one (:class:`ChangelogWriter`);
3. writes each partition's final values and changelog offsets into RocksDB;
4. acknowledges the input records, so that faust's next commit covers them.

Steps 2 to 4 are shielded from cancellation: on a stop the batch in flight is completed, or,
if Kafka does not answer within the grace period, abandoned before step 3 — never
acknowledged without its changelog. One loop per worker, records of a partition in order
(the concurrency-1 rule of faust #606).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from mode import Service
from rocksdict import WriteBatch

from schemas import AvroDecodeError
from schemas.registry import NotFramed, UnknownSchema, schema_id_of
from streams.deployments.applier import DeploymentApplier
from streams.deployments.batch import STATE, PartitionBatch, RecordTooLarge
from streams.deployments.intake import Intake, IntakeConsumer
from streams.deployments.progress import SOURCE_OFFSET_HEADER, ReplayGuard
from streams.deployments.rebuild import rebuild_index
from streams.deployments.renderings import Renderer
from streams.deployments.writer import ChangelogWriter, Headers, Outgoing, write_local
from streams.metrics import WorkerMetrics
from streams.registration import WorkerCodecs

__all__ = ["ApplyOptions", "DeploymentAgent"]

logger = logging.getLogger(__name__)

#: How often the loop looks whether a rebalance is over.
REBALANCE_POLL_S = 0.05
#: Room for a dead letter's own fields (error text, origin) beyond the original record.
DEAD_LETTER_OVERHEAD = 4096


@dataclass(frozen=True)
class ApplyOptions:
    """Batching and limits of the apply loop."""

    batch_max: int
    batch_s: float
    max_record_bytes: int
    dead_letter_topic: str
    stop_grace_s: float = 5.0


class DeploymentAgent(Service):
    """Applies the intake's records in batches; see the module docstring."""

    def __init__(
        self,
        app: faust.App,
        intake: Intake,
        tables: tuple[Any, Any],
        guard: ReplayGuard,
        applier: DeploymentApplier,
        writer: ChangelogWriter,
        metrics: WorkerMetrics,
        options: ApplyOptions,
        codecs: WorkerCodecs,
        renderer: Renderer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: Removes a deleted deployment's listing, and the index rebuild writes them all
        #: (streams.deployments.renderings).
        self.renderer = renderer
        self.app = app
        self.intake = intake
        self.state_table, self.index_table = tables
        self.guard = guard
        self.applier = applier
        self.writer = writer
        self.metrics = metrics
        self.options = options
        self._stored = codecs.state
        self._events = codecs.events
        self._letters = codecs.dead_letters
        self._index = codecs.index
        self._empty_entry: bytes | None = None
        self._topics = (
            self.state_table.changelog_topic.get_topic_name(),
            self.index_table.changelog_topic.get_topic_name(),
        )
        self.stopping = False
        self._rebuild: asyncio.Future[None] | None = None
        guard.on_index_missing = self._start_rebuild
        #: (generation, partition, offset due) -> offset fetched, for each seek back.
        self._sought_back: dict[tuple[int, Any, int], int] = {}

    def _entry_value(self) -> bytes:
        # Encoded once the schemas are registered (before faust starts the agent).
        if self._empty_entry is None:
            self._empty_entry = self._index.encode({})
        return self._empty_entry

    def _start_rebuild(self, generation: int, partitions: list[int]) -> None:
        self._rebuild = asyncio.ensure_future(self._rebuild_indexes(generation, partitions))

    async def _rebuild_indexes(self, generation: int, partitions: list[int]) -> None:
        """Rebuild the index of ``partitions`` from their tables, one after the other,
        while the generation lasts."""
        state_store, index_store = self.state_table.data, self.index_table.data
        for partition in partitions:
            if self.app.consumer_generation_id != generation or self.stopping:
                return
            dbs = state_store._db_for_partition(partition), index_store._db_for_partition(partition)
            done = await rebuild_index(
                partition,
                dbs,
                (self._stored.decode, self._entry_value()),
                self.writer,
                self._topics[1],
                self.guard.marks(partition).state,
                lambda: self.app.consumer_generation_id != generation,
                self.renderer,
            )
            if not done:
                return
            self.guard.index_rebuilt(partition)
            self.guard.rebuilding.discard(partition)

    async def on_stop(self) -> None:
        """Tell a delivery under way to give up after its grace period."""
        self.stopping = True

    @Service.task
    async def _apply_loop(self) -> None:
        app, intake, options = self.app, self.intake, self.options
        while not self.should_stop:
            if not app.flow_control.is_active():
                # A rebalance is under way: what is buffered is fetched again after it.
                intake.clear()
                await asyncio.sleep(REBALANCE_POLL_S)
                continue
            await intake.wait()
            if len(intake) < options.batch_max and options.batch_s > 0:
                await intake.fill(options.batch_max, options.batch_s)
            if not app.flow_control.is_active():
                continue
            generation = app.consumer_generation_id
            consumer = cast(IntakeConsumer, app.consumer)
            if consumer.sought_generation != generation:
                # faust resumes the flow before it has read the generation's committed
                # offsets (and sought to them): until then a partition's committed offset
                # may be the previous generation's, and what is fetched starts from there.
                intake.clear()
                await asyncio.sleep(REBALANCE_POLL_S)
                continue
            live = intake.take(options.batch_max, generation, consumer.committed)
            if intake.misaligned:
                await self._realign(consumer, generation)
            if not live:
                continue
            # Tracked before anything else runs on the loop: from here on a rebalance waits
            # for this batch (faust's wait_empty) instead of committing past it.
            self._track(live)
            batch = asyncio.ensure_future(self._run_batch(live, generation))
            try:
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                self.stopping = True
                await asyncio.wait([batch], timeout=options.stop_grace_s + 5.0)
                raise
            except Exception as exc:
                # Not a bad record (those are dead letters): the batch cannot be made
                # durable. Nothing of it was acknowledged; a restart applies it again.
                self._untrack(live)
                logger.exception("cannot apply a batch; stopping the worker")
                await self.app.crash(exc)
                return

    async def _realign(self, consumer: IntakeConsumer, generation: int) -> None:
        """Put right partitions whose offsets jumped: seek them back to the offset that was
        due; when the same jump comes again from there, the log has nothing in between
        (retention removed the records, a transaction marker): go on past it."""
        misaligned = list(self.intake.misaligned.items())
        # Where each log starts now: retention may have removed records that were due.
        starts = await consumer.earliest_offsets(*(tp for tp, _ in misaligned))
        for tp, (due_or_none, fetched) in misaligned:
            start = starts.get(tp, 0)
            if due_or_none is None:
                # Nothing committed: from the log's first record (auto.offset.reset is
                # "earliest", but what was fetched from there may have been dropped).
                logger.info("%s: nothing committed; applying from offset %d", tp, start)
                if await consumer.seek_if_assigned(tp, start):
                    self.intake.expect(tp, start)
                continue
            due = due_or_none
            if due < start:
                logger.warning(
                    "%s: the log has no records from offset %d to %d (retention)",
                    tp,
                    due,
                    start - 1,
                )
                consumer.log_gaps.setdefault(tp, {})[due] = start
                due = start
            attempt = (generation, tp, due)
            if self._sought_back.get(attempt) == fetched:
                logger.warning(
                    "%s: the log has no records from offset %d to %d", tp, due, fetched - 1
                )
                consumer.log_gaps.setdefault(tp, {})[due] = fetched
                self.intake.accept_gap(tp, fetched)
                continue
            logger.warning("%s: seeking back to offset %d (fetched %d)", tp, due, fetched)
            self._sought_back[attempt] = fetched
            if await consumer.seek_if_assigned(tp, due):
                self.intake.expect(tp, due)

    def _track(self, records: list[Any]) -> None:
        # What faust's Stream does per record: a rebalance or a stop now waits for these
        # records to be acknowledged before it commits.
        unacked = self.app.consumer.unacked
        for record in records:
            record.tracked = True
            unacked.add(record)
        # And what its monitor hears from a Stream: when a partition's records last went
        # in. faust's stall check reads it; without it, every partition with records still
        # to fetch was logged as an ERROR "Stream has not started processing" five minutes
        # after start, on a worker that was applying them all along.
        monitor = self.app.monitor
        if monitor is not None:
            inbound = monitor.stream_inbound_time
            now = time.monotonic()
            for tp in {record.tp for record in records}:
                inbound[tp] = now

    def _untrack(self, records: list[Any]) -> None:
        unacked = self.app.consumer.unacked
        for record in records:
            unacked.discard(record)

    def _dead_letter(self, record: Any, error: str) -> Outgoing:
        value = record.value
        error = error[:2000]
        room = self.options.max_record_bytes - DEAD_LETTER_OVERHEAD - len(record.key or b"")
        if value is not None and len(value) > room:
            error += f" (value truncated from {len(value)} bytes; the original is at the origin)"
            value = value[: max(room, 0)]
        letter = {
            "topic": record.tp.topic,
            "partition": record.tp.partition,
            "offset": record.offset,
            "timestamp": int(record.timestamp * 1000) if record.timestamp else None,
            "error": error,
            "key": record.key,
            "value": value,
        }
        logger.error(
            "dead-lettering %s[%d]@%d: %s",
            record.tp.topic,
            record.tp.partition,
            record.offset,
            error,
        )
        return (
            self.options.dead_letter_topic,
            None,
            record.key,
            self._letters.encode(letter),
            None,
        )

    def _apply_partition(
        self,
        batch: PartitionBatch,
        records: list[Any],
        outcomes: Counter[str],
        dead: list[Outgoing],
    ) -> None:
        marks = self.guard.marks(batch.partition)
        apply, ensure_indexed = self.applier.apply, self.applier.ensure_indexed
        decode = self._events.decode
        for record in records:
            offset, key = record.offset, record.key
            batch.begin(offset)
            try:
                if marks.skip(offset):
                    outcome = "replay_skipped"
                else:
                    outcome = apply(batch, key, decode(record.value))
                if key is not None and marks.repair_index(offset):
                    ensure_indexed(batch, key)
            except (AvroDecodeError, RecordTooLarge) as exc:
                batch.rollback()
                dead.append(self._dead_letter(record, str(exc)))
                continue
            except Exception as exc:  # a bug must not stall the partition; the record is kept
                logger.exception("failed to apply a record")
                batch.rollback()
                dead.append(self._dead_letter(record, f"apply failed: {exc!r}"))
                continue
            outcomes[outcome] += 1

    def _changelog(
        self, batch: PartitionBatch, state: list[Outgoing], index: list[Outgoing]
    ) -> None:
        """Add the batch's changelog records to ``state`` and ``index``, in order."""
        state_topic, index_topic = self._topics
        partition = batch.partition
        headers: dict[int, Headers] = {}
        for table, key, value, source in batch.records:
            header = headers.get(source)
            if header is None:
                header = headers[source] = [(SOURCE_OFFSET_HEADER, str(source).encode())]
            if table == STATE:
                state.append((state_topic, partition, key, value, header))
            else:
                index.append((index_topic, partition, key, value, header))

    async def _learn_writers(self, records: list[Any]) -> None:
        """Fetch the writer schemas of the batch's events that were never seen, waiting while
        the registry is away (such a record is fine: it must not be dead-lettered)."""
        unseen = set()
        for record in records:
            try:
                schema_id = schema_id_of(record.value or b"")
            except NotFramed:
                continue  # dead-lettered when it is applied
            if not self._events.knows(schema_id):
                unseen.add(schema_id)
        for schema_id in unseen:
            with contextlib.suppress(UnknownSchema):  # dead-lettered when it is applied
                await self._events.learn_async(schema_id)

    async def _run_batch(self, records: list[Any], generation: int) -> None:
        await self._learn_writers(records)
        started = time.perf_counter()
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for record in records:
            by_partition[record.tp.partition].append(record)
        state_store, index_store = self.state_table.data, self.index_table.data
        outcomes: Counter[str] = Counter()
        dead: list[Outgoing] = []
        batches: list[PartitionBatch] = []
        for partition, partition_records in by_partition.items():
            dbs = state_store._db_for_partition(partition), index_store._db_for_partition(partition)
            if self.guard.index_missing(partition):
                # Its index is being rebuilt from its table: the records wait for that.
                if self._rebuild is not None:
                    await asyncio.shield(self._rebuild)
                if self.guard.index_missing(partition):
                    self._untrack(records)
                    return
            batch = PartitionBatch(
                partition,
                *dbs,
                self._stored.encode,
                self._stored.decode,
                self.options.max_record_bytes,
                self._entry_value(),
            )
            self._apply_partition(batch, partition_records, outcomes, dead)
            batches.append(batch)
        if self._superseded(generation):
            # A rebalance began while the batch was applied in memory: nothing of it has
            # left the process, so it is dropped, and whoever owns its partitions next
            # applies its records again (the rebalance was waiting for them).
            self._untrack(records)
            return
        state: list[Outgoing] = []
        index: list[Outgoing] = []
        for batch in batches:
            self._changelog(batch, state, index)
        applied = time.perf_counter()
        # The table's records first: see streams.deployments.writer.
        offsets = await self.writer.deliver_in_order([state + dead, index])
        delivered = time.perf_counter()
        if offsets is None:
            logger.warning(
                "stopped before Kafka acknowledged a batch of %d records: left for replay",
                len(records),
            )
            self._untrack(records)
            return
        self._commit_locally(batches, offsets, by_partition, generation)
        self._observe(records, (started, applied, delivered, time.perf_counter()))
        self._count(outcomes, len(dead))

    def _superseded(self, generation: int) -> bool:
        return (
            not self.app.flow_control.is_active() or self.app.consumer_generation_id != generation
        )

    def _commit_locally(
        self,
        batches: list[PartitionBatch],
        offsets: dict[tuple[str, int], int],
        by_partition: dict[int, list[Any]],
        generation: int,
    ) -> None:
        state_topic, index_topic = self._topics
        state_store, index_store = self.state_table.data, self.index_table.data
        consumer = self.app.consumer
        ack: Callable[[Any], bool] = consumer.ack
        for batch in batches:
            partition = batch.partition
            owned = (
                self.app.consumer_generation_id == generation
                and partition in state_store._dbs
                and partition in index_store._dbs
            )
            if not owned:
                # Revoked meanwhile: the changelog has the batch, the next owner restores it.
                self._untrack(by_partition[partition])
                continue
            write_local(
                batch,
                state_store._dbs[partition],
                index_store._dbs[partition],
                offsets.get((state_topic, partition)),
                offsets.get((index_topic, partition)),
                lambda: WriteBatch(raw_mode=True),
                self.renderer,
            )
            for record in by_partition[partition]:
                ack(record)

    def _observe(self, records: list[Any], times: tuple[float, float, float, float]) -> None:
        metrics = self.metrics
        started, applied, delivered, written = times
        metrics.batch_events.observe(len(records))
        stage = metrics.batch_seconds
        stage.labels("apply").observe(applied - started)
        stage.labels("deliver").observe(delivered - applied)
        stage.labels("write").observe(written - delivered)
        now = time.time()
        observe = metrics.apply_lag.observe
        for record in records:
            if record.timestamp:
                observe(max(now - record.timestamp, 0.0))

    def _count(self, outcomes: Counter[str], dead: int) -> None:
        for outcome, count in outcomes.items():
            self.metrics.applied.labels(outcome).inc(count)
        if dead:
            self.metrics.poison.inc(dead)
