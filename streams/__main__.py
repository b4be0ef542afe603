"""``python -m streams``: run one worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import sys

import faust
from pydantic import ValidationError

from deploystream import collector
from schemas.registry import RegistryError, SchemaRegistry
from streams.app import create_app
from streams.errors import StreamsError
from streams.internal_auth import check_secret
from streams.registration import register_worker_schemas
from streams.settings import WorkerSettings
from streams.shutdown import BoundedStopWorker
from streams.topics import COMPACTED, DEAD_LETTER_HEADROOM_BYTES, ensure_topic, record_limit

#: Allocations (minus deallocations) between two collections of the youngest generation.
GC_YOUNG_THRESHOLD = 20_000


def main() -> int:
    """Build settings once, make sure the topics exist and the schemas are registered, then
    hand over to faust's Worker."""
    # Until faust configures logging (it replaces these handlers) start-up still reports.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = WorkerSettings.load()
    except ValidationError as exc:
        logging.getLogger("streams").error("cannot start: %s", exc)
        return 2
    unusable = check_secret(settings.internal_secret)
    if unusable is not None:
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("streams").error("cannot start: %s", unusable)
        return 2
    client = settings.librdkafka_config()
    limit = record_limit(settings.max_record_bytes)
    try:
        ensure_topic(
            client,
            settings.deployments_topic,
            settings.partitions,
            settings.replication_factor,
            limit,
        )
        # The table's changelog is also the public state topic: created here, not by faust,
        # so that an existing topic of the wrong shape stops the worker instead of being used.
        ensure_topic(
            client,
            settings.state_topic,
            settings.partitions,
            settings.replication_factor,
            {**COMPACTED, **limit},
        )
        ensure_topic(
            client,
            settings.dead_letter_topic,
            1,
            settings.replication_factor,
            record_limit(settings.max_record_bytes + DEAD_LETTER_HEADROOM_BYTES),
            exact_partitions=False,
        )
        codecs = register_worker_schemas(settings, SchemaRegistry(settings.schema_registry_url))
    except (StreamsError, RegistryError) as exc:
        logging.getLogger("streams").error("cannot start: %s", exc)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = build_worker(create_app(settings, codecs), settings)
    # The apply loop allocates a few dozen short-lived objects per event and keeps almost
    # none (state lives in RocksDB).
    collector.tune()
    worker.execute_from_commandline()
    return 0


def build_worker(app: faust.App, settings: WorkerSettings) -> faust.Worker:
    """faust's Worker for ``app``, logging at the configured level, with a bounded stop."""
    # debug=False whatever F_DEBUG/FAUST_DEBUG say: faust's debug mode opens an aiomonitor
    # console (a Python prompt inside the worker) when aiomonitor is installed.
    worker = BoundedStopWorker(
        app,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        loglevel=settings.log_level,
        quiet=True,
        debug=False,
    )
    # At warning level and above faust sets the root logger to DEBUG for its terminal
    # spinner, so every debug call in faust and aiokafka built a log record (about 5% of
    # the apply loop) for nothing: we run without a terminal.
    worker.spinner = None
    return worker


if __name__ == "__main__":
    sys.exit(main())
