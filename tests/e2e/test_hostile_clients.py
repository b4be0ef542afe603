"""Hostile clients, continued from test_hostile_http.py: what they do with connections,
credentials and sizes rather than with request bodies' syntax. Slow and stalled requests are
cut, connections are capped, guessing credentials from several addresses neither grows the
gateway nor locks the real client out, a deployment too large to store is refused on its own,
and the worker's port gives nothing away. The gateway's memory stays flat throughout."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chaos.stack import UNLIMITED, vm_rss_bytes
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from gateway.events import deployment_key
from schemas.lookups import encode_keys
from streams.internal_auth import INTERNAL_SECRET_HEADER
from tests.e2e.conftest import API, Stack, secret_of, start_stack
from tests.e2e.test_deployments_api import deployment

BODY_TIMEOUT_S = 2
IDLE_TIMEOUT_S = 3
MAX_CONNECTIONS = 60
FAILURE_BURST = 10
#: Faust's own variables, set on the worker: none of them may take effect.
FAUST_ENV = {
    "APP_WEB_TABLES_ENABLED": "true",
    "APP_WEB_ROUTER_ENABLED": "true",
    "APP_WEB_STATS_ENABLED": "true",
    "WEB_BIND": "0.0.0.0",
    "F_DEBUG": "1",
}
#: What the gateway may grow by over one case: allocator slack, not per-request state.
RSS_SLACK = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {
        **UNLIMITED,
        **FAUST_ENV,
        "DEPLOYSTREAM_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "DEPLOYSTREAM_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "DEPLOYSTREAM_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "DEPLOYSTREAM_AUTH_FAILURE_BURST": str(FAILURE_BURST),
        "DEPLOYSTREAM_AUTH_FAILURE_RATE_PER_S": "0.2",
        # Above the record limit, so that a single deployment can be too large to store.
        "DEPLOYSTREAM_MAX_BODY_BYTES": str(2 * 1024 * 1024),
    }
    running = start_stack(
        kafka, schema_registry, tmp_path_factory.mktemp("clients"), partitions=2, env=env
    )
    yield running
    running.http.close()
    running.stop()


class Rss:
    """The gateway's resident memory, against a baseline taken after a warm-up."""

    def __init__(self, stack: Stack) -> None:
        assert stack.gateway.process is not None
        self.pid = stack.gateway.process.pid
        self.baseline = vm_rss_bytes(self.pid)

    def growth(self) -> int:
        return vm_rss_bytes(self.pid) - self.baseline


@pytest.fixture
def rss(stack: Stack) -> Iterator[Rss]:
    meter = Rss(stack)
    yield meter
    grown = meter.growth()
    print(f"\ngateway VmRSS grew {grown / 2**20:.1f} MiB")
    assert grown < RSS_SLACK, f"the gateway grew by {grown / 2**20:.1f} MiB"
    assert stack.gateway.process is not None and stack.gateway.process.poll() is None


