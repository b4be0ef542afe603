"""Reloading the clients file while the gateway runs: on SIGHUP, and when its content changes.

Revoking a client is an edit of the clients file; every gateway picks it up within
``DEPLOYSTREAM_CLIENTS_RELOAD_S`` (or at once on SIGHUP), without a restart. A file that does
not load (half-written, invalid) leaves the clients in use untouched and is logged; the next
change is tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.auth import Authenticator
from gateway.clients import ClientsFileError
from gateway.keys import AUTH, METRICS, SETTINGS
from gateway.metrics import GatewayMetrics

__all__ = ["ClientsWatcher", "watch_clients"]

logger = logging.getLogger(__name__)


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class ClientsWatcher:
    """Reloads an Authenticator's clients file when asked or when the file changes."""

    def __init__(self, auth: Authenticator, path: Path, metrics: GatewayMetrics) -> None:
        self._auth = auth
        self._path = path
        self._metrics = metrics
        self._seen = _digest(path)

    def reload(self, why: str) -> bool:
        """Load the file now; True when the new clients are in use."""
        self._seen = _digest(self._path)
        try:
            self._auth.reload()
        except ClientsFileError as exc:
            self._metrics.clients_reloads.labels("invalid").inc()
            logger.error("clients file not reloaded (%s), the previous clients stay: %s", why, exc)
            return False
        self._metrics.clients_reloads.labels("loaded").inc()
        logger.info("clients file reloaded (%s): %d clients", why, len(self._auth.registry))
        return True

    def check(self) -> None:
        """Reload if the file's content changed since it was last read."""
        if _digest(self._path) != self._seen:
            self.reload("changed")

    async def run(self, interval_s: float) -> None:
        """Check every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            self.check()


async def watch_clients(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: watch the clients file (if there is one) while the app runs."""
    auth, settings = app[AUTH], app[SETTINGS]
    if auth.clients_file is None:
        yield
        return
    watcher = ClientsWatcher(auth, auth.clients_file, app[METRICS])
    loop = asyncio.get_running_loop()
    hangup = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Only the main thread of a process can own signal handlers (tests run apps elsewhere).
        loop.add_signal_handler(signal.SIGHUP, watcher.reload, "SIGHUP")
        hangup = True
    task = asyncio.create_task(watcher.run(settings.clients_reload_s))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if hangup:
        loop.remove_signal_handler(signal.SIGHUP)
