"""A real single-node Apache Kafka (KRaft) broker from Maven Central jars, without Docker.

The jars come from :mod:`deploystream.kafka.jars`. Each broker gets its own work folder
(data + logs), is formatted, started, probed with a Metadata request and stopped with SIGTERM
then SIGKILL.
"""

from __future__ import annotations

import base64
import ctypes
import logging
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from deploystream.kafka.properties import Listener, loopback_listener, server_properties
from deploystream.kafka.security import BrokerSecurity

__all__ = [
    "BrokerError",
    "LocalKafka",
    "die_with_parent",
    "free_port",
    "metadata_ready",
]

logger = logging.getLogger(__name__)

_JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The local broker could not be provisioned, started or stopped."""


def _resource(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(name)))


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metadata_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Metadata v1 request to ``host:port`` lists at least one broker."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            client_id = b"deploystream-probe"
            header = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id
            message = header + struct.pack(">i", -1)
            sock.sendall(struct.pack(">i", len(message)) + message)
            buffer = b""
            while len(buffer) < 12:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                buffer += chunk
            _size, correlation, brokers = struct.unpack(">iii", buffer[:12])
            return correlation == 7 and brokers >= 1
    except OSError:
        return False


def _cluster_id() -> str:
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


def die_with_parent() -> None:
    # Runs in the child before exec: if the Python process that started the broker dies
    # (even by SIGKILL), the kernel sends the JVM SIGTERM, so no java is ever orphaned.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalKafka:
    """One single-node KRaft broker+controller, bound to 127.0.0.1 unless given ``listeners``.

    Args:
        libs: folder of runtime jars (see :func:`ensure_libs`).
        work_dir: data and logs; a fresh temporary folder when ``None``.
        port: broker port; a free one when ``None``. With ``listeners``, the first one's.
        heap: JVM heap size, small enough for a 2-core CI box.
        listeners: client listeners (PLAINTEXT); by default one on 127.0.0.1:``port``,
            SASL_SSL with ``security``.
        console: log to the standard output (a container's) instead of files in ``work_dir``.
    """

    libs: Path
    work_dir: Path | None = None
    port: int | None = None
    controller_port: int | None = None
    heap: str = "512m"
    java: str = "java"
    security: BrokerSecurity | None = None
    listeners: tuple[Listener, ...] = ()
    console: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)
    _stdout: IO[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.listeners:
            return
        if self.security is not None:
            msg = "a broker with security has the one SASL_SSL listener; give no listeners"
            raise BrokerError(msg)
        if self.port not in (None, self.listeners[0].port):
            msg = f"port {self.port} is not the first listener's ({self.listeners[0].port})"
            raise BrokerError(msg)
        self.port = self.listeners[0].port

    @property
    def bootstrap(self) -> str:
        """``host:port`` that clients on this machine dial."""
        return self.listeners[0].local if self.listeners else f"127.0.0.1:{self.port}"

    def client_listeners(self) -> tuple[Listener, ...]:
        """The listeners clients reach the broker on (``port`` resolved)."""
        if self.listeners:
            return self.listeners
        assert self.port is not None
        return (loopback_listener(self.port, "SASL_SSL" if self.security else "PLAINTEXT"),)

    @property
    def pid(self) -> int | None:
        """PID of the running JVM."""
        return self._process.pid if self._process else None

    @property
    def log_file(self) -> Path:
        """The broker's ``server.log``."""
        assert self.work_dir is not None
        return self.work_dir / "logs" / "server.log"

    def _prepare(self) -> Path:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="deploystream-kafka-"))
            self._owns_work_dir = True
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        properties = self.properties()
        if self.security is not None:
            from deploystream.kafka.tls import generate_tls  # noqa: PLC0415 (dev extra)

            tls = generate_tls(self.security.tls_dir)
            properties += self.security.properties(tls.broker, tls.ca)
        config = self.work_dir / "server.properties"
        config.write_text(properties)
        if not (self.work_dir / "data" / "meta.properties").exists():
            self._format(config)
        return config

    def properties(self) -> str:
        """``server.properties`` once the work folder and ports are known, without the
        security part (its TLS files are made at start)."""
        assert self.work_dir is not None
        assert self.controller_port is not None
        return server_properties(
            self.client_listeners(),
            self.controller_port,
            self.work_dir / "data",
            controller_protocol="PLAINTEXT" if self.security is None else "SSL",
        )

    def _format(self, config: Path) -> None:
        assert self.work_dir is not None
        command = [
            self.java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={_resource('tools-log4j2.yaml')}",
            "-cp",
            f"{self.libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(config),
            *(self.security.scram_arguments() if self.security else []),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            msg = f"formatting KRaft storage failed: {done.stdout}{done.stderr}"
            raise BrokerError(msg)

    def start(self, timeout: float = 90.0) -> LocalKafka:
        """Format (first time), start the JVM and wait until a Metadata request succeeds."""
        if self._process is not None:
            msg = "broker already started"
            raise BrokerError(msg)
        config = self._prepare()
        assert self.work_dir is not None
        command = [
            self.java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={_resource(self._log_config)}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(config),
        ]
        if not self.console:  # otherwise the JVM writes to our standard output
            self._stdout = (self.work_dir / "logs" / "kafka.out").open("ab")
        self._process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509
            # Its own process group: a Ctrl-C for `make run` must not stop the broker before
            # the worker and gateway that still need it (the parent stops it last).
            process_group=0,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self.stop()
                msg = f"broker exited with {code} during start-up; see {self.work_dir / 'logs'}"
                raise BrokerError(msg)
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        msg = f"broker not ready within {timeout:.0f}s; see {self.work_dir / 'logs'}"
        raise BrokerError(msg)

    @property
    def _log_config(self) -> str:
        return "console-log4j2.yaml" if self.console else "log4j2.yaml"

    def running(self) -> bool:
        """The JVM is alive."""
        return self._process is not None and self._process.poll() is None

    def _answers(self) -> bool:
        if self.security is None:
            host, port = self.bootstrap.rsplit(":", 1)
            return metadata_ready(host, int(port), timeout=1.0)
        from confluent_kafka import KafkaException  # noqa: PLC0415
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415

        options: dict[str, str | int | float | bool] = {
            **self.security.client_config(self.bootstrap)
        }
        admin = AdminClient(options)
        try:
            return bool(admin.list_topics(timeout=1.0).brokers)
        except KafkaException:
            return False

    def kill(self) -> None:
        """SIGKILL the JVM (for fault tests); the work dir is kept for a restart."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._stdout is not None:  # start() opens a new one
            self._stdout.close()
            self._stdout = None

    def stop(self, timeout: float = 30.0, *, remove: bool = True) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; remove an owned work dir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("broker did not stop within %.0fs; killing it", timeout)
                process.kill()
                process.wait()
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        if remove and self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
