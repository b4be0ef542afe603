"""SIGTERM on the gateway drains in-flight requests and the producer before it exits: every
request it accepted gets its answer, and every 202 is in Kafka."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from tests.e2e.conftest import API, Stack, secret_of, start_stack
from tests.e2e.test_deployments_api import deployment


@pytest.fixture
def own_stack(
    kafka: ProvidedBroker, schema_registry: ProvidedRegistry, tmp_path: Path
) -> Iterator[Stack]:
    # A long linger keeps each request inside its handler (awaiting Kafka) for ~1.5 s, so
    # the SIGTERM below reliably lands while requests are in flight.
    running = start_stack(
        kafka, schema_registry, tmp_path, partitions=4, env={"DEPLOYSTREAM_LINGER_MS": "1500"}
    )
    yield running
    running.http.close()
    running.stop()


def test_sigterm_answers_accepted_requests_and_loses_no_202(own_stack: Stack) -> None:
    stack = own_stack
    results: dict[int, int | str] = {}
    started = threading.Barrier(9)

    def submit(batch: int) -> None:
        body = {"deployments": [deployment(number=batch * 100 + i) for i in range(100)]}
        # One connection per request: nothing idle for the server to close under us.
        with httpx.Client(
            base_url=stack.base_url, timeout=30, auth=("alpha", secret_of("alpha"))
        ) as client:
            started.wait()
            try:
                results[batch] = client.post(f"{API}/bulk", json=body).status_code
            except httpx.ConnectError:
                results[batch] = "refused"  # arrived after the listener closed: never accepted

    threads = [threading.Thread(target=submit, args=(b,)) for b in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.5)
    assert stack.gateway.process is not None
    stack.gateway.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    assert stack.gateway.process.wait(60) == 0
    assert set(results) == set(range(8))
    assert all(status in (202, "refused") for status in results.values()), results
    accepted = [batch for batch, status in results.items() if status == 202]
    assert accepted, "at least the requests already in flight must have been answered"

    # Bring the gateway back and check every accepted deployment arrived.
    stack.gateway.start().wait_ready(60)
    stack.wait_caught_up()
    with stack.client("alpha") as client:
        for batch in accepted:
            for i in (0, 50, 99):
                number = batch * 100 + i
                assert client.get(stack.path("web", "prod", number)).status_code == 200, number
