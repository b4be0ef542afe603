"""Listings rendered once per stored version and kept beside the stored value in RocksDB.

Listing a deployment from its stored Avro costs decoding it (12-17 µs), rendering its JSON
and working out which index entries it carries (about 8 µs more): over half of what a page
of the issue or history query cost. So the first read of a stored value renders its listing
and writes it into a column family of the partition's state database; later queries and
lookups read that instead, and nothing else: one get per deployment, not the stored value
too (which, with a digest of it to match, was a third of a page's time).

That is exact because **a listing that is present is current**: every write of the table
removes the listings of the keys it writes, in the same RocksDB write (the batched apply,
:func:`~streams.deployments.writer.write_local`) or just before it (faust's restore and
standby, :mod:`streams.deployments.store`); a listing is only made from the stored bytes
read in the same step, with no await in between. Two guards keep listings from anyone
else's writes out:

- the column family's name carries a fingerprint of the reader schema and of this format
  (``listings-<hex>``): listings of another version are in another family, dropped when a
  partition's database is opened;
- faust's restore and standby writes mark the family with the table's changelog offset
  they bring it to, under faust's offset key; when a partition's database is opened,
  listings whose mark is not the table's offset are dropped (rendered anew as they are
  read). The apply loop does not mark: a second column family in every apply write doubled
  the visibility lag (A/B against 647c1a2, p99 x1.96, and x0.95 without the mark). So a
  partition the apply loop wrote since its last restore opens with no listings; so does
  one written by an older worker, or after a crash between the two writes of a restore.

A listing's bytes: two big-endian uint32 (the length of the entry heads, the offset of the
listing's closing brace in the lookup rendering), the entry heads (a JSON list of the hex of
what each issue and environment entry of the deployment holds before its key:
:meth:`~streams.deployments.index.Carried.heads`), the listing's JSON. The listing is the
contract's DeploymentData (what a lookup answers), with ``pipelineId`` and
``environmentId`` spliced in before its closing brace, so a lookup is served from it too.

The column family is opened per use, never held: faust drops a revoked partition's database
by reference, and a handle kept here would keep its files locked for the next owner.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

from streams.deployments.index import carried_by
from streams.deployments.views import without_nulls

__all__ = ["OFFSET_KEY", "FamilyOptions", "Listed", "Listings", "Removals", "Renderer"]

#: Part of the column family's name: bump it when the listing's bytes or its entry heads
#: change.
FORMAT = b"listing/3"
#: Every family of listings is named so: the current one, and those to drop.
PREFIX = "listings-"
#: The family of earlier versions (their listings started with a digest of the value).
LEGACY = "renderings"
#: faust's key for the persisted changelog offset inside each partition database; the
#: family of listings keeps the offset it is in step with under the same key.
OFFSET_KEY = b"__faust\0offset__"

_HEAD = struct.Struct(">II")
_PIPELINE, _ENVIRONMENT = b',"pipelineId":', b',"environmentId":'


class Listed(NamedTuple):
    """One stored deployment as queries list it."""

    #: The entry heads (JSON), parsed only when a page checks one.
    heads: bytes
    #: The listing's JSON.
    json: bytes
    #: Where the lookup rendering ends: ``json[:cut] + b"}"`` is what a lookup answers.
    cut: int

    @classmethod
    def parse(cls, kept: bytes) -> Listed:
        """A listing from its bytes as kept."""
        heads, cut = _HEAD.unpack_from(kept)
        start = _HEAD.size + heads
        return cls(kept[_HEAD.size : start], kept[start:], cut)

    @property
    def lookup(self) -> bytes:
        """The contract's DeploymentData, as a lookup answers it."""
        return self.json[: self.cut] + b"}"

    def lists(self, head: bytes) -> bool:
        """Whether the deployment has an issue or environment entry that starts with
        ``head`` (terms prefix and rank) — whether that entry is current."""
        # The heads are a JSON list of hex strings: a quote only ever opens or closes one,
        # so a quoted hex string found in them is one of them (no parse needed).
        return b'"%s"' % head.hex().encode() in self.heads


class FamilyOptions(NamedTuple):
    """RocksDB sizing of the column family, per partition database."""

    write_buffer_bytes: int
    write_buffers: int
    block_cache_bytes: int

    def options(self) -> Options:
        """rocksdict options for the column family (raw bytes, like faust's tables)."""
        options = Options(raw_mode=True)
        options.set_write_buffer_size(self.write_buffer_bytes)
        options.set_max_write_buffer_number(self.write_buffers)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(self.block_cache_bytes))
        # Point reads only: a bloom filter spares a block read for a missing listing.
        table.set_bloom_filter(10, True)
        options.set_block_based_table_factory(table)
        return options


