"""The deployments table's store keeps the listings in step with what faust writes: a
restored or standby batch removes the listings of its keys, and a partition's database opens
with its listings only when they are of this version and in step with the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP
from rocksdict import Options, Rdict

from streams.deployments.renderings import LEGACY, OFFSET_KEY, PREFIX, Renderer
from streams.deployments.store import DeploymentsTable, ListingStore
from streams.deployments.views import render_listed
from tests.unit.test_queries import CODEC, Store, submit
from tests.unit.test_renderings import kept, renderer

TOPIC = "deployments-state"


@pytest.fixture
def values(tmp_path: Path) -> Iterator[dict[int, tuple[bytes, bytes]]]:
    """Stored values as the worker writes them: usn -> (key, raw), all of one deployment."""
    source = Store(tmp_path / "source")
    found = {}
    for usn in (1, 2):
        key = submit(source, 1, usn=usn, issues=[f"OPS-{usn}"])
        [raw] = [state.get(key) for state, _ in source.dbs if state.get(key) is not None]
        found[usn] = (key, raw)
    source.close()
    yield found


def open_store(root: Path, listing: Renderer) -> ListingStore:
    app = faust.App(
        "listing-store-test", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=root
    )
    table = DeploymentsTable(
        app,
        name="deployments",
        beacon=app.tables.beacon,
        renderer=listing,
        key_type=bytes,
        value_type=None,
        partitions=1,
        options={"driver": "rocksdict"},
    )
    store = table.data
    assert isinstance(store, ListingStore)
    return store


def close(store: ListingStore) -> None:
    for db in store._dbs.values():
        db.close()
    store._dbs.clear()


def changelog(*records: tuple[int, bytes, bytes | None]) -> list[Any]:
    """Changelog events of partition 0 as faust's recovery hands them: (offset, key, value)."""
    return [
        SimpleNamespace(
            message=SimpleNamespace(
                tp=TP(TOPIC, 0), partition=0, offset=offset, key=key, value=value
            )
        )
        for offset, key, value in records
    ]


def listed(listing: Renderer, db: Rdict, key: bytes) -> dict[str, Any] | None:
    found = listing.listings(db).current(key)
    return None if found is None else orjson.loads(found.json)


def identity(value: Any) -> Any:
    return value


def test_a_restored_batch_removes_the_listings_of_its_keys(
    tmp_path: Path, values: dict[int, tuple[bytes, bytes]]
) -> None:
    listing = renderer()
    store = open_store(tmp_path, listing)
    db = store._db_for_partition(0)
    (key, first), (_, second) = values[1], values[2]
    store.apply_changelog_batch(changelog((5, key, first)), identity, identity)
    assert listed(listing, db, key) == render_listed(CODEC.decode(first))
    assert key in kept(db)
    store.apply_changelog_batch(changelog((6, key, second)), identity, identity)
    assert key not in kept(db)  # removed with the write: never served for the old value
    assert listed(listing, db, key) == render_listed(CODEC.decode(second))
    store.apply_changelog_batch(changelog((7, key, None)), identity, identity)
    assert key not in kept(db)
    assert listed(listing, db, key) is None
    # The listings are marked in step with what faust persisted.
    assert db.get(OFFSET_KEY) == b"7"
    assert db.get_column_family(listing.name).get(OFFSET_KEY) == b"7"
    close(store)


def test_listings_in_step_are_kept_when_a_partition_opens_again_and_others_dropped(
    tmp_path: Path, values: dict[int, tuple[bytes, bytes]]
) -> None:
    listing = renderer()
    key, raw = values[1]
    store = open_store(tmp_path, listing)
    db = store._db_for_partition(0)
    store.apply_changelog_batch(changelog((3, key, raw)), identity, identity)
    assert listed(listing, db, key) is not None
    close(store)

    store = open_store(tmp_path, listing)
    db = store._db_for_partition(0)
    assert key in kept(db)  # in step: kept
    # Then the table is written by someone who does not keep the listings in step (an
    # earlier version of the worker): its value changes, the offset moves on.
    db.put(key, values[2][1])
    db.put(OFFSET_KEY, b"4")
    db.create_column_family(LEGACY, Options(raw_mode=True))
    db.create_column_family(PREFIX + "of-another-schema", Options(raw_mode=True))
    close(store)

    store = open_store(tmp_path, listing)
    db = store._db_for_partition(0)
    assert Rdict.list_cf(db.path()) == ["default", listing.name]
    assert kept(db) == {}
    assert listed(listing, db, key) == render_listed(CODEC.decode(values[2][1]))
    close(store)
