"""faust's stall check hears from the apply loop: taking a partition's records counts as its
stream's inbound, as a faust Stream's would (without it, five minutes after start every
partition with records still to fetch was logged as an ERROR "Stream has not started
processing", on a worker that was applying them all along)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from faust.sensors.monitor import Monitor
from faust.types import TP

from streams.deployments.agents import DeploymentAgent


def agent_with(monitor: Monitor | None) -> Any:
    agent: Any = DeploymentAgent.__new__(DeploymentAgent)
    agent.app = SimpleNamespace(consumer=SimpleNamespace(unacked=set()), monitor=monitor)
    return agent


class Record:
    """What the apply loop reads of a faust Message (hashable, as faust's are)."""

    def __init__(self, partition: int, offset: int) -> None:
        self.tp = TP("deployments", partition)
        self.offset = offset
        self.tracked = False


def record(partition: int, offset: int) -> Any:
    return Record(partition, offset)


def test_taking_records_marks_their_partitions_inbound_for_faust_s_stall_check() -> None:
    monitor = Monitor()
    agent = agent_with(monitor)
    records = [record(0, 5), record(3, 9), record(0, 6)]
    before = time.monotonic()
    agent._track(records)
    inbound = monitor.stream_inbound_time
    assert set(inbound) == {TP("deployments", 0), TP("deployments", 3)}
    assert all(before <= at <= time.monotonic() for at in inbound.values())
    assert agent.app.consumer.unacked == set(records)
    assert all(r.tracked for r in records)


def test_without_a_monitor_records_are_still_tracked() -> None:
    agent = agent_with(None)
    records = [record(1, 0)]
    agent._track(records)
    assert agent.app.consumer.unacked == set(records)
