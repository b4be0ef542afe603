"""Lookups of deployments in the workers' tables: one hop, batched, rendered by the worker.

A key's lookup goes to the worker that owns the key's partition (:mod:`gateway.assignment`),
falling back to the others in turn (any worker forwards a key it does not own). Lookups that
arrive while a request to that worker is in flight wait for the next one and go together:
under load one internal request carries many lookups, at rest each goes at once (no timer).
The worker answers each key with its JSON, rendered once (:mod:`schemas.lookups`).

A worker that is unreachable, or a key whose partition is moving or recovering, is retried
with backoff until :data:`RETRY_BUDGET_S` is spent; then the client gets a 503 with
Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from gateway.assignment import Assignment
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.settings import GatewaySettings
from schemas.lookups import (
    BINARY,
    MAX_KEYS,
    Answer,
    Status,
    decode_answers,
    encode_keys,
    partition_of,
)

__all__ = [
    "INTERNAL_SECRET_HEADER",
    "LOOKUPS_PATH",
    "RETRY_BUDGET_S",
    "WorkerClient",
    "internal_headers",
]

logger = logging.getLogger(__name__)

LOOKUPS_PATH = "/internal/lookups"
#: Carries DEPLOYSTREAM_INTERNAL_SECRET: workers answer /internal/... calls only with it.
INTERNAL_SECRET_HEADER = "X-Deploystream-Internal-Secret"  # noqa: S105 (a header name)
#: How long one lookup may keep retrying. A rebalance with warm standbys is over in a few
#: seconds (tests/e2e/test_multi_worker.py); a dead worker's keys stay unanswerable until the
#: consumer-group session timeout expires, which no sensible HTTP wait covers: that is a 503
#: with Retry-After.
RETRY_BUDGET_S = 6.0
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 1.0
#: A worker host that is gone (not refusing, just silent) must not use up the whole budget.
_CONNECT_TIMEOUT_S = 1.0


def internal_headers(settings: GatewaySettings) -> dict[str, str]:
    """The header every call to a worker carries; refuses to start without a usable secret."""
    secret = settings.internal_secret
    if secret is None or len(secret.get_secret_value()) < 32:
        msg = "DEPLOYSTREAM_INTERNAL_SECRET (32+ characters, the workers' too) is required"
        raise GatewayError(msg)
    return {INTERNAL_SECRET_HEADER: secret.get_secret_value()}


class WorkerUnreachable(Exception):
    """A batch got no answer from its worker."""


#: Sends one batch: (worker URL, view, keys) -> one answer per key.
_Send = Callable[[str, str, list[bytes]], Awaitable[list[Answer]]]


class _Batches:
    """The lookups of one view waiting for one worker, sent together."""

    def __init__(self, send: _Send, url: str, view: str, in_flight: int) -> None:
        self._send = send
        self._url, self._view = url, view
        self._most = in_flight
        self._waiting: list[tuple[bytes, asyncio.Future[Answer]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: bytes) -> asyncio.Future[Answer]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiting.append((key, future))
        if not self._scheduled and self._in_flight < self._most:
            # After the lookups already runnable in this turn of the loop joined.
            self._scheduled = True
            loop.call_soon(self._launch)
        return future

    def _launch(self) -> None:
        self._scheduled = False
        while self._waiting and self._in_flight < self._most:
            batch, self._waiting = self._waiting[:MAX_KEYS], self._waiting[MAX_KEYS:]
            self._in_flight += 1
            task = asyncio.ensure_future(self._deliver(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[tuple[bytes, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._send(self._url, self._view, [key for key, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(WorkerUnreachable(f"{self._url}: {exc!r}"))
        else:
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():  # its client may have gone
                    future.set_result(answer)
        finally:
            self._in_flight -= 1
            if self._waiting and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._launch)


class WorkerClient:
    """HTTP client of the workers' batched lookup view."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._headers = {**internal_headers(settings), "Content-Type": BINARY}
        self._urls = [u.rstrip("/") for u in settings.worker_urls]
        self._timeout = aiohttp.ClientTimeout(
            total=settings.lookup_timeout_s,
            sock_connect=min(_CONNECT_TIMEOUT_S, settings.lookup_timeout_s),
        )
        self._in_flight = settings.lookup_batches_in_flight
        self._retry_after = str(settings.retry_after_s)
        self._session: aiohttp.ClientSession | None = None
        self.assignment = Assignment(self._urls)
        self._batches: dict[tuple[int, str], _Batches] = {}
        # The worker that answered last: asked first when the owner is not known.
        self._preferred = 0

    async def start(self) -> None:
        """Open the connection pool and start following the workers' assignment."""
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        self.assignment.start(self._session)

    async def close(self) -> None:
        """Stop following the assignment and close the connection pool."""
        await self.assignment.close()
        if self._session is not None:
            await self._session.close()

    async def _post(self, url: str, view: str, keys: list[bytes]) -> list[Answer]:
        assert self._session is not None
        async with self._session.post(
            url + LOOKUPS_PATH, params={"view": view}, data=encode_keys(keys)
        ) as response:
            body = await response.read()
            if response.status != 200:
                msg = f"answered {response.status}: {body[:200]!r}"
                raise WorkerUnreachable(msg)
        return decode_answers(body, len(keys))

    def _batches_for(self, index: int, view: str) -> _Batches:
        batches = self._batches.get((index, view))
        if batches is None:
            batches = _Batches(self._post, self._urls[index], view, self._in_flight)
            self._batches[(index, view)] = batches
        return batches

    def _order(self, key: bytes) -> list[int]:
        """Workers to ask, the key's owner first."""
        count = len(self._urls)
        first = self._preferred
        partitions = self.assignment.partition_count
        if partitions is not None:
            owner = self.assignment.owner(partition_of(key, partitions))
            if owner is not None:
                first = owner
        return [(first + i) % count for i in range(count)]

    async def get(self, key: bytes, view: str = "stored") -> bytes | None:
        """The rendered JSON of ``key`` (``view``: ``deployment`` or ``stored``, see
        ``streams/deployments/lookup_views.py``), ``None`` when absent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_BUDGET_S
        delay = _FIRST_DELAY_S
        while True:
            for index in self._order(key):
                try:
                    answer = await self._batches_for(index, view).submit(key)
                except WorkerUnreachable as exc:
                    logger.debug("lookup: %s", exc)
                    self.assignment.stale()
                    continue
                if answer.status is Status.FOUND:
                    self._preferred = index
                    return answer.body
                if answer.status is Status.ABSENT:
                    self._preferred = index
                    return None
                logger.debug("worker %s: retry (%s)", self._urls[index], answer.body.decode())
                self.assignment.stale()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY_S)
        logger.warning("no worker answered a lookup within %.1fs", RETRY_BUDGET_S)
        msg = "No worker could serve the lookup; retry later."
        raise ServiceUnavailable(msg, headers={"Retry-After": self._retry_after})
