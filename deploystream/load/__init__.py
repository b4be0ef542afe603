"""``deploystream load``: realistic deployment traffic against any deploystream (or Jira) URL.

Parts usable on their own:

- :mod:`~deploystream.load.generator`: :class:`DeploymentGenerator` makes deployments as CI
  fleets send them, out of order as configured, deterministic from one seed.
- :mod:`~deploystream.load.driver`: :func:`drive` sends requests with aiohttp, closed or open
  loop, bounded by a request count and a duration.
- :mod:`~deploystream.load.results`: the :class:`LoadResult` of a run (status counts, latency
  percentiles, client CPU) and its summaries.
- :mod:`~deploystream.load.command`: the ``deploystream load`` command built from them.
"""

from deploystream.load.command import load
from deploystream.load.driver import API, MAX_DURATION_S, Auth, Request, drive, lookup_path
from deploystream.load.generator import MAX_OUT_OF_ORDER, DeploymentGenerator, GeneratorConfig
from deploystream.load.results import LoadResult, percentile

__all__ = [
    "API",
    "MAX_DURATION_S",
    "MAX_OUT_OF_ORDER",
    "Auth",
    "DeploymentGenerator",
    "GeneratorConfig",
    "LoadResult",
    "Request",
    "drive",
    "load",
    "lookup_path",
    "percentile",
]
