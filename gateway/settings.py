"""Gateway configuration: one typed object, read from ``DEPLOYSTREAM_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_CLOUD_ID", "GatewaySettings"]

#: A fixed UUID, so that every gateway of an installation that sets none answers the same.
DEFAULT_CLOUD_ID = "6f8d8a2c-3c1e-4b5e-9a57-0d3e5c1f2b7a"


class GatewaySettings(BaseSettings):
    """Settings of the HTTP gateway. Every field is ``DEPLOYSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
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
    max_body_bytes: int = Field(
        1_048_576, description="Largest accepted request body; larger bodies get 413."
    )
    max_deployments: int = Field(100, description="Most deployments in one submission (413).")
    produce_timeout_s: float = Field(
        10.0, description="How long Kafka may take to acknowledge before the client gets 503."
    )
    lookup_timeout_s: float = Field(5.0, description="Timeout of one lookup at a worker.")
    retry_after_s: int = Field(5, description="Retry-After sent with 503 when Kafka is down.")
    clients_file: Path | None = Field(
        None, description="YAML file of clients, credentials and scopes (required in production)."
    )
    token_signing_key: SecretStr | None = Field(
        None, description="HS256 key (32+ chars) signing OAuth access tokens (required in prod)."
    )
    token_ttl_s: int = Field(900, description="Lifetime of issued access tokens.")
    jwt_leeway_s: int = Field(30, description="Clock skew allowed on iat/exp of tokens.")
    dev_mode: bool = Field(
        False,
        description="Development mode: without a clients file, one client with every scope.",
    )
    dev_client_id: str = Field("dev", description="Id (tenant) of the development client.")
    dev_secret: SecretStr | None = Field(
        None, description="Secret of the development client (random when unset)."
    )
    rate_limit_per_s: float = Field(200.0, gt=0, description="Requests per second per client.")
    rate_limit_burst: int = Field(
        400, gt=0, description="Bucket size of the per-client rate limit."
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
