"""A worker stops within a bounded time, even when Kafka is gone.

faust stops gracefully by leaving its consumer group and closing its Kafka clients; with
the broker already gone (``make run`` stopping everything at once, a broker outage) its
aiokafka thread fails and the stop never ends. Nothing depends on that last goodbye: the
apply loop has completed or abandoned its batch (changelog first: nothing acknowledged is
lost), and the group notices the member's absence after its session timeout. So after a
stop signal the worker gets ``shutdown_timeout_s`` to stop on its own, then exits anyway,
saying why, and errors of Kafka client threads during the stop are logged as one line.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import faust

__all__ = ["BoundedStopWorker"]

logger = logging.getLogger(__name__)


class BoundedStopWorker(faust.Worker):
    """faust's Worker whose stop, once signalled, ends within ``shutdown_timeout_s``."""

    def __init__(self, app: faust.App, *, shutdown_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._watchdog: threading.Timer | None = None

    def _arm(self) -> None:
        if self._watchdog is not None:
            return
        threading.excepthook = _quiet_thread_errors
        self._watchdog = threading.Timer(self._shutdown_timeout_s, self._give_up)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _give_up(self) -> None:
        logger.warning(
            "the worker did not stop within %.0fs (Kafka unreachable?); exiting without "
            "leaving its consumer group: its partitions move after the session timeout, and "
            "nothing acknowledged is lost",
            self._shutdown_timeout_s,
        )
        logging.shutdown()
        os._exit(0)

    def _on_sigint(self) -> None:
        self._arm()
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        self._arm()
        super()._on_sigterm()


def _quiet_thread_errors(args: threading.ExceptHookArgs) -> None:
    # A Kafka client thread failing on a broker that is gone is expected while stopping.
    logger.warning(
        "while stopping, thread %s ended with %s: %s",
        args.thread.name if args.thread else "?",
        args.exc_type.__name__,
        args.exc_value,
    )
