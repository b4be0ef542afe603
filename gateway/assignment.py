"""Which worker owns which partition, as the workers last said (``/internal/assignment``).

Every worker answers for the partitions it applies. The gateway asks each of them about once
a second (sooner after a lookup found the map out of date) and sends each key's lookup to
the owner of the key's partition: one hop. The map is only a hint: a worker asked for a key
it does not own forwards it to the owner, and during a rebalance the lookup is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import orjson

__all__ = ["ASSIGNMENT_PATH", "REFRESH_S", "Assignment"]

logger = logging.getLogger(__name__)

ASSIGNMENT_PATH = "/internal/assignment"
#: How often the map is refreshed when nothing suggests it changed.
REFRESH_S = 1.0
#: The soonest a refresh follows another one (a rebalance makes many lookups ask at once).
_MIN_INTERVAL_S = 0.1
_TIMEOUT = aiohttp.ClientTimeout(total=1.0, sock_connect=0.5)


class Assignment:
    """Partition -> index of the owning worker in ``urls``, refreshed in the background."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.partition_count: int | None = None
        self._owners: dict[int, int] = {}
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def owner(self, partition: int) -> int | None:
        """The index of the worker that owns ``partition``, if known."""
        return self._owners.get(partition)

    def stale(self) -> None:
        """The map was found wrong: refresh it soon."""
        self._wanted.set()

    def start(self, session: aiohttp.ClientSession) -> None:
        """Keep the map fresh until :meth:`close`."""
        self._task = asyncio.ensure_future(self._run(session))

    async def close(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            self._wanted.clear()
            await self.refresh(session)
            await asyncio.sleep(_MIN_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), REFRESH_S - _MIN_INTERVAL_S)

    async def _ask(self, session: aiohttp.ClientSession, url: str) -> dict[str, object] | None:
        try:
            async with session.get(url + ASSIGNMENT_PATH, timeout=_TIMEOUT) as response:
                if response.status != 200:
                    return None
                body = orjson.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            logger.debug("worker %s did not say its assignment: %r", url, exc)
            return None
        return body if isinstance(body, dict) else None

    async def refresh(self, session: aiohttp.ClientSession) -> None:
        """Ask every worker now and replace the map with what they say."""
        answers = await asyncio.gather(*(self._ask(session, url) for url in self.urls))
        owners: dict[int, int] = {}
        for index, answer in enumerate(answers):
            if answer is None:
                continue
            count = answer.get("partitionCount")
            if isinstance(count, int) and count > 0:
                self.partition_count = count
            partitions = answer.get("partitions")
            for partition in partitions if isinstance(partitions, list) else ():
                if isinstance(partition, int):
                    # Two claims mean a rebalance under way: the first one wins; a wrong
                    # guess costs a forward or a retry, never a wrong answer.
                    owners.setdefault(partition, index)
        self._owners = owners