class Renderer:
    """Makes, writes and reads the listings of one worker's partitions."""

    def __init__(
        self,
        decode: Callable[[bytes], dict[str, Any]],
        reader_schema: bytes,
        family: FamilyOptions,
    ) -> None:
        self._decode = decode
        fingerprint = hashlib.blake2b(reader_schema + b"\0" + FORMAT, digest_size=8)
        #: The column family of this reader schema and format.
        self.name = PREFIX + fingerprint.hexdigest()
        self._family = family
        self.hits = 0
        self.misses = 0

    def make(self, stored: Mapping[str, Any]) -> tuple[bytes, Listed]:
        """The listing of ``stored``: its bytes as kept, and itself."""
        key = stored["key"]
        lookup = orjson.dumps(without_nulls(stored["deployment"]))
        cut = len(lookup) - 1
        json = b"".join(
            (
                lookup[:cut],
                _PIPELINE,
                orjson.dumps(key["pipelineId"]),
                _ENVIRONMENT,
                orjson.dumps(key["environmentId"]),
                b"}",
            )
        )
        heads = orjson.dumps([head.hex() for head in carried_by(stored).heads()])
        kept = b"".join((_HEAD.pack(len(heads), cut), heads, json))
        return kept, Listed(heads, json, cut)

    def family(self, db: Rdict) -> Rdict:
        """The partition database's column family of listings (created on first use)."""
        try:
            return db.get_column_family(self.name)
        except Exception:  # rocksdict's only error type: "column name ... does not exist"
            return db.create_column_family(self.name, self._family.options())

    def listings(self, db: Rdict) -> Listings:
        """The listings of the partition whose state database is ``db``."""
        return Listings(self, db, self.family(db))

    def prepare(self, db: Rdict) -> None:
        """On opening a partition's state database: drop the families of other versions,
        and this one's listings unless they are in step with the table."""
        names = Rdict.list_cf(db.path())  # read from the database's manifest: once
        for name in names:
            if name == LEGACY or (name.startswith(PREFIX) and name != self.name):
                db.drop_column_family(name)
        offset = db.get(OFFSET_KEY)
        if self.name in names:
            family = db.get_column_family(self.name)
            in_step = family.get(OFFSET_KEY) == offset
            del family  # a handle kept would hold the database open
            if in_step:
                return
            db.drop_column_family(self.name)
        if offset is not None:
            self.family(db).put(OFFSET_KEY, offset)

    def removals(self, db: Rdict) -> Removals:
        """What removes listings of ``db``'s partition in a write batch of it."""
        return Removals(self.family(db), db.get_column_family_handle(self.name))

    def forget(self, db: Rdict, keys: Iterable[bytes], offset: bytes) -> None:
        """Before the table's ``keys`` are written up to changelog ``offset`` (faust's
        restore and standby): remove their listings, in one write."""
        writes = WriteBatch(raw_mode=True)
        removals = self.removals(db)
        for key in keys:
            removals.remove(writes, key)
        removals.in_step(writes, offset)
        db.write(writes)

    def keep(
        self, db: Rdict, deployments: Iterable[tuple[bytes, bytes, Mapping[str, Any]]]
    ) -> None:
        """Write the listings of ``deployments`` (key, stored bytes, decoded) of ``db``'s
        partition, in one write: those still stored as they were read (the caller may have
        waited since, and a listing must never be of a value that is gone)."""
        writes = WriteBatch(raw_mode=True)
        handle = self.removals(db).handle
        for key, raw, stored in deployments:
            if db.get(key) == raw:
                writes.put(key, self.make(stored)[0], handle)
        db.write(writes)

    def current(self, state: Rdict, family: Rdict, key: bytes) -> Listed | None:
        """The listing of ``key``: kept, or made now from its stored value and kept; None
        when nothing is stored under it."""
        kept = family.get(key)
        if kept is not None:
            self.hits += 1
            return Listed.parse(kept)
        raw = state.get(key)
        if raw is None:
            return None
        self.misses += 1
        kept, made = self.make(self._decode(raw))
        family.put(key, kept)
        return made


class Removals(NamedTuple):
    """Removes listings of one partition in write batches of its state database."""

    family: Rdict
    handle: Any

    def remove(self, writes: WriteBatch, key: bytes) -> None:
        """Remove the listing of ``key`` in ``writes``."""
        # Most written keys have no listing (nothing read them since their last write): the
        # memtables and bloom filters say so without a read, and a tombstone is spared.
        # Never wrong: "may exist" is false only for a key that is not there.
        if self.family.key_may_exist(key):
            writes.delete(key, self.handle)

    def in_step(self, writes: WriteBatch, offset: bytes) -> None:
        """Mark the listings in step with the table up to changelog ``offset`` (restore
        and standby only: see the module's docstring)."""
        writes.put(OFFSET_KEY, offset, self.handle)


class Listings(NamedTuple):
    """The listings of one partition (for the time of one request)."""

    renderer: Renderer
    state: Rdict
    family: Rdict

    def current(self, key: bytes) -> Listed | None:
        """:meth:`Renderer.current` in this partition."""
        return self.renderer.current(self.state, self.family, key)
