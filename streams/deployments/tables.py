"""The worker's tables: RocksDB through the rocksdict driver, Avro values, raw Avro keys."""

from __future__ import annotations

from typing import Any

import faust

from schemas.registry import RecordCodec
from streams.codecs import AvroValueCodec
from streams.deployments.renderings import Renderer
from streams.deployments.store import DeploymentsTable
from streams.settings import WorkerSettings

__all__ = [
    "INDEX_NAME",
    "TABLE_NAME",
    "create_index",
    "create_table",
    "index_changelog_name",
]

TABLE_NAME = "deployments"
INDEX_NAME = "deployment-index"


def _avro_table(
    app: faust.App,
    settings: WorkerSettings,
    name: str,
    changelog_name: str,
    avro: RecordCodec,
    renderer: Renderer | None = None,
) -> Any:
    """A bytes-keyed table whose values, changelog writes and recovery reads are all Avro;
    with a ``renderer``, its partitions keep listings beside the values
    (:mod:`streams.deployments.store`).

    The changelog is declared here, with the same arguments as faust's own
    (faust.tables.base._new_changelog_topic): faust would otherwise build a lazy changelog
    with the JSON serializer when the table is declared, and recovery would read Avro values
    as JSON. It must be passed at declaration: the table manager indexes tables by changelog
    name then.
    """
    codec = AvroValueCodec(avro)
    changelog = app.topic(
        changelog_name,
        key_type=bytes,
        value_type=None,
        key_serializer="raw",
        value_serializer=codec,
        partitions=settings.partitions,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        maxsize=131_072,
        allow_empty=True,
    )
    declared: dict[str, Any] = {
        # bytes keys use the raw serializer: the table key is the gateway's Kafka key, byte
        # for byte, so faust's router hashes it to the partition the gateway's producer chose.
        "key_type": bytes,
        "value_type": None,
        "partitions": settings.partitions,
        "changelog_topic": changelog,
        "options": {
            "driver": "rocksdict",
            # faust's defaults (2 GiB cache, 3 x 64 MiB buffers per partition DB) are sized
            # for servers; these are per partition DB, active and standby alike.
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "write_buffer_size": settings.rocksdb_write_buffer_bytes,
            "max_write_buffer_number": settings.rocksdb_write_buffers,
        },
    }
    table: Any
    if renderer is None:
        table = app.Table(name, **declared)
    else:  # what app.Table does, with a table class of our own
        table = app.tables.add(
            DeploymentsTable(
                app, name=name, beacon=app.tables.beacon, renderer=renderer, **declared
            )
        )
    # faust derives serializers from types only; the store is created lazily and takes the
    # table's serializer, and changelog writes pass it explicitly, so every value is Avro.
    # Deletes are sent with the raw serializer and a None value: a tombstone.
    table.value_serializer = codec
    return table


def create_table(
    app: faust.App,
    settings: WorkerSettings,
    codec: RecordCodec,
    renderer: Renderer | None = None,
) -> Any:
    """The deployments table (``StoredDeployment`` values through ``codec``; listings of
    ``renderer`` beside them). Its changelog has a name of our choosing (not "<app
    id>-deployments-changelog") because it is the public state topic other services
    consume: one write per change serves recovery, standbys and them."""
    return _avro_table(app, settings, TABLE_NAME, settings.state_topic, codec, renderer)


def create_index(app: faust.App, settings: WorkerSettings, codec: RecordCodec) -> Any:
    """The secondary indexes: DeploymentIndexKey -> DeploymentIndexEntry (through
    ``codec``), per partition (see :mod:`streams.deployments.index`).

    It is written while applying events of a partition, so its entries live in (and its
    changelog is co-partitioned with) the partition of the deployments they list.
    """
    return _avro_table(
        app,
        settings,
        INDEX_NAME,
        index_changelog_name(settings),
        codec,
    )


def index_changelog_name(settings: WorkerSettings) -> str:
    """The index's changelog topic (internal)."""
    return f"{settings.app_id}-{INDEX_NAME}-changelog"
