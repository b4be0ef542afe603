"""The gateway's lookup client against stand-in workers: retries, failover, give-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from pydantic import SecretStr

import gateway.lookups
from deploystream.kafka.broker import free_port
from gateway.errors import ServiceUnavailable
from gateway.lookups import INTERNAL_SECRET_HEADER, LOOKUP_PATH, WorkerClient
from gateway.settings import GatewaySettings

SECRET = SecretStr("internal-secret-0123456789abcdef-0123")
FOUND = {"deployment": {"displayName": "x"}, "properties": {}, "providerMetadata": None}


@asynccontextmanager
async def worker(answers: Callable[[int], web.Response]) -> AsyncIterator[tuple[str, list[int]]]:
    """A stand-in worker answering its n-th lookup with ``answers(n)``; yields its URL and
    the list of lookups it received (their numbers)."""
    hits: list[int] = []

    async def lookup(request: web.Request) -> web.Response:
        hits.append(len(hits))
        return answers(len(hits) - 1)

    app = web.Application()
    app.router.add_get(LOOKUP_PATH, lookup)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


def unavailable(_: int) -> web.Response:
    return web.json_response([{"message": "rebalancing"}], status=503)


def found(_: int) -> web.Response:
    return web.json_response(FOUND)


@asynccontextmanager
async def client(*urls: str) -> AsyncIterator[WorkerClient]:
    lookups = WorkerClient(
        GatewaySettings(worker_urls=list(urls), lookup_timeout_s=2, internal_secret=SECRET)
    )
    await lookups.start()
    try:
        yield lookups
    finally:
        await lookups.close()


async def test_lookup_retries_through_503_until_the_worker_answers() -> None:
    def after_two(n: int) -> web.Response:
        return unavailable(n) if n < 2 else found(n)

    async with worker(after_two) as (url, hits), client(url) as lookups:
        assert await lookups.get(b"key") == FOUND
    assert len(hits) == 3


async def test_absent_key_is_none_without_retrying() -> None:
    async with (
        worker(lambda _: web.json_response([], status=404)) as (url, hits),
        client(url) as lookups,
    ):
        assert await lookups.get(b"key") is None
    assert len(hits) == 1


async def test_dead_worker_is_skipped_and_the_answering_one_is_asked_first_next_time() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        worker(unavailable) as (busy, busy_hits),
        worker(found) as (alive, alive_hits),
        client(dead, busy, alive) as lookups,
    ):
        assert await lookups.get(b"key") == FOUND
        assert await lookups.get(b"key") == FOUND
    assert len(busy_hits) == 1, "the second lookup should start at the worker that answered"
    assert len(alive_hits) == 2


async def test_lookup_gives_up_with_503_and_retry_after_when_no_worker_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.lookups, "RETRY_BUDGET_S", 0.5)
    dead = f"http://127.0.0.1:{free_port()}"
    async with worker(unavailable) as (busy, hits), client(dead, busy) as lookups:
        with pytest.raises(ServiceUnavailable) as raised:
            await lookups.get(b"key")
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "5"
    assert len(hits) > 1, "should have retried within the budget"


async def test_every_lookup_presents_the_internal_secret() -> None:
    seen: list[str | None] = []

    async def lookup(request: web.Request) -> web.Response:
        seen.append(request.headers.get(INTERNAL_SECRET_HEADER))
        return found(0)

    app = web.Application()
    app.router.add_get(LOOKUP_PATH, lookup)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with client(f"http://127.0.0.1:{port}") as lookups:
            assert await lookups.get(b"key") == FOUND
    finally:
        await runner.cleanup()
    assert seen == [SECRET.get_secret_value()]
