"""Queries over one worker's partitions, read from the secondary indexes: never a scan.

Every query reads a page: each partition seeks to the entries of the query's terms (after
the cursor, when there is one); the partitions' entries are merged by their sort keys as
they are read, and a deployment is read and decoded only when its entry comes up in the
merged order, so a page of ``limit`` decodes about ``limit`` deployments whatever the number
of partitions. Across workers the gateway merges the pages the same way (:func:`merge`).

An entry whose deployment no longer carries it (a crash can leave one behind: its removal
was lost with the batch that delivered the deployment's new state) is checked against the
stored deployment and passed over, so results are exact: a listed deployment must carry
the entry (:func:`~streams.deployments.index.carries`), an environment or pipeline is listed
only while one of its entries names a stored deployment.

Sort keys (and cursors) are the entry's bytes after its query's prefix: for deployments, the
rank then the deployment's key; for pipelines and environments, their encoded id (an Avro
string: its length, then its bytes, which is also the order they are listed in).
"""

from __future__ import annotations

import bisect
import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from streams.deployments.index import (
    IndexEntry,
    IndexName,
    carries,
    decode_entry_key,
    deployment_at,
    environment_prefix,
    pipeline_prefix,
    split_string,
    terms_prefix,
)
from streams.deployments.renderings import OFFSET_KEY, Listings

__all__ = [
    "Item",
    "PartitionData",
    "PipelineMemo",
    "environment_history",
    "environments_latest",
    "issue_deployments",
    "merge",
    "pipelines",
]


#: What a page of an index lists: tenant, index, terms.
_Terms = tuple[str, IndexName, tuple[str, ...]]


class Database(Protocol):
    """What a query needs of a partition's RocksDB database (a ``rocksdict.Rdict``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter(self) -> Any: ...


@dataclass(frozen=True)
class PartitionData:
    """The state and index databases of one partition, how to decode a stored value, and
    (in the worker) the listings kept beside the stored values."""

    state: Database
    index: Database
    decode: Callable[[bytes], dict[str, Any]]
    listings: Listings | None = None
    memo: PipelineMemo | None = None

    def current(self, key: bytes, sort: bytes) -> Item | None:
        """The result for the deployment stored under ``key``, if there is one."""
        if self.listings is not None:
            listed = self.listings.current(key)
            return None if listed is None else Item(sort, None, listed.json)
        raw = self.state.get(key)
        return None if raw is None else Item(sort, self.decode(raw))

    def item(self, terms: _Terms, entry: bytes, start: int, sort: bytes) -> Item | None:
        """The result an index entry of ``terms`` lists (its rank at ``start``), if its
        deployment still carries the entry: from its kept listing (made now if there is
        none), else decoded."""
        deployment = deployment_at(entry, start)
        if self.listings is not None:
            listed = self.listings.current(deployment)
            if listed is None or not listed.lists(entry[: start + 8]):
                return None
            return Item(sort, None, listed.json)
        raw = self.state.get(deployment)
        if raw is None:
            return None
        tenant, name, values = terms
        stored = self.decode(raw)
        decoded = IndexEntry(tenant, name, values, entry[start : start + 8], deployment)
        return Item(sort, stored) if carries(decoded, stored) else None


class Item(NamedTuple):
    """One result: its sort key (merge order and cursor) and its value, or its rendering
    (the JSON of the value as listed) when it came from the kept listings."""

    sort: bytes
    value: dict[str, Any] | None
    rendered: bytes | None = None


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


def _candidates(
    data: PartitionData, prefix: bytes, after: bytes | None
) -> Iterator[tuple[bytes, bytes, PartitionData]]:
    for entry in _entries(data.index, prefix, after):
        yield entry[len(prefix) :], entry, data


def _listed(
    partitions: Iterable[PartitionData],
    terms: _Terms,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """The first ``limit`` deployments listed under (tenant, index, terms), all partitions
    merged."""
    tenant, name, values = terms
    prefix = terms_prefix(tenant, name, values)
    start = len(prefix)
    merged = heapq.merge(
        *(_candidates(data, prefix, after) for data in partitions), key=lambda c: c[0]
    )
    items: list[Item] = []
    for sort, entry, data in merged:
        # Every entry here has the query's terms: only its rank and deployment are read.
        item = data.item(terms, entry, start, sort)
        if item is None:
            continue
        items.append(item)
        if len(items) == limit:
            break
    return items


def issue_deployments(
    partitions: Iterable[PartitionData],
    tenant: str,
    issue_key: str,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """The tenant's deployments that name ``issue_key``, newest ``lastUpdated`` first."""
    return _listed(partitions, (tenant, IndexName.ISSUE, (issue_key,)), after, limit)


