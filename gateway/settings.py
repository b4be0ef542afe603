"""Gateway configuration: one typed object, read from ``DEPLOYSTREAM_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings):
    """Settings of the HTTP gateway. Every field is ``DEPLOYSTREAM_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DEPLOYSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    deployments_topic: str = Field("deployments", description="Topic of DeploymentEvent records.")
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
    dev_mode: bool = Field(
        False,
        description="Development mode: no authentication, every request is the 'dev' tenant.",
    )
    dev_tenant: str = Field("dev", description="Tenant used for requests in development mode.")
    linger_ms: int = Field(2, description="librdkafka linger.ms of the gateway producer.")
