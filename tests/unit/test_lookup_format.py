"""The batched lookup wire format and the partitioner the gateway routes by."""

from __future__ import annotations

import os
import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from schemas.lookups import (
    MAX_KEYS,
    Answer,
    Status,
    decode_answers,
    decode_keys,
    decode_page,
    encode_answers,
    encode_keys,
    encode_page,
    partition_of,
)


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=50))
def test_keys_round_trip(keys: list[bytes]) -> None:
    assert decode_keys(encode_keys(keys)) == keys


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Status)), st.binary(max_size=300)), min_size=1, max_size=50
    )
)
def test_answers_round_trip(pairs: list[tuple[Status, bytes]]) -> None:
    answers = [Answer(status, body) for status, body in pairs]
    assert decode_answers(encode_answers(answers), len(answers)) == answers


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\0\0\0",
        b"\0\0\0\5abc",
        b"\0\0\0\0",
        b"\xff\xff\xff\xffx",
        encode_keys([b"k"] * (MAX_KEYS + 1)),
    ],
    ids=["empty", "short-length", "short-key", "empty-key", "huge-length", "too-many"],
)
def test_a_malformed_request_body_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_keys(body)


def test_answers_that_do_not_match_the_keys_are_refused() -> None:
    body = encode_answers([Answer(Status.FOUND, b"{}")])
    with pytest.raises(ValueError, match="1 answers for 2 keys"):
        decode_answers(body, 2)
    with pytest.raises(ValueError, match="truncated"):
        decode_answers(body[:-1], 1)
    with pytest.raises(ValueError):
        decode_answers(b"\x07\0\0\0\0", 1)


def test_partitions_are_kafkas_default_partitioners() -> None:
    # The gateway produced each event with librdkafka's murmur2_random and faust stored it in
    # that partition: a lookup routed by another hash would go to the wrong worker.
    kafka = DefaultPartitioner()
    rng = random.Random(7)
    for _ in range(5000):
        key = os.urandom(rng.randint(1, 120))
        count = rng.choice([1, 2, 3, 8, 12, 64])
        partitions = list(range(count))
        assert partition_of(key, count) == kafka(key, partitions, partitions), key


@given(
    st.lists(st.integers(0, 2**31), max_size=16),
    st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=300)), max_size=30),
)
def test_query_pages_round_trip(partitions: list[int], rows: list[tuple[bytes, bytes]]) -> None:
    assert decode_page(encode_page(partitions, rows)) == (partitions, rows)


@pytest.mark.parametrize("body", [b"", b"\0\0\0\2\0\0\0\1", b"\0\0\0\0\0\0\0\5ab"])
def test_a_truncated_query_page_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_page(body)
