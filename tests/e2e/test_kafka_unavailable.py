"""Kafka down: the gateway answers 503 with Retry-After, never 202, and is not ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from deploystream.kafka.broker import free_port
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import ServiceProcess, StackConfig, gateway_process
from tests.e2e.test_deployments_api import deployment


@pytest.fixture(scope="module")
def gateway_without_kafka(
    schema_registry: ProvidedRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    tmp: Path = tmp_path_factory.mktemp("nokafka")
    config = StackConfig(
        bootstrap=f"127.0.0.1:{free_port()}",  # nothing listens there
        registry_url=schema_registry.url,
        gateway_port=free_port(),
        worker_ports=[free_port()],
        data_dir=tmp / "data",
        log_dir=tmp / "logs",
        extra_env={
            "DEPLOYSTREAM_DEV_MODE": "true",
            "DEPLOYSTREAM_PRODUCE_TIMEOUT_S": "2",
            "DEPLOYSTREAM_DEV_SECRET": "nokafka-secret-0123456789abcdef0123456789",
        },
    )
    gateway: ServiceProcess = gateway_process(config)
    gateway.ready_url = gateway.ready_url.replace("/readyz", "/healthz")
    gateway.start().wait_ready(60)
    auth = ("dev", "nokafka-secret-0123456789abcdef0123456789")
    base = f"http://127.0.0.1:{config.gateway_port}"
    with httpx.Client(base_url=base, timeout=30, auth=auth) as client:
        # The schemas are registered (the registry is up): what is missing is Kafka only.
        deadline = time.monotonic() + 30
        while not client.get("/readyz").json()["registry"] and time.monotonic() < deadline:
            time.sleep(0.1)
        yield client
    assert gateway.stop() == 0


def test_submission_is_refused_with_503_and_retry_after(
    gateway_without_kafka: httpx.Client,
) -> None:
    response = gateway_without_kafka.post(
        "/rest/deployments/0.1/bulk", json={"deployments": [deployment(number=1)]}
    )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "Kafka" in response.json()[0]["message"]


def test_delete_is_refused_with_503(gateway_without_kafka: httpx.Client) -> None:
    response = gateway_without_kafka.delete(
        "/rest/deployments/0.1/pipelines/p/environments/e/deployments/1"
    )
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_readiness_reports_kafka_unreachable(gateway_without_kafka: httpx.Client) -> None:
    response = gateway_without_kafka.get("/readyz")
    assert response.status_code == 503
    assert response.json()["kafka"] is False
    assert response.json()["registry"] is True


def test_invalid_submission_is_still_a_400_without_kafka(
    gateway_without_kafka: httpx.Client,
) -> None:
    response = gateway_without_kafka.post(
        "/rest/deployments/0.1/bulk",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_readiness_answers_at_once_however_many_ask(gateway_without_kafka: httpx.Client) -> None:
    # Probes read what the gateway's Kafka monitor last saw: none of them waits on Kafka, so
    # none of them can fill the threads lookups and other requests need.
    base = str(gateway_without_kafka.base_url)

    def probe(_: int) -> tuple[int, float]:
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=30) as client:
            status = client.get("/readyz").status_code
        return status, time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(probe, range(40)))
    elapsed = time.monotonic() - started
    assert {status for status, _ in results} == {503}
    assert elapsed < 3, f"40 readiness probes took {elapsed:.1f}s"
    assert max(took for _, took in results) < 2
