"""The gateway's lookup client against stand-in workers speaking the batched lookup format:
retries, failover, give-up, batching, routing by the workers' assignment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

import gateway.lookups
from deploystream.kafka.broker import free_port
from gateway.assignment import ASSIGNMENT_PATH
from gateway.errors import ServiceUnavailable
from gateway.lookups import INTERNAL_SECRET_HEADER, LOOKUPS_PATH, WorkerClient
from gateway.settings import GatewaySettings
from schemas.lookups import Answer, Status, decode_keys, encode_answers, partition_of

SECRET = SecretStr("internal-secret-0123456789abcdef-0123")
FOUND = b'{"displayName":"x"}'
PARTITIONS = 4


@dataclass
class StandIn:
    """A stand-in worker: answers each key with ``answer(n, key)`` (n: its n-th batch)."""

    answer: Callable[[int, bytes], Answer]
    owns: list[int] = field(default_factory=list)
    batches: list[list[bytes]] = field(default_factory=list)
    secrets: list[str | None] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    url: str = ""


@asynccontextmanager
async def worker(
    answer: Callable[[int, bytes], Answer], owns: list[int] | None = None, delay: float = 0.0
) -> AsyncIterator[StandIn]:
    stand_in = StandIn(answer, owns or [])

    async def lookups(request: web.Request) -> web.Response:
        stand_in.secrets.append(request.headers.get(INTERNAL_SECRET_HEADER))
        stand_in.views.append(request.query["view"])
        keys = decode_keys(await request.read())
        stand_in.batches.append(keys)
        if delay:
            await asyncio.sleep(delay)
        n = len(stand_in.batches) - 1
        return web.Response(body=encode_answers([answer(n, k) for k in keys]))

    async def assignment(_: web.Request) -> web.Response:
        body = {"partitions": stand_in.owns, "partitionCount": PARTITIONS, "ready": True}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_post(LOOKUPS_PATH, lookups)
    app.router.add_get(ASSIGNMENT_PATH, assignment)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stand_in.url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def retry(_: int, __: bytes) -> Answer:
    return Answer(Status.RETRY, b"rebalancing")


def found(_: int, __: bytes) -> Answer:
    return Answer(Status.FOUND, FOUND)


@asynccontextmanager
async def client(*urls: str, in_flight: int = 2) -> AsyncIterator[WorkerClient]:
    lookups = WorkerClient(
        GatewaySettings(
            worker_urls=list(urls),
            lookup_timeout_s=2,
            internal_secret=SECRET,
            lookup_batches_in_flight=in_flight,
        )
    )
    await lookups.start()
    try:
        yield lookups
    finally:
        await lookups.close()


def key_in(partition: int) -> bytes:
    """A key of ``partition``."""
    n = 0
    while partition_of(f"key-{n}".encode(), PARTITIONS) != partition:
        n += 1
    return f"key-{n}".encode()


async def test_lookup_retries_through_retry_answers_until_the_worker_answers() -> None:
    def after_two(n: int, key: bytes) -> Answer:
        return retry(n, key) if n < 2 else found(n, key)

    async with worker(after_two) as alone, client(alone.url) as lookups:
        assert await lookups.get(b"key", "deployment") == FOUND
    assert len(alone.batches) == 3
    assert alone.views == ["deployment"] * 3


async def test_absent_key_is_none_without_retrying() -> None:
    async with (
        worker(lambda _, __: Answer(Status.ABSENT)) as alone,
        client(alone.url) as lookups,
    ):
        assert await lookups.get(b"key") is None
    assert len(alone.batches) == 1


async def test_dead_worker_is_skipped_and_the_answering_one_is_asked_first_next_time() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        worker(retry) as busy,
        worker(found) as alive,
        client(dead, busy.url, alive.url) as lookups,
    ):
        assert await lookups.get(b"key") == FOUND
        assert await lookups.get(b"key") == FOUND
    assert len(busy.batches) == 1, "the second lookup should start at the worker that answered"
    assert len(alive.batches) == 2


async def test_lookup_gives_up_with_503_and_retry_after_when_no_worker_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.lookups, "RETRY_BUDGET_S", 0.5)
    dead = f"http://127.0.0.1:{free_port()}"
    async with worker(retry) as busy, client(dead, busy.url) as lookups:
        with pytest.raises(ServiceUnavailable) as raised:
            await lookups.get(b"key")
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "5"
    assert len(busy.batches) > 1, "should have retried within the budget"


async def test_every_lookup_presents_the_internal_secret() -> None:
    async with worker(found) as alone, client(alone.url) as lookups:
        assert await lookups.get(b"key") == FOUND
    assert alone.secrets == [SECRET.get_secret_value()]


async def test_concurrent_lookups_share_requests_and_each_gets_its_own_answer() -> None:
    def echo(_: int, key: bytes) -> Answer:
        return Answer(Status.FOUND, key.upper())

    keys = [f"key-{n}".encode() for n in range(200)]
    async with worker(echo, delay=0.01) as alone, client(alone.url, in_flight=1) as lookups:
        answers = await asyncio.gather(*(lookups.get(k) for k in keys))
    assert answers == [k.upper() for k in keys]
    assert sorted(k for batch in alone.batches for k in batch) == sorted(keys)
    # One request in flight at a time: the lookups that arrive meanwhile go together.
    assert len(alone.batches) <= 3, [len(b) for b in alone.batches]


async def test_a_key_goes_straight_to_the_worker_that_owns_its_partition() -> None:
    async with (
        worker(found, owns=[0, 1]) as first,
        worker(found, owns=[2, 3]) as second,
        client(first.url, second.url) as lookups,
    ):
        await lookups.assignment.refresh(lookups._session)  # type: ignore[arg-type]
        for partition in range(PARTITIONS):
            assert await lookups.get(key_in(partition)) == FOUND
    assert [partition_of(k, PARTITIONS) for b in first.batches for k in b] == [0, 1]
    assert [partition_of(k, PARTITIONS) for b in second.batches for k in b] == [2, 3]


async def test_a_client_that_goes_away_does_not_disturb_the_others() -> None:
    async with worker(found, delay=0.2) as alone, client(alone.url, in_flight=1) as lookups:
        first = asyncio.ensure_future(lookups.get(b"a"))
        second = asyncio.ensure_future(lookups.get(b"b"))
        await asyncio.sleep(0.05)
        first.cancel()
        assert await second == FOUND
        with pytest.raises(asyncio.CancelledError):
            await first
