"""The intake hands out each input record of the current generation once, in order, from
the partition's committed offset: a partition fetched twice from there (faust's seek) is
applied once, and one that starts anywhere else — or has no committed offset, so that where
it starts is the log's — is held back until it is sought back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faust.types import TP

from streams.deployments.intake import Intake

P0, P1 = TP("deployments", 0), TP("deployments", 1)


#: Both partitions committed at offset 0.
from_zero = {P0: 0, P1: 0}.get


@dataclass(frozen=True)
class Record:
    tp: TP
    offset: int
    generation_id: int = 1


def intake_with(*records: Record) -> Intake:
    intake = Intake("deployments", capacity=100)
    asyncio.run(intake.put(list(records)))
    return intake


def offsets(records: list[Record]) -> list[tuple[int, int]]:
    return [(r.tp.partition, r.offset) for r in records]


def test_records_are_handed_out_in_order_from_the_committed_offset() -> None:
    intake = intake_with(*(Record(P0, o) for o in (3, 4, 5)), Record(P1, 0))
    taken = intake.take(10, 1, {P0: 3, P1: 0}.get)
    assert offsets(taken) == [(0, 3), (0, 4), (0, 5), (1, 0)]


def test_a_partition_without_a_committed_offset_waits_to_be_sought_to_its_log_start() -> None:
    # What was fetched from the log's start may have been dropped during a rebalance, so
    # the first record fetched says nothing about where the partition starts.
    intake = intake_with(Record(P0, 174), Record(P0, 175), Record(P1, 0))
    assert offsets(intake.take(10, 1, {P1: 0}.get)) == [(1, 0)]
    assert intake.misaligned == {P0: (None, 174)}
    intake.expect(P0, 0)
    asyncio.run(intake.put([Record(P0, o) for o in (175, 0, 1)]))
    assert offsets(intake.take(10, 1, {P1: 0}.get)) == [(0, 0), (0, 1)]


def test_a_record_fetched_twice_is_handed_out_once() -> None:
    intake = intake_with(*(Record(P0, o) for o in (0, 1, 2)))
    assert offsets(intake.take(10, 1, from_zero)) == [(0, 0), (0, 1), (0, 2)]
    asyncio.run(intake.put([Record(P0, o) for o in (1, 2, 3)]))
    assert offsets(intake.take(10, 1, from_zero)) == [(0, 3)]


def test_records_of_an_older_generation_are_dropped() -> None:
    intake = intake_with(Record(P0, 0, generation_id=1), Record(P0, 0, generation_id=2))
    assert offsets(intake.take(10, 2, from_zero)) == [(0, 0)]


def test_a_new_generation_starts_again_from_its_committed_offset() -> None:
    intake = intake_with(*(Record(P0, o) for o in (0, 1, 2)))
    intake.take(10, 1, from_zero)
    asyncio.run(intake.put([Record(P0, o, generation_id=2) for o in (1, 2)]))
    assert offsets(intake.take(10, 2, {P0: 1}.get)) == [(0, 1), (0, 2)]


def test_a_jump_in_offsets_holds_the_partition_back_until_put_right() -> None:
    intake = intake_with(Record(P0, 0), Record(P0, 5), Record(P0, 6), Record(P1, 0))
    assert offsets(intake.take(10, 1, from_zero)) == [(0, 0), (1, 0)]
    assert intake.misaligned == {P0: (1, 5)}


def test_a_gap_the_log_really_has_is_passed_over_once_accepted() -> None:
    intake = intake_with(Record(P0, 0), Record(P0, 5))
    intake.take(10, 1, from_zero)
    intake.accept_gap(P0, 5)
    asyncio.run(intake.put([Record(P0, 5), Record(P0, 6)]))
    assert offsets(intake.take(10, 1, from_zero)) == [(0, 5), (0, 6)]


def test_take_stops_at_the_limit_and_keeps_the_rest() -> None:
    intake = intake_with(*(Record(P0, o) for o in range(5)))
    assert offsets(intake.take(2, 1, from_zero)) == [(0, 0), (0, 1)]
    assert offsets(intake.take(10, 1, from_zero)) == [(0, 2), (0, 3), (0, 4)]


def test_a_partition_starting_elsewhere_than_its_committed_offset_is_held_back() -> None:
    intake = intake_with(Record(P0, 5), Record(P0, 6), Record(P1, 0))
    assert offsets(intake.take(10, 1, {P0: 3, P1: 0}.get)) == [(1, 0)]
    assert intake.misaligned == {P0: (3, 5)}


def test_after_a_seek_back_the_partition_starts_at_the_expected_offset() -> None:
    intake = intake_with(Record(P0, 5), Record(P0, 6))
    committed = {P0: 3}.get
    intake.take(10, 1, committed)
    intake.expect(P0, 3)
    asyncio.run(intake.put([Record(P0, o) for o in (6, 3, 4, 5)]))  # 6: fetched before
    assert offsets(intake.take(10, 1, committed)) == [(0, 3), (0, 4), (0, 5)]
    assert intake.misaligned == {}


def test_records_below_the_committed_offset_are_not_handed_out() -> None:
    intake = intake_with(Record(P0, 1), Record(P0, 2), Record(P0, 3))
    assert offsets(intake.take(10, 1, {P0: 2}.get)) == [(0, 2), (0, 3)]
