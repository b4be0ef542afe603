"""The worker's log level is the level its libraries log at: nothing below it is built."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# faust configures logging for the whole process: done in a child, not in the test runner.
PROBE = textwrap.dedent(
    """
    import logging, sys
    from streams.__main__ import build_worker
    from streams.app import create_app
    from streams.settings import WorkerSettings
    from tests.unit.offline_codecs import offline_worker_codecs

    settings = WorkerSettings(kafka_bootstrap="127.0.0.1:9", log_level=sys.argv[1])
    worker = build_worker(create_app(settings, offline_worker_codecs()), settings)
    worker._setup_logging()
    loggers = ("", "aiokafka", "aiokafka.producer.producer", "faust.topics", "mode")
    enabled = [name for name in loggers if logging.getLogger(name).isEnabledFor(logging.DEBUG)]
    sys.__stdout__.write(",".join(enabled) + "|" + str(logging.getLogger().level) + "\\n")
    """
)


@pytest.mark.parametrize(("level", "root"), [("warning", 30), ("error", 40), ("info", 20)])
def test_libraries_do_not_build_debug_records_above_debug_level(level: str, root: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, level],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    enabled, _, root_level = done.stdout.strip().rpartition("\n")[2].partition("|")
    assert enabled == ""
    assert int(root_level) == root
