"""Index keys: byte for byte Avro ``DeploymentIndexKey``, prefixes that group an index's
terms, ranks whose byte order is the order the queries promise."""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas import AvroCodec
from streams.deployments.index import (
    IndexName,
    carried_by,
    carries,
    decode_entry_key,
    descending,
    entries_of,
    entry_key,
    terms_prefix,
)

KEY_SCHEMA = AvroCodec("DeploymentIndexKey")
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)
TERMS = st.lists(TEXT, max_size=3)
NAMES = st.sampled_from(list(IndexName))
#: What decides a stored deployment's entries: issues, properties, lastUpdated, number.
FACTS = (
    st.lists(st.from_regex(r"[A-Z]{1,4}-[0-9]{1,3}", fullmatch=True), max_size=4),
    st.dictionaries(TEXT, TEXT, max_size=3),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-06-01T12:30:00.5+02:00"]),
    st.integers(0, 2**40),
)


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


def stored_with(
    issues: list[str], properties: dict[str, str], updated: str, number: int
) -> dict[str, Any]:
    return {
        "key": {
            "tenant": "t",
            "pipelineId": "web",
            "environmentId": "prod",
            "deploymentSequenceNumber": number,
        },
        "deployment": {
            "issueKeys": issues or None,
            "associations": [{"associationType": "issueIdOrKeys", "values": ["99"]}],
            "lastUpdated": updated,
        },
        "properties": properties,
    }


@given(*FACTS)
def test_carries_agrees_with_entries_of(
    issues: list[str], properties: dict[str, str], updated: str, number: int
) -> None:
    # Queries check one entry with carries(); writes use entries_of(): they must agree.
    key = b"deployment-key"
    stored = stored_with(issues, properties, updated, number)
    entries = entries_of(key, stored)
    for entry in entries:
        assert carries(decode_entry_key(entry), stored)
    # The same deployment after a change no longer carries what it lost.
    changed = stored_with(issues[1:], {}, "2027-01-01T00:00:00Z", number)
    for entry in entries - entries_of(key, changed):
        assert not carries(decode_entry_key(entry), changed)
    other_tenant = {**stored, "key": {**stored["key"], "tenant": "u"}}
    assert not any(carries(decode_entry_key(entry), other_tenant) for entry in entries)


@given(*FACTS)
def test_heads_are_the_listed_entries_up_to_their_rank(
    issues: list[str], properties: dict[str, str], updated: str, number: int
) -> None:
    # Kept listings check a page's entry against these heads instead of carries().
    key = b"deployment-key"
    stored = stored_with(issues, properties, updated, number)
    listed = {IndexName.ISSUE, IndexName.ENVIRONMENT}
    expected = set()
    for entry in entries_of(key, stored):
        decoded = decode_entry_key(entry)
        if decoded.name in listed:
            expected.add(terms_prefix(decoded.tenant, decoded.name, decoded.terms) + decoded.rank)
    assert set(carried_by(stored).heads()) == expected
