"""The deployments table: RocksDB through the rocksdict driver, Avro values, raw Avro keys."""

from __future__ import annotations

from typing import Any

import faust

from streams.codecs import StoredDeploymentCodec
from streams.settings import WorkerSettings

__all__ = ["TABLE_NAME", "create_table"]

TABLE_NAME = "deployments"


def create_table(app: faust.App, settings: WorkerSettings) -> Any:
    """Declare the table; its changelog is compacted and co-partitioned with the topic."""
    table = app.Table(
        TABLE_NAME,
        # bytes keys use the raw serializer: the table key is the gateway's Kafka key, byte for
        # byte, so faust's router hashes it to the partition the gateway's producer chose.
        key_type=bytes,
        value_type=None,
        partitions=settings.partitions,
        options={
            "driver": "rocksdict",
            # faust's defaults (2 GiB cache, 3 x 64 MiB buffers per partition DB) are sized
            # for servers; these are per partition DB, active and standby alike.
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "write_buffer_size": settings.rocksdb_write_buffer_bytes,
            "max_write_buffer_number": settings.rocksdb_write_buffers,
        },
    )
    # faust derives serializers from types only; the store and changelog topic are created
    # lazily, so setting this before the app starts makes every value Avro.
    table.value_serializer = StoredDeploymentCodec()  # type: ignore[attr-defined]
    return table
