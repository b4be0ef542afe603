"""Token buckets: per client, per source address, and bounded."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.ratelimit import RateLimiter, source_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_allowed_then_refused_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    verdicts = [limiter.take("a") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    refused = verdicts[3]
    assert refused.headers()["Retry-After"] == "1"
    assert refused.headers()["X-RateLimit-Limit"] == "3"


def test_tokens_refill_over_time() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed
    clock.now += 1.0
    assert limiter.take("a").allowed


def test_clients_have_separate_buckets_and_overrides() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.take("a").allowed
    assert limiter.take("b").allowed
    assert not limiter.take("a").allowed
    assert [limiter.take("c", burst=5).allowed for _ in range(6)] == [True] * 5 + [False]


def test_the_bucket_table_stays_bounded_whatever_keys_are_sent() -> None:
    # Unauthenticated callers choose the keys (client ids, addresses): 20,000 distinct ones
    # must not mean 20,000 buckets.
    limiter = RateLimiter(rate=1.0, burst=5, clock=Clock())
    for n in range(20_000):
        limiter.take(f"random-{n}")
    assert len(limiter) <= 10_000


def test_full_buckets_are_forgotten_before_ones_still_refilling() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=3, clock=clock, max_keys=100)
    for _ in range(3):
        limiter.take("abuser")
    assert not limiter.take("abuser").allowed
    for n in range(99):
        limiter.take(f"one-off-{n}")
    clock.now += 10  # the one-off buckets (1 token short) are full again; abuser's is not
    for _ in range(5):
        limiter.take("abuser")
    clock.now += 0.5
    limiter.take("newcomer")  # over the cap: full buckets go, the abuser's stays
    assert len(limiter) <= 100
    assert not limiter.take("abuser").allowed


def test_peek_neither_takes_nor_tracks() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.peek("a").allowed
    assert len(limiter) == 0
    assert limiter.take("a").allowed
    assert not limiter.peek("a").allowed
    assert limiter.peek("a").retry_after_s == 1


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "source"),
    [
        ("203.0.113.7", None, [], "203.0.113.7"),
        # Without trusted proxies X-Forwarded-For is the client's own claim: ignored.
        ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        # The nearest address that is not a proxy; what the client wrote to the left is not.
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "garbage", ["10.0.0.0/8"], "10.0.0.2"),
        # One IPv6 host commonly holds a whole /64.
        ("2001:db8:1:2:3:4:5:6", None, [], "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", None, [], "192.0.2.1"),
        (None, None, [], "unknown"),
    ],
)
def test_source_of_a_request(
    peer: str | None, forwarded: str | None, trusted: list[str], source: str
) -> None:
    networks = [ipaddress.ip_network(n) for n in trusted]
    assert source_of(peer, forwarded, networks) == source
