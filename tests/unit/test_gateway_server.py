"""The gateway's own server: a cap on open connections, idle and header deadlines, body
deadlines, quiet client disconnects; and a record over the limit is never a 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvloop
from aiohttp import web
from pydantic import SecretStr

from deploystream.kafka.broker import free_port
from gateway.bodies import BodyBudget, read_body
from gateway.errors import KafkaUnavailable, PayloadTooLarge
from gateway.events import OutgoingEvent
from gateway.keys import BODIES, METRICS, SETTINGS
from gateway.metrics import GatewayMetrics
from gateway.middleware import error_middleware
from gateway.producer import EventProducer
from gateway.server import start
from gateway.settings import GatewaySettings


async def echo(request: web.Request) -> web.Response:
    body = await read_body(request, 1 << 20, budget=request.app[BODIES], timeout_s=0.5)
    return web.Response(body=b"%d" % len(body))


@asynccontextmanager
async def server(**settings: object) -> AsyncIterator[tuple[int, GatewayMetrics]]:
    """A gateway-like app on the gateway's server, on a free port."""
    config = GatewaySettings(gateway_port=free_port(), **settings)  # type: ignore[arg-type]
    metrics = GatewayMetrics()
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS], app[METRICS] = config, metrics
    app[BODIES] = BodyBudget(config.max_inflight_body_bytes, 5)
    app.router.add_post("/echo", echo)
    runner = await start(app, config, metrics)
    try:
        yield config.gateway_port, metrics
    finally:
        await runner.cleanup()


async def request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


POST = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"


async def test_connections_over_the_cap_get_503_and_are_closed() -> None:
    async with server(max_connections=3) as (port, metrics):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.1)
        refused = await request(port, POST)
        assert refused.startswith(b"HTTP/1.1 503"), refused
        assert b"Retry-After: 1" in refused
        assert metrics.connections_refused._value.get() == 1
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        assert (await request(port, POST)).startswith(b"HTTP/1.1 200")


def test_the_cap_works_on_uvloop_the_gateways_default_loop() -> None:
    # uvloop's transports are not asyncio's classes: the refusal must not depend on them.
    uvloop.run(asyncio.wait_for(test_connections_over_the_cap_get_503_and_are_closed(), 30))


async def test_a_connection_that_never_completes_its_request_head_is_cut() -> None:
    async with server(idle_timeout_s=0.5) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        # Slowloris: a byte of header every 0.1 s never completes a request.
        for byte in b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa":
            if reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
            if time.monotonic() - started > 5:
                break
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - started < 3
        writer.close()


async def test_a_stalled_body_is_answered_408_and_the_connection_closed() -> None:
    async with server() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 20)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"Connection: close" in answer
        # The 0.5 s body deadline, then at most the 2 s the gateway drains unread bodies.
        assert time.monotonic() - started < 4
        writer.close()


async def test_a_client_that_hangs_up_mid_body_is_no_500_and_no_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with server() as (port, metrics):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await asyncio.sleep(0.3)
    samples = {
        tuple(sorted(s.labels.items())): s.value
        for metric in metrics.requests.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    statuses = {dict(labels)["status"] for labels in samples}
    assert statuses == {"499"}, samples
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


async def test_bodies_held_at_once_are_bounded() -> None:
    async with server(max_inflight_body_bytes=100_000) as (port, _):
        # Two requests whose bodies together exceed the budget: the second is refused.
        _, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        first.write(b"x" * 90_000)
        await first.drain()
        await asyncio.sleep(0.1)
        body = b"y" * 20_000
        head = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        refused = await request(port, head.encode() + b"Connection: close\r\n\r\n" + body)
        assert refused.startswith(b"HTTP/1.1 503"), refused
        first.close()


async def test_a_record_over_the_limit_is_a_413_never_a_503() -> None:
    # librdkafka refuses an oversized record locally: no broker is needed to see it.
    settings = GatewaySettings(
        kafka_bootstrap="127.0.0.1:9", max_record_bytes=65_536, internal_secret=SecretStr("s" * 32)
    )
    producer = EventProducer(settings)
    with pytest.raises(PayloadTooLarge) as raised:
        await producer.send("t", [OutgoingEvent(b"k", b"x" * 200_000)])
    assert not isinstance(raised.value, KafkaUnavailable)
    assert "65536-byte record limit" in raised.value.messages[0]


async def test_readiness_never_waits_for_kafka() -> None:
    settings = GatewaySettings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    producer = EventProducer(settings)
    producer.start()
    try:
        started = time.monotonic()
        answers = [producer.ready() for _ in range(1000)]
        assert time.monotonic() - started < 0.1
        assert not any(answers)
        with pytest.raises(KafkaUnavailable):
            producer.partition_count()
    finally:
        producer.close(0.1)


def test_the_gateway_does_not_start_without_the_internal_secret() -> None:
    from gateway.app import create_app  # noqa: PLC0415
    from gateway.errors import GatewayError  # noqa: PLC0415

    settings = GatewaySettings(dev_mode=True, dev_secret=SecretStr("d" * 40))
    with pytest.raises(GatewayError, match="DEPLOYSTREAM_INTERNAL_SECRET"):
        create_app(settings)
    short = GatewaySettings(
        dev_mode=True, dev_secret=SecretStr("d" * 40), internal_secret=SecretStr("s" * 31)
    )
    with pytest.raises(GatewayError, match="32"):
        create_app(short)
