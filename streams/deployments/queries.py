"""Queries over one worker's partitions, read from the secondary indexes: never a scan.

Every query reads a page: each partition seeks to the entries of the query's terms (after
the cursor, when there is one) and steps through at most ``limit`` of them; the pages of
all partitions are merged by their sort keys. Across workers the gateway merges the same
way (:func:`merge`), so a page costs in proportion to its length times the partitions.

An entry whose deployment no longer carries it (a crash can leave one behind: its removal
was lost with the batch that delivered the deployment's new state) is checked against the
stored deployment and passed over, so results are exact.

Sort keys (and cursors) are the entry's bytes after its query's prefix: for deployments, the
rank then the deployment's key; for pipelines and environments, their encoded id (an Avro
string: its length, then its bytes, which is also the order they are listed in).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from streams.deployments.index import (
    IndexName,
    decode_entry_key,
    entries_of,
    environment_prefix,
    pipeline_prefix,
    split_string,
    terms_prefix,
)

__all__ = [
    "Item",
    "PartitionData",
    "environment_history",
    "environments_latest",
    "issue_deployments",
    "merge",
    "pipelines",
]


class Database(Protocol):
    """What a query needs of a partition's RocksDB database (a ``rocksdict.Rdict``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter(self) -> Any: ...


@dataclass(frozen=True)
class PartitionData:
    """The state and index databases of one partition, and how to decode a stored value."""

    state: Database
    index: Database
    decode: Callable[[bytes], dict[str, Any]]

    def stored(self, key: bytes) -> dict[str, Any] | None:
        """The stored deployment of ``key``."""
        raw = self.state.get(key)
        return None if raw is None else self.decode(raw)

    def current(self, entry: bytes) -> dict[str, Any] | None:
        """The deployment an index entry lists, if its stored state still carries the
        entry."""
        key = decode_entry_key(entry).deployment
        stored = self.stored(key)
        if stored is None or entry not in entries_of(key, stored):
            return None
        return stored


@dataclass(frozen=True)
class Item:
    """One result: its sort key (merge order and cursor) and its value."""

    sort: bytes
    value: dict[str, Any]


def merge(pages: Iterable[Iterable[Item]], limit: int) -> list[Item]:
    """The first ``limit`` items of sorted pages, in sort-key order."""
    merged = heapq.merge(*pages, key=lambda item: item.sort)
    return [item for _, item in zip(range(limit), merged, strict=False)]


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _entries(db: Database, prefix: bytes, after: bytes | None) -> Iterator[bytes]:
    """Entry keys starting with ``prefix``, in order, after ``prefix + after``."""
    iterator = db.iter()
    start = prefix if after is None else prefix + after
    iterator.seek(start)
    while iterator.valid():
        key: bytes = iterator.key()
        if not key.startswith(prefix):
            return
        if after is None or key != start:
            yield key
        iterator.next()


def _listed(
    partitions: Iterable[PartitionData], prefix: bytes, after: bytes | None, limit: int
) -> list[Item]:
    """The first ``limit`` deployments listed under ``prefix``, all partitions merged."""
    pages = []
    for data in partitions:
        page: list[Item] = []
        for entry in _entries(data.index, prefix, after):
            stored = data.current(entry)
            if stored is None:
                continue
            page.append(Item(entry[len(prefix) :], stored))
            if len(page) == limit:
                break
        pages.append(page)
    return merge(pages, limit)


def issue_deployments(
    partitions: Iterable[PartitionData],
    tenant: str,
    issue_key: str,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """The tenant's deployments that name ``issue_key``, newest ``lastUpdated`` first."""
    return _listed(partitions, terms_prefix(tenant, IndexName.ISSUE, (issue_key,)), after, limit)


def environment_history(
    partitions: Iterable[PartitionData],
    tenant: str,
    pipeline: str,
    environment: str,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """The deployments of one environment, highest ``deploymentSequenceNumber`` first."""
    prefix = terms_prefix(tenant, IndexName.ENVIRONMENT, (pipeline, environment))
    return _listed(partitions, prefix, after, limit)


def _distinct(db: Database, prefix: bytes, after: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """(encoded id, first entry) for each distinct id that follows ``prefix`` (an Avro
    string): one seek per id, whatever the number of entries under it."""
    iterator = db.iter()
    if after is None:
        iterator.seek(prefix)
    else:
        start = _successor(prefix + after)
        if start is None:
            return
        iterator.seek(start)
    while iterator.valid():
        entry: bytes = iterator.key()
        if not entry.startswith(prefix):
            return
        _, length = split_string(entry[len(prefix) :])
        encoded = entry[len(prefix) : len(prefix) + length]
        yield encoded, entry
        jump = _successor(prefix + encoded)
        if jump is None:
            return
        iterator.seek(jump)


def _latest(data: PartitionData, entry: bytes) -> dict[str, Any] | None:
    """The stored deployment of the highest sequence number, in this partition, of the
    environment of ``entry`` (its first entry)."""
    decoded = decode_entry_key(entry)
    prefix = terms_prefix(decoded.tenant, decoded.name, decoded.terms)
    for candidate in _entries(data.index, prefix, None):
        stored = data.current(candidate)
        if stored is not None:
            return stored
    return None


def environments_latest(
    partitions: Iterable[PartitionData],
    tenant: str,
    pipeline: str,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """Each environment of ``pipeline`` with its latest deployment (the highest
    ``deploymentSequenceNumber`` stored)."""
    prefix = environment_prefix(tenant, pipeline)
    best: dict[bytes, dict[str, Any]] = {}
    for data in partitions:
        for found, (environment, entry) in enumerate(_distinct(data.index, prefix, after)):
            if found == limit:
                break
            latest = _latest(data, entry)
            if latest is None:
                continue
            number = latest["key"]["deploymentSequenceNumber"]
            if (
                environment not in best
                or number > best[environment]["key"]["deploymentSequenceNumber"]
            ):
                best[environment] = latest
    return [Item(environment, best[environment]) for environment in sorted(best)[:limit]]


def pipelines(
    partitions: Iterable[PartitionData], tenant: str, after: bytes | None, limit: int
) -> list[Item]:
    """The tenant's pipelines, each with the ids of its environments."""
    prefix = pipeline_prefix(tenant)
    found: dict[bytes, set[str]] = {}
    for data in partitions:
        for seen, (pipeline, _) in enumerate(_distinct(data.index, prefix, after)):
            if seen == limit:
                break
            environments = found.setdefault(pipeline, set())
            for environment, _entry in _distinct(data.index, prefix + pipeline, None):
                environments.add(split_string(environment)[0])
    return [
        Item(
            pipeline,
            {"pipelineId": split_string(pipeline)[0], "environments": sorted(found[pipeline])},
        )
        for pipeline in sorted(found)[:limit]
    ]
