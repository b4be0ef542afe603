"""Hostile HTTP: requests generated from the gateway's own OpenAPI document get documented
answers and never a 5xx; bodies built to hurt parsers (deep nesting, size, broken encoding,
duplicate keys) get a 4xx, and the gateway's memory stays bounded while it refuses them."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chaos.stack import UNLIMITED, vm_rss_bytes
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from tests.e2e.conftest import API, Stack, secret_of, start_stack
from tests.e2e.test_deployments_api import deployment

#: DEPLOYSTREAM_MAX_BODY_BYTES of this module's stack (the default is 8 MiB; 1 MiB keeps the
#: bodies below quick to send).
MAX_BODY_BYTES = 1_048_576
#: Bodies the handlers read themselves (token and gating-decision requests) are capped lower.
SMALL_BODY_BYTES = 16 * 1024
GATING = f"{API}/pipelines/web/environments/prod/deployments/1/gating-decision"
JSON_HEADERS = {"Content-Type": "application/json"}
#: Generous: the gateway's RSS may grow by caches and allocator slack, not by what it refused.
RSS_GROWTH_BOUND = 100 * 1024 * 1024
ROUNDS = 20


def basic(client_id: str) -> str:
    token = base64.b64encode(f"{client_id}:{secret_of(client_id)}".encode()).decode()
    return f"Basic {token}"


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack of this module's own, without rate limits: generated requests come fast."""
    env = {**UNLIMITED, "DEPLOYSTREAM_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    running = start_stack(
        kafka, schema_registry, tmp_path_factory.mktemp("hostile"), partitions=2, env=env
    )
    yield running
    running.http.close()
    running.stop()


# ------------------------------------------------------------------- generated from the document

#: Only the checks about what the server answers: no 5xx, and status codes, content types,
#: headers and bodies as documented. (negative_data_rejection / positive_data_acceptance judge
#: the input side, where the gateway is deliberately more lenient than the schema says.)
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Per operation and generation mode: 16 operations, positive and negative, about 25 s.
MAX_EXAMPLES = 25
SEED = 20260107


def fuzz(operation: Any, mode: GenerationMode, accepted: list[dict[str, Any]]) -> None:
    """Run generated cases of one operation; raise on the first (shrunk) failure."""
    operation_id = operation.definition.raw.get("operationId", "")
    # Deciding a gate needs APPROVE_GATING; everything else is client alpha's (READ, WRITE,
    # DELETE). The generated Authorization header, if any, is replaced.
    client = "approver" if operation_id.startswith("decideDeploymentGating") else "alpha"
    headers = {"Authorization": basic(client)}

    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers=headers, timeout=30)
        case.validate_response(response, checks=CONFORMANCE, headers=headers)
        if operation_id.startswith("submitDeployments") and response.status_code == 202:
            accepted.extend(response.json()["acceptedDeployments"])

    run()


