"""Real responses of the running gateway conform to the OpenAPI document it serves: status,
body, and headers (documented ones present and well-formed, none sent that is not documented)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from gateway.issues.webhook import signature_of
from tests.e2e.conftest import API, Stack, secret_of, webhook_secret_of
from tests.e2e.test_deployments_api import deployment

SERVER = "http://127.0.0.1:8080"
#: Headers of HTTP itself, which no operation documents.
HTTP_HEADERS = {
    "content-type",
    "content-length",
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
}


@pytest.fixture(scope="module")
def spec(stack: Stack) -> dict[str, Any]:
    response = stack.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def openapi(spec: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(spec)


def documented_headers(spec: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    """The headers the document gives the response ``status`` of ``method path``."""
    for template, item in spec["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            responses = item[method]["responses"]
            break
    else:
        raise AssertionError(f"{method.upper()} {path} is not in the document")
    documented = responses.get(str(status), responses.get("default", {}))
    if "$ref" in documented:
        documented = spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    return {name.lower() for name in documented.get("headers", {})}


def check(
    openapi: OpenAPI,
    response: httpx.Response,
    *,
    valid_request: bool = True,
    spec: dict[str, Any],
) -> None:
    """Validate the response (and the request, when it is meant to be valid), and that every
    header sent is documented for its status."""
    request = response.request
    url = request.url
    mock_request = MockRequest(
        SERVER,
        request.method.lower(),
        url.raw_path.decode().split("?")[0],
        args=dict(url.params),
        headers=dict(request.headers),
        data=request.content or None,
        content_type=request.headers.get("Content-Type", "application/json"),
    )
    if valid_request:
        openapi.validate_request(mock_request)
    mock_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("Content-Type", "application/json"),
    )
    openapi.validate_response(mock_request, mock_response)
    path = url.raw_path.decode().split("?")[0]
    sent = {name.lower() for name in response.headers} - HTTP_HEADERS
    documented = documented_headers(spec, request.method.lower(), path, response.status_code)
    assert sent <= documented, (response.status_code, path, sent - documented)


def strict(spec: dict[str, Any], name: str, body: Any) -> list[str]:
    """Schema errors without openapi-core's type casting ("12" must not pass as 12)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(body)]


def test_submit_responses_conform(stack: Stack, openapi: OpenAPI, spec: dict[str, Any]) -> None:
    accepted = stack.submit(deployment(number=900), deployment(number=901, state="nope"))
    assert accepted.status_code == 202
    assert "X-RateLimit-Remaining" in accepted.headers
    # The request carries an invalid deployment on purpose: rejected per item, still a 202.
    check(openapi, accepted, valid_request=False, spec=spec)
    assert strict(spec, "SubmitDeploymentsResponse", accepted.json()) == []
    too_many = stack.submit(*[deployment(number=i) for i in range(101)])
    assert too_many.status_code == 413
    check(openapi, too_many, valid_request=False, spec=spec)
    duplicate = stack.http.post(
        f"{API}/bulk",
        content=b'{"deployments": [], "deployments": []}',
        headers={"Content-Type": "application/json"},
    )
    assert duplicate.status_code == 400
    check(openapi, duplicate, valid_request=False, spec=spec)
    wrong_type = stack.http.post(f"{API}/bulk", content=b"{}", headers={"Content-Type": "text/x"})
    assert wrong_type.status_code == 415
    check(openapi, wrong_type, valid_request=False, spec=spec)


def test_submit_responses_with_unknown_issue_keys_conform(
    stack: Stack, openapi: OpenAPI, spec: dict[str, Any]
) -> None:
    with stack.client("gamma") as gamma:
        response = gamma.post(
            f"{API}/bulk",
            json={
                "deployments": [
                    deployment(number=910, issueKeys=["UNKNOWN-1"]),
                    deployment(
                        number=911,
                        issueKeys=None,
                        associations=[
                            {"associationType": "issueIdOrKeys", "values": ["UNKNOWN-2", "7"]},
                            {"associationType": "serviceIdOrKeys", "values": ["svc"]},
                        ],
                    ),
                ]
            },
        )
    assert response.status_code == 202
    assert response.json()["unknownIssueKeys"] == ["UNKNOWN-1"]
    check(openapi, response, spec=spec)
    assert strict(spec, "SubmitDeploymentsResponse", response.json()) == []


def test_authentication_and_rate_limit_errors_conform(
    stack: Stack, openapi: OpenAPI, spec: dict[str, Any]
) -> None:
    with stack.client() as anonymous:
        unauthenticated = anonymous.get(stack.path("web", "prod", 1))
    assert unauthenticated.status_code == 401
    check(openapi, unauthenticated, valid_request=False, spec=spec)
    with stack.client("reader") as reader:
        forbidden = reader.delete(stack.path("web", "prod", 1))
    assert forbidden.status_code == 403
    check(openapi, forbidden, spec=spec)
    with stack.client("throttled") as throttled:
        answers = [throttled.get(stack.path("web", "prod", 1)) for _ in range(5)]
    limited = answers[-1]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"]
    check(openapi, limited, spec=spec)
    check(openapi, answers[0], spec=spec)  # a 404 with the client's X-RateLimit-* headers


