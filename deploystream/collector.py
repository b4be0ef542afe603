"""Python's garbage collector tuned for processes that allocate many short-lived objects per
request and keep almost none: the gateway, the worker and the load generator.

What start-up made (modules, schemas, the app, a bench's sampled keys) is moved out of the
collector's sight, so that a full collection no longer walks it; and the youngest generation
is collected every 20,000 allocations instead of 700 (CPython's default).

Measured: the gateway's issue query A/B against f05e461 (two runs, 4 and 6 rounds), x1.16 and
x1.12 requests/s, p99 x0.86 and x0.97. The load generator, untuned, made 24-30 full
collections of 40-57 ms in each 12 s run of the issue query (16 clients), and those pauses
were the bench's p99: 58-68 ms measured, 24-28 ms with them gone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "tune", "tuned"]

#: Allocations between collections of the youngest generation (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Tune the collector for the rest of the process's life."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


@contextmanager
def tuned() -> Iterator[None]:
    """Tune the collector for a while (a load run), then put it back as it was."""
    saved = gc.get_threshold()
    tune()
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
