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


#: (category, pattern on "file:function"), tried from the top of the stack down; the first
#: frame that matches names the category of the sample.
CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Avro encode (fastavro, schemas.AvroCodec.encode)", r"AvroCodec\.encode|fastavro.*writ"),
        ("Avro decode (fastavro, schemas.AvroCodec.decode)", r"AvroCodec\.decode|fastavro.*read"),
        ("duplicate-key check (stdlib json)", r"_reject_duplicate_keys|_unique_pairs|^json/"),
        ("msgspec validation", r"gateway/validation\.py"),
        ("event building (uuid, datetime, to_builtins)", r"gateway/events\.py|^uuid\.py"),
        ("authentication (JWT, Basic)", r"gateway/auth\.py|^jwt/"),
        ("Prometheus metrics", r"prometheus_client/"),
        ("logging", r"logging/"),
        ("RocksDB store (faust/rocksdict)", r"faust/stores/|rocksdict"),
        (
            "changelog/producer (faust topics, aiokafka producer)",
            r"faust/topics\.py|"
            r"faust/transport/producer\.py|aiokafka/producer/|faust/tables/base\.py:Collection",
        ),
        ("librdkafka producer (gateway)", r"gateway/producer\.py|confluent_kafka"),
        (
            "consumer fetch/parse (aiokafka, faust conductor)",
            r"aiokafka/consumer/|aiokafka/record|"
            r"faust/transport/consumer\.py|faust/transport/conductor\.py|"
            r"faust/transport/drivers/aiokafka\.py",
        ),
        ("apply logic (streams/deployments)", r"streams/deployments/"),
        (
            "faust stream/agent machinery",
            r"faust/streams\.py|faust/agents/|faust/events\.py|"
            r"faust/tables/|mode/",
        ),
        ("aiohttp HTTP server/client", r"aiohttp/|multidict|yarl"),
        ("gateway handlers/middleware", r"gateway/"),
        ("asyncio event loop", r"asyncio/|selectors\.py"),
    )
)


@dataclass
class Profile:
    """Where the sampled time went."""

    samples: int = 0
    #: Samples whose stack does not reach the process's entry point: frames resumed from C
    #: (async generators, callbacks) that py-spy cannot unwind further. Their top frames are
    #: still right; the "own code" attribution misses their callers.
    partial: int = 0
    #: Innermost frame of our own code in each sample (library time charged to its caller).
    project: Counter[str] = field(default_factory=Counter)
    #: Frame on top of the stack (where the CPU was), any code.
    leaf: Counter[str] = field(default_factory=Counter)
    #: Every function on the stack (each counted once per sample).
    inclusive: Counter[str] = field(default_factory=Counter)
    #: Samples by category (:data:`CATEGORIES`; "other" when none matches).
    categories: Counter[str] = field(default_factory=Counter)

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
            "partialPct": round(100 * self.partial / self.samples, 1) if self.samples else 0.0,
            "categories": self.top(self.categories, len(CATEGORIES) + 1),
            "ownCode": self.top(self.project, n),
            "leaf": self.top(self.leaf, n),
            "inclusive": self.top(self.inclusive, n),
        }


def _category(names: list[str]) -> str:
    for name in reversed(names):
        for category, pattern in CATEGORIES:
            if pattern.search(name):
                return category
    return "other"


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
        if not any(p.endswith("__main__.py") or "threading.py" in p for _, p in frames[:4]):
            profile.partial += count
        func, file = frames[-1]
        profile.leaf[f"{_short(file)}:{func}"] += count
        own = next(((f, p) for f, p in reversed(frames) if _is_project(p)), None)
        profile.project[f"{_short(own[1])}:{own[0]}" if own else _LIBRARY_ONLY] += count
        names = [f"{_short(p)}:{f}" for f, p in frames]
        for name in set(names):
            profile.inclusive[name] += count
        profile.categories[_category(names)] += count
    return profile
