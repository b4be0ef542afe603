"""Sending load: closed or open loop over aiohttp, with the API's paths and authentication.

:func:`drive` sends requests closed loop (``concurrency`` requests in flight) or open loop
(``rate`` requests per second, latency measured from the scheduled send time so a slow server
cannot hide its queueing), bounded by a request count and a duration, and returns a
:class:`~deploystream.load.results.LoadResult`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import click
import orjson

from deploystream import collector
from deploystream.load.results import LoadResult

__all__ = ["API", "MAX_DURATION_S", "Auth", "Request", "drive", "lookup_path"]

API = "/rest/deployments/0.1"
#: Hard upper bound of one load run, whatever the options say.
MAX_DURATION_S = 3600.0


def lookup_path(pipeline_id: str, environment_id: str, number: int) -> str:
    """The gateway path of one deployment, identifiers percent-encoded."""
    return (
        f"{API}/pipelines/{quote(pipeline_id, safe='')}/environments/"
        f"{quote(environment_id, safe='')}/deployments/{number}"
    )


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of a load run; ``items`` is how many deployments it carries."""

    method: str
    path: str
    body: bytes | None = None
    items: int = 1


@dataclass
class Auth:
    """How requests authenticate: a fixed header, or OAuth client credentials (refreshed)."""

    header: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    _expires_at: float = 0.0

    @classmethod
    def basic(cls, client_id: str, secret: str) -> Auth:
        """``Basic client:API token``."""
        token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return cls(header=f"Basic {token}")

    @classmethod
    def bearer(cls, token: str) -> Auth:
        """A fixed ``Bearer`` token."""
        return cls(header=f"Bearer {token}")

    @classmethod
    def oauth(cls, client_id: str, secret: str) -> Auth:
        """Access tokens from ``POST /oauth/token`` (client credentials), refreshed at 80%."""
        return cls(client_id=client_id, client_secret=secret)

    async def authorization(self, session: aiohttp.ClientSession, base_url: str) -> str:
        """The ``Authorization`` header value to send now."""
        if self.client_id is None:
            assert self.header is not None
            return self.header
        if self.header is None or time.monotonic() >= self._expires_at:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            }
            async with session.post(f"{base_url}/oauth/token", data=form) as response:
                body = await response.read()
                if response.status != 200:
                    msg = f"token request failed ({response.status}): {body[:300]!r}"
                    raise click.ClickException(msg)
            answer = orjson.loads(body)
            self.header = f"Bearer {answer['access_token']}"
            self._expires_at = time.monotonic() + 0.8 * float(answer.get("expires_in", 300))
        return self.header


def _count_answer(result: LoadResult, status: int, body: bytes, items: int) -> None:
    result.statuses[str(status)] += 1
    if 200 <= status < 300:
        result.ok_items += items
    if status == 202 and body:
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
            answer = orjson.loads(body)
            result.accepted += len(answer.get("acceptedDeployments", ()))
            result.rejected += len(answer.get("rejectedDeployments", ()))


class _Driver:
    """One load run's state: the session, the request budget and the result."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        session: aiohttp.ClientSession,
        next_request: Callable[[], Request],
        max_requests: int | None,
        on_answer: Callable[[Request, int, bytes, float], None] | None,
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.session = session
        self.next_request = next_request
        self.max_requests = max_requests
        self.on_answer = on_answer
        self.issued = 0
        self.result = LoadResult()

    def take(self) -> Request | None:
        if self.max_requests is not None and self.issued >= self.max_requests:
            return None
        self.issued += 1
        return self.next_request()

    async def send(self, request: Request, started: float) -> None:
        result = self.result
        headers = {"Authorization": await self.auth.authorization(self.session, self.base_url)}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        result.requests += 1
        result.items += request.items
        try:
            async with self.session.request(
                request.method, self.base_url + request.path, data=request.body, headers=headers
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.statuses[f"error:{type(exc).__name__}"] += 1
            return
        now = time.perf_counter()
        result.latencies_s.append(now - started)
        _count_answer(result, status, body, request.items)
        if self.on_answer is not None:
            self.on_answer(request, status, body, now)

    async def closed_loop(self, concurrency: int, deadline: float) -> None:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                request = self.take()
                if request is None:
                    return
                await self.send(request, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def open_loop(
        self, rate: float, concurrency: int, t0: float, deadline: float, timeout_s: float
    ) -> None:
        slots = asyncio.Semaphore(concurrency)
        pending: set[asyncio.Task[None]] = set()

        async def scheduled(request: Request, at: float) -> None:
            async with slots:
                await self.send(request, at)

        index = 0
        while (at := t0 + index / rate) < deadline:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request = self.take()
            if request is None:
                break
            task = asyncio.create_task(scheduled(request, at))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()


async def drive(
    base_url: str,
    auth: Auth,
    next_request: Callable[[], Request],
    *,
    concurrency: int = 8,
    rate: float | None = None,
    duration_s: float = 10.0,
    max_requests: int | None = None,
    timeout_s: float = 30.0,
    on_answer: Callable[[Request, int, bytes, float], None] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> LoadResult:
    """Send ``next_request()`` requests until ``duration_s`` or ``max_requests``.

    Closed loop when ``rate`` is None: ``concurrency`` requests always in flight. Open loop
    otherwise: requests start at ``rate`` per second (at most ``concurrency`` in flight), and
    latency is counted from the scheduled start. ``on_answer(request, status, body, t)`` is
    called with the perf_counter time of each answer.
    """
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
        )
    driver = _Driver(base_url.rstrip("/"), auth, session, next_request, max_requests, on_answer)
    # The load generator's own collections would stop every request in flight and count as
    # the server's latency (deploystream/collector.py).
    with collector.tuned():
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + min(duration_s, MAX_DURATION_S)
        try:
            if rate is None:
                await driver.closed_loop(concurrency, deadline)
            else:
                await driver.open_loop(rate, concurrency, t0, deadline, timeout_s)
        finally:
            driver.result.elapsed_s = time.perf_counter() - t0
            driver.result.client_cpu_s = time.process_time() - cpu0
            if own:
                await session.close()
    return driver.result
