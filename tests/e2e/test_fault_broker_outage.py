"""The broker goes away under load and comes back: while it is down the gateway answers 503
with Retry-After (never 202) and is not ready; when it returns, gateway and worker recover by
themselves (same processes, no restart) and no acknowledged write is lost.

The broker is this module's own (a ``LocalKafka`` with a fixed port and work folder), so that
it can be SIGKILLed and started again on the same port and data without disturbing the
session's broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.model import HistoryConfig
from chaos.scenarios import LoadShape, ScenarioResult, broker_outage
from chaos.stack import UNLIMITED, ChaosStack
from deploystream.kafka.broker import LocalKafka, free_port
from deploystream.kafka.jars import ensure_libs
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from tests.e2e.conftest import secret_of, start_stack

#: Small, so that requests made while the broker is down are answered 503 quickly.
PRODUCE_TIMEOUT_S = 2
RETRY_AFTER_S = 1
OUTAGE_S = 6.0
SHAPE = LoadShape(
    lanes=4,
    history=HistoryConfig(keys_per_lane=30),
    gap_s=(1.0, 3.0),
    pause_s=0.01,
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    work_dir: Path = tmp_path_factory.mktemp("outage-kafka")
    local = LocalKafka(ensure_libs(), work_dir=work_dir, port=free_port())
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def outage(
    broker: LocalKafka,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> ScenarioResult:
    running = start_stack(
        ProvidedBroker(broker.bootstrap, "maven", broker),
        schema_registry,
        tmp_path_factory.mktemp("outage"),
        partitions=4,
        env={
            "DEPLOYSTREAM_PRODUCE_TIMEOUT_S": str(PRODUCE_TIMEOUT_S),
            "DEPLOYSTREAM_RETRY_AFTER_S": str(RETRY_AFTER_S),
            **UNLIMITED,
        },
    )
    running.http.close()
    stack = ChaosStack(
        running.config, running.workers, running.gateway, ("alpha", secret_of("alpha"))
    )
    try:
        result = broker_outage(stack, broker, seed=5, outage_s=OUTAGE_S, shape=SHAPE)
    finally:
        stack.stop()
    print(f"\n{result.summary()}")
    return result


def test_gateway_answers_503_with_retry_after_and_never_202_while_the_broker_is_down(
    outage: ScenarioResult,
) -> None:
    answers = outage.extra["answers_while_down"]
    # Each lane waits out the produce timeout, then retries: several 503s per lane.
    assert answers.get("503", 0) >= 4, answers
    assert set(answers) == {"503"}, answers
    assert outage.extra["acked_while_down"] == 0
    assert outage.extra["503_without_retry_after"] == 0


def test_gateway_is_not_ready_while_the_broker_is_down(outage: ScenarioResult) -> None:
    readyz = outage.extra["readyz_while_down"]
    assert len(readyz) >= 3, readyz
    assert all(status == 503 for _, status in readyz), readyz


def test_gateway_and_worker_recover_by_themselves_when_the_broker_returns(
    outage: ScenarioResult,
) -> None:
    [fault] = outage.faults
    # Same processes as before the outage, still running...
    assert all(outage.extra["same_processes"].values()), outage.extra["same_processes"]
    # ...ready and acknowledging again soon after the broker is (seconds after its restart).
    assert fault["gateway_ready_after_restart_s"] < 60, fault
    assert fault["acks_after_restart_s"] < 60, fault
    assert fault["workers_ready_after_restart_s"] < 90, fault


def test_no_acknowledged_write_is_lost_over_a_broker_outage(outage: ScenarioResult) -> None:
    assert outage.outcomes.get("acked", 0) >= 40  # before and after the outage
    assert outage.unexpected == []
    assert outage.lookup_mismatches == []
    assert outage.state_mismatches == []
