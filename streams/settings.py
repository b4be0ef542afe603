"""Worker configuration: one typed object, read from ``DEPLOYSTREAM_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerSettings", "librdkafka_security"]

MIB = 1024 * 1024
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""


class WorkerSettings(BaseSettings):
    """Settings of one faust worker. Every field is ``DEPLOYSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    # The DEPLOYSTREAM_KAFKA_* security settings are the gateway's too (same names, same
    # meaning; tests/unit/test_kafka_security.py keeps the two classes in step).
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="How clients talk to Kafka (SASL_SSL in production)."
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_* protocols."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_ca_file: Path | None = Field(
        None, description="PEM file of the CA(s) that signed the brokers' certificates."
    )
    kafka_ssl_cert_file: Path | None = Field(
        None, description="PEM client certificate, for brokers that require one (mTLS)."
    )
    kafka_ssl_key_file: Path | None = Field(None, description="PEM key of the client certificate.")
    max_record_bytes: int = Field(
        MIB,
        ge=64 * 1024,
        description="Largest Kafka record: max.message.bytes of the topics the worker creates "
        "and the largest record its producer sends; a change whose stored value would be "
        "larger is dead-lettered instead.",
    )
    internal_secret: SecretStr | None = Field(
        None,
        description="Shared secret (32+ chars) required on /internal/... calls (required).",
    )
    secrets_dir: Path | None = Field(
        None, description="Folder of files named after settings (container secrets)."
    )
    deployments_topic: str = Field("deployments", description="Topic of DeploymentEvent records.")
    dead_letter_topic: str = Field(
        "deployments-dead-letter",
        description="Where records that cannot be applied are copied (Avro DeadLetter).",
    )
    state_topic: str = Field(
        "deployments-state",
        description="Compacted topic of current state (the table's changelog), public.",
    )
    schema_registry_url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        description="URL of a Confluent-compatible schema registry API.",
    )
    app_id: str = Field("deploystream", description="faust app id: consumer group and prefix.")
    partitions: int = Field(8, description="Partitions of the deployments topic and the table.")
    replication_factor: int = Field(1, description="Replication factor of created topics.")
    standby_replicas: int = Field(1, description="Standby copies of each table partition.")
    session_timeout_s: float = Field(
        45.0,
        description="Kafka consumer-group session timeout: how long a dead worker keeps its "
        "partitions before they move to the others.",
    )
    group_instance_id: str | None = Field(
        None,
        description="Static consumer-group membership: a name unique to this worker and "
        "stable across its restarts. A restarted worker then takes its partitions back at "
        "once instead of after the session timeout (see README, Restarts).",
    )
    worker_host: str = Field("127.0.0.1", description="Address the worker's web server binds.")
    worker_port: int = Field(6066, description="Port of the worker's web server.")
    worker_url: str | None = Field(
        None, description="URL other workers use to reach this one (default http://host:port)."
    )
    data_dir: Path = Field(Path("var/worker"), description="RocksDB data (one folder per worker).")
    rocksdb_block_cache_bytes: int = Field(4 * MIB, description="Block cache per partition DB.")
    max_poll_records: int = Field(
        1000,
        ge=1,
        description="Most records one consumer fetch hands over. It bounds the memory of "
        "records decoded and in flight, most of all while restoring a changelog of small "
        "index records.",
    )
    max_partition_fetch_bytes: int = Field(
        MIB,
        ge=64 * 1024,
        description="Most bytes fetched per partition in one request (Kafka's "
        "max.partition.fetch.bytes).",
    )
    rocksdb_write_buffer_bytes: int = Field(4 * MIB, description="Write buffer per partition DB.")
    rocksdb_write_buffers: int = Field(2, description="Write buffers per partition DB.")
    log_level: str = Field("info", description="Worker log level.")
    apply_batch_max: int = Field(
        1000,
        ge=1,
        description="Most input records applied in one batch (one changelog flush, one "
        "RocksDB write per partition).",
    )
    apply_batch_ms: float = Field(
        5.0,
        ge=0,
        description="How long a batch waits for more records after its first one.",
    )
    stop_grace_s: float = Field(
        5.0,
        ge=0,
        description="On a stop, how long a batch in flight may still wait for Kafka before "
        "it is left unacknowledged for the next owner to apply again.",
    )
    shutdown_timeout_s: float = Field(
        8.0,
        gt=0,
        description="After SIGTERM/SIGINT, how long the worker may take to stop gracefully "
        "(leave its group, close its clients) before it exits anyway.",
    )
    gating_environment_types: frozenset[str] = Field(
        frozenset({"production"}),
        description="Environment types whose gated deployments wait for an approver (JSON list);"
        " gated deployments elsewhere are allowed at once.",
    )
    jira_base_url: str = Field(
        "https://jira.example.com",
        description="Base URL of the Jira site; gating details link to <base>/browse/<issue>.",
    )

    @model_validator(mode="after")
    def _advertised_url_is_routable(self) -> WorkerSettings:
        # Peers proxy lookups to this URL; http://0.0.0.0:port would send them to themselves.
        if self.worker_url is None and _is_wildcard(self.worker_host):
            msg = (
                f"DEPLOYSTREAM_WORKER_HOST={self.worker_host!r} binds every address; set "
                "DEPLOYSTREAM_WORKER_URL to the URL other workers can reach this one at"
            )
            raise ValueError(msg)
        return self

    @classmethod
    def load(cls) -> WorkerSettings:
        """The settings from the environment, then from files in ``secrets_dir`` if set."""
        settings = cls()
        if settings.secrets_dir is None:
            return settings
        return cls(_secrets_dir=settings.secrets_dir)

    def librdkafka_config(self) -> dict[str, str]:
        """Bootstrap and security options of confluent-kafka clients."""
        return librdkafka_security(
            self.kafka_bootstrap,
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            self.kafka_sasl_password,
            self.kafka_ssl_ca_file,
            self.kafka_ssl_cert_file,
            self.kafka_ssl_key_file,
        )

    @property
    def advertised_url(self) -> str:
        """The URL this worker announces to its peers (faust's ``canonical_url``)."""
        if self.worker_url is not None:
            return self.worker_url.rstrip("/")
        host = self.worker_host
        if ":" in host:  # an IPv6 literal needs brackets in a URL
            host = f"[{host}]"
        return f"http://{host}:{self.worker_port}"


def librdkafka_security(
    bootstrap: str,
    protocol: str,
    mechanism: str,
    username: str | None,
    password: SecretStr | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> dict[str, str]:
    """librdkafka's names for the ``DEPLOYSTREAM_KAFKA_*`` settings."""
    config = {"bootstrap.servers": bootstrap, "security.protocol": protocol.lower()}
    if protocol.startswith("SASL"):
        config["sasl.mechanism"] = mechanism
        config["sasl.username"] = username or ""
        config["sasl.password"] = password.get_secret_value() if password else ""
    if protocol.endswith("SSL"):
        if ca_file is not None:
            config["ssl.ca.location"] = str(ca_file)
        if cert_file is not None:
            config["ssl.certificate.location"] = str(cert_file)
        if key_file is not None:
            config["ssl.key.location"] = str(key_file)
    return config
