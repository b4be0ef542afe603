"""Wire formats between gateway and workers: batched lookups (``/internal/lookups``) and
query pages (``/internal/query``).

Internal, like the endpoint: both sides ship together. A request body is the keys, each as a
4-byte big-endian length and the key's bytes. An answer body has one answer per key, in the
same order: a status byte, a 4-byte big-endian length and that many bytes — the rendered
JSON when found, nothing when absent, a reason when the key must be asked again (its
partition is moving, recovering, or its owner did not answer).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "BINARY",
    "MAX_KEYS",
    "Answer",
    "Status",
    "decode_answers",
    "decode_keys",
    "decode_page",
    "encode_answers",
    "encode_keys",
    "encode_page",
    "partition_of",
]

BINARY = "application/octet-stream"
#: Keys in one request at most (a gateway batches at most this many).
MAX_KEYS = 1024
#: No deployment key comes near this (tenant, pipeline and environment ids are bounded).
_MAX_KEY_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")
_ANSWER = struct.Struct(">BI")
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


class Status(IntEnum):
    """What a worker knows of one key."""

    FOUND = 0
    ABSENT = 1
    RETRY = 2


class Answer(NamedTuple):
    """One key's answer: found (with its rendering), absent, or retry (with why)."""

    status: Status
    body: bytes = b""


def encode_keys(keys: list[bytes]) -> bytes:
    """A request body."""
    return b"".join(_LENGTH.pack(len(key)) + key for key in keys)


def decode_keys(data: bytes) -> list[bytes]:
    """The keys of a request body; ValueError when it is not one."""
    keys: list[bytes] = []
    at, end = 0, len(data)
    while at < end:
        if at + _LENGTH.size > end:
            msg = "truncated key length"
            raise ValueError(msg)
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if size == 0 or size > _MAX_KEY_BYTES or at + size > end:
            msg = f"bad key length {size}"
            raise ValueError(msg)
        keys.append(data[at : at + size])
        at += size
        if len(keys) > MAX_KEYS:
            msg = f"more than {MAX_KEYS} keys"
            raise ValueError(msg)
    if not keys:
        msg = "no keys"
        raise ValueError(msg)
    return keys


def encode_answers(answers: list[Answer]) -> bytes:
    """An answer body."""
    return b"".join(_ANSWER.pack(a.status, len(a.body)) + a.body for a in answers)


def decode_answers(data: bytes, count: int) -> list[Answer]:
    """The ``count`` answers of an answer body; ValueError when it is not that."""
    answers: list[Answer] = []
    at, end = 0, len(data)
    while at < end:
        if at + _ANSWER.size > end:
            msg = "truncated answer"
            raise ValueError(msg)
        status, size = _ANSWER.unpack_from(data, at)
        at += _ANSWER.size
        if at + size > end:
            msg = "truncated answer body"
            raise ValueError(msg)
        answers.append(Answer(Status(status), data[at : at + size]))
        at += size
    if len(answers) != count:
        msg = f"{len(answers)} answers for {count} keys"
        raise ValueError(msg)
    return answers


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (its Java client's ``Utils.murmur2``, seed 0x9747b28c), as an
    unsigned 32-bit value."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length >> 2
    for word in struct.unpack_from(f"<{words}I", data):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        rest = data[words << 2 :]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h ^= rest[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (librdkafka's ``murmur2_random``, the Java
    client's, aiokafka's) gives ``key``: where the gateway produced its events and so where
    its deployment is stored."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def encode_page(partitions: list[int], rows: list[tuple[bytes, bytes]]) -> bytes:
    """A query page: the partitions read, then each row's sort key and rendered JSON, each
    as a 4-byte big-endian length and its bytes (the gateway merges by sort key and splices
    the JSON into its answer without parsing it)."""
    head = _LENGTH.pack(len(partitions)) + b"".join(_LENGTH.pack(p) for p in partitions)
    return head + b"".join(
        _LENGTH.pack(len(sort)) + sort + _LENGTH.pack(len(value)) + value for sort, value in rows
    )


def decode_page(data: bytes) -> tuple[list[int], list[tuple[bytes, bytes]]]:
    """The partitions and rows of a query page; ValueError when it is not one."""
    try:
        (count,) = _LENGTH.unpack_from(data, 0)
        partitions = list(struct.unpack_from(f">{count}I", data, _LENGTH.size))
        at = _LENGTH.size * (count + 1)
        rows: list[tuple[bytes, bytes]] = []
        while at < len(data):
            fields = []
            for _ in range(2):
                (size,) = _LENGTH.unpack_from(data, at)
                at += _LENGTH.size
                if at + size > len(data):
                    msg = "truncated query page"
                    raise ValueError(msg)
                fields.append(data[at : at + size])
                at += size
            rows.append((fields[0], fields[1]))
    except struct.error as exc:
        msg = f"not a query page: {exc}"
        raise ValueError(msg) from exc
    return partitions, rows