def from_address(stack: Stack, address: str, **kwargs: Any) -> httpx.Client:
    """A client whose connections come from ``address`` (all of 127/8 is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=stack.base_url, timeout=30, transport=transport, **kwargs)


def token_request(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def gateway_socket(stack: Stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.config.gateway_port), timeout=30)


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the peer closed ``sock`` within ``seconds``, and what it sent before."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


# ---------------------------------------------------------------------------- slow and many


def test_a_slowloris_body_on_the_token_endpoint_is_cut(stack: Stack, rss: Rss) -> None:
    # Unauthenticated: headers, then one byte of body every half second, forever.
    with gateway_socket(stack) as sock:
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        started = time.monotonic()
        answer = b""
        closed = False
        while not closed and time.monotonic() - started < 20:
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, received = closed_within(sock, 0.5)
            answer += received
    took = time.monotonic() - started
    assert closed, "the gateway still held a dribbling connection after 20 s"
    assert took < BODY_TIMEOUT_S + 4, took
    assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer[:200]


def test_slow_request_headers_are_cut(stack: Stack, rss: Rss) -> None:
    with gateway_socket(stack) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, _ = closed_within(sock, 0.25)
            if closed:
                break
    took = time.monotonic() - started
    assert closed, "a connection that never finished its request head was held"
    assert took < IDLE_TIMEOUT_S + 2, took


def test_an_idle_connection_is_closed(stack: Stack) -> None:
    with gateway_socket(stack) as sock:
        closed, received = closed_within(sock, IDLE_TIMEOUT_S + 3)
    assert closed and received == b""


def test_open_connections_are_capped_and_the_gateway_serves_again_after(
    stack: Stack, rss: Rss
) -> None:
    # Opened at once (well within the idle timeout), then each is asked what it got.
    held = [gateway_socket(stack) for _ in range(MAX_CONNECTIONS + 10)]
    try:
        time.sleep(0.5)
        answers = []
        for sock in held:
            sock.setblocking(False)
            try:
                answers.append(sock.recv(65536))
            except BlockingIOError:
                answers.append(b"")
    finally:
        for sock in held:
            sock.close()
    refused = [a for a in answers if a]
    # The stack's own client may hold one connection of the cap.
    assert 10 <= len(refused) <= 11, len(refused)
    assert all(a.startswith(b"HTTP/1.1 503") and b"Retry-After" in a for a in refused)
    time.sleep(0.5)
    assert stack.http.get("/healthz").status_code == 200


# ------------------------------------------------------------------------------- credentials


def test_random_client_ids_from_many_addresses_do_not_grow_the_gateway(
    stack: Stack, rss: Rss
) -> None:
    # 150 addresses x 12 attempts, each with a new client id: every attempt is unknown.
    statuses: dict[int, int] = {}
    for host in range(1, 151):
        with from_address(stack, f"127.0.1.{host}") as client:
            for _ in range(FAILURE_BURST + 2):
                form = token_request(uuid.uuid4().hex, "guess-0123456789")
                status = client.post("/oauth/token", data=form).status_code
                statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) == {401, 429}, statuses
    assert statuses[429] == 150 * 2


def test_credential_stuffing_from_several_addresses_never_locks_the_client_out(
    stack: Stack, rss: Rss
) -> None:
    attackers = [from_address(stack, a) for a in ("127.0.0.2", "127.0.0.3")]
    try:
        for attacker in attackers:
            statuses = [
                attacker.post("/oauth/token", data=token_request("alpha", f"guess-{n}")).status_code
                for n in range(60)
            ]
            # Wrong secrets are throttled where they come from: after the burst, 429 ...
            assert statuses[:FAILURE_BURST] == [401] * FAILURE_BURST
            assert set(statuses[FAILURE_BURST:]) == {429}
            # ... for that address, even with the right secret, for Basic auth too.
            right = attacker.post("/oauth/token", data=token_request("alpha", secret_of("alpha")))
            assert right.status_code == 429
            assert int(right.headers["Retry-After"]) >= 1
            basic = attacker.get(stack.path("web", "prod", 1), auth=("alpha", secret_of("alpha")))
            assert basic.status_code == 429
    finally:
        for attacker in attackers:
            attacker.close()
    # The real client, elsewhere, was never locked out.
    with from_address(stack, "127.0.0.4") as real:
        issued = real.post("/oauth/token", data=token_request("alpha", secret_of("alpha")))
        assert issued.status_code == 200, issued.text
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert real.get(stack.path("web", "prod", 1), headers=bearer).status_code in (200, 404)


# ------------------------------------------------------------------------------------- sizes


def long_keys(count: int, first: int = 0) -> list[str]:
    """Issue keys of 506 characters (250 letters, '-', 255 digits)."""
    return [f"{'K' * 250}-{n:0255d}" for n in range(first, first + count)]


def test_a_deployment_too_large_to_store_is_rejected_on_its_own(stack: Stack, rss: Rss) -> None:
    # The review's submission: gated, 600 issue keys of 506 characters, 400 padded commands.
    # As an event it fits the record limit; stored with a gating link per key it would not.
    big = deployment(
        number=9001,
        commands=[
            {"command": "initiate_deployment_gating"},
            *({"command": "x" * 900} for _ in range(400)),
        ],
        issueKeys=long_keys(100),
        associations=[{"associationType": "issueIdOrKeys", "values": long_keys(500, 100)}],
    )
    small = deployment(number=9002)
    body = json.dumps({"deployments": [big, small]})
    assert 600_000 < len(body) < 2 * 1024 * 1024
    response = stack.http.post(
        f"{API}/bulk", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text[:500]
    result = response.json()
    assert [d["deploymentSequenceNumber"] for d in result["acceptedDeployments"]] == [9002]
    (rejected,) = result["rejectedDeployments"]
    assert rejected["key"]["deploymentSequenceNumber"] == 9001
    assert "1048576-byte record limit" in rejected["errors"][0]["message"]
    # The worker is alive and applied the rest.
    found = stack.wait_for(stack.path("web", "prod", 9002), lambda r: r.status_code == 200)
    assert found.status_code == 200
    assert stack.http.get(stack.path("web", "prod", 9001)).status_code == 404
    assert all(w.process is not None and w.process.poll() is None for w in stack.workers)


def test_an_event_over_the_record_limit_is_rejected_never_a_503(stack: Stack, rss: Rss) -> None:
    # ~1.6 MB of commands: over the record limit as an event already. A 503 would make the
    # client retry forever.
    huge = deployment(number=9003, commands=[{"command": "y" * 1000} for _ in range(1600)])
    response = stack.submit(huge)
    assert response.status_code == 202, response.text[:300]
    assert response.json()["acceptedDeployments"] == []
    message = response.json()["rejectedDeployments"][0]["errors"][0]["message"]
    assert "record limit" in message and "DEPLOYSTREAM_MAX_RECORD_BYTES" in message


# ------------------------------------------------------------------------------------ worker


def worker_base(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.config.worker_ports[0]}"


def test_the_worker_answers_lookups_only_with_the_internal_secret(stack: Stack) -> None:
    assert stack.submit(deployment(number=9100)).status_code == 202
    found = stack.wait_for(stack.path("web", "prod", 9100), lambda r: r.status_code == 200)
    assert found.status_code == 200
    key_bytes = deployment_key("alpha", "web", "prod", 9100)
    encoded = base64.urlsafe_b64encode(key_bytes).decode()
    url = f"{worker_base(stack)}/internal/deployments"
    for headers in ({}, {INTERNAL_SECRET_HEADER: "x" * 43}, {"Authorization": "Basic eDp4"}):
        refused = httpx.get(url, params={"key": encoded}, headers=headers, timeout=10)
        assert refused.status_code == 401, (headers, refused.text)
        assert "displayName" not in refused.text
    allowed = httpx.get(
        url,
        params={"key": encoded},
        headers={INTERNAL_SECRET_HEADER: stack.config.internal_secret},
        timeout=10,
    )
    assert allowed.status_code == 200
    assert allowed.json()["deployment"]["deploymentSequenceNumber"] == 9100
    # The batched lookups, the assignment and the queries: the same.
    base = worker_base(stack)
    calls = [
        ("POST", f"{base}/internal/lookups", {"view": "deployment"}, encode_keys([key_bytes])),
        ("GET", f"{base}/internal/assignment", {}, None),
        ("GET", f"{base}/internal/query", {"kind": "pipelines", "tenant": "alpha"}, None),
    ]
    for method, call_url, params, body in calls:
        for headers in ({}, {INTERNAL_SECRET_HEADER: "x" * 43}):
            refused = httpx.request(
                method, call_url, params=params, content=body, headers=headers, timeout=10
            )
            assert refused.status_code == 401, (call_url, headers, refused.text)
            assert "displayName" not in refused.text and "partitions" not in refused.text
        secret = {INTERNAL_SECRET_HEADER: stack.config.internal_secret}
        answered = httpx.request(
            method, call_url, params=params, content=body, headers=secret, timeout=10
        )
        assert answered.status_code == 200, (call_url, answered.text)


def test_faust_variables_on_the_worker_reenable_nothing(stack: Stack) -> None:
    base = worker_base(stack)
    # APP_WEB_TABLES_ENABLED / APP_WEB_ROUTER_ENABLED / APP_WEB_STATS_ENABLED are set.
    for path in ("/table/deployments/", "/router/", "/stats/", "/graph/"):
        assert httpx.get(f"{base}{path}", timeout=10).status_code == 404, path
    # WEB_BIND=0.0.0.0 is set: the worker still listens on 127.0.0.1 alone.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", stack.config.worker_ports[0]), timeout=3).close()
