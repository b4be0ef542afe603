"""The bench's sustainable rate: the gateway takes the load, and the worker keeps up with it
at the end of the run and all along (its lag)."""

from __future__ import annotations

from typing import Any

from bench.phases.visibility import judge


def run(achieved: float, probes: int, lag_p99_ms: float) -> dict[str, Any]:
    return {"achievedDeploymentsPerS": achieved, "probes": probes, "lagP99Ms": lag_p99_ms}


def test_a_load_taken_in_full_and_applied_as_it_came_is_sustained() -> None:
    sustained, backlog = judge(2500, 8, run(2490, 1000, 480), applied=2490 * 8 + 1000)
    assert sustained
    assert backlog == 0


def test_a_worker_seconds_behind_during_the_run_does_not_sustain_it_though_it_caught_up() -> None:
    # The full run at 5,278/s: 0.4 s of backlog at the end, but a lag p99 of 3.9 s.
    sustained, backlog = judge(5278, 8, run(5244, 300, 3861), applied=5244 * 8 + 300 - 2100)
    assert not sustained
    assert 0.3 < backlog < 0.5


def test_a_backlog_left_at_the_end_is_not_sustained() -> None:
    sustained, backlog = judge(3000, 8, run(3000, 500, 600), applied=3000 * 8 + 500 - 6000)
    assert not sustained
    assert backlog == 2


def test_a_load_the_gateway_does_not_take_in_full_is_not_sustained() -> None:
    sustained, _ = judge(9000, 8, run(8000, 500, 100), applied=8000 * 8 + 500)
    assert not sustained
