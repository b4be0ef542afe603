"""A batch's overlay over a partition's RocksDB databases: reads see the batch's writes,
a failed event leaves nothing, values are encoded once, and nothing reaches RocksDB
before the writer writes the delivered batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rocksdict import Options, Rdict, WriteBatch

from schemas import AvroCodec
from streams.deployments.batch import INDEX, STATE, PartitionBatch, RecordTooLarge
from streams.deployments.writer import OFFSET_KEY, write_local

CODEC = AvroCodec("StoredDeployment")


def stored(number: int, usn: int = 1, description: str = "d") -> dict[str, Any]:
    key = {
        "tenant": "t",
        "pipelineId": "p",
        "environmentId": "e",
        "deploymentSequenceNumber": number,
    }
    return {
        "key": key,
        "deployment": {
            "deploymentSequenceNumber": number,
            "updateSequenceNumber": usn,
            "issueKeys": None,
            "associations": None,
            "displayName": "n",
            "url": "https://ci.example.com/1",
            "description": description,
            "lastUpdated": "2026-01-01T00:00:00Z",
            "label": None,
            "duration": None,
            "state": "successful",
            "pipeline": {"id": "p", "displayName": "p", "url": "https://ci.example.com"},
            "environment": {"id": "e", "displayName": "e", "type": "testing"},
            "commands": None,
            "schemaVersion": "1.0",
        },
        "properties": {},
        "providerMetadata": None,
        "eventId": "ev",
        "gating": None,
    }


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Rdict, Rdict]:
    state = Rdict(str(tmp_path / "state"), Options(raw_mode=True))
    index = Rdict(str(tmp_path / "index"), Options(raw_mode=True))
    yield state, index
    state.close()
    index.close()


def batch_over(dbs: tuple[Rdict, Rdict], limit: int = 1_000_000) -> PartitionBatch:
    state, index = dbs
    return PartitionBatch(3, state, index, CODEC.encode, CODEC.decode, limit, b"")


def test_reads_see_the_batch_and_rocksdb_sees_nothing_until_written(
    dbs: tuple[Rdict, Rdict],
) -> None:
    batch = batch_over(dbs)
    batch.begin(10)
    batch.put(b"k1", stored(1))
    batch.index_put(b"entry-1")
    assert batch.get(b"k1") == stored(1)
    assert dbs[0].get(b"k1") is None
    assert list(batch.index_scan(b"entry")) == [b"entry-1"]
    assert [(table, key, source) for table, key, _value, source in batch.records] == [
        (STATE, b"k1", 10),
        (INDEX, b"entry-1", 10),
    ]
    write_local(batch, dbs[0], dbs[1], 41, 7, lambda: WriteBatch(raw_mode=True))
    assert CODEC.decode(dbs[0].get(b"k1")) == stored(1)
    assert dbs[0].get(OFFSET_KEY) == b"41"
    assert dbs[1].get(b"entry-1") == b""
    assert dbs[1].get(OFFSET_KEY) == b"7"


def test_a_rolled_back_event_leaves_no_write_and_no_record(dbs: tuple[Rdict, Rdict]) -> None:
    batch = batch_over(dbs)
    batch.begin(1)
    batch.put(b"k1", stored(1, usn=1))
    batch.begin(2)
    batch.put(b"k1", stored(1, usn=2))
    batch.delete(b"k2")
    batch.index_put(b"entry")
    batch.rollback()
    assert batch.get(b"k1") == stored(1, usn=1)
    assert dict(batch.final_state()).keys() == {b"k1"}
    assert dict(batch.final_index()) == {}
    assert [source for *_, source in batch.records] == [1]


def test_the_last_write_of_a_key_is_what_rocksdb_gets(dbs: tuple[Rdict, Rdict]) -> None:
    state, index = dbs
    state[b"gone"] = CODEC.encode(stored(9))
    index[b"entry-old"] = b""
    batch = batch_over(dbs)
    batch.begin(5)
    batch.put(b"k1", stored(1, usn=1))
    batch.put(b"k1", stored(1, usn=2))
    batch.delete(b"gone")
    batch.index_delete(b"entry-old")
    assert batch.get(b"gone") is None
    assert list(batch.index_scan(b"entry")) == []
    write_local(batch, state, index, 100, 200, lambda: WriteBatch(raw_mode=True))
    assert CODEC.decode(state[b"k1"])["deployment"]["updateSequenceNumber"] == 2
    assert state.get(b"gone") is None
    assert index.get(b"entry-old") is None
    assert len(batch.records) == 4  # every write reaches the changelog, in order


def test_an_unchanged_value_is_rewritten_with_its_stored_bytes(dbs: tuple[Rdict, Rdict]) -> None:
    state, index = dbs
    original = CODEC.encode(stored(1))
    state[b"k1"] = original

    def no_encoding(value: dict[str, Any]) -> bytes:
        raise AssertionError("re-encoded")

    batch = PartitionBatch(3, state, index, no_encoding, CODEC.decode, 1_000_000, b"")
    batch.begin(1)
    batch.put(b"k1", batch.get(b"k1"))  # type: ignore[arg-type]
    assert batch.records[0][2] == original


def test_a_value_over_the_record_limit_is_refused_before_anything_is_written(
    dbs: tuple[Rdict, Rdict],
) -> None:
    batch = batch_over(dbs, limit=70_000)
    batch.begin(1)
    with pytest.raises(RecordTooLarge, match="70000-byte record limit"):
        batch.put(b"k1", stored(1, description="x" * 80_000))
    assert batch.records == []
    assert batch.get(b"k1") is None


def test_a_scan_merges_rocksdb_with_the_batch(dbs: tuple[Rdict, Rdict]) -> None:
    _, index = dbs
    for entry in (b"a-1", b"a-2", b"a-3", b"b-1"):
        index[entry] = b""
    batch = batch_over(dbs)
    batch.begin(1)
    batch.index_delete(b"a-2")
    batch.index_put(b"a-0")
    assert list(batch.index_scan(b"a-")) == [b"a-0", b"a-1", b"a-3"]


def test_every_index_entry_carries_the_batchs_entry_value(dbs: tuple[Rdict, Rdict]) -> None:
    # The index changelog's values are framed DeploymentIndexEntry records like every other
    # value the worker writes: a value of the wrong format would stop its recovery.
    state, index = dbs
    batch = PartitionBatch(3, state, index, CODEC.encode, CODEC.decode, 1_000_000, b"\0\0\0\0\7")
    batch.begin(10)
    batch.index_put(b"entry")
    written = [(key, value) for _table, key, value, _source in batch.records]
    assert written == [(b"entry", b"\0\0\0\0\7")]
