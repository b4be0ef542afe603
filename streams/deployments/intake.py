"""The worker's intake: input records handed over a fetch at a time, not one by one.

faust delivers each record to an agent through the conductor, a queue and a stream — about
85 µs of bookkeeping per record on our CI machine, several times the cost of applying it.
The worker keeps faust's consumer (group membership, its partition assignor with standbys,
committing acknowledged offsets, pausing for recovery), and replaces only the last step of
its fetch loop: records of the input topic go, a whole fetch at a time, into the
:class:`Intake`; records of every other topic (the changelogs faust reads while recovering)
take faust's own path.

The intake behaves like faust's agent queues: it is cleared when faust clears them (a
rebalance; the consumer then seeks back to the committed offsets), and a full intake stops
the fetch loop until the apply loop has taken records out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

__all__ = ["Intake", "IntakeConsumer", "IntakeTransport"]


class Intake:
    """Input records fetched and not yet taken by the apply loop (faust ``Message`` s)."""

    def __init__(self, topic: str, capacity: int) -> None:
        self.topic = topic
        self.capacity = capacity
        self._records: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

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

    def take(self, limit: int) -> list[Any]:
        """Up to ``limit`` records, oldest first."""
        records = self._records
        taken = [records.popleft() for _ in range(min(limit, len(records)))]
        if len(records) < self.capacity:
            self._space.set()
        return taken

    def clear(self) -> None:
        """Forget every record (faust's flow control clears its queues on a rebalance)."""
        self._records.clear()
        self._space.set()


class IntakeConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetch loop hands input records to the intake."""

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - faust's loop
        # faust's Consumer._drain_messages (0.15), with the per-record conductor callback
        # replaced by one hand-over per fetch for the input topic.
        intake: Intake = cast(IntakeTransport, self.transport).intake
        topic = intake.topic
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
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
                    r_offset = read_offset[tp]
                    if r_offset is not None and offset < r_offset:
                        continue  # read already (faust: "DROPPED MESSAGE ROFF")
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if tp.topic == topic:
                        batch.append(message)
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    read_offset[tp] = offset
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
