"""The intake hands out each input record of the current generation once, in order: a
partition fetched twice from its committed offset (faust's seek) is applied once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faust.types import TP

from streams.deployments.intake import Intake

P0, P1 = TP("deployments", 0), TP("deployments", 1)


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


def test_records_are_handed_out_in_order_from_the_first_one_fetched() -> None:
    intake = intake_with(*(Record(P0, o) for o in (3, 4, 5)), Record(P1, 0))
    assert offsets(intake.take(10, 1)) == [(0, 3), (0, 4), (0, 5), (1, 0)]


def test_a_record_fetched_twice_is_handed_out_once() -> None:
    intake = intake_with(*(Record(P0, o) for o in (0, 1, 2)))
    assert offsets(intake.take(10, 1)) == [(0, 0), (0, 1), (0, 2)]
    asyncio.run(intake.put([Record(P0, o) for o in (1, 2, 3)]))
    assert offsets(intake.take(10, 1)) == [(0, 3)]


def test_records_of_an_older_generation_are_dropped() -> None:
    intake = intake_with(Record(P0, 0, generation_id=1), Record(P0, 0, generation_id=2))
    assert offsets(intake.take(10, 2)) == [(0, 0)]


def test_a_new_generation_starts_again_from_its_seek() -> None:
    intake = intake_with(*(Record(P0, o) for o in (0, 1, 2)))
    intake.take(10, 1)
    asyncio.run(intake.put([Record(P0, o, generation_id=2) for o in (1, 2)]))
    assert offsets(intake.take(10, 2)) == [(0, 1), (0, 2)]


def test_a_gap_in_the_log_is_passed_over() -> None:
    intake = intake_with(Record(P0, 0), Record(P0, 5))
    assert offsets(intake.take(10, 1)) == [(0, 0), (0, 5)]


def test_take_stops_at_the_limit_and_keeps_the_rest() -> None:
    intake = intake_with(*(Record(P0, o) for o in range(5)))
    assert offsets(intake.take(2, 1)) == [(0, 0), (0, 1)]
    assert offsets(intake.take(10, 1)) == [(0, 2), (0, 3), (0, 4)]
