"""Per-client token buckets. Limits are per gateway process: N replicas allow N times the rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["RateLimiter", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of taking one token, with what the ``X-RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` (and ``Retry-After`` when refused)."""
        reset = datetime.fromtimestamp(self.reset_at, UTC).strftime("%Y-%m-%dT%H:%MZ")
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset,
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    """A token bucket per client: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(
        self,
        client_id: str,
        cost: float = 1.0,
        *,
        rate: float | None = None,
        burst: int | None = None,
    ) -> Verdict:
        """Take ``cost`` tokens from the client's bucket if it has them; ``rate`` and
        ``burst`` override the defaults for this client."""
        rate = rate or self._rate
        burst = burst or self._burst
        now = self._clock()
        tokens, stamp = self._buckets.get(client_id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[client_id] = (tokens, now)
        missing = max(0.0, cost - tokens)
        wait = missing / rate
        until_full = (burst - tokens) / rate
        return Verdict(
            allowed=allowed,
            limit=burst,
            remaining=int(tokens),
            retry_after_s=max(1, math.ceil(wait)) if not allowed else 0,
            reset_at=time.time() + until_full,
        )
