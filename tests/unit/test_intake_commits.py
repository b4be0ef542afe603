"""The input offset the worker commits is the end of the run of acknowledged offsets that
starts at the committed one: a hole holds the commit back (faust 0.15 commits past a
single missing record, and past any number when nothing was committed yet)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.deployments.intake import Intake, IntakeConsumer

INPUT = TP("deployments", 0)


def consumer_with(committed: int | None, acked: list[int]) -> Any:
    """An IntakeConsumer's commit bookkeeping, without a running consumer."""
    consumer: Any = IntakeConsumer.__new__(IntakeConsumer)
    consumer.transport = SimpleNamespace(intake=Intake("deployments", 10))
    consumer._acked = defaultdict(list, {INPUT: list(acked)})
    consumer._acked_index = defaultdict(set, {INPUT: set(acked)})
    consumer._committed_offset = defaultdict(lambda: None, {INPUT: committed})
    consumer.log_gaps = {}
    consumer.log = SimpleNamespace(warning=lambda *args: None)
    return consumer


def test_the_commit_covers_the_acknowledged_run_from_the_committed_offset() -> None:
    consumer = consumer_with(10, [12, 10, 11, 13])
    assert consumer._new_offset(INPUT) == 14
    assert consumer._acked[INPUT] == []


def test_a_missing_record_at_the_committed_offset_holds_the_commit_back() -> None:
    consumer = consumer_with(10, [11, 12, 13])
    assert consumer._new_offset(INPUT) is None
    assert consumer._acked[INPUT] == [11, 12, 13]


def test_a_hole_stops_the_commit_before_it() -> None:
    consumer = consumer_with(10, [10, 11, 13, 14])
    assert consumer._new_offset(INPUT) == 12
    assert consumer._acked[INPUT] == [13, 14]


def test_a_gap_of_the_log_is_passed_over() -> None:
    consumer = consumer_with(10, [10, 11, 15, 16])
    consumer.log_gaps[INPUT] = {12: 15}
    assert consumer._new_offset(INPUT) == 17
    assert consumer.log_gaps[INPUT] == {}


def test_nothing_committed_yet_commits_from_the_first_acknowledged() -> None:
    consumer = consumer_with(None, [0, 1, 2])
    assert consumer._new_offset(INPUT) == 3
