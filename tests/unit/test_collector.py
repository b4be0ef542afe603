"""The garbage collector is tuned for a load run and put back as it was afterwards."""

from __future__ import annotations

import gc

import pytest

from deploystream.collector import YOUNG_THRESHOLD, tuned


def test_a_load_run_tunes_the_collector_and_puts_it_back() -> None:
    before = gc.get_threshold()
    assert before[0] != YOUNG_THRESHOLD
    assert gc.get_freeze_count() == 0
    with tuned():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed is out of the collector's sight
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_collector_is_put_back_when_a_run_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
