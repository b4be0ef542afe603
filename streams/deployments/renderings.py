"""Listings rendered once per stored version and kept beside the stored value in RocksDB.

Listing a deployment from its stored Avro costs decoding it (12-17 µs), rendering its JSON
and working out which index entries it carries (about 8 µs more): over half of what a page
of the issue or history query cost. So the first read of a stored value renders its listing
and writes it into the ``renderings`` column family of the partition's state database; later
queries and lookups read that instead (one more get, 5 µs). The index rebuild, which decodes
every stored value anyway, writes them all.

A listing is used only when it was made from the stored bytes read now: it starts with a
digest of those bytes (BLAKE2b, 128 bits, salted with a fingerprint of the reader schema and
of this format). A changed value, one faust restored from the changelog (which writes the
table only), a standby's, or one written when another schema or format was current, is a
miss: decoded, rendered, and its listing written anew. So results stay exact, and the write
path pays nothing but the removal of a deleted deployment's listing (in the same write
batch as the deletion).

A listing's bytes: the digest (16), then two big-endian uint32 (the length of the entry
heads, the offset of the listing's closing brace in the lookup rendering), the entry heads
(a JSON list of the hex of what each issue and environment entry of the deployment holds
before its key: :meth:`~streams.deployments.index.Carried.heads`), the listing's JSON.
The listing is the contract's DeploymentData (what a lookup answers), with ``pipelineId``
and ``environmentId`` spliced in before its closing brace, so a lookup can be served from
it too.

The column family is opened per use, never held: faust drops a revoked partition's database
by reference, and a handle kept here would keep its files locked for the next owner.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson
from rocksdict import BlockBasedOptions, Cache, Options, WriteBatch

from streams.deployments.index import carried_by
from streams.deployments.views import without_nulls

__all__ = ["FAMILY", "FamilyOptions", "Listed", "Listings", "Renderer"]

#: The column family of each partition's state database that holds the listings.
FAMILY = "renderings"
#: Part of every digest's salt: bump it when the listing's bytes or its entry heads change.
FORMAT = b"listing/2"

_HEAD = struct.Struct(">16sII")
_PIPELINE, _ENVIRONMENT = b',"pipelineId":', b',"environmentId":'


class Listed(NamedTuple):
    """One stored deployment as queries list it."""

    #: The entry heads (JSON), parsed only when a page checks one.
    heads: bytes
    #: The listing's JSON.
    json: bytes
    #: Where the lookup rendering ends: ``json[:cut] + b"}"`` is what a lookup answers.
    cut: int

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
        self._salt = hashlib.blake2b(reader_schema + b"\0" + FORMAT, digest_size=16).digest()
        self._family = family
        self.hits = 0
        self.misses = 0

    def digest(self, raw: bytes) -> bytes:
        """What ties a listing to the stored bytes it was made from."""
        return hashlib.blake2b(raw, digest_size=16, salt=self._salt).digest()

    def make(self, raw: bytes, stored: Mapping[str, Any]) -> tuple[bytes, Listed]:
        """The listing of ``stored`` (which ``raw`` encodes): its bytes as kept, and itself."""
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
        kept = b"".join((_HEAD.pack(self.digest(raw), len(heads), cut), heads, json))
        return kept, Listed(heads, json, cut)

    def family(self, db: Any) -> Any:
        """The partition database's column family of listings (created on first use)."""
        try:
            return db.get_column_family(FAMILY)
        except Exception:  # rocksdict's only error type: "column name ... does not exist"
            return db.create_column_family(FAMILY, self._family.options())

    def listings(self, db: Any) -> Listings:
        """The listings of the partition whose state database is ``db``."""
        return Listings(self, self.family(db))

    def handle(self, db: Any) -> Any:
        """The column family's handle, for a write batch of ``db``."""
        self.family(db)
        return db.get_column_family_handle(FAMILY)

    def keep(self, db: Any, deployments: Iterable[tuple[bytes, bytes, Mapping[str, Any]]]) -> None:
        """Write the listings of ``deployments`` (key, stored bytes, decoded) of ``db``'s
        partition, in one write."""
        writes = WriteBatch(raw_mode=True)
        handle = self.handle(db)
        for key, raw, stored in deployments:
            writes.put(key, self.make(raw, stored)[0], handle)
        db.write(writes)

    def listed(self, family: Any, key: bytes, raw: bytes) -> Listed:
        """The listing of ``key`` stored as ``raw``: kept, or made now and kept."""
        kept = family.get(key)
        if kept is not None and len(kept) >= _HEAD.size:
            digest, heads, cut = _HEAD.unpack_from(kept)
            if digest == self.digest(raw):
                self.hits += 1
                start = _HEAD.size + heads
                return Listed(kept[_HEAD.size : start], kept[start:], cut)
        self.misses += 1
        kept, made = self.make(raw, self._decode(raw))
        family.put(key, kept)
        return made


class Listings(NamedTuple):
    """The listings of one partition (for the time of one request)."""

    renderer: Renderer
    family: Any

    def listed(self, key: bytes, raw: bytes) -> Listed:
        """:meth:`Renderer.listed` in this partition."""
        return self.renderer.listed(self.family, key, raw)