def test_lookup_responses_conform(stack: Stack, openapi: OpenAPI, spec: dict[str, Any]) -> None:
    sent = deployment(
        number=902,
        issueKeys=None,
        associations=[
            {"associationType": "repository", "values": [{"repositoryId": "r1"}]},
            {"associationType": "issueKeys", "values": ["OPS-9"]},
        ],
    )
    assert stack.submit(sent).status_code == 202
    found = stack.wait_for(stack.path("web", "prod", 902), lambda r: r.status_code == 200)
    assert found.status_code == 200
    check(openapi, found, spec=spec)
    assert strict(spec, "DeploymentData", found.json()) == []
    missing = stack.http.get(stack.path("web", "prod", 903))
    assert missing.status_code == 404
    check(openapi, missing, spec=spec)
    bad = stack.http.get(f"{API}/pipelines/web/environments/prod/deployments/1x")
    assert bad.status_code == 400
    check(openapi, bad, valid_request=False, spec=spec)


def test_delete_and_operational_responses_conform(
    stack: Stack, openapi: OpenAPI, spec: dict[str, Any]
) -> None:
    check(openapi, stack.http.delete(stack.path("web", "prod", 902)), spec=spec)
    check(
        openapi,
        stack.http.delete(stack.path("web", "prod", 902), params={"_updateSequenceNumber": "5"}),
        spec=spec,
    )
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/_edge/tenant_info"):
        check(openapi, stack.http.get(path), spec=spec)


def test_token_responses_conform(stack: Stack, openapi: OpenAPI, spec: dict[str, Any]) -> None:
    form = {"grant_type": "client_credentials", "client_id": "alpha"}
    with stack.client() as anonymous:
        issued = anonymous.post("/oauth/token", data={**form, "client_secret": secret_of("alpha")})
        refused = anonymous.post("/oauth/token", data={**form, "client_secret": "wrong"})
        malformed = anonymous.post("/oauth/token", data={"grant_type": "password"})
    assert (issued.status_code, refused.status_code, malformed.status_code) == (200, 401, 400)
    assert issued.headers["Cache-Control"] == "no-store"
    for response in (issued, refused, malformed):
        check(openapi, response, valid_request=False, spec=spec)


def test_jira_webhook_responses_conform(
    stack: Stack, openapi: OpenAPI, spec: dict[str, Any]
) -> None:
    body = json.dumps(
        {
            "timestamp": 1767225600000,
            "webhookEvent": "jira:issue_created",
            "issue": {"id": "50001", "key": "CONF-1", "fields": {"summary": "s"}},
        }
    ).encode()
    signature = signature_of(webhook_secret_of("gamma"), body)
    url = "/rest/deploystream/1/jira-webhook/gamma"
    headers = {"Content-Type": "application/json"}
    with stack.client() as jira:
        recorded = jira.post(url, content=body, headers={**headers, "X-Hub-Signature": signature})
        forged = jira.post(url, content=body, headers={**headers, "X-Hub-Signature": "sha256=0"})
        garbage = b'{"webhookEvent": "jira:issue_created"}'
        malformed = jira.post(
            url,
            content=garbage,
            headers={
                **headers,
                "X-Hub-Signature": signature_of(webhook_secret_of("gamma"), garbage),
            },
        )
    assert (recorded.status_code, forged.status_code, malformed.status_code) == (202, 401, 400)
    check(openapi, recorded, spec=spec)
    check(openapi, forged, valid_request=False, spec=spec)
    check(openapi, malformed, valid_request=False, spec=spec)


def test_query_responses_conform(stack: Stack, openapi: OpenAPI, spec: dict[str, Any]) -> None:
    queries = "/rest/deploystream/1"
    for number in (910, 911, 912):
        sent = deployment(
            number=number,
            issueKeys=["CNF-1"],
            pipeline={"id": "conform", "displayName": "C", "url": "https://c"},
        )
        assert stack.submit(sent).status_code == 202
    stack.wait_caught_up()
    page = stack.http.get(f"{queries}/issues/CNF-1/deployments", params={"limit": 2})
    assert page.status_code == 200
    assert page.json()["next"] is not None
    check(openapi, page, spec=spec)
    assert strict(spec, "DeploymentPage", page.json()) == []
    last = stack.http.get(
        f"{queries}/issues/CNF-1/deployments", params={"cursor": page.json()["next"]}
    )
    check(openapi, last, spec=spec)
    assert last.json()["next"] is None
    for path in (
        f"{queries}/pipelines",
        f"{queries}/pipelines/conform/environments",
        f"{queries}/pipelines/conform/environments/prod/deployments",
        "/jira/deploystream/1/cloud/any/pipelines",
    ):
        check(openapi, stack.http.get(path), spec=spec)
    bad = stack.http.get(f"{queries}/pipelines", params={"limit": "0"})
    assert bad.status_code == 400
    check(openapi, bad, valid_request=False, spec=spec)
