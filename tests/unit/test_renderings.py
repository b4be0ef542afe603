"""Listings kept beside the stored deployments: the same answers as decoding, rendered once
per stored version, removed by every write of their key, and dropped when a partition opens
unless they are of this version and in step with the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import generate_latest
from rocksdict import Rdict

from gateway.events import deployment_deleted
from streams.deployments.index import IndexName, carried_by, terms_prefix
from streams.deployments.queries import (
    Item,
    PartitionData,
    PipelineMemo,
    environment_history,
    environments_latest,
    issue_deployments,
    pipelines,
)
from streams.deployments.renderings import OFFSET_KEY, FamilyOptions, Renderer
from streams.deployments.views import render_listed, without_nulls
from streams.metrics import WorkerMetrics
from tests.unit.test_queries import CODEC, CODECS, Store, submit

SIZES = FamilyOptions(1 << 20, 2, 1 << 20)


def renderer(schema: bytes = b"reader schema") -> Renderer:
    return Renderer(CODEC.decode, schema, SIZES)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path, renderer())
    yield opened
    opened.close()


def decoded(store: Store) -> list[PartitionData]:
    return [PartitionData(s, i, CODEC.decode) for s, i in store.dbs]


def as_json(items: list[Item]) -> list[bytes]:
    return [
        i.rendered if i.rendered is not None else orjson.dumps(render_listed(i.value or {}))
        for i in items
    ]


def kept(db: Rdict, name: str | None = None) -> dict[bytes, bytes]:
    """The listings of a partition's family ``name`` (this version's), by key."""
    family = db.get_column_family(name or renderer().name)
    iterator = family.iter()
    iterator.seek_to_first()
    found = {}
    while iterator.valid():
        if iterator.key() != OFFSET_KEY:
            found[iterator.key()] = iterator.value()
        iterator.next()
    return found


def test_pages_from_kept_listings_are_the_decoded_pages(store: Store) -> None:
    for number in range(1, 30):
        submit(store, number, issues=["OPS-1", f"OPS-{number % 3 + 2}"], minute=number)
    assert store.renderer is not None
    reads = (
        lambda data: issue_deployments(data, "a", "OPS-1", None, 10),
        lambda data: issue_deployments(data, "a", "OPS-3", None, 50),
        lambda data: environment_history(data, "a", "p", "e", None, 7),
        lambda data: environments_latest(data, "a", "p", None, 5),
    )
    for read in reads:
        assert as_json(read(store.data())) == as_json(read(decoded(store)))
    rendered = store.renderer.misses
    assert rendered > 0
    for read in reads:  # again: every listing is kept now
        assert as_json(read(store.data())) == as_json(read(decoded(store)))
    assert store.renderer.misses == rendered
    assert store.renderer.hits > 0


def test_a_listing_is_the_lookup_rendering_with_its_pipeline_and_environment(
    store: Store,
) -> None:
    key = submit(store, 7, pipeline="web", environment="prod", issues=["OPS-9"])
    assert store.renderer is not None
    [data] = [d for d in store.data() if d.state.get(key) is not None]
    raw = data.state.get(key)
    assert raw is not None and data.listings is not None
    listed = data.listings.current(key)
    assert listed is not None
    stored = CODEC.decode(raw)
    assert listed.json == orjson.dumps(render_listed(stored))
    assert listed.lookup == orjson.dumps(without_nulls(stored["deployment"]))
    assert data.listings.current(key) == listed  # kept this time
    assert store.renderer.misses == 1
    assert data.listings.current(b"not stored") is None


def test_an_update_moves_the_listing_and_a_delete_removes_it(store: Store) -> None:
    key = submit(store, 1, issues=["OPS-1"], usn=1, minute=1)
    assert len(issue_deployments(store.data(), "a", "OPS-1", None, 10)) == 1
    submit(store, 1, issues=["OPS-2"], usn=2, minute=2)
    assert issue_deployments(store.data(), "a", "OPS-1", None, 10) == []
    moved = issue_deployments(store.data(), "a", "OPS-2", None, 10)
    assert [orjson.loads(i.rendered or b"")["issueKeys"] for i in moved] == [["OPS-2"]]
    assert any(key in kept(state) for state, _ in store.dbs)
    store.apply(key, CODECS.event.decode(deployment_deleted(CODECS, "a", "p", "e", 1, None).value))
    assert issue_deployments(store.data(), "a", "OPS-2", None, 10) == []
    assert not any(key in kept(state) for state, _ in store.dbs)


def test_a_write_removes_the_listing_of_its_key_which_is_rendered_again_once(
    store: Store,
) -> None:
    assert store.renderer is not None
    key = submit(store, 1, issues=["OPS-1"], usn=1, minute=1)
    other = submit(store, 2, issues=["OPS-1"], usn=1, minute=1)
    issue_deployments(store.data(), "a", "OPS-1", None, 10)
    assert store.renderer.misses == 2
    submit(store, 1, issues=["OPS-1"], usn=2, minute=2)
    assert not any(key in kept(state) for state, _ in store.dbs)
    assert any(other in kept(state) for state, _ in store.dbs)  # another key's stays
    first, _ = issue_deployments(store.data(), "a", "OPS-1", None, 10)
    assert first.rendered is not None
    assert orjson.loads(first.rendered)["updateSequenceNumber"] == 2
    assert store.renderer.misses == 3
    issue_deployments(store.data(), "a", "OPS-1", None, 10)
    assert store.renderer.misses == 3


def test_listings_of_another_reader_schema_are_not_used(store: Store) -> None:
    for number in range(1, 6):
        submit(store, number)
    other = renderer(b"another reader schema")
    data = [PartitionData(s, i, CODEC.decode, other.listings(s)) for s, i in store.dbs]
    assert as_json(environment_history(data, "a", "p", "e", None, 10)) == as_json(
        environment_history(decoded(store), "a", "p", "e", None, 10)
    )
    assert other.hits == 0
    assert other.misses == 5


def test_the_pipelines_memo_follows_every_change_of_a_partition(store: Store) -> None:
    memo = PipelineMemo()

    def listed() -> list[dict[str, object]]:
        data = [PartitionData(s, i, CODEC.decode, None, memo) for s, i in store.dbs]
        return [item.value for item in pipelines(data, "a", None, 10) if item.value]

    key = submit(store, 1, pipeline="web", environment="prod")
    assert listed() == [{"pipelineId": "web", "environments": ["prod"]}]
    assert listed() == listed()  # from the memo
    submit(store, 2, pipeline="web", environment="qa")
    submit(store, 3, pipeline="api", environment="prod")
    assert listed() == [
        {"pipelineId": "api", "environments": ["prod"]},
        {"pipelineId": "web", "environments": ["prod", "qa"]},
    ]
    store.apply(
        key, CODECS.event.decode(deployment_deleted(CODECS, "a", "web", "prod", 1, None).value)
    )
    assert listed() == [
        {"pipelineId": "api", "environments": ["prod"]},
        {"pipelineId": "web", "environments": ["qa"]},
    ]
    # Pages after a cursor come from the memo too.
    data = [PartitionData(s, i, CODEC.decode, None, memo) for s, i in store.dbs]
    first = pipelines(data, "a", None, 1)
    assert [i.value for i in pipelines(data, "a", first[0].sort, 5)] == [
        {"pipelineId": "web", "environments": ["qa"]}
    ]


def test_the_worker_exports_how_many_listings_were_kept_or_rendered(store: Store) -> None:
    metrics = WorkerMetrics()
    listing = store.renderer
    assert listing is not None
    metrics.watch_listings(lambda: (listing.hits, listing.misses))
    submit(store, 1)
    for _ in range(3):
        environment_history(store.data(), "a", "p", "e", None, 10)
    exported = generate_latest(metrics.registry).decode()
    assert 'deploystream_worker_listings_total{source="kept"} 2.0' in exported
    assert 'deploystream_worker_listings_total{source="rendered"} 1.0' in exported


def test_a_listing_lists_exactly_its_entry_heads(store: Store) -> None:
    key = submit(store, 3, issues=["OPS-1", "OPS-12"], minute=4)
    [data] = [d for d in store.data() if d.state.get(key) is not None]
    raw = data.state.get(key)
    assert raw is not None and data.listings is not None
    listed = data.listings.current(key)
    assert listed is not None
    heads = carried_by(CODEC.decode(raw)).heads()
    assert len(heads) == 3
    for head in heads:
        assert listed.lists(head)
        assert not listed.lists(head[:-1])  # a prefix of a head is not one
        assert not listed.lists(head + b"\x00")
    other = terms_prefix("a", IndexName.ISSUE, ("OPS-2",)) + heads[0][-8:]
    assert not listed.lists(other)


def test_a_listing_is_kept_only_for_a_value_still_stored_as_it_was_read(store: Store) -> None:
    # The index rebuild reads a chunk of values, waits for its changelog, then keeps their
    # listings: a value written meanwhile must not get the listing of the one read before.
    assert store.renderer is not None
    key = submit(store, 1, usn=1)
    [state] = [s for s, _ in store.dbs if s.get(key) is not None]
    read = state.get(key)
    assert read is not None
    submit(store, 1, usn=2)
    store.renderer.keep(state, [(key, read, CODEC.decode(read))])
    assert key not in kept(state)
    now = state.get(key)
    assert now is not None
    store.renderer.keep(state, [(key, now, CODEC.decode(now))])
    assert kept(state)[key].endswith(orjson.dumps(render_listed(CODEC.decode(now))))


def test_a_write_removes_a_listing_that_is_only_on_disk(tmp_path: Path) -> None:
    # Listings of keys nobody read are not removed (no tombstone): the family is asked
    # whether a key may be there, and must never say no for one that is, in a file and out
    # of every cache included.
    tiny = Renderer(CODEC.decode, b"reader schema", FamilyOptions(1 << 20, 2, 1))
    store = Store(tmp_path, tiny)
    try:
        keys = [submit(store, number, usn=1) for number in range(1, 40)]
        for data in store.data():
            for key in keys:
                assert data.listings is not None
                data.listings.current(key)
        for state, _ in store.dbs:
            state.get_column_family(tiny.name).flush()
        listed = [key for key in keys if any(key in kept(s, tiny.name) for s, _ in store.dbs)]
        assert listed == keys
        for number in range(1, 40):
            submit(store, number, usn=2)
        assert not any(kept(s, tiny.name) for s, _ in store.dbs)
    finally:
        store.close()


def test_a_partition_the_apply_loop_wrote_opens_without_its_listings(store: Store) -> None:
    # The apply loop does not mark the listings in step (it would cost every apply write a
    # second column family): whatever it wrote since, the listings go when a partition opens.
    assert store.renderer is not None
    key = submit(store, 1)
    [state] = [s for s, _ in store.dbs if s.get(key) is not None]
    assert store.renderer.listings(state).current(key) is not None
    assert key in kept(state)
    store.renderer.prepare(state)
    assert kept(state) == {}
    rendered = store.renderer.misses
    assert store.renderer.listings(state).current(key) is not None
    assert store.renderer.misses == rendered + 1
