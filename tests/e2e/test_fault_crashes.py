"""Crashes under steady load lose nothing: the worker and the gateway are SIGKILLed at random
(seeded) moments and restarted, and afterwards every key is what the reference model built
from the acknowledged operations allows: looked up through the gateway, rebuilt from the
public state topic, and listed by every query of the query API.

The load (``chaos.load``): four lanes, each sending its own seeded history one request at a
time: submissions of up to five deployments with out-of-order, equal and 2**53-sized
updateSequenceNumbers, deletes by key (with and without a limit) and by properties. A 202 is
certain; a request the gateway took down with it is unknown to the model, which then allows
both outcomes for the keys concerned (``chaos.model``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.model import HistoryConfig
from chaos.scenarios import LoadShape, ScenarioResult, gateway_crashes, worker_crashes
from chaos.stack import UNLIMITED, ChaosStack
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from tests.e2e.conftest import secret_of, start_stack

#: A restarted worker rejoins the group once the dead one's session expired.
SESSION_TIMEOUT_S = 6
SHAPE = LoadShape(
    lanes=4,
    history=HistoryConfig(keys_per_lane=40),
    gap_s=(1.0, 4.0),
    pause_s=0.01,
    ready_timeout_s=60,
)


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChaosStack]:
    running = start_stack(
        kafka,
        schema_registry,
        tmp_path_factory.mktemp("crashes"),
        partitions=4,
        env={"DEPLOYSTREAM_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S), **UNLIMITED},
    )
    running.http.close()
    yield ChaosStack(
        running.config, running.workers, running.gateway, ("alpha", secret_of("alpha"))
    )
    running.stop()


@pytest.fixture(scope="module")
def worker_crash(stack: ChaosStack) -> ScenarioResult:
    result = worker_crashes(stack, seed=7, kills=3, shape=SHAPE)
    print(f"\n{result.summary()}")
    return result


@pytest.fixture(scope="module")
def gateway_crash(stack: ChaosStack) -> ScenarioResult:
    result = gateway_crashes(stack, seed=11, kills=3, shape=SHAPE)
    print(f"\n{result.summary()}")
    return result


def test_worker_killed_three_times_under_load_loses_no_acknowledged_write(
    worker_crash: ScenarioResult,
) -> None:
    assert len(worker_crash.faults) == 3
    assert worker_crash.outcomes.get("acked", 0) >= 100  # the load ran throughout
    # Each kill interrupted a worker with work in hand.
    assert all(f["records_not_yet_committed_at_kill"] > 0 for f in worker_crash.faults)
    assert worker_crash.unexpected == []
    assert worker_crash.lookup_mismatches == []


def test_state_topic_after_worker_crashes_equals_the_reference_model(
    worker_crash: ScenarioResult,
) -> None:
    # Rebuilt from the compacted changelog alone, properties and issues included.
    assert worker_crash.keys_checked == SHAPE.lanes * SHAPE.history.keys_per_lane
    assert worker_crash.state_mismatches == []


def test_every_query_after_worker_crashes_answers_what_the_lookups_found(
    worker_crash: ScenarioResult,
) -> None:
    # Every page of every query of the run's pipelines, environments and issues.
    assert worker_crash.queries_checked["pages"] > worker_crash.queries_checked["queries"]
    assert worker_crash.query_mismatches == []


def test_every_202_survives_the_gateway_being_killed_mid_request(
    gateway_crash: ScenarioResult,
) -> None:
    assert len(gateway_crash.faults) == 3
    assert all(fault["in_flight_at_kill"] > 0 for fault in gateway_crash.faults)
    # Requests the gateway took down with it: neither acknowledged nor refused.
    assert gateway_crash.outcomes.get("unknown", 0) >= 1
    assert gateway_crash.outcomes.get("acked", 0) >= 80
    assert gateway_crash.unexpected == []
    assert gateway_crash.lookup_mismatches == []
    assert gateway_crash.state_mismatches == []
    assert gateway_crash.query_mismatches == []
