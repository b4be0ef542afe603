"""Gateway configuration: one typed object, read from ``DEPLOYSTREAM_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_CLOUD_ID", "MIB", "GatewaySettings", "SecurityProtocol", "librdkafka_security"]

MIB = 1024 * 1024
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
#: A fixed UUID, so that every gateway of an installation that sets none answers the same.
DEFAULT_CLOUD_ID = "6f8d8a2c-3c1e-4b5e-9a57-0d3e5c1f2b7a"


class GatewaySettings(BaseSettings):
    """Settings of the HTTP gateway. Every field is ``DEPLOYSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
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
    deployments_topic: str = Field("deployments", description="Topic of DeploymentEvent records.")
    schema_registry_url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        description="URL of a Confluent-compatible schema registry API.",
    )
    gateway_host: str = Field("127.0.0.1", description="Address the gateway listens on.")
    gateway_port: int = Field(8080, description="Port the gateway listens on.")
    worker_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:6066"],
        description="Worker web endpoints (JSON list); any of them routes a lookup to the owner.",
    )
    internal_secret: SecretStr | None = Field(
        None,
        description="Shared secret (32+ chars) the gateway presents to workers (required).",
    )
    max_body_bytes: int = Field(
        8 * MIB, gt=0, description="Largest accepted request body; larger bodies get 413."
    )
    max_record_bytes: int = Field(
        MIB,
        ge=64 * 1024,
        description="Largest Kafka record (max.message.bytes of the topics the worker creates): "
        "a deployment whose stored form could be larger is rejected.",
    )
    max_inflight_body_bytes: int = Field(
        64 * MIB,
        gt=0,
        description="Request body bytes all requests may hold at once (503 above).",
    )
    max_connections: int = Field(
        1000, gt=0, description="Open connections per gateway (503 above)."
    )
    idle_timeout_s: float = Field(
        15.0,
        gt=0,
        description="A connection that sends no complete request head for this long is closed.",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="A request body must arrive within this time (408 otherwise)."
    )
    max_deployments: int = Field(100, description="Most deployments in one submission (413).")
    jira_base_url: str = Field(
        "https://jira.example.com",
        description="Base URL of the Jira site (the worker's gating links; sizes stored forms).",
    )
    produce_timeout_s: float = Field(
        10.0, description="How long Kafka may take to acknowledge before the client gets 503."
    )
    lookup_timeout_s: float = Field(5.0, description="Timeout of one lookup at a worker.")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The event loop the gateway runs on: uvloop (libuv; faster HTTP handling) "
        "or the standard library's.",
    )
    lookup_batches_in_flight: int = Field(
        2,
        ge=1,
        le=64,
        description="Batched lookup requests in flight to one worker; lookups arriving "
        "meanwhile wait and go together in the next.",
    )
    retry_after_s: int = Field(5, description="Retry-After sent with 503 when Kafka is down.")
    clients_file: Path | None = Field(
        None, description="YAML file of clients, credentials and scopes (required in production)."
    )
    clients_reload_s: float = Field(
        2.0, gt=0, description="How often the clients file is checked for changes."
    )
    token_signing_key: SecretStr | None = Field(
        None, description="HS256 key (32+ chars) signing OAuth access tokens (required in prod)."
    )
    token_ttl_s: int = Field(900, description="Lifetime of issued access tokens.")
    jwt_leeway_s: int = Field(30, description="Clock skew allowed on iat/exp of tokens.")
    jwt_max_lifetime_s: int = Field(
        3600, gt=0, description="Longest lifetime (exp - iat) of a Connect JWT that is accepted."
    )
    dev_mode: bool = Field(
        False,
        description="Development mode: without a clients file, one client with every scope.",
    )
    dev_client_id: str = Field("dev", description="Id (tenant) of the development client.")
    dev_secret: SecretStr | None = Field(
        None, description="Secret of the development client (required in development mode)."
    )
    rate_limit_per_s: float = Field(200.0, gt=0, description="Requests per second per client.")
    rate_limit_burst: int = Field(
        400, gt=0, description="Bucket size of the per-client rate limit."
    )
    auth_failure_rate_per_s: float = Field(
        1.0, gt=0, description="Failed authentications allowed per second per source address."
    )
    auth_failure_burst: int = Field(
        20, gt=0, description="Failed authentications a source address may make in a burst."
    )
    rate_limit_max_keys: int = Field(
        10_000, gt=0, description="Most rate-limit buckets (clients, source addresses) tracked."
    )
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Proxies (JSON list of addresses/networks) whose X-Forwarded-For is believed.",
    )
    linger_ms: int = Field(2, description="librdkafka linger.ms of the gateway producer.")
    issues_topic: str = Field(
        "deployments-issues",
        description="Compacted topic of the issue registry (known issue keys per tenant).",
    )
    issues_partitions: int = Field(
        1, gt=0, description="Partitions of the issue registry topic when a gateway creates it."
    )
    replication_factor: int = Field(
        1, gt=0, description="Replication factor of the topics the gateway creates."
    )
    cloud_id: str = Field(
        DEFAULT_CLOUD_ID,
        description="The installation's cloudId, answered by GET /_edge/tenant_info.",
    )
    state_topic: str = Field(
        "deployments-state",
        description="The workers' state topic, read by the change stream.",
    )
    max_change_streams: int = Field(
        100, gt=0, description="Change streams (Server-Sent Events) one gateway serves at once."
    )
    secrets_dir: Path | None = Field(
        None, description="Folder of files named after settings (container secrets)."
    )

    @classmethod
    def load(cls) -> GatewaySettings:
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
