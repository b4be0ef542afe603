"""Sampling profiles of running services with py-spy, and where their time goes.

py-spy attaches to a process by pid without changing it (``--nonblocking``: the target is
never paused) and samples only the thread holding the GIL (``--gil``): the Python work that
limits a single-process asyncio service. Profiles are saved in the collapsed-stack format
(``--format raw``), which speedscope and flamegraph.pl open as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Profile", "Recording", "analyse", "py_spy"]

_LIBRARY_ONLY = "(framework/library only: no frame of ours below the entry point)"

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
#: Folders of this project's own code, for attributing samples to it. py-spy names files
#: relative to sys.path (``gateway/events.py``) or absolute.
_PROJECT = re.compile(r"(?:^|/)(?P<rest>(?:gateway|streams|schemas|deploystream)/.*)$")


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    """A py-spy run in the background."""

    out: Path
    process: subprocess.Popen[bytes] | None
    error: str | None = None

    def wait(self, timeout: float = 60.0) -> Path | None:
        """Wait for py-spy to write its file; None when it failed."""
        if self.process is None:
            return None
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            self.error = "py-spy did not finish"
            return None
        if self.process.returncode != 0 or not self.out.exists():
            self.error = stderr.decode(errors="replace")[-500:]
            return None
        return self.out


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> Recording:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (collapsed stacks)."""
    executable = py_spy()
    if executable is None:
        return Recording(out, None, "py-spy is not installed (pip install -e '.[dev]')")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--gil",
        "--nonblocking",
        "--output",
        str(out),
    ]
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return Recording(out, process)


def _short(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    match = _PROJECT.search(path)
    if match:
        return match["rest"]
    if "/lib/python3" in path:
        return "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path


def _is_project(path: str) -> bool:
    # Entry points (``python -m gateway``) sit under every sample: not where time goes.
    if "site-packages" in path or path.endswith("__main__.py"):
        return False
    return _PROJECT.search(path) is not None


@dataclass
class Profile:
    """Where the sampled time went."""

    samples: int = 0
    #: Innermost frame of our own code in each sample (library time charged to its caller).
    project: Counter[str] = field(default_factory=Counter)
    #: Frame on top of the stack (where the CPU was), any code.
    leaf: Counter[str] = field(default_factory=Counter)
    #: Every function on the stack (each counted once per sample).
    inclusive: Counter[str] = field(default_factory=Counter)

    def top(self, counter: Counter[str], n: int = 15) -> list[dict[str, Any]]:
        """The ``n`` largest entries with their share of all samples, in %."""
        return [
            {"function": name, "pct": round(100 * count / self.samples, 1)}
            for name, count in counter.most_common(n)
        ]

    def summary(self, n: int = 15) -> dict[str, Any]:
        """A JSON-ready digest."""
        return {
            "samples": self.samples,
            "ownCode": self.top(self.project, n),
            "leaf": self.top(self.leaf, n),
            "inclusive": self.top(self.inclusive, n),
        }


def analyse(path: Path) -> Profile:
    """Read a collapsed-stack file (``frame;frame;... count`` per line)."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack.split(";"):
            match = _FRAME.match(raw.strip())
            if match is None:
                continue
            frames.append((match["func"], match["file"]))
        if not frames:
            continue
        profile.samples += count
        func, file = frames[-1]
        profile.leaf[f"{_short(file)}:{func}"] += count
        own = next(((f, p) for f, p in reversed(frames) if _is_project(p)), None)
        profile.project[f"{_short(own[1])}:{own[0]}" if own else _LIBRARY_ONLY] += count
        for name in {f"{_short(p)}:{f}" for f, p in frames}:
            profile.inclusive[name] += count
    return profile
