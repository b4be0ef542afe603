"""How big and how long each phase is: the full benchmark and the quick one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    """Sizes, durations and repetitions of one benchmark run."""

    name: str
    repeats: int
    bulk_sizes: tuple[int, ...]
    concurrencies: tuple[int, ...]
    step_s: float
    bare_events: int
    apply_events: int
    lookup_deployments: int
    lookup_s: float
    visibility_s: float
    visibility_repeats: int
    overload_s: float
    restart_deployments: int
    session_timeout_s: float
    profile_s: float
    restore_timeout_s: float
    #: Restart the apply phase's worker without its RocksDB (tables with a property index).
    restore_check: bool = True
    #: Seconds of each step of the search for the rate the stack sustains (visibility).
    sustain_s: float = 8.0
    #: Seconds each query is driven per repeat (the query phase, over the lookup table).
    query_s: float = 10.0
    #: Issue keys of the lookup table are ``<PROJECT>-<n>``, ``n`` up to this (10 projects):
    #: about a hundred deployments name each issue, two pages of its query.
    issues_per_project: int = 500

    @property
    def quick(self) -> bool:
        """True for the smoke-sized run."""
        return self.name == "quick"


FULL = Plan(
    name="full",
    repeats=3,
    bulk_sizes=(1, 10, 100),
    concurrencies=(1, 4, 16, 64),
    step_s=4.0,
    bare_events=100_000,
    apply_events=30_000,
    lookup_deployments=100_000,
    lookup_s=10.0,
    visibility_s=20.0,
    visibility_repeats=5,
    overload_s=8.0,
    restart_deployments=1_000_000,
    # The worker's own default (DEPLOYSTREAM_SESSION_TIMEOUT_S): a crash restart waits it out.
    session_timeout_s=45.0,
    profile_s=10.0,
    restore_timeout_s=900.0,
)

QUICK = Plan(
    name="quick",
    repeats=1,
    bulk_sizes=(1, 10, 100),
    concurrencies=(1, 8, 32),
    step_s=1.0,
    bare_events=20_000,
    apply_events=4_000,
    lookup_deployments=10_000,
    lookup_s=3.0,
    visibility_s=4.0,
    visibility_repeats=1,
    sustain_s=3.0,
    overload_s=0.0,
    restart_deployments=15_000,
    # Kafka's minimum (group.min.session.timeout.ms): keeps crash restarts short.
    session_timeout_s=6.0,
    profile_s=2.0,
    restore_timeout_s=60.0,
    restore_check=False,
    query_s=2.0,
    # A tenth of the full table: a tenth of the issues keeps the pages as long.
    issues_per_project=50,
)
