"""Worker configuration: one typed object, read from ``DEPLOYSTREAM_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerSettings"]

MIB = 1024 * 1024


class WorkerSettings(BaseSettings):
    """Settings of one faust worker. Every field is ``DEPLOYSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    deployments_topic: str = Field("deployments", description="Topic of DeploymentEvent records.")
    app_id: str = Field("deploystream", description="faust app id: consumer group and prefix.")
    partitions: int = Field(8, description="Partitions of the deployments topic and the table.")
    replication_factor: int = Field(1, description="Replication factor of created topics.")
    standby_replicas: int = Field(1, description="Standby copies of each table partition.")
    worker_host: str = Field("127.0.0.1", description="Address the worker's web server binds.")
    worker_port: int = Field(6066, description="Port of the worker's web server.")
    worker_url: str | None = Field(
        None, description="URL other workers use to reach this one (default http://host:port)."
    )
    data_dir: Path = Field(Path("var/worker"), description="RocksDB data (one folder per worker).")
    rocksdb_block_cache_bytes: int = Field(4 * MIB, description="Block cache per partition DB.")
    rocksdb_write_buffer_bytes: int = Field(4 * MIB, description="Write buffer per partition DB.")
    rocksdb_write_buffers: int = Field(2, description="Write buffers per partition DB.")
    log_level: str = Field("info", description="Worker log level.")
