"""The broker's runtime: Apache Kafka's jars from Maven Central, resolved once with ``mvn``
into a cache folder and checked against pinned SHA-256 sums after every resolution and before
every use; every later start reuses them and needs no network."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from deploystream.kafka.broker import BrokerError

__all__ = ["KAFKA_VERSION", "default_cache_dir", "ensure_libs", "pinned_sums", "verify_libs"]

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
