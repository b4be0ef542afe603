"""The worker's secondary indexes: one entry per (deployment, term), found by prefix seeks.

An entry's key is an Avro ``DeploymentIndexKey`` — tenant, index name, terms, an 8-byte
big-endian rank, the deployment's key — and its value the empty ``DeploymentIndexEntry``.
Avro writes a record as its fields one after the other, so every entry of one (tenant,
index, terms) starts with the same bytes, and RocksDB keeps them together, in rank order.
Reading a page of an index is one seek and as many steps as the page has entries; a change
of a deployment writes one small record per entry it gains or loses, whatever the number of
deployments that share its terms.

Keys are encoded here by hand rather than by fastavro: a prefix is only part of a record,
and this is several times faster on the write path. ``tests/unit/test_index.py`` checks the
bytes against fastavro's encoding of the whole record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = [
    "Carried",
    "IndexEntry",
    "IndexName",
    "carried_by",
    "carries",
    "decode_entry_key",
    "descending",
    "entries_of",
    "entry_key",
    "environment_prefix",
    "issue_keys_of",
    "pipeline_prefix",
    "split_string",
    "terms_prefix",
]

#: Issue associations: the contract's association types that name Jira issues.
ISSUE_ASSOCIATIONS = frozenset({"issueKeys", "issueIdOrKeys"})

_RANK = struct.Struct(">Q")
_ZERO_RANK = bytes(8)
_INT64_MAX = 2**63 - 1


class IndexName(IntEnum):
    """The symbols of ``DeploymentIndexName``, in their Avro order."""

    PROPERTY = 0
    ISSUE = 1
    ENVIRONMENT = 2


class IndexEntry(NamedTuple):
    """A decoded entry key."""

    tenant: str
    name: IndexName
    terms: tuple[str, ...]
    rank: bytes
    deployment: bytes


def _varint(n: int) -> bytes:
    """Avro's zig-zag variable-length encoding of a long."""
    if 0 <= n < _SMALL:
        return _SMALL_VARINTS[n]
    return _long_varint(n)


def _long_varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: Lengths, counts and symbols are small: their one-byte encodings, made once.
_SMALL = 64
_SMALL_VARINTS = tuple(_long_varint(n) for n in range(_SMALL))


@lru_cache(maxsize=16_384)
def _string(value: str) -> bytes:
    # Tenants, property names and values, pipeline and environment ids repeat: cached.
    data = value.encode()
    return _varint(len(data)) + data


def terms_prefix(tenant: str, index: IndexName, terms: Iterable[str]) -> bytes:
    """The bytes every entry of (tenant, index, terms) starts with."""
    return _terms_prefix(tenant, index, tuple(terms))


@lru_cache(maxsize=65_536)
def _terms_prefix(tenant: str, index: IndexName, items: tuple[str, ...]) -> bytes:
    # Tenants, properties, issues and environments repeat across deployments: cached.
    head = _string(tenant) + _varint(int(index))
    if not items:
        return head + b"\x00"
    # An Avro array is a block count, the items, then a zero-length block.
    return head + _varint(len(items)) + b"".join(_string(term) for term in items) + b"\x00"


def pipeline_prefix(tenant: str) -> bytes:
    """The bytes every ENVIRONMENT entry of ``tenant`` starts with; what follows is the
    pipeline id (an Avro string), then the environment id."""
    return _string(tenant) + _varint(int(IndexName.ENVIRONMENT)) + _varint(2)


def environment_prefix(tenant: str, pipeline: str) -> bytes:
    """The bytes every ENVIRONMENT entry of ``pipeline`` starts with; what follows is the
    environment id (an Avro string)."""
    return pipeline_prefix(tenant) + _string(pipeline)


def split_string(data: bytes) -> tuple[str, int]:
    """The Avro string at the start of ``data``, and how many bytes it takes."""
    value, end = _read_string(data, 0)
    return value, end


def descending(value: int) -> bytes:
    """A rank that sorts larger int64 values first."""
    return _RANK.pack(_INT64_MAX - value)


def entry_key(
    tenant: str, index: IndexName, terms: Iterable[str], rank: bytes, deployment: bytes
) -> bytes:
    """The key of one entry."""
    return terms_prefix(tenant, index, terms) + rank + _varint(len(deployment)) + deployment


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7


def deployment_at(entry: bytes, rank_at: int) -> bytes:
    """The deployment key of ``entry`` whose rank starts at ``rank_at`` (right after its
    terms prefix), without decoding the rest."""
    size, at = _read_varint(entry, rank_at + 8)
    return entry[at : at + size]


