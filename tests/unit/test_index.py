"""Index keys: byte for byte Avro ``DeploymentIndexKey``, prefixes that group an index's
terms, ranks whose byte order is the order the queries promise."""

from __future__ import annotations

import io

from fastavro import schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas import AvroCodec
from streams.deployments.index import (
    IndexName,
    decode_entry_key,
    descending,
    entry_key,
    terms_prefix,
)

KEY_SCHEMA = AvroCodec("DeploymentIndexKey")
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)
TERMS = st.lists(TEXT, max_size=3)
NAMES = st.sampled_from(list(IndexName))


def fastavro_bytes(
    tenant: str, name: IndexName, terms: list[str], rank: bytes, deployment: bytes
) -> bytes:
    buffer = io.BytesIO()
    record = {
        "tenant": tenant,
        "index": name.name,
        "terms": terms,
        "rank": rank,
        "deployment": deployment,
    }
    schemaless_writer(buffer, KEY_SCHEMA.schema, record)
    return buffer.getvalue()


@given(TEXT, NAMES, TERMS, INT64, st.binary(max_size=200))
def test_entry_keys_are_the_avro_encoding_of_the_record(
    tenant: str, name: IndexName, terms: list[str], value: int, deployment: bytes
) -> None:
    rank = descending(value)
    encoded = entry_key(tenant, name, terms, rank, deployment)
    assert encoded == fastavro_bytes(tenant, name, terms, rank, deployment)
    assert KEY_SCHEMA.decode(encoded)["deployment"] == deployment
    assert decode_entry_key(encoded) == (tenant, name, tuple(terms), rank, deployment)


@given(TEXT, NAMES, TERMS, TERMS, INT64, st.binary(max_size=50))
def test_an_entry_starts_with_the_prefix_of_its_own_terms_only(
    tenant: str,
    name: IndexName,
    terms: list[str],
    other: list[str],
    value: int,
    deployment: bytes,
) -> None:
    encoded = entry_key(tenant, name, terms, descending(value), deployment)
    assert encoded.startswith(terms_prefix(tenant, name, terms))
    if other != terms:
        assert not encoded.startswith(terms_prefix(tenant, name, other))


@given(INT64, INT64)
def test_larger_numbers_rank_first(a: int, b: int) -> None:
    assert (descending(a) < descending(b)) == (a > b)


def test_malformed_keys_are_refused() -> None:
    encoded = entry_key("t", IndexName.ISSUE, ["ABC-1"], descending(5), b"key")
    for broken in (encoded[:-1], encoded + b"x", b""):
        try:
            decode_entry_key(broken)
        except ValueError:
            continue
        raise AssertionError(f"accepted {broken!r}")
