"""Small measuring tools: percentiles, medians, peak memory and CPU of processes."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from deploystream.load import percentile

__all__ = ["CpuMeter", "MemoryWatch", "median", "percentile", "read_status_kb"]


def median(values: Sequence[float]) -> float:
    """Median; NaN when empty."""
    return statistics.median(values) if values else float("nan")


def read_status_kb(pid: int, field_name: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``; None when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


@dataclass
class MemoryWatch:
    """Peak RSS per role (``gateway``, ``worker``…) over every process registered for it.

    The kernel keeps each process's own peak (``VmHWM``); a thread reads it every
    ``interval`` seconds, and :meth:`sample` reads it on demand (before a SIGKILL).
    """

    interval: float = 0.5
    peaks_kb: dict[str, int] = field(default_factory=dict)
    _pids: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, role: str, pid: int | None) -> None:
        """Count ``pid``'s peak towards ``role``."""
        if pid is not None:
            with self._lock:
                self._pids[pid] = role
            self.sample()

    def sample(self) -> None:
        """Read every watched process's peak now; forget processes that are gone."""
        with self._lock:
            for pid, role in list(self._pids.items()):
                peak = read_status_kb(pid, "VmHWM")
                if peak is None:
                    del self._pids[pid]
                    continue
                self.peaks_kb[role] = max(self.peaks_kb.get(role, 0), peak)

    def start(self) -> MemoryWatch:
        """Sample in a background thread until :meth:`stop`."""

        def run() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=run, name="memory-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Final sample, then stop the thread."""
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_mb(self, role: str) -> float | None:
        """Peak RSS of ``role`` in MiB."""
        kb = self.peaks_kb.get(role)
        return kb / 1024 if kb is not None else None


class CpuMeter:
    """CPU seconds that a set of processes used between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self._processes = {
            name: psutil.Process(pid) for name, pid in pids.items() if pid is not None
        }
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.seconds: dict[str, float] = {}
        self.elapsed = 0.0

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(times.user + times.system)

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return float(times.user + times.system + getattr(times, "nice", 0.0))

    def start(self) -> CpuMeter:
        """Take the starting readings."""
        self._t0 = time.perf_counter()
        self._start = {name: self._cpu(p) for name, p in self._processes.items()}
        self._start["(machine)"] = self._busy()
        return self

    def stop(self) -> dict[str, float]:
        """CPU use per process as % of one core since :meth:`start`; ``other`` is what
        the rest of the machine used meanwhile (noise from outside the benchmark)."""
        self.elapsed = time.perf_counter() - self._t0
        self.seconds = {
            name: self._cpu(p) - self._start[name] for name, p in self._processes.items()
        }
        busy = self._busy() - self._start["(machine)"]
        self.seconds["other"] = max(0.0, busy - sum(self.seconds.values()))
        return self.percent()

    def percent(self) -> dict[str, float]:
        """Last readings as % of one core."""
        if self.elapsed <= 0:
            return {}
        return {name: round(100 * s / self.elapsed, 1) for name, s in self.seconds.items()}


def percentiles_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    values = list(latencies_s)
    return {
        "p50": round(percentile(values, 50) * 1000, 2),
        "p90": round(percentile(values, 90) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
        "max": round(max(values, default=float("nan")) * 1000, 2),
        "count": len(values),
    }
