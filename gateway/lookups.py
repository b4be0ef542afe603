"""Reads of table state from the workers' web views.

Any worker answers a lookup: it forwards it to the worker that owns the key's partition. So the
gateway only needs one reachable worker; it asks them in turn, starting with the one that
answered last, and retries briefly through rebalances. A worker answers 200 (found), 404
(absent) or 503 (rebalance, recovery, owner unreachable); anything but 200/404, and a worker
that cannot be reached, is retried until the retry budget is spent, then the client gets 503.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import aiohttp
import orjson

from gateway.errors import GatewayError, ServiceUnavailable
from gateway.settings import GatewaySettings

__all__ = ["INTERNAL_SECRET_HEADER", "RETRY_BUDGET_S", "WorkerClient", "internal_headers"]

logger = logging.getLogger(__name__)

LOOKUP_PATH = "/internal/deployments"
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


class WorkerClient:
    """HTTP client of the worker lookup view."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._headers = internal_headers(settings)
        self._urls = [u.rstrip("/") for u in settings.worker_urls]
        self._timeout = aiohttp.ClientTimeout(
            total=settings.lookup_timeout_s,
            sock_connect=min(_CONNECT_TIMEOUT_S, settings.lookup_timeout_s),
        )
        self._retry_after = str(settings.retry_after_s)
        self._session: aiohttp.ClientSession | None = None
        # Index into _urls of the worker that answered last: asked first next time, so a dead
        # worker early in the list does not cost every lookup a failed connection.
        self._preferred = 0

    async def start(self) -> None:
        """Open the connection pool."""
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def _get_once(self, url: str, key: bytes) -> tuple[int, bytes]:
        assert self._session is not None
        params = {"key": base64.urlsafe_b64encode(key).decode()}
        async with self._session.get(url + LOOKUP_PATH, params=params) as response:
            return response.status, await response.read()

    def _in_preference_order(self) -> list[int]:
        count = len(self._urls)
        return [(self._preferred + i) % count for i in range(count)]

    async def get(self, key: bytes) -> dict[str, Any] | None:
        """The stored state of ``key`` as the worker renders it, ``None`` when absent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_BUDGET_S
        delay = _FIRST_DELAY_S
        while True:
            for index in self._in_preference_order():
                url = self._urls[index]
                try:
                    status, body = await self._get_once(url, key)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    logger.debug("worker %s unreachable: %r", url, exc)
                    continue
                if status in (200, 404):
                    self._preferred = index
                    if status == 404:
                        return None
                    result: dict[str, Any] = orjson.loads(body)
                    return result
                logger.debug("worker %s answered %d to a lookup", url, status)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY_S)
        logger.warning("no worker answered a lookup within %.1fs", RETRY_BUDGET_S)
        msg = "No worker could serve the lookup; retry later."
        raise ServiceUnavailable(msg, headers={"Retry-After": self._retry_after})
