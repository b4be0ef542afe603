"""Queries: requests/s and latency of each query of the query API (``/rest/deploystream/1/``)
by ``clients`` concurrent clients over the lookup phase's table (the main stack).

Each query is driven on its own, closed loop, with the parameters a dashboard sends: a random
existing issue key, pipeline or environment for a first page (the default limit, 50), and
for half of the pages that have a next one, that next page (its cursor) soon after. The
figures are per query; a page's cost grows with its length, so the mean values per page
are reported with them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from bench.measure import median
from bench.phases.common import Context
from bench.phases.lookup import MainStack
from deploystream.load import LoadResult, Request, drive

__all__ = ["QUERIES", "Browse", "first_pages", "queries_phase"]

Q = "/rest/deploystream/1"
#: The queries measured, by the name their results go under, and what each reads.
QUERIES = {
    "issue": "deployments of an issue",
    "pipelines": "pipelines with their environments",
    "environments": "latest deployment of each environment of a pipeline",
    "history": "an environment's deployments",
}
#: Share of pages with a next page whose next page is asked for.
FOLLOW = 0.5
#: Next pages waiting to be asked for, at most (the rest are dropped).
MAX_WAITING = 256


def _id(value: str) -> str:
    return quote(value, safe="")


class Browse:
    """The requests of one query: first pages of random parameters (``first(rng)`` is the
    path), and next pages of the answers that had one (a share ``follow`` of them)."""

    def __init__(
        self, first: Callable[[random.Random], str], seed: int, follow: float = FOLLOW
    ) -> None:
        self._first = first
        self._rng = random.Random(seed)  # noqa: S311 (load parameters)
        self._follow = follow
        self._waiting: deque[str] = deque()
        self.pages: Counter[str] = Counter()
        self.values = 0

    def request(self) -> Request:
        """The next request: a waiting next page if there is one, else a first page."""
        path = self._waiting.popleft() if self._waiting else self._first(self._rng)
        return Request("GET", path)

    def answered(self, request: Request, status: int, body: bytes, _at: float) -> None:
        """Count an answer's page and values; maybe queue its next page."""
        if status != 200:
            return
        page = orjson.loads(body)
        self.pages["next" if "cursor=" in request.path else "first"] += 1
        self.values += len(page["values"])
        cursor = page["next"]
        if (
            cursor is not None
            and len(self._waiting) < MAX_WAITING
            and self._rng.random() < self._follow
        ):
            base = request.path.partition("?")[0]
            self._waiting.append(f"{base}?cursor={_id(cursor)}")


def first_pages(
    keys: Iterable[tuple[str, str, int]], issues: list[str]
) -> dict[str, Callable[[random.Random], str]]:
    """For each query, a first page's path of random parameters, drawn from a sample of the
    stored deployments' keys and the issue keys they name."""
    places = sorted({(pipeline, environment) for pipeline, environment, _ in keys})
    pipelines = sorted({pipeline for pipeline, _ in places})

    def issue(rng: random.Random) -> str:
        return f"{Q}/issues/{_id(rng.choice(issues))}/deployments"

    def environments(rng: random.Random) -> str:
        return f"{Q}/pipelines/{_id(rng.choice(pipelines))}/environments"

    def history(rng: random.Random) -> str:
        pipeline, environment = rng.choice(places)
        return f"{Q}/pipelines/{_id(pipeline)}/environments/{_id(environment)}/deployments"

    return {
        "issue": issue,
        "pipelines": lambda _rng: f"{Q}/pipelines",
        "environments": environments,
        "history": history,
    }


async def _answering(ctx: Context, stack: MainStack, within_s: float) -> float:
    """Wait until the worker answers queries (its index may still be rebuilt from the
    restored table); the seconds waited."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            headers = {"Authorization": await ctx.auth.authorization(session, stack.url)}
            try:
                async with session.get(
                    f"{stack.url}{Q}/pipelines?limit=1", headers=headers
                ) as response:
                    await response.read()
                    if response.status == 200:
                        return time.monotonic() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() - started > within_s:
                msg = f"queries not answered within {within_s:.0f}s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.5)


def _drive(
    ctx: Context, stack: MainStack, browse: Browse, clients: int, seconds: float
) -> LoadResult:
    return asyncio.run(
        drive(
            stack.url,
            ctx.auth,
            browse.request,
            concurrency=clients,
            duration_s=seconds,
            on_answer=browse.answered,
        )
    )


def _measure(
    ctx: Context,
    stack: MainStack,
    name: str,
    first: Callable[[random.Random], str],
    clients: int,
) -> dict[str, Any]:
    _drive(ctx, stack, Browse(first, seed=0), clients, 1.0)  # warm-up
    runs: list[LoadResult] = []
    cpus, browsers = [], []
    for repeat in range(ctx.plan.repeats):
        browse = Browse(first, seed=repeat + 1)
        meter = ctx.cpu(gateway=stack.gateway, worker=stack.worker)
        runs.append(_drive(ctx, stack, browse, clients, ctx.plan.query_s))
        cpus.append(meter.stop())
        browsers.append(browse)
    pages = sum((b.pages for b in browsers), Counter())
    result = {
        "requestsPerS": round(median([r.request_rate for r in runs]), 1),
        "p50Ms": round(median([r.latency_ms(50) for r in runs]), 2),
        "p99Ms": round(median([r.latency_ms(99) for r in runs]), 2),
        "statuses": dict(sum((r.statuses for r in runs), Counter())),
        "cpuPct": {k: median([c[k] for c in cpus]) for k in cpus[0]},
        "pages": {"first": pages["first"], "next": pages["next"]},
        "valuesPerPage": round(sum(b.values for b in browsers) / max(1, pages.total()), 1),
    }
    ctx.log(
        "queries",
        f"{name}: {result['requestsPerS']:,.0f} req/s  p50 {result['p50Ms']:.1f} ms  "
        f"p99 {result['p99Ms']:.1f} ms  statuses {result['statuses']}  pages {result['pages']}"
        f"  {result['valuesPerPage']} values/page  cpu {result['cpuPct']}",
    )
    return result


def queries_phase(ctx: Context, stack: MainStack, clients: int = 16) -> dict[str, Any]:
    """Each query of the query API by ``clients`` concurrent clients, one after the other."""
    ready = asyncio.run(_answering(ctx, stack, ctx.plan.restore_timeout_s))
    places = {(pipeline, environment) for pipeline, environment, _ in stack.keys}
    result: dict[str, Any] = {
        "storedDeployments": ctx.plan.lookup_deployments,
        "clients": clients,
        "secondsPerRun": ctx.plan.query_s,
        "answeringAfterS": round(ready, 1),
        "dataset": {
            "pipelines": len({pipeline for pipeline, _ in places}),
            "environments": len(places),
            "issueKeys": len(stack.issues),
        },
    }
    ctx.log("queries", f"answering after {ready:.1f}s; dataset {result['dataset']}")
    for name, first in first_pages(stack.keys, stack.issues).items():
        result[name] = _measure(ctx, stack, name, first, clients)
    return result