def _read_string(data: bytes, at: int) -> tuple[str, int]:
    size, at = _read_varint(data, at)
    return data[at : at + size].decode(), at + size


def decode_entry_key(data: bytes) -> IndexEntry:
    """The fields of an entry key (raises ``ValueError`` on malformed bytes)."""
    try:
        tenant, at = _read_string(data, 0)
        index, at = _read_varint(data, at)
        terms: list[str] = []
        count, at = _read_varint(data, at)
        while count:
            for _ in range(abs(count)):
                term, at = _read_string(data, at)
                terms.append(term)
            count, at = _read_varint(data, at)
        rank, at = data[at : at + 8], at + 8
        size, at = _read_varint(data, at)
        deployment = data[at : at + size]
        if len(rank) != 8 or len(deployment) != size or at + size != len(data):
            msg = "truncated index key"
            raise ValueError(msg)
        return IndexEntry(tenant, IndexName(index), tuple(terms), rank, deployment)
    except (IndexError, UnicodeDecodeError) as exc:
        msg = f"not an index key: {exc}"
        raise ValueError(msg) from exc


def _millis(timestamp: str) -> int:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp() * 1000)
    except ValueError:
        return 0


def issue_keys_of(deployment: Mapping[str, Any]) -> set[str]:
    """Issue keys a deployment names, through ``issueKeys`` or an issue association."""
    keys = set(deployment.get("issueKeys") or ())
    for association in deployment.get("associations") or ():
        if association["associationType"] in ISSUE_ASSOCIATIONS:
            keys.update(value for value in association["values"] if isinstance(value, str))
    return keys


class Carried(NamedTuple):
    """What decides which entries a stored deployment has, small enough to keep beside a
    cached rendering: writes list its :meth:`entries`, queries check one (:meth:`carries`)."""

    tenant: str
    environment: tuple[str, str]
    environment_rank: bytes
    issues: frozenset[str]
    issue_rank: bytes
    properties: Mapping[str, str]

    def entries(self, key: bytes) -> set[bytes]:
        """Every index entry of the deployment stored under ``key``."""
        tenant = self.tenant
        entries = {
            entry_key(tenant, IndexName.PROPERTY, (name, value), _ZERO_RANK, key)
            for name, value in self.properties.items()
        }
        entries.update(
            entry_key(tenant, IndexName.ISSUE, (issue,), self.issue_rank, key)
            for issue in self.issues
        )
        entries.add(
            entry_key(tenant, IndexName.ENVIRONMENT, self.environment, self.environment_rank, key)
        )
        return entries

    def heads(self) -> list[bytes]:
        """What each of the deployment's issue and environment entries holds before its key
        (terms prefix, rank): what a page of those indexes checks an entry against."""
        tenant = self.tenant
        heads = [
            terms_prefix(tenant, IndexName.ISSUE, (issue,)) + self.issue_rank
            for issue in sorted(self.issues)
        ]
        heads.append(
            terms_prefix(tenant, IndexName.ENVIRONMENT, self.environment) + self.environment_rank
        )
        return heads

    def carries(self, entry: IndexEntry) -> bool:
        """Whether ``entry`` is among the deployment's entries."""
        if entry.tenant != self.tenant:
            return False
        if entry.name is IndexName.ENVIRONMENT:
            return entry.terms == self.environment and entry.rank == self.environment_rank
        if entry.name is IndexName.ISSUE:
            return entry.terms[0] in self.issues and entry.rank == self.issue_rank
        name, value = entry.terms
        return self.properties.get(name) == value and entry.rank == _ZERO_RANK


def carried_by(stored: Mapping[str, Any]) -> Carried:
    """The facts of ``stored`` that its index entries are made of."""
    key = stored["key"]
    deployment = stored["deployment"]
    issues = frozenset(issue_keys_of(deployment))
    return Carried(
        key["tenant"],
        (key["pipelineId"], key["environmentId"]),
        descending(key["deploymentSequenceNumber"]),
        issues,
        descending(_millis(deployment["lastUpdated"])) if issues else _ZERO_RANK,
        stored["properties"],
    )


def entries_of(key: bytes, stored: Mapping[str, Any] | None) -> set[bytes]:
    """Every index entry of a stored deployment (none for an absent one)."""
    return set() if stored is None else carried_by(stored).entries(key)


def carries(entry: IndexEntry, stored: Mapping[str, Any]) -> bool:
    """Whether ``stored`` (the deployment ``entry`` names) still has ``entry`` among
    :func:`entries_of` — computed for that one entry, not for all of them."""
    return carried_by(stored).carries(entry)
