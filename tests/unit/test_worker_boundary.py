"""What the worker exposes is decided by its settings alone: faust's own environment variables
cannot re-enable its debug views or move its web server, and lookups need the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pydantic import SecretStr

from streams.internal_auth import INTERNAL_SECRET_HEADER, check_secret, is_authorized

# faust reads some variables at import time: probed in a child with exactly this environment.
PROBE = textwrap.dedent(
    """
    import json, sys
    from streams.__main__ import build_worker
    from streams.app import create_app
    from streams.settings import WorkerSettings
    from tests.unit.offline_codecs import offline_worker_codecs

    settings = WorkerSettings(kafka_bootstrap="127.0.0.1:9", data_dir=sys.argv[1])
    app = create_app(settings, offline_worker_codecs())
    worker = build_worker(app, settings)
    c = app.conf
    print(json.dumps({
        "tables": c.web_tables_enabled, "router": c.web_router_enabled,
        "stats": c.web_stats_enabled, "graph": c.web_graph_enabled,
        "bind": c.web_bind, "port": c.web_port, "broker": [str(u) for u in c.broker],
        "id": c.id, "debug": worker.debug,
        "max_poll_records": c.broker_max_poll_records,
        "max_partition_fetch_bytes": c.consumer_max_fetch_size,
    }))
    """
)
HOSTILE_ENV = {
    "APP_WEB_TABLES_ENABLED": "true",
    "APP_WEB_ROUTER_ENABLED": "true",
    "APP_WEB_STATS_ENABLED": "true",
    "APP_WEB_GRAPH_ENABLED": "true",
    "WEB_BIND": "0.0.0.0",
    "WEB_PORT": "6999",
    "BROKER_URL": "kafka://attacker:9092",
    "APP_ENV_PREFIX": "EVIL_",
    "F_DEBUG": "1",
    "FAUST_DEBUG": "1",
    "F_WEB_BIND": "0.0.0.0",
    "BROKER_MAX_POLL_RECORDS": "100000000",
}


def test_faust_environment_variables_change_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYSTREAM_")} | HOSTILE_ENV
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    conf = json.loads(done.stdout.strip().splitlines()[-1])
    assert conf == {
        "tables": False,
        "router": False,
        "stats": False,
        "graph": False,
        "bind": "127.0.0.1",
        "port": 6066,
        "broker": ["kafka://127.0.0.1:9"],
        "id": "deploystream",
        "debug": False,
        # Bounded (faust's default is unbounded): what a restore decodes at once.
        "max_poll_records": 1000,
        "max_partition_fetch_bytes": 1024 * 1024,
    }


SECRET = SecretStr("internal-secret-0123456789abcdef-0123")


def test_lookups_need_the_exact_secret() -> None:
    assert is_authorized({INTERNAL_SECRET_HEADER: SECRET.get_secret_value()}, SECRET)
    for headers in (
        {},
        {INTERNAL_SECRET_HEADER: ""},
        {INTERNAL_SECRET_HEADER: SECRET.get_secret_value()[:-1]},
        {INTERNAL_SECRET_HEADER: SECRET.get_secret_value() + "x"},
        {"Authorization": f"Bearer {SECRET.get_secret_value()}"},
    ):
        assert not is_authorized(headers, SECRET), headers


def test_without_a_usable_secret_nothing_is_authorized() -> None:
    # A worker started without one would otherwise serve everyone, or anyone sending "".
    assert not is_authorized({INTERNAL_SECRET_HEADER: ""}, None)
    assert not is_authorized({INTERNAL_SECRET_HEADER: "short"}, SecretStr("short"))
    assert check_secret(None) is not None
    assert check_secret(SecretStr("x" * 31)) is not None
    assert check_secret(SECRET) is None


def test_a_worker_without_the_internal_secret_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYSTREAM_")}
    env |= {"DEPLOYSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9", "DEPLOYSTREAM_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "streams"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DEPLOYSTREAM_INTERNAL_SECRET" in done.stderr


def test_gateway_and_worker_name_the_same_header() -> None:
    from gateway.lookups import INTERNAL_SECRET_HEADER as SENT  # noqa: PLC0415

    assert SENT == INTERNAL_SECRET_HEADER
