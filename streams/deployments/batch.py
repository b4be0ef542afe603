"""One partition's share of a batch: the changes of its events, held in memory until Kafka
has their changelog records.

Events of a batch are applied to an overlay over the partition's RocksDB databases: reads
see the batch's own earlier writes, writes are kept as (decoded value, encoded bytes) and,
in order, as the changelog records they cause. Nothing reaches RocksDB here: the writer
(:mod:`streams.deployments.writer`) sends the records, and only once Kafka acknowledged
every one writes the final value of each key, with the changelog offsets, in one RocksDB
write batch per database.

Every stored value is Avro-encoded once: the same bytes go to the changelog and to RocksDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.errors import StreamsError

__all__ = [
    "INDEX",
    "STATE",
    "Database",
    "PartitionBatch",
    "RecordTooLarge",
    "TableRecord",
]

#: Which table a changelog record belongs to.
STATE, INDEX = 0, 1
#: Kafka's per-record overhead beyond key and value, with our one header, rounded up.
RECORD_OVERHEAD = 128


class RecordTooLarge(StreamsError):
    """A value whose changelog record would exceed what the broker accepts."""


class Database(Protocol):
    """What the batch needs of a partition's RocksDB database (a ``rocksdict.Rdict``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter(self) -> Any: ...


#: One changelog record: table, key, value (None: tombstone), causing input offset. A plain
#: tuple: the write path makes several per event, and a NamedTuple costs 20 times as much.
TableRecord = tuple[int, bytes, bytes | None, int]


@dataclass
class PartitionBatch:
    """The :class:`~streams.deployments.applier.PartitionTables` of one partition in a batch.

    ``begin(offset)`` opens an event: its writes carry that input offset, and
    ``rollback()`` undoes exactly them (an event that fails half-way leaves nothing).
    """

    partition: int
    state_db: Database
    index_db: Database
    encode: Callable[[dict[str, Any]], bytes]
    decode: Callable[[bytes], dict[str, Any]]
    max_record_bytes: int
    #: The value of every index entry: the empty DeploymentIndexEntry, framed.
    entry_value: bytes
    #: key -> (decoded value or None for deleted, encoded bytes or None)
    state: dict[bytes, tuple[dict[str, Any] | None, bytes | None]] = field(default_factory=dict)
    #: entry key -> value bytes, or None for removed
    index: dict[bytes, bytes | None] = field(default_factory=dict)
    records: list[TableRecord] = field(default_factory=list)
    _source: int = -1
    _mark: int = 0
    _undo: list[tuple[int, bytes, Any]] = field(default_factory=list)
    #: Values read from RocksDB: decoded once per batch, bytes kept for identical re-writes.
    _read: dict[bytes, tuple[dict[str, Any] | None, bytes | None]] = field(default_factory=dict)

    def begin(self, source: int) -> None:
        """Start applying the input record at offset ``source``."""
        self._source = source
        self._mark = len(self.records)
        self._undo.clear()

    def rollback(self) -> None:
        """Forget every write since :meth:`begin`."""
        for table, key, previous in reversed(self._undo):
            overlay: dict[bytes, Any] = self.state if table == STATE else self.index
            if previous is _ABSENT:
                overlay.pop(key, None)
            else:
                overlay[key] = previous
        self._undo.clear()
        del self.records[self._mark :]

    def _stored(self, key: bytes) -> tuple[dict[str, Any] | None, bytes | None]:
        found = self.state.get(key)
        if found is not None:
            return found
        found = self._read.get(key)
        if found is None:
            raw = self.state_db.get(key)
            found = self._read[key] = (None, None) if raw is None else (self.decode(raw), raw)
        return found

    def get(self, key: bytes) -> dict[str, Any] | None:
        """The deployment as this batch sees it."""
        return self._stored(key)[0]

    def _remember(self, table: int, key: bytes) -> None:
        overlay: dict[bytes, Any] = self.state if table == STATE else self.index
        self._undo.append((table, key, overlay.get(key, _ABSENT)))

    def put(self, key: bytes, value: dict[str, Any]) -> None:
        """Store ``value``; the very object :meth:`get` returned is re-written as it was."""
        current, raw = self._stored(key)
        encoded = raw if value is current and raw is not None else self.encode(value)
        size = len(key) + len(encoded) + RECORD_OVERHEAD
        if size > self.max_record_bytes:
            msg = (
                f"the stored deployment would be a {size}-byte record, over the "
                f"{self.max_record_bytes}-byte record limit"
            )
            raise RecordTooLarge(msg)
        self._remember(STATE, key)
        self.state[key] = (value, encoded)
        self.records.append((STATE, key, encoded, self._source))

    def delete(self, key: bytes) -> None:
        """Remove the deployment: a tombstone, also for a key that is absent."""
        self._remember(STATE, key)
        self.state[key] = (None, None)
        self.records.append((STATE, key, None, self._source))

    def index_put(self, entry: bytes) -> None:
        """Add an index entry."""
        self._remember(INDEX, entry)
        self.index[entry] = self.entry_value
        self.records.append((INDEX, entry, self.entry_value, self._source))

    def index_delete(self, entry: bytes) -> None:
        """Remove an index entry."""
        self._remember(INDEX, entry)
        self.index[entry] = None
        self.records.append((INDEX, entry, None, self._source))

    def index_scan(self, prefix: bytes) -> Iterable[bytes]:
        """Entries starting with ``prefix``: RocksDB's, as changed by this batch."""
        found = []
        iterator = self.index_db.iter()
        iterator.seek(prefix)
        while iterator.valid():
            entry = iterator.key()
            if not entry.startswith(prefix):
                break
            if entry not in self.index:
                found.append(entry)
            iterator.next()
        found.extend(
            entry
            for entry, value in self.index.items()
            if value is not None and entry.startswith(prefix)
        )
        return sorted(found)

    def final_state(self) -> Iterable[tuple[bytes, bytes | None]]:
        """The last value of every deployment the batch wrote (None: delete)."""
        return ((key, encoded) for key, (_value, encoded) in self.state.items())

    def final_index(self) -> Iterable[tuple[bytes, bytes | None]]:
        """The last value of every index entry the batch wrote (None: delete)."""
        return self.index.items()


class _Absent:
    """Marks an overlay key that had no entry before an event wrote it."""


_ABSENT = _Absent()
