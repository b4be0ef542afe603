"""Reads of table state from the workers' web views.

Any worker routes a lookup to the worker that owns the key's partition, so the gateway only
needs one reachable worker; it tries them in turn and retries briefly through rebalances.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import aiohttp
import orjson

from gateway.errors import ServiceUnavailable
from gateway.settings import GatewaySettings

__all__ = ["WorkerClient"]

logger = logging.getLogger(__name__)

LOOKUP_PATH = "/internal/deployments"
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.5)


class WorkerClient:
    """HTTP client of the worker lookup view."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._urls = [u.rstrip("/") for u in settings.worker_urls]
        self._timeout = aiohttp.ClientTimeout(total=settings.lookup_timeout_s)
        self._retry_after = str(settings.retry_after_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def _get_once(self, url: str, key: bytes) -> tuple[int, bytes]:
        assert self._session is not None
        params = {"key": base64.urlsafe_b64encode(key).decode()}
        async with self._session.get(url + LOOKUP_PATH, params=params) as response:
            return response.status, await response.read()

    async def get(self, key: bytes) -> dict[str, Any] | None:
        """The stored state of ``key`` as the worker renders it, ``None`` when absent."""
        for delay in (*_RETRY_DELAYS, None):
            for url in self._urls:
                try:
                    status, body = await self._get_once(url, key)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    logger.debug("worker %s unreachable: %r", url, exc)
                    continue
                if status == 200:
                    result: dict[str, Any] = orjson.loads(body)
                    return result
                if status == 404:
                    return None
                logger.debug("worker %s answered %d to a lookup", url, status)
            if delay is not None:
                await asyncio.sleep(delay)
        msg = "No worker could serve the lookup; retry later."
        raise ServiceUnavailable(msg, headers={"Retry-After": self._retry_after})
