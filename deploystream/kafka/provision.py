"""One way to get a broker, whatever the machine: an existing cluster, or Maven jars.

``DEPLOYSTREAM_KAFKA_BOOTSTRAP`` set: that cluster is used as is. Otherwise the broker from
Maven Central jars (:mod:`deploystream.kafka.broker`), the same one the compose file's
``kafka`` service runs (``deploystream kafka``). There is no Docker route: an image pulled
here would be one more artifact we cannot check the way we check the jars.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploystream.kafka.broker import LocalKafka
from deploystream.kafka.jars import KAFKA_VERSION, ensure_libs

__all__ = ["ProvidedBroker", "provide_broker"]

logger = logging.getLogger(__name__)


@dataclass
class ProvidedBroker:
    """A reachable broker and how it was obtained (``external`` or ``maven``)."""

    bootstrap: str
    kind: str
    local: LocalKafka | None = None


@contextmanager
def provide_broker(
    port: int | None = None,
    work_dir: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[ProvidedBroker]:
    """A running broker for the duration of the ``with`` block; stopped (and never orphaned)
    afterwards, also when the block raises or is interrupted."""
    external = os.environ.get("DEPLOYSTREAM_KAFKA_BOOTSTRAP")
    if external:
        logger.info("using the existing Kafka cluster at %s", external)
        yield ProvidedBroker(external, "external")
        return
    local = LocalKafka(ensure_libs(), work_dir=work_dir, port=port)
    logger.info("starting Kafka %s from Maven jars", KAFKA_VERSION)
    started = time.monotonic()
    local.start(timeout)
    logger.info("broker ready at %s in %.1fs", local.bootstrap, time.monotonic() - started)
    try:
        yield ProvidedBroker(local.bootstrap, "maven", local)
    finally:
        local.stop()
