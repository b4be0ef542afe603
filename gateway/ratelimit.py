"""Token buckets: per authenticated client, and per source address for failed credentials.

Limits are per gateway process: N replicas allow N times the rate. A bucket that has refilled
completely is the same as no bucket, so such buckets are dropped whenever the table reaches its
size cap; only when every tracked bucket is still refilling are the least recently used ones
dropped. The table never holds more than ``max_keys`` buckets, whatever callers send.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["RateLimiter", "Verdict", "source_of"]


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


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    full_at: float


class RateLimiter:
    """Token buckets by key: ``burst`` tokens, refilled at ``rate`` per second, at most
    ``max_keys`` of them tracked at a time."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = 10_000,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, rate: float, burst: int, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(burst)
        return min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)

    def _verdict(
        self, allowed: bool, tokens: float, cost: float, rate: float, burst: int
    ) -> Verdict:
        missing = max(0.0, cost - tokens)
        until_full = (burst - tokens) / rate
        return Verdict(
            allowed=allowed,
            limit=burst,
            remaining=int(tokens),
            retry_after_s=max(1, math.ceil(missing / rate)) if not allowed else 0,
            reset_at=time.time() + until_full,
        )

    def peek(
        self, key: str, cost: float = 1.0, *, rate: float | None = None, burst: int | None = None
    ) -> Verdict:
        """Whether ``key`` has ``cost`` tokens, without taking them or tracking the key."""
        rate, burst = rate or self._rate, burst or self._burst
        tokens = self._tokens(key, rate, burst, self._clock())
        return self._verdict(tokens >= cost, tokens, cost, rate, burst)

    def take(
        self,
        key: str,
        cost: float = 1.0,
        *,
        rate: float | None = None,
        burst: int | None = None,
    ) -> Verdict:
        """Take ``cost`` tokens from the key's bucket if it has them; ``rate`` and
        ``burst`` override the defaults for this key."""
        rate, burst = rate or self._rate, burst or self._burst
        now = self._clock()
        tokens = self._tokens(key, rate, burst, now)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = _Bucket(tokens, now, now + (burst - tokens) / rate)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._shrink(now)
        return self._verdict(allowed, tokens, cost, rate, burst)

    def _shrink(self, now: float) -> None:
        # Full buckets first (forgetting them changes nothing), then the least recently used.
        for key in [k for k, b in self._buckets.items() if b.full_at <= now]:
            del self._buckets[key]
        target = self._max_keys * 9 // 10
        while len(self._buckets) > target:
            self._buckets.popitem(last=False)


def _network(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One IPv6 host usually holds a whole /64: count it as one source.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def source_of(
    peer: str | None,
    forwarded_for: str | None,
    trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> str:
    """The address a request comes from, for per-source limits.

    The peer's address, unless the peer is a trusted proxy: then the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (addresses further left were
    written by the client and prove nothing).
    """
    networks = tuple(trusted)
    address = _parse(peer or "")
    if address is None:
        return peer or "unknown"
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    while networks and any(address in n for n in networks) and hops:
        forwarded = _parse(hops.pop())
        if forwarded is None:
            break
        address = forwarded
    return _network(address)