def environment_history(
    partitions: Iterable[PartitionData],
    tenant: str,
    pipeline: str,
    environment: str,
    after: bytes | None,
    limit: int,
) -> list[Item]:
    """The deployments of one environment, highest ``deploymentSequenceNumber`` first."""
    return _listed(
        partitions, (tenant, IndexName.ENVIRONMENT, (pipeline, environment)), after, limit
    )


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


def _first_stored(data: PartitionData, entry: bytes, terms_end: int) -> bytes | None:
    """The first entry, in this partition, of the environment of ``entry`` (its first
    entry; its terms prefix is ``entry[:terms_end]``) whose deployment is stored: its
    highest sequence number here. An ENVIRONMENT entry depends on nothing but its
    deployment's key (terms and rank come from it), so its deployment's presence is the
    whole check, read without decoding anything."""
    if data.state.get(deployment_at(entry, terms_end)) is not None:
        return entry  # the usual case: no stale entry in front
    for candidate in _entries(data.index, entry[:terms_end], None):
        if data.state.get(deployment_at(candidate, terms_end)) is not None:
            return candidate
    return None


def _terms_end(prefix: bytes, environment: bytes) -> int:
    # An ENVIRONMENT entry: prefix (up to the pipeline), the environment id, the array's
    # closing zero, then the rank.
    return len(prefix) + len(environment) + 1


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
    # environment -> (its best entry so far, the partition holding it); an entry's rank
    # sorts higher sequence numbers first, so the smallest entry is the latest.
    best: dict[bytes, tuple[bytes, PartitionData]] = {}
    for data in partitions:
        found = 0
        for environment, entry in _distinct(data.index, prefix, after):
            latest = _first_stored(data, entry, _terms_end(prefix, environment))
            if latest is None:
                continue  # only stale entries: not an environment of this partition
            held = best.get(environment)
            if held is None or latest < held[0]:
                best[environment] = (latest, data)
            found += 1
            if found == limit:
                break
    items = []
    for environment in sorted(best)[:limit]:
        entry, data = best[environment]
        item = data.current(decode_entry_key(entry).deployment, environment)
        if item is not None:
            items.append(item)
    return items


def _pipelines_in(data: PartitionData, tenant: str) -> list[tuple[bytes, frozenset[str]]]:
    """Every pipeline of ``tenant`` in this partition (encoded id, in order) with its
    environments that hold a stored deployment."""
    prefix = pipeline_prefix(tenant)
    listing = []
    for pipeline, _ in _distinct(data.index, prefix, None):
        within = prefix + pipeline
        environments = frozenset(
            split_string(environment)[0]
            for environment, entry in _distinct(data.index, within, None)
            if _first_stored(data, entry, _terms_end(within, environment)) is not None
        )
        if environments:  # otherwise only stale entries
            listing.append((pipeline, environments))
    return listing


class PipelineMemo:
    """Per partition and tenant, :func:`_pipelines_in`, kept while the partition's
    databases are unchanged: every write and every recovery moves the changelog offsets
    persisted in them, so equal offsets mean equal contents. At most ``size`` kept."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, str], tuple[Any, list[Any]]] = OrderedDict()

    def listing(self, data: PartitionData, tenant: str) -> list[tuple[bytes, frozenset[str]]]:
        """:func:`_pipelines_in`, from the memo when the partition did not change."""
        stamp = (data.state.get(OFFSET_KEY), data.index.get(OFFSET_KEY))
        slot = (id(data.index), tenant)
        held = self._items.get(slot)
        if held is not None and held[0] == stamp:
            self._items.move_to_end(slot)
            return held[1]
        listing = _pipelines_in(data, tenant)
        self._items[slot] = (stamp, listing)
        self._items.move_to_end(slot)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return listing


def _first(item: tuple[bytes, frozenset[str]]) -> bytes:
    return item[0]


def pipelines(
    partitions: Iterable[PartitionData], tenant: str, after: bytes | None, limit: int
) -> list[Item]:
    """The tenant's pipelines, each with the ids of its environments that hold a stored
    deployment."""
    found: dict[bytes, set[str]] = {}
    for data in partitions:
        listing = (
            data.memo.listing(data, tenant)
            if data.memo is not None
            else _pipelines_in(data, tenant)
        )
        start = 0 if after is None else bisect.bisect_right(listing, after, key=_first)
        for pipeline, environments in listing[start : start + limit]:
            found.setdefault(pipeline, set()).update(environments)
    return [
        Item(
            pipeline,
            {"pipelineId": split_string(pipeline)[0], "environments": sorted(found[pipeline])},
        )
        for pipeline in sorted(found)[:limit]
    ]
