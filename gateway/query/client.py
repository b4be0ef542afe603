"""Scatter-gather over the workers: a page of one query, merged from every worker's page.

Each worker answers for the partitions it owns (``streams/deployments/query_views.py``). A
page is exact only when every partition of the topic was read exactly once: during a
rebalance a partition can be owned by nobody or, briefly, claimed twice, and the query is
asked again (with backoff, up to a budget), then answered 503.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import Counter
from collections.abc import Callable, Mapping

import aiohttp
import orjson

from gateway.errors import ServiceUnavailable
from gateway.lookups import internal_headers
from gateway.settings import GatewaySettings
from schemas.lookups import decode_page

__all__ = ["MERGES", "QueryClient", "Row"]

logger = logging.getLogger(__name__)

QUERY_PATH = "/internal/query"
RETRY_BUDGET_S = 6.0
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 1.0

#: One result: its sort key and its JSON, as the worker rendered it.
Row = tuple[bytes, bytes]


def _ordered(pages: list[list[Row]], limit: int) -> list[Row]:
    # A deployment lives in one partition: the pages are disjoint, merged by sort key; the
    # JSON passes through unparsed.
    merged = heapq.merge(*pages, key=lambda row: row[0])
    return [row for _, row in zip(range(limit), merged, strict=False)]


def _latest(pages: list[list[Row]], limit: int) -> list[Row]:
    # An environment can have deployments in every partition: keep its highest number.
    best: dict[bytes, tuple[int, bytes]] = {}
    for page in pages:
        for sort, value in page:
            number = orjson.loads(value)["deploymentSequenceNumber"]
            held = best.get(sort)
            if held is None or number > held[0]:
                best[sort] = (number, value)
    return [(sort, best[sort][1]) for sort in sorted(best)[:limit]]


def _pipelines(pages: list[list[Row]], limit: int) -> list[Row]:
    # A pipeline's environments are spread over partitions: their union.
    found: dict[bytes, tuple[str, set[str]]] = {}
    for page in pages:
        for sort, value in page:
            pipeline = orjson.loads(value)
            _, environments = found.setdefault(sort, (pipeline["pipelineId"], set()))
            environments.update(pipeline["environments"])
    return [
        (
            sort,
            orjson.dumps({"pipelineId": found[sort][0], "environments": sorted(found[sort][1])}),
        )
        for sort in sorted(found)[:limit]
    ]


#: How the pages of a query kind are merged.
MERGES: Mapping[str, Callable[[list[list[Row]], int], list[Row]]] = {
    "issue": _ordered,
    "history": _ordered,
    "environments": _latest,
    "pipelines": _pipelines,
}


class QueryClient:
    """Asks every worker for a page and merges them."""

    def __init__(self, settings: GatewaySettings, partitions: Callable[[], int]) -> None:
        self._headers = internal_headers(settings)
        self._urls = [u.rstrip("/") for u in settings.worker_urls]
        self._timeout = aiohttp.ClientTimeout(total=settings.lookup_timeout_s, sock_connect=1.0)
        self._retry_after = str(settings.retry_after_s)
        self._partitions = partitions
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def _ask(self, url: str, params: Mapping[str, str]) -> tuple[list[int], list[Row]] | None:
        assert self._session is not None
        try:
            async with self._session.get(url + QUERY_PATH, params=params) as response:
                body = await response.read()
                if response.status == 200:
                    return decode_page(body)
                if response.status == 400:
                    # The gateway validated the query: a worker that refuses it is a bug.
                    logger.error("worker %s refused a query: %s", url, body[:300])
                return None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.debug("worker %s unreachable or garbled: %r", url, exc)
            return None

    async def page(self, kind: str, params: Mapping[str, str], limit: int) -> list[Row]:
        """Up to ``limit`` rows of a query of ``kind``, every partition read once."""
        loop = asyncio.get_running_loop()
        partitions = self._partitions()  # known once, never blocks
        query = {**params, "kind": kind, "limit": str(limit)}
        deadline = loop.time() + RETRY_BUDGET_S
        delay = _FIRST_DELAY_S
        while True:
            answers = await asyncio.gather(*(self._ask(url, query) for url in self._urls))
            read = Counter(p for answer in answers if answer for p in answer[0])
            if set(read) == set(range(partitions)) and all(n == 1 for n in read.values()):
                pages = [rows for answer in answers if answer for _, rows in [answer]]
                return MERGES[kind](pages, limit)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY_S)
        logger.warning("no complete answer to a %s query within %.1fs", kind, RETRY_BUDGET_S)
        msg = "The workers could not answer the query (a rebalance is under way); retry later."
        raise ServiceUnavailable(msg, headers={"Retry-After": self._retry_after})
