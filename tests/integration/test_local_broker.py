"""The Maven-jar broker: cached jars, start, readiness, clean stop, never an orphaned JVM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deploystream.kafka.broker import LocalKafka, metadata_ready
from deploystream.kafka.jars import ensure_libs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def test_cached_jars_need_no_maven_on_second_use() -> None:
    libs = ensure_libs()
    # A second call must not invoke Maven at all: a missing mvn binary proves it.
    assert ensure_libs(mvn="/nonexistent/mvn") == libs
    names = {p.name for p in libs.glob("*.jar")}
    assert "kafka_2.13-4.1.2.jar" in names
    assert any(n.startswith("log4j-slf4j-impl-") for n in names)
    assert not any(n.startswith("slf4j-api-2") for n in names)


def test_broker_starts_answers_metadata_and_stops_cleanly(tmp_path: Path) -> None:
    broker = LocalKafka(ensure_libs(), work_dir=tmp_path / "k")
    started = time.monotonic()
    broker.start()
    try:
        assert time.monotonic() - started < 60
        assert metadata_ready("127.0.0.1", broker.port or 0)
        assert "Kafka Server started" in broker.log_file.read_text()
        pid = broker.pid
        assert pid is not None
    finally:
        broker.stop()
    assert _wait_dead(pid, 5)
    assert not metadata_ready("127.0.0.1", broker.port or 0, timeout=0.5)


def test_broker_dies_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from deploystream.kafka.broker import LocalKafka
        from deploystream.kafka.jars import ensure_libs
        broker = LocalKafka(ensure_libs(), work_dir=Path({str(tmp_path / "orphan")!r})).start()
        print(broker.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        java_pid = int(line.strip())
        assert _alive(java_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_dead(java_pid, 40), "the JVM outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_failed_start_reports_the_reason_and_leaves_nothing_running(tmp_path: Path) -> None:
    bad = LocalKafka(ensure_libs(), work_dir=tmp_path / "bad", heap="1k")
    with pytest.raises(Exception, match=r"exited|not ready"):
        bad.start(timeout=30)
    assert bad.pid is None
