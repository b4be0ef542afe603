"""The whole stack as processes: the session's broker, then worker(s) and gateway per module."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import Services, StackConfig, start_services
from gateway.clients import hash_secret

API = "/rest/deployments/0.1"
SIGNING_KEY = "test-signing-key-0123456789abcdef0123456789"

# Tenants of the e2e stack: every credential style is configured for each.
CLIENTS: dict[str, dict[str, Any]] = {
    "alpha": {"scopes": ["READ", "WRITE", "DELETE"]},
    "beta": {"scopes": ["READ", "WRITE", "DELETE"]},
    "reader": {"scopes": ["READ"]},
    "approver": {"scopes": ["READ", "APPROVE_GATING"], "approvesFor": ["alpha"]},
    "throttled": {"scopes": ["READ"], "rateLimitBurst": 3, "rateLimitPerSecond": 0.1},
    # Checks issue keys against its issue registry, fed by its Jira webhook and imports.
    "gamma": {"scopes": ["READ", "WRITE", "DELETE"], "issueRegistry": True},
}


def webhook_secret_of(client_id: str) -> str:
    """The test secret of a client's Jira webhook (configured for the registry tenants)."""
    return f"{client_id}-webhook-secret-0123456789"


def secret_of(client_id: str) -> str:
    """The test secret of a client (shared secret, client secret and API token alike)."""
    return f"{client_id}-secret-0123456789abcdef0123456789"


def write_clients_file(path: Path, clients: dict[str, dict[str, Any]] | None = None) -> Path:
    """A clients file for ``clients`` (CLIENTS by default), secrets stored as the gateway
    expects them."""
    entries = {
        client_id: {
            **entry,
            "sharedSecret": secret_of(client_id),
            "clientSecretHash": hash_secret(secret_of(client_id)),
            "apiTokenHashes": [hash_secret(secret_of(client_id))],
            **(
                {"webhookSecret": webhook_secret_of(client_id)}
                if entry.get("issueRegistry")
                else {}
            ),
        }
        for client_id, entry in (CLIENTS if clients is None else clients).items()
    }
    path.write_text(yaml.safe_dump({"clients": entries}))
    return path


@dataclass
class Stack(Services):
    """A running stack and an HTTP client for its gateway."""

    http: httpx.Client

    def client(self, client_id: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the gateway; with ``client_id``, Basic auth as that client."""
        auth = (client_id, secret_of(client_id)) if client_id else None
        return httpx.Client(base_url=self.base_url, timeout=30, auth=auth, **kwargs)

    def submit(self, *deployments: dict[str, Any], **extra: Any) -> httpx.Response:
        """POST deployments to the bulk endpoint."""
        return self.http.post(f"{API}/bulk", json={"deployments": list(deployments), **extra})

    def path(self, pipeline: str, environment: str, number: int | str) -> str:
        """The deployment path, with identifiers percent-encoded as clients do."""
        return (
            f"{API}/pipelines/{quote(pipeline, safe='')}/environments/"
            f"{quote(environment, safe='')}/deployments/{number}"
        )

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Block until the workers committed every record on the topic: all that was sent
        before this call has been applied (faust commits only after processing)."""
        consumer = Consumer(
            {"bootstrap.servers": self.config.bootstrap, "group.id": self.config.app_id}
        )
        try:
            partitions = [
                TopicPartition(self.config.topic, p) for p in range(self.config.partitions)
            ]
            marks = [consumer.get_watermark_offsets(tp, timeout=10) for tp in partitions]
            ends = [high for _, high in marks]
            deadline = time.monotonic() + timeout
            while True:
                committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
                # An empty partition has no committed offset (negative) and nothing to apply.
                if all(
                    c >= high or (c < 0 and low >= high)
                    for c, (low, high) in zip(committed, marks, strict=True)
                ):
                    return
                if time.monotonic() > deadline:
                    msg = f"workers did not catch up: committed {committed}, end {ends}"
                    raise TimeoutError(msg)
                time.sleep(0.2)
        finally:
            consumer.close()

    def wait_for(
        self,
        path: str,
        predicate: Callable[[httpx.Response], bool],
        timeout: float = 30.0,
    ) -> httpx.Response:
        """GET ``path`` until ``predicate`` holds; the last response otherwise (assert on it)."""
        deadline = time.monotonic() + timeout
        response = self.http.get(path)
        while not predicate(response) and time.monotonic() < deadline:
            time.sleep(0.1)
            response = self.http.get(path)
        return response


def start_stack(
    kafka: ProvidedBroker,
    registry: ProvidedRegistry,
    tmp: Path,
    *,
    workers: int = 1,
    partitions: int = 8,
    env: dict[str, str] | None = None,
) -> Stack:
    """Start ``workers`` workers and a gateway on a topic and app id of their own."""
    suffix = tmp.name[-12:].replace("_", "-")
    config = StackConfig.in_folder(
        kafka.bootstrap,
        registry.url,
        tmp,
        workers=workers,
        partitions=partitions,
        topic=f"deployments-{suffix}",
        app_id=f"deploystream-{suffix}",
        extra_env={
            "DEPLOYSTREAM_CLIENTS_FILE": str(write_clients_file(tmp / "clients.yaml")),
            "DEPLOYSTREAM_TOKEN_SIGNING_KEY": SIGNING_KEY,
            "DEPLOYSTREAM_JIRA_BASE_URL": "https://jira.test",
            **(env or {}),
        },
    )
    services = start_services(config)
    http = httpx.Client(base_url=services.base_url, timeout=30, auth=("alpha", secret_of("alpha")))
    return Stack(services.config, services.workers, services.gateway, http)


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One worker and a gateway, shared by the tests of a module."""
    running = start_stack(kafka, schema_registry, tmp_path_factory.mktemp("stack"))
    yield running
    running.http.close()
    running.stop()
