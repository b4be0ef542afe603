"""Real responses of the running gateway conform to the OpenAPI document it serves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from tests.e2e.conftest import API, Stack
from tests.e2e.test_deployments_api import deployment

SERVER = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def spec(stack: Stack) -> dict[str, Any]:
    response = stack.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def openapi(spec: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(spec)


def check(openapi: OpenAPI, response: httpx.Response, *, valid_request: bool = True) -> None:
    """Validate the response (and the request, when it is meant to be valid)."""
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


def strict(spec: dict[str, Any], name: str, body: Any) -> list[str]:
    """Schema errors without openapi-core's type casting ("12" must not pass as 12)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(body)]


def test_submit_responses_conform(stack: Stack, openapi: OpenAPI, spec: dict[str, Any]) -> None:
    accepted = stack.submit(deployment(number=900), deployment(number=901, state="nope"))
    assert accepted.status_code == 202
    # The request carries an invalid deployment on purpose: rejected per item, still a 202.
    check(openapi, accepted, valid_request=False)
    assert strict(spec, "SubmitDeploymentsResponse", accepted.json()) == []
    too_many = stack.submit(*[deployment(number=i) for i in range(101)])
    assert too_many.status_code == 413
    check(openapi, too_many, valid_request=False)


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
    check(openapi, found)
    assert strict(spec, "DeploymentData", found.json()) == []
    missing = stack.http.get(stack.path("web", "prod", 903))
    assert missing.status_code == 404
    check(openapi, missing)
    bad = stack.http.get(f"{API}/pipelines/web/environments/prod/deployments/1x")
    assert bad.status_code == 400
    check(openapi, bad, valid_request=False)


def test_delete_and_operational_responses_conform(stack: Stack, openapi: OpenAPI) -> None:
    check(openapi, stack.http.delete(stack.path("web", "prod", 902)))
    check(
        openapi,
        stack.http.delete(stack.path("web", "prod", 902), params={"_updateSequenceNumber": "5"}),
    )
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        check(openapi, stack.http.get(path))
