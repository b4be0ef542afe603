"""One way to get a schema registry: an existing one by URL, or Apicurio started here.

``DEPLOYSTREAM_SCHEMA_REGISTRY_URL`` set: that registry (any Confluent-compatible one) is used
as is and nothing is started. Otherwise an Apicurio Registry from Maven Central
(:mod:`deploystream.registry.apicurio`) is started with its schemas stored on the given broker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploystream.registry.apicurio import APICURIO_VERSION, LocalRegistry, ensure_app

__all__ = ["REGISTRY_URL_VARIABLE", "ProvidedRegistry", "provide_registry"]

logger = logging.getLogger(__name__)

REGISTRY_URL_VARIABLE = "DEPLOYSTREAM_SCHEMA_REGISTRY_URL"


@dataclass
class ProvidedRegistry:
    """A reachable registry and how it was obtained (``external`` or ``apicurio``)."""

    url: str
    kind: str
    local: LocalRegistry | None = None


@contextmanager
def provide_registry(
    bootstrap: str,
    port: int | None = None,
    work_dir: Path | None = None,
    timeout: float = 120.0,
) -> Iterator[ProvidedRegistry]:
    """A registry for the duration of the ``with`` block, its schemas kept in topics of the
    broker at ``bootstrap``; stopped (and never orphaned) afterwards."""
    external = os.environ.get(REGISTRY_URL_VARIABLE)
    if external:
        logger.info("using the existing schema registry at %s", external)
        yield ProvidedRegistry(external, "external")
        return
    local = LocalRegistry(ensure_app(), bootstrap=bootstrap, work_dir=work_dir, port=port)
    logger.info("starting Apicurio Registry %s", APICURIO_VERSION)
    started = time.monotonic()
    local.start(timeout)
    logger.info("schema registry ready at %s in %.1fs", local.url, time.monotonic() - started)
    try:
        yield ProvidedRegistry(local.url, "apicurio", local)
    finally:
        local.stop()