def test_generated_requests_get_documented_answers_and_never_a_5xx(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(
        f"{stack.base_url}/openapi.json",
        config=schemathesis.Config.from_dict({"base-url": stack.base_url}),
    )
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operation = result.ok()
        # The change stream never ends (tests/e2e/test_queries.py covers it): a generated
        # request would wait for its timeout every time.
        if not operation.definition.raw.get("operationId", "").startswith("streamChanges"):
            operations.append(operation)
    assert len(operations) >= 16
    failures: list[str] = []
    accepted: list[dict[str, Any]] = []
    started = time.monotonic()
    for operation in operations:
        # Without inputs (healthz, readyz, metrics) there is nothing to make invalid.
        inputs = operation.path_parameters, operation.query, operation.headers, operation.body
        modes = [GenerationMode.POSITIVE]
        if any(len(group) for group in inputs):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                fuzz(operation, mode, accepted)
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    elapsed = time.monotonic() - started
    print(
        f"\n{len(operations)} operations, positive and negative, in {elapsed:.1f}s; "
        f"{len(accepted)} generated deployments accepted"
    )
    assert failures == [], "\n\n".join(failures)
    # Generated submissions were really stored, and what is served back conforms too.
    assert accepted
    stack.wait_caught_up()
    spec = stack.http.get("/openapi.json").json()
    wrong: list[tuple[str, object]] = []
    for key in accepted:
        path = "/".join(
            [
                f"{API}/pipelines",
                segment(key["pipelineId"]),
                "environments",
                segment(key["environmentId"]),
                "deployments",
                str(key["deploymentSequenceNumber"]),
            ]
        )
        response = stack.http.get(path)
        # A later generated delete (by key or by properties) may have removed it.
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            wrong.append((path, response.text[:300]))
            continue
        errors = schema_errors(spec, "DeploymentData", response.json())
        if errors:
            wrong.append((path, errors))
    assert wrong == []


def segment(value: str) -> str:
    """A path segment as sent: percent-encoded, dots too (clients collapse ``..``)."""
    return quote(value, safe="").replace(".", "%2E")


def schema_errors(spec: dict[str, Any], name: str, body: Any) -> list[str]:
    """Errors of ``body`` against a schema of the document, without type coercion."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(body)]


# ------------------------------------------------------------------------------- hostile bodies


def deeply_nested(levels: int) -> list[tuple[str, bytes]]:
    return [
        ("arrays", b"[" * levels + b"]" * levels),
        ("unclosed arrays", b"[" * levels),
        ("objects", b'{"a":' * levels + b"1" + b"}" * levels),
        ("inside deployments", b'{"deployments": [' + b"[" * levels + b"]" * levels + b"]}"),
        (
            "inside a deployment field",
            b'{"deployments": [{"displayName": ' + b"[" * levels + b"]" * levels + b"}]}",
        ),
        # Unknown fields are skipped by the typed decoder, not by the duplicate-key check.
        (
            "inside an unknown field",
            b'{"deployments": [{}], "extra": ' + b"[" * levels + b"]" * levels + b"}",
        ),
    ]


def submission(**changes: Any) -> dict[str, Any]:
    return {"deployments": [deployment(number=77, **changes)]}


def duplicate_key_bodies() -> list[tuple[str, bytes]]:
    """Bodies repeating a key outside the deployments: the whole request is refused."""
    one = json.dumps(submission()["deployments"])
    return [
        ("deployments twice", f'{{"deployments": {one}, "deployments": {one}}}'.encode()),
        (
            "properties twice",
            f'{{"deployments": {one}, "properties": {{"a": "1", "a": "2"}}}}'.encode(),
        ),
    ]


def duplicate_key_items() -> list[tuple[str, bytes, str]]:
    """Bodies with one deployment repeating a key (and a valid one beside it)."""
    valid = json.dumps(deployment(number=79))
    item = json.dumps(deployment(number=78))[1:-1]
    return [
        (
            "field twice in a deployment",
            f'{{"deployments": [{valid}, {{{item}, "state": "failed"}}]}}'.encode(),
            "state",
        ),
        (
            "pipeline id twice",
            (
                f'{{"deployments": [{valid}, {{{item}, "pipeline": {{"id": "a", "id": "b", '
                f'"displayName": "P", "url": "https://ci"}}}}]}}'
            ).encode(),
            "pipeline.id",
        ),
    ]


def invalid_utf8_bodies() -> list[tuple[str, bytes]]:
    valid = json.dumps(submission(displayName="MARK")).encode()
    return [
        ("lone continuation byte", valid.replace(b"MARK", b"\x80")),
        ("truncated sequence", valid.replace(b"MARK", b"\xc3")),
        ("overlong encoding", valid.replace(b"MARK", b"\xc0\xaf")),
        ("UTF-16 surrogate bytes", valid.replace(b"MARK", b"\xed\xa0\x80")),
        ("escaped lone surrogate", valid.replace(b"MARK", b"\\ud800")),
        (
            "latin-1",
            json.dumps(submission(displayName="café"), ensure_ascii=False).encode("latin-1"),
        ),
        ("bytes outside strings", b'{"deployments": [\xff]}'),
    ]


def exactly(limit: int) -> bytes:
    """A valid submission padded with JSON whitespace to exactly ``limit`` bytes."""
    body = json.dumps(submission()).encode()
    return body[:-1] + b" " * (limit - len(body)) + b"}"


def params(cases: list[tuple[str, bytes]]) -> list[Any]:
    return [pytest.param(body, id=name) for name, body in cases]


def post_bulk(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(f"{API}/bulk", content=body, headers=JSON_HEADERS)


@pytest.mark.parametrize("body", params(deeply_nested(100_000)))
def test_deeply_nested_json_is_a_400(stack: Stack, body: bytes) -> None:
    response = post_bulk(stack.http, body)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.json()[0]["message"]


@pytest.mark.parametrize("body", params(duplicate_key_bodies()))
def test_duplicate_keys_outside_the_deployments_are_a_400_never_a_guess(
    stack: Stack, body: bytes
) -> None:
    response = post_bulk(stack.http, body)
    assert response.status_code == 400, response.text[:300]
    assert "more than once" in response.json()[0]["message"]


@pytest.mark.parametrize(
    ("body", "path"), [pytest.param(b, p, id=name) for name, b, p in duplicate_key_items()]
)
def test_a_duplicate_key_in_a_deployment_rejects_only_that_deployment(
    stack: Stack, body: bytes, path: str
) -> None:
    response = post_bulk(stack.http, body)
    assert response.status_code == 202, response.text[:300]
    answer = response.json()
    assert [d["deploymentSequenceNumber"] for d in answer["acceptedDeployments"]] == [79]
    [rejected] = answer["rejectedDeployments"]
    assert rejected["key"]["deploymentSequenceNumber"] == 78
    assert {"message": f"'{path}' is given more than once"} in rejected["errors"]


@pytest.mark.parametrize("body", params(invalid_utf8_bodies()))
def test_invalid_utf8_is_a_400(stack: Stack, body: bytes) -> None:
    response = post_bulk(stack.http, body)
    assert response.status_code == 400, response.text[:300]


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_a_413(stack: Stack) -> None:
    at_limit = exactly(MAX_BODY_BYTES)
    assert len(at_limit) == MAX_BODY_BYTES
    accepted = post_bulk(stack.http, at_limit)
    assert accepted.status_code == 202, accepted.text[:300]
    assert len(accepted.json()["acceptedDeployments"]) == 1
    over = post_bulk(stack.http, at_limit + b" ")
    assert over.status_code == 413, over.text[:300]


def test_an_oversized_body_without_content_length_is_a_413(stack: Stack) -> None:
    # Chunked: the gateway cannot refuse it by its header and must stop reading at the limit.
    def chunks() -> Iterator[bytes]:
        yield b'{"deployments": ['
        for _ in range(64):
            yield b" " * 65_536
        yield b"]}"

    response = stack.http.post(f"{API}/bulk", content=chunks(), headers=JSON_HEADERS)
    assert response.status_code == 413, response.text[:300]


@pytest.mark.parametrize(
    ("path", "client_id", "limit"),
    [
        (f"{API}/bulk", "alpha", MAX_BODY_BYTES),
        (GATING, "approver", SMALL_BODY_BYTES),
        ("/oauth/token", None, SMALL_BODY_BYTES),
    ],
)
def test_bodies_over_the_limit_are_a_413_wherever_bodies_are_read(
    stack: Stack, path: str, client_id: str | None, limit: int
) -> None:
    headers = {**JSON_HEADERS, **({"Authorization": basic(client_id)} if client_id else {})}
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        for size in (limit + 1, 8 * MAX_BODY_BYTES):
            body = b'{"a": "' + b"x" * (size - 9) + b'"}'
            assert len(body) == size
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 413, (size, response.text[:300])


GATED_NUMBERS = itertools.count(4200)


@pytest.fixture
def awaiting_gate(stack: Stack) -> str:
    """The path of a new deployment of alpha's that awaits an approver (who may decide for
    alpha): a production deployment that asked for gating."""
    number = next(GATED_NUMBERS)
    gated = deployment(number=number, commands=[{"command": "initiate_deployment_gating"}])
    assert stack.submit(gated).status_code == 202
    path = stack.path("web", "prod", number)
    status = stack.wait_for(f"{path}/gating-status", lambda r: r.status_code == 200)
    assert status.json()["gatingStatus"] == "awaiting"
    return path


def decide(stack: Stack, path: str, body: bytes) -> httpx.Response:
    """POST a raw gating decision as the approver."""
    with httpx.Client(base_url=stack.base_url, timeout=30) as approver:
        return approver.post(
            f"{path}/gating-decision",
            content=body,
            headers={**JSON_HEADERS, "Authorization": basic("approver")},
        )


HOSTILE_JSON = [
    # Below the 16 KiB limit of these small bodies, so that the parser sees them.
    ("nested", b"[" * 10_000),
    ("invalid UTF-8", b'{"decision": "allowed", "tenant": "alpha", "reason": "\xff"}'),
    ("overlong encoding", b'{"decision": "allowed", "tenant": "\xc0\xaf"}'),
]


@pytest.mark.parametrize("body", params(HOSTILE_JSON))
def test_gating_decisions_with_hostile_bodies_are_a_400_and_decide_nothing(
    stack: Stack, awaiting_gate: str, body: bytes
) -> None:
    response = decide(stack, awaiting_gate, body)
    assert response.status_code == 400, response.text[:300]
    assert stack.http.get(f"{awaiting_gate}/gating-status").json()["gatingStatus"] == "awaiting"


def test_a_gating_decision_with_a_duplicate_key_is_a_400_never_a_guess(
    stack: Stack, awaiting_gate: str
) -> None:
    # "prevented" or "allowed"? Ambiguous: refused like a submission with a duplicate key.
    body = b'{"decision": "prevented", "decision": "allowed", "tenant": "alpha"}'
    response = decide(stack, awaiting_gate, body)
    stack.wait_caught_up()
    status = stack.http.get(f"{awaiting_gate}/gating-status").json()["gatingStatus"]
    assert (response.status_code, status) == (400, "awaiting"), response.text[:300]


@pytest.mark.parametrize(
    "body",
    params(
        [
            ("nested", b"[" * 10_000),
            ("invalid UTF-8", b'{"grant_type": "client_credentials", "client_id": "\xff"}'),
            (
                "duplicate client_id",
                (
                    b'{"grant_type": "client_credentials", "client_id": "beta", '
                    b'"client_id": "alpha", "client_secret": "'
                    + secret_of("alpha").encode()
                    + b'"}'
                ),
            ),
        ]
    ),
)
def test_token_requests_with_hostile_bodies_are_a_400(stack: Stack, body: bytes) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        response = client.post("/oauth/token", content=body, headers=JSON_HEADERS)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"] == "invalid_request"


def test_a_token_request_with_a_repeated_form_parameter_is_invalid(stack: Stack) -> None:
    # RFC 6749 section 3.2: "Request and response parameters MUST NOT be included more than
    # once"; section 5.2: such a request is an invalid_request.
    form = {"grant_type": "client_credentials", "client_secret": secret_of("alpha")}
    content = urlencode([*form.items(), ("client_id", "beta"), ("client_id", "alpha")])
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        response = client.post(
            "/oauth/token",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"] == "invalid_request"


def test_memory_stays_bounded_through_a_burst_of_hostile_bodies(stack: Stack) -> None:
    process = stack.gateway.process
    assert process is not None
    burst = [
        *(body for _, body in deeply_nested(100_000)),
        *(body for _, body in duplicate_key_bodies()),
        *(body for _, body, _ in duplicate_key_items()),
        *(body for _, body in invalid_utf8_bodies()),
        exactly(MAX_BODY_BYTES),
        exactly(MAX_BODY_BYTES) + b" ",
        b'{"deployments": [' + b"[" * (MAX_BODY_BYTES - 20) + b"]}",
        # About 260,000 empty objects in one valid body: parsed in full, then rejected per item.
        b'{"deployments": [{}], "extra": [' + b"{}," * 262_000 + b"{}]}",
    ]
    post_bulk(stack.http, burst[0])  # warm up parsers and allocator before the baseline
    before = vm_rss_bytes(process.pid)
    statuses: set[int] = set()
    started = time.monotonic()
    for _ in range(ROUNDS):
        for body in burst:
            statuses.add(post_bulk(stack.http, body).status_code)
    after = vm_rss_bytes(process.pid)
    print(
        f"\ngateway VmRSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB after "
        f"{ROUNDS * len(burst)} hostile bodies ({sum(map(len, burst)) * ROUNDS / 2**20:.0f} MiB) "
        f"in {time.monotonic() - started:.1f}s"
    )
    assert statuses <= {202, 400, 413}, statuses
    assert after - before < RSS_GROWTH_BOUND
    assert process.poll() is None
    assert stack.http.get("/healthz").status_code == 200
