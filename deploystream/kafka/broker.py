"""A real single-node Apache Kafka (KRaft) broker from Maven Central jars, without Docker.

The jars are resolved once with ``mvn`` into a cache folder; every later start reuses them
and needs no network. Each broker gets its own work folder (data + logs), is formatted,
started, probed with a Metadata request and stopped with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import logging
import os
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

from deploystream.kafka.security import BrokerSecurity

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "LocalKafka",
    "default_cache_dir",
    "die_with_parent",
    "ensure_libs",
    "free_port",
    "metadata_ready",
    "verify_libs",
]

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.2"
_MARKER = ".complete"
# Jars whose absence (or whose wrong major version) makes a broker fail silently.
_REQUIRED_PREFIXES = (
    f"kafka_2.13-{KAFKA_VERSION}.jar",
    "kafka-server-",
    "log4j-slf4j-impl-",
    "slf4j-api-1.7.",
    "jackson-dataformat-yaml-",
)
_FORBIDDEN_PREFIXES = ("slf4j-api-2", "log4j-slf4j2-impl", "log4j-to-slf4j", "logback")
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


def default_cache_dir() -> Path:
    """Where jars are cached: ``DEPLOYSTREAM_KAFKA_CACHE`` or ``.cache/kafka`` in the cwd."""
    configured = os.environ.get("DEPLOYSTREAM_KAFKA_CACHE")
    return Path(configured) if configured else Path.cwd() / ".cache" / "kafka"


def _resource(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(name)))


def _check_libs(libs: Path) -> None:
    names = sorted(p.name for p in libs.glob("*.jar"))
    missing = [p for p in _REQUIRED_PREFIXES if not any(n.startswith(p) for n in names)]
    forbidden = [n for n in names if n.startswith(_FORBIDDEN_PREFIXES)]
    if missing or forbidden:
        msg = f"broken Kafka classpath in {libs}: missing {missing}, conflicting {forbidden}"
        raise BrokerError(msg)


def pinned_sums() -> dict[str, str]:
    """``jars.sha256``: the SHA-256 of every jar of the runtime, by file name."""
    sums = {}
    for line in _resource("jars.sha256").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            sums[name] = digest
    return sums


def verify_libs(libs: Path, pinned: dict[str, str] | None = None) -> None:
    """Raise BrokerError unless ``libs`` holds exactly the pinned jars, byte for byte."""
    expected = pinned_sums() if pinned is None else pinned
    actual = {jar.name: hashlib.sha256(jar.read_bytes()).hexdigest() for jar in libs.glob("*.jar")}
    wrong = sorted(n for n in expected.keys() & actual.keys() if expected[n] != actual[n])
    missing, extra = sorted(expected.keys() - actual.keys()), sorted(actual.keys() - expected)
    if wrong or missing or extra:
        msg = (
            f"the Kafka jars in {libs} do not match deploystream/kafka/jars.sha256: "
            f"checksum mismatch {wrong}, missing {missing}, unexpected {extra}. Refusing to run "
            "them: delete the folder to fetch them again, and if the mismatch persists, the "
            "repository or the network path to it is serving other bytes."
        )
        raise BrokerError(msg)


def ensure_libs(cache_dir: Path | None = None, *, mvn: str = "mvn") -> Path:
    """Return a folder holding the broker's runtime jars, resolving them with Maven once.

    The folder is filled under a temporary name and renamed when complete, so an
    interrupted download never leaves a half-filled cache behind. The jars are checked
    against their pinned SHA-256 sums after every resolution and on every later use.
    """
    cache = (cache_dir or default_cache_dir()) / KAFKA_VERSION
    libs = cache / "libs"
    if (libs / _MARKER).exists():
        verify_libs(libs)
        return libs
    if shutil.which(mvn) is None:
        msg = f"'{mvn}' not found: Maven is needed once to fetch the Kafka {KAFKA_VERSION} jars"
        raise BrokerError(msg)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=cache))
    command = [
        mvn,
        "-q",
        "-B",
        # Fail on a checksum that does not match the repository's (Maven only warns).
        "--strict-checksums",
        "-f",
        str(_resource("pom.xml")),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    logger.info("fetching Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        msg = f"mvn failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
        raise BrokerError(msg)
    try:
        _check_libs(staging)
        verify_libs(staging)
    except BrokerError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / _MARKER).write_text(KAFKA_VERSION)
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    return libs


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
    """One single-node KRaft broker+controller bound to 127.0.0.1.

    Args:
        libs: folder of runtime jars (see :func:`ensure_libs`).
        work_dir: data and logs; a fresh temporary folder when ``None``.
        port: broker port; a free one when ``None``.
        heap: JVM heap size, small enough for a 2-core CI box.
    """

    libs: Path
    work_dir: Path | None = None
    port: int | None = None
    controller_port: int | None = None
    heap: str = "512m"
    java: str = "java"
    security: BrokerSecurity | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)
    _stdout: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """``host:port`` that clients dial."""
        return f"127.0.0.1:{self.port}"

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
        data, logs = self.work_dir / "data", self.work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        secure = self.security is not None
        properties = (
            _resource("server.properties.in")
            .read_text()
            .replace("@LISTENER@", "SASL_SSL" if secure else "PLAINTEXT")
            .replace("@CONTROLLER_PROTOCOL@", "SSL" if secure else "PLAINTEXT")
            .replace("@BROKER_PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
            .replace("@LOG_DIRS@", str(data))
        )
        if self.security is not None:
            from deploystream.kafka.tls import generate_tls  # noqa: PLC0415 (dev extra)

            tls = generate_tls(self.security.tls_dir)
            properties += self.security.properties(tls.broker, tls.ca)
        config = self.work_dir / "server.properties"
        config.write_text(properties)
        if not (data / "meta.properties").exists():
            self._format(config)
        return config

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
            f"-Dlog4j2.configurationFile={_resource('log4j2.yaml')}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(config),
        ]
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

    def _answers(self) -> bool:
        if self.security is None:
            return metadata_ready("127.0.0.1", self.port or 0, timeout=1.0)
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
