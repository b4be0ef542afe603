"""The measurements: ingest (with the bare-producer baseline), apply (with the bare-consumer
baseline), visibility lag, lookups, queries and restarts, one module each. Each phase returns a
JSON-ready dict."""

from bench.phases.apply import apply_phase
from bench.phases.common import Context
from bench.phases.ingest import ingest_phase
from bench.phases.lookup import MainStack, lookup_phase, main_stack
from bench.phases.queries import queries_phase
from bench.phases.restart import restart_phase
from bench.phases.visibility import visibility_phase

__all__ = [
    "Context",
    "MainStack",
    "apply_phase",
    "ingest_phase",
    "lookup_phase",
    "main_stack",
    "queries_phase",
    "restart_phase",
    "visibility_phase",
]
