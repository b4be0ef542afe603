"""Rebuild a partition's index from its table (changelog first, like every other write).

Needed once when an installation upgrades from the bucketed property index of earlier
versions (its changelog topic had another name): the table is restored from the state topic
and the index has nothing. Every stored deployment's entries are written, a chunk at a time,
through the same path as applied events: the changelog records first (headed with the
table's mark, as they reflect what the table does), then RocksDB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from rocksdict import WriteBatch

from streams.deployments.batch import INDEX, PartitionBatch
from streams.deployments.index import entries_of
from streams.deployments.progress import SOURCE_OFFSET_HEADER
from streams.deployments.renderings import Renderer
from streams.deployments.writer import OFFSET_KEY, ChangelogWriter, Outgoing, write_local

__all__ = ["rebuild_index"]

logger = logging.getLogger(__name__)

CHUNK = 2000


async def rebuild_index(
    partition: int,
    dbs: tuple[Any, Any],
    codec: tuple[Callable[[bytes], dict[str, Any]], bytes],
    writer: ChangelogWriter,
    index_topic: str,
    mark: int,
    superseded: Callable[[], bool],
    renderer: Renderer | None = None,
) -> bool:
    """Write the index entries of every deployment of the partition's table (and, with a
    ``renderer``, its listing: the table was restored without them); False when the worker
    stopped or the partition went to another generation first (its index is then rebuilt
    by its next owner)."""
    state_db, index_db = dbs
    decode, entry_value = codec
    header: list[tuple[str, str | bytes | None]] = [(SOURCE_OFFSET_HEADER, str(mark).encode())]
    started, count = time.monotonic(), 0
    iterator = state_db.iter()
    iterator.seek_to_first()
    while True:
        batch = PartitionBatch(partition, state_db, index_db, _unused, decode, 0, entry_value)
        batch.begin(mark)
        taken = 0
        listings: list[tuple[bytes, bytes, dict[str, Any]]] = []
        while iterator.valid() and taken < CHUNK:
            key, raw = iterator.key(), iterator.value()
            iterator.next()
            if key == OFFSET_KEY or raw is None:
                continue
            stored = decode(raw)
            for entry in sorted(entries_of(key, stored)):
                batch.index_put(entry)
            if renderer is not None:
                listings.append((key, raw, stored))
            taken += 1
        if superseded():
            return False
        if batch.records:
            records: list[Outgoing] = [
                (index_topic, partition, key, value, header)
                for table, key, value, _source in batch.records
                if table == INDEX
            ]
            offsets = await writer.deliver(records)
            if offsets is None:
                return False
            write_local(
                batch,
                state_db,
                index_db,
                None,
                offsets[(index_topic, partition)],
                lambda: WriteBatch(raw_mode=True),
            )
        if renderer is not None:
            renderer.keep(state_db, listings)
        count += taken
        if not iterator.valid():
            break
    logger.info(
        "partition %d: index rebuilt from %d stored deployments in %.1fs",
        partition,
        count,
        time.monotonic() - started,
    )
    return True


def _unused(value: dict[str, Any]) -> bytes:
    msg = "the rebuild writes no table values"
    raise AssertionError(msg)
