"""The deployments table's store: faust's RocksDB store, with its listings kept in step.

A listing kept beside a stored value is current whenever it is present
(:mod:`streams.deployments.renderings`). The apply loop writes the table itself
(:func:`~streams.deployments.writer.write_local`, which removes the listings in the same
write); faust writes it when it restores a partition or keeps a standby up to date, from the
changelog (``apply_changelog_batch``). There this store removes the listings of the batch's
keys first, then lets faust write the batch: a crash in between leaves listings missing
(rendered again when read), never a listing of a value that is gone. And when it opens a
partition's database, the listings of another version, or not in step with the table, are
dropped (:meth:`~streams.deployments.renderings.Renderer.prepare`).

Like :mod:`streams.deployments.writer`, this leans on faust's internals
(``Store._open_for_partition``, ``Table._new_store_by_url``), pinned by faust < 0.16.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.stores.rocksdb import Store
from faust.types import EventT
from yarl import URL

from streams.deployments.renderings import Renderer

__all__ = ["DeploymentsTable", "ListingStore"]


class ListingStore(Store):
    """faust's RocksDB store of a table whose partitions keep listings beside the values."""

    def __init__(self, *args: Any, renderer: Renderer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renderer = renderer

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        self.renderer.prepare(db)
        return db

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        events = list(batch)
        keys: defaultdict[int, list[bytes]] = defaultdict(list)
        offsets: dict[int, int] = {}
        for event in events:
            message = event.message
            if message.key is not None:  # a changelog record always has one
                keys[message.partition].append(message.key)
            offsets[message.partition] = max(message.offset, offsets.get(message.partition, -1))
        for partition, written in keys.items():
            # The offset faust persists once the batch is written: until then, the listings
            # are not in step (a crash now drops them when the partition opens again).
            offset = str(offsets[partition]).encode()
            self.renderer.forget(self._db_for_partition(partition), written, offset)
        super().apply_changelog_batch(events, to_key, to_value)


class DeploymentsTable(faust.Table):
    """faust's table, stored by a :class:`ListingStore` of ``renderer``."""

    def __init__(self, app: faust.App, *, renderer: Renderer, **kwargs: Any) -> None:
        self.renderer = renderer
        super().__init__(app, **kwargs)

    def _new_store_by_url(self, url: str | URL) -> ListingStore:
        # faust's own (faust.tables.base.Collection._new_store_by_url), with the store's
        # class fixed: the app's store URL is rocksdb://.
        return ListingStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
            renderer=self.renderer,
        )
