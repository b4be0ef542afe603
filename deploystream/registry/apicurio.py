"""Apicurio Registry 3.3 from Maven Central, run as a local process with its
Confluent-compatible API (``/apis/ccompat/v7``).

The application archive is fetched once with ``mvn``, checked against a pinned SHA-256 and
unpacked into a cache folder; every later start reuses it without network. A registry's API
is bound to 127.0.0.1 unless told otherwise (the compose service binds its network), its
management listener always is (Apicurio 3.3 would open it on 0.0.0.0:9000); it keeps its
schemas in topics of the project's broker (KafkaSQL storage), enforces BACKWARD compatibility
unless told otherwise, and dies with the Python process that started it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from deploystream.kafka.broker import die_with_parent, free_port
from deploystream.registry.java import find_java

__all__ = [
    "APICURIO_VERSION",
    "LocalRegistry",
    "RegistryError",
    "default_cache_dir",
    "ensure_app",
    "registry_ready",
]

logger = logging.getLogger(__name__)

APICURIO_VERSION = "3.3.3"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
#: SHA-256 of apicurio-registry-app-3.3.3-all.tar.gz (158,577,952 bytes) as Central serves
#: it; its SHA-1 there is 71e7918455480cbce405ad45552254eb47ec932d.
ARCHIVE_SHA256 = "8bc6751c76d963734224b01d5e7f84ccb3cb61c87d3bd77c36c35f10a5cbed63"
#: Its classes are Java 21 bytecode (class file version 65).
JAVA_MINIMUM = 21
CCOMPAT_PATH = "/apis/ccompat/v7"
_MARKER = ".complete"
_JVM_FLAGS = (
    # Small and quick to start on a 2-core machine; a registry's load is a few lookups.
    "-Xms64m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


class RegistryError(RuntimeError):
    """The local registry could not be provisioned, started or stopped."""


def default_cache_dir() -> Path:
    """Where the application is cached: ``DEPLOYSTREAM_REGISTRY_CACHE`` or ``.cache/apicurio``
    in the current directory."""
    configured = os.environ.get("DEPLOYSTREAM_REGISTRY_CACHE")
    return Path(configured) if configured else Path.cwd() / ".cache" / "apicurio"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_app(cache_dir: Path | None = None, *, mvn: str = "mvn") -> Path:
    """The folder holding Apicurio's ``quarkus-run.jar``, fetched with Maven the first time.

    The archive is checked against :data:`ARCHIVE_SHA256` before it is unpacked, and the
    folder is filled under a temporary name and renamed when complete, so neither a
    tampered download nor an interrupted one is ever used.
    """
    cache = cache_dir or default_cache_dir()
    app = cache / APICURIO_VERSION
    if (app / _MARKER).exists():
        return app
    if shutil.which(mvn) is None:
        msg = f"'{mvn}' not found: Maven is needed once to fetch Apicurio {APICURIO_VERSION}"
        raise RegistryError(msg)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="app-", dir=cache))
    try:
        archive = _download(staging / "download", mvn)
        actual = _sha256(archive)
        if actual != ARCHIVE_SHA256:
            msg = f"{archive.name} has SHA-256 {actual}, expected {ARCHIVE_SHA256}"
            raise RegistryError(msg)
        unpacked = staging / "app"
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        if not (unpacked / "quarkus-run.jar").is_file():
            msg = f"{archive.name} holds no quarkus-run.jar"
            raise RegistryError(msg)
        (unpacked / _MARKER).write_text(APICURIO_VERSION)
        if app.exists():
            shutil.rmtree(app)
        unpacked.rename(app)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return app


def _download(folder: Path, mvn: str) -> Path:
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(Path(str(resources.files(__package__).joinpath("pom.xml")))),
        "dependency:copy",
        f"-Dartifact={ARTIFACT}",
        f"-DoutputDirectory={folder}",
    ]
    logger.info("fetching Apicurio Registry %s with Maven", APICURIO_VERSION)
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    archives = list(folder.glob("*.tar.gz"))
    if done.returncode != 0 or len(archives) != 1:
        msg = f"mvn failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
        raise RegistryError(msg)
    return archives[0]


def registry_ready(url: str, timeout: float = 2.0) -> bool:
    """True when the Confluent-compatible API at ``url`` lists its subjects."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class LocalRegistry:
    """One Apicurio Registry on 127.0.0.1.

    Args:
        app: folder of the application (see :func:`ensure_app`).
        bootstrap: the broker that stores its schemas (KafkaSQL); None keeps them in memory.
        work_dir: logs (and snapshots, if any); a fresh temporary folder when ``None``.
        port: the API's port; a free one when ``None``.
        topic_prefix: KafkaSQL topics are ``<prefix>-journal``, ``-snapshots`` and
            ``-events``; registries sharing them share their schemas.
        compatibility: the global compatibility rule (Apicurio's own default is NONE).
        host: the address the API is bound to.
        console: output to our standard output (a container's) instead of ``log_file``.
    """

    app: Path
    bootstrap: str | None = None
    work_dir: Path | None = None
    port: int | None = None
    management_port: int | None = None
    topic_prefix: str = "deploystream-registry"
    compatibility: str = "BACKWARD"
    java: Path | None = None
    host: str = "127.0.0.1"
    console: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The Confluent-compatible API, as schema-registry clients want it."""
        local = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{local}:{self.port}{CCOMPAT_PATH}"

    @property
    def pid(self) -> int | None:
        """PID of the running JVM."""
        return self._process.pid if self._process else None

    @property
    def log_file(self) -> Path:
        """The JVM's output."""
        assert self.work_dir is not None
        return self.work_dir / "registry.log"

    def running(self) -> bool:
        """The JVM is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The JVM's command line (finds Java and free ports for what is not given)."""
        self.java = self.java or find_java(JAVA_MINIMUM)
        self.port = self.port or free_port()
        self.management_port = self.management_port or free_port()
        storage: list[str] = []
        if self.bootstrap is not None:
            prefix = self.topic_prefix
            storage = [
                "-Dapicurio.storage.kind=kafkasql",
                f"-Dapicurio.kafkasql.bootstrap.servers={self.bootstrap}",
                f"-Dapicurio.kafkasql.topic={prefix}-journal",
                f"-Dapicurio.kafkasql.snapshots.topic={prefix}-snapshots",
                f"-Dapicurio.events.kafka.topic={prefix}-events",
                # The default of 5 s costs about 20 s at every start.
                "-Dapicurio.kafkasql.consumer.poll.timeout=500",
            ]
        return [
            str(self.java),
            *_JVM_FLAGS,
            f"-Dquarkus.http.host={self.host}",
            f"-Dquarkus.http.port={self.port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={self.management_port}",
            f"-Dapicurio.rules.global.compatibility={self.compatibility}",
            *storage,
            "-jar",
            str(self.app / "quarkus-run.jar"),
        ]

    def start(self, timeout: float = 120.0) -> LocalRegistry:
        """Start the JVM and wait until the API answers."""
        if self._process is not None:
            msg = "registry already started"
            raise RegistryError(msg)
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="deploystream-registry-"))
            self._owns_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        command = self.command()
        if not self.console:  # otherwise the JVM writes to our standard output
            self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(  # noqa: S603
            command,
            # Apicurio writes snapshots (if ever asked to) to its working directory.
            cwd=self.work_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self.stop(remove=False)
                msg = f"registry exited with {code} during start-up; see {self._output}"
                raise RegistryError(msg)
            if registry_ready(self.url, timeout=1.0):
                return self
            time.sleep(0.2)
        self.stop(remove=False)
        msg = f"registry not ready within {timeout:.0f}s; see {self._output}"
        raise RegistryError(msg)

    @property
    def _output(self) -> str:
        return "its output above" if self.console else str(self.log_file)

    def kill(self) -> None:
        """SIGKILL the JVM (fault tests); the port and work folder are kept for a restart."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self._close_log()

    def stop(self, timeout: float = 30.0, *, remove: bool = True) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; remove an owned work dir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("registry did not stop within %.0fs; killing it", timeout)
                process.kill()
                process.wait()
        self._close_log()
        if remove and self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
