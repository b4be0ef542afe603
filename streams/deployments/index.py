"""The per-partition property index: (tenant, property, value) -> deployment keys.

Delete-by-properties reads the index instead of scanning the table. Each (tenant, name,
value) is split into buckets by a hash of the deployment key, so an index entry stays small
even when many deployments share a property, and an update rewrites one small entry.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

__all__ = ["BUCKETS", "bucket_of", "index_changes"]

BUCKETS = 32


def bucket_of(key: bytes) -> int:
    """The bucket of a deployment key (stable across processes and restarts)."""
    return zlib.crc32(key) % BUCKETS


def index_changes(
    old: Mapping[str, str], new: Mapping[str, str]
) -> tuple[Iterable[tuple[str, str]], Iterable[tuple[str, str]]]:
    """(name, value) pairs to remove the key from, and pairs to add it to."""
    before, after = set(old.items()), set(new.items())
    return sorted(before - after), sorted(after - before)
