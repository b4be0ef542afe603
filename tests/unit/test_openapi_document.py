"""The gateway's OpenAPI document: valid OpenAPI 3.0, in step with the routes, and right about
the bodies the gateway sends (checked with openapi-core's request/response validators).

openapi-core 0.19 casts JSON body values to the schema's primitive type before validating
(``"12"`` passes as an integer; python-openapi/openapi-core#706), so where the JSON type itself
matters the body is also checked against the schema directly, without casting.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
import yaml
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest as _MockRequest
from openapi_core.testing import MockResponse
from openapi_core.validation.request.exceptions import RequestValidationError
from openapi_core.validation.response.exceptions import ResponseValidationError
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec

from gateway.routes import setup_routes
from gateway.ui.routes import setup_ui_routes
from gateway.validation import parse_submission

SERVER = "http://127.0.0.1:8080"
AUTHORIZATION = {"Authorization": "Basic YWxwaGE6c2VjcmV0"}


def MockRequest(*args: Any, **kwargs: Any) -> _MockRequest:
    """openapi-core's MockRequest, authenticated by default: the API requires credentials."""
    kwargs.setdefault("headers", AUTHORIZATION)
    return _MockRequest(*args, **kwargs)


REST = "/rest/deployments/0.1"
OAUTH = "/jira/deployments/0.1/cloud/1d5a8a44-0000-4000-8000-000000000000"
PREFIXES = pytest.mark.parametrize("prefix", [REST, OAUTH], ids=["connect", "oauth"])
DEPLOYMENT_PATH = "/pipelines/pipe-1/environments/prod-east/deployments/100"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    text = (files("gateway") / "openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@pytest.fixture(scope="module")
def openapi(spec: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(spec)


def strict_errors(spec: dict[str, Any], schema_name: str, instance: Any) -> list[str]:
    """Errors of ``instance`` against a component schema, with no type casting."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(instance)]


def post(path: str, body: Any) -> MockRequest:
    return MockRequest(SERVER, "post", path, data=json.dumps(body).encode())


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> MockResponse:
    data = b"" if body is None else json.dumps(body).encode()
    return MockResponse(data, status_code=status, headers=headers)


def submitted_deployment(**changes: Any) -> dict[str, Any]:
    deployment = {
        "deploymentSequenceNumber": 100,
        "updateSequenceNumber": 1,
        "associations": [{"associationType": "issueIdOrKeys", "values": ["ABC-123"]}],
        "displayName": "Deployment number 100",
        "url": "https://ci.example.com/pipe-1/100",
        "description": "The bits are being transferred",
        "lastUpdated": "2024-05-01T10:15:30.000Z",
        "state": "successful",
        "pipeline": {
            "id": "pipe-1",
            "displayName": "Pipeline 1",
            "url": "https://ci.example.com/pipe-1",
        },
        "environment": {"id": "prod-east", "displayName": "Prod East", "type": "production"},
    }
    deployment.update(changes)
    return deployment


def stored_deployment(**changes: Any) -> dict[str, Any]:
    """What GET answers: absent optional fields left out, schemaVersion always there."""
    deployment = submitted_deployment(
        associations=[
            {"associationType": "issueKeys", "values": ["ABC-123"]},
            {"associationType": "commit", "values": [{"repositoryId": "repo-1"}]},
        ],
        duration=47,
        schemaVersion="1.0",
    )
    deployment.update(changes)
    return deployment


def submit_response(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "acceptedDeployments": [
            {"pipelineId": "pipe-1", "environmentId": "prod-east", "deploymentSequenceNumber": 100}
        ],
        "rejectedDeployments": [
            {
                "key": {
                    "pipelineId": None,
                    "environmentId": None,
                    "deploymentSequenceNumber": None,
                },
                "errors": [{"message": "deployments[1]: Expected `object`, got `str`"}],
            }
        ],
        "unknownIssueKeys": [],
        "unknownAssociations": [],
    }
    body.update(changes)
    return body


# ------------------------------------------------------------------------------- the document


def test_document_is_valid_openapi_3_0_3(spec: dict[str, Any]) -> None:
    validate_spec(spec)
    assert spec["openapi"] == "3.0.3"
    assert spec["info"]["title"] == "deploystream"
    assert spec["info"]["version"] == "0.1.0"
    assert [server["url"] for server in spec["servers"]] == [SERVER]


def test_document_describes_exactly_the_routes_the_gateway_registers(
    spec: dict[str, Any],
) -> None:
    app = web.Application()
    setup_routes(app)
    # The web view's pages and files (/, /ui, /ui/...) are not API operations: they take no
    # credentials and answer HTML, CSS and scripts, so the document leaves them out.
    pages = web.Application()
    setup_ui_routes(pages)
    web_view = {(r.method.lower(), r.resource.canonical) for r in pages.router.routes()}
    assert {path for _, path in web_view} == {"/", "/ui", "/ui/", "/ui/static/{version}/{name}"}
    served = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()} - web_view
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    }
    assert documented == served


def test_both_url_forms_have_their_own_operation_ids(spec: dict[str, Any]) -> None:
    operation_ids = {
        operation["operationId"]
        for item in spec["paths"].values()
        for key, operation in item.items()
        if key != "parameters"
    }
    assert operation_ids == {
        "submitDeployments",
        "submitDeploymentsOAuth",
        "getDeploymentByKey",
        "getDeploymentByKeyOAuth",
        "deleteDeploymentByKey",
        "deleteDeploymentByKeyOAuth",
        "getHealthz",
        "getReadyz",
        "getMetrics",
        "getOpenApiDocument",
        "issueToken",
        "deleteDeploymentsByProperty",
        "deleteDeploymentsByPropertyOAuth",
        "getDeploymentGatingStatusByKey",
        "getDeploymentGatingStatusByKeyOAuth",
        "decideDeploymentGating",
        "decideDeploymentGatingOAuth",
        "getTenantInfo",
        "receiveJiraWebhook",
        "listIssueDeployments",
        "listIssueDeploymentsOAuth",
        "listPipelines",
        "listPipelinesOAuth",
        "listPipelineEnvironments",
        "listPipelineEnvironmentsOAuth",
        "listEnvironmentDeployments",
        "listEnvironmentDeploymentsOAuth",
        "streamChanges",
        "streamChangesOAuth",
    }


def test_api_operations_require_authentication_and_operational_ones_do_not(
    spec: dict[str, Any],
) -> None:
    assert set(spec["components"]["securitySchemes"]) == {"ConnectJwt", "OAuth2", "BasicAuth"}
    assert spec["security"]
    public = {
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and operation.get("security") == []
    }
    assert public == {
        "getOpenApiDocument",
        "getHealthz",
        "getReadyz",
        "getMetrics",
        "issueToken",
        "getTenantInfo",
        # Authenticated by Jira's signature (X-Hub-Signature), not by a client credential.
        "receiveJiraWebhook",
    }


def test_document_never_forbids_additional_properties(spec: dict[str, Any]) -> None:
    assert "additionalProperties: false" not in yaml.safe_dump(spec)


def test_examples_in_the_document_match_their_schemas(spec: dict[str, Any]) -> None:
    assert (
        strict_errors(
            spec,
            "SubmitDeploymentsResponse",
            spec["components"]["schemas"]["SubmitDeploymentsResponse"]["example"],
        )
        == []
    )
    for name, response in spec["components"]["responses"].items():
        media = response["content"]["application/json"]
        if "example" in media:
            assert strict_errors(spec, "ErrorMessages", media["example"]) == [], name


# ---------------------------------------------------------------------------------- requests


@PREFIXES
def test_accepts_submission_with_numeric_strings_and_null_optional_fields(
    openapi: OpenAPI, prefix: str
) -> None:
    deployment = submitted_deployment(
        deploymentSequenceNumber="100",
        updateSequenceNumber="-1",
        duration="47",
        issueKeys=None,
        label=None,
        commands=[{"command": None}],
        schemaVersion=None,
        associations=[
            {"associationType": "commit", "values": [{"repositoryId": "r", "commitHash": None}]},
            {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
        ],
    )
    body = {
        "properties": {"accountId": "account-234", "build": 7, "nightly": True},
        "deployments": [deployment],
        "providerMetadata": None,
    }
    openapi.validate_request(post(prefix + "/bulk", body))


@pytest.mark.parametrize("number", ["1.5", "12abc", "", True, None], ids=repr)
def test_rejects_submission_whose_sequence_number_is_not_an_integer_or_digit_string(
    openapi: OpenAPI, number: Any
) -> None:
    body = {"deployments": [submitted_deployment(deploymentSequenceNumber=number)]}
    with pytest.raises(RequestValidationError):
        openapi.validate_request(post(REST + "/bulk", body))


def test_rejects_submission_without_deployments(openapi: OpenAPI) -> None:
    with pytest.raises(RequestValidationError):
        openapi.validate_request(post(REST + "/bulk", {"deployments": []}))


@PREFIXES
def test_accepts_delete_with_update_sequence_number(openapi: OpenAPI, prefix: str) -> None:
    request = MockRequest(
        SERVER, "delete", prefix + DEPLOYMENT_PATH, args={"_updateSequenceNumber": "7"}
    )
    openapi.validate_request(request)


@pytest.mark.parametrize(
    "path",
    [
        "/pipelines/pipe-1/environments/prod-east/deployments/abc",
        "/pipelines/" + "p" * 256 + "/environments/prod-east/deployments/100",
    ],
    ids=["non-integer-sequence-number", "pipeline-id-over-255"],
)
def test_rejects_malformed_deployment_key_in_path(openapi: OpenAPI, path: str) -> None:
    with pytest.raises(RequestValidationError):
        openapi.validate_request(MockRequest(SERVER, "get", REST + path))


# --------------------------------------------------------------------------------- responses


@PREFIXES
def test_accepts_202_with_a_rejected_deployment_whose_key_fields_are_null(
    openapi: OpenAPI, prefix: str
) -> None:
    request = post(prefix + "/bulk", {"deployments": [submitted_deployment()]})
    openapi.validate_response(request, respond(202, submit_response()))


def test_accepts_202_built_from_the_gateways_own_rejections(
    openapi: OpenAPI, spec: dict[str, Any]
) -> None:
    body = json.dumps(
        {
            "deployments": [
                "not an object",
                {"deploymentSequenceNumber": "42", "pipeline": {"id": "p" * 300}},
                {"deploymentSequenceNumber": "99999999999999999999999"},
                submitted_deployment(associations=None),
            ]
        }
    ).encode()
    command = parse_submission(body, max_deployments=100)
    rejected = [
        {"key": r.key.as_json(), "errors": [{"message": m} for m in r.errors]}
        for r in command.rejected
    ]
    assert [r["key"]["deploymentSequenceNumber"] for r in rejected] == [None, 42, None, 100]
    response = submit_response(acceptedDeployments=[], rejectedDeployments=rejected)
    openapi.validate_response(post(REST + "/bulk", {}), respond(202, response))
    assert strict_errors(spec, "SubmitDeploymentsResponse", response) == []


@pytest.mark.parametrize(
    "missing",
    ["acceptedDeployments", "rejectedDeployments", "unknownIssueKeys", "unknownAssociations"],
)
def test_rejects_202_missing_one_of_the_four_arrays(openapi: OpenAPI, missing: str) -> None:
    body = submit_response()
    del body[missing]
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(post(REST + "/bulk", {}), respond(202, body))


def test_rejects_202_whose_rejected_deployment_has_no_errors_field(openapi: OpenAPI) -> None:
    body = submit_response(
        rejectedDeployments=[{"key": submit_response()["rejectedDeployments"][0]["key"]}]
    )
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(post(REST + "/bulk", {}), respond(202, body))


RATE_LIMIT = {
    "X-RateLimit-Limit": "400",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "2026-01-01T12:00Z",
}
#: Headers each error status always carries.
ERROR_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": 'Bearer realm="deploystream", JWT, Basic realm="deploystream"'},
    429: {"Retry-After": "3", **RATE_LIMIT},
}


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415, 429, 500])
def test_accepts_error_messages_for_submit_errors(openapi: OpenAPI, status: int) -> None:
    body = [{"message": "deployments: is required"}, {"message": "x", "errorTraceId": "t-1"}]
    headers = ERROR_HEADERS.get(status, RATE_LIMIT if status != 500 else {})
    openapi.validate_response(post(REST + "/bulk", {}), respond(status, body, headers))


@pytest.mark.parametrize("status", [401, 429])
def test_rejects_an_error_without_the_headers_its_status_always_has(
    openapi: OpenAPI, status: int
) -> None:
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(post(REST + "/bulk", {}), respond(status, [{"message": "x"}]))


@pytest.mark.parametrize(
    "body",
    [[], {"errorMessages": ["Request has incorrect format."]}, [{"errorTraceId": "t-1"}]],
    ids=["empty-array", "platform-style-object", "no-message"],
)
def test_rejects_400_body_that_is_not_error_messages(openapi: OpenAPI, body: Any) -> None:
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(post(REST + "/bulk", {}), respond(400, body))


@pytest.mark.parametrize("method", ["post", "get", "delete"])
def test_503_carries_retry_after(openapi: OpenAPI, method: str) -> None:
    path = REST + ("/bulk" if method == "post" else DEPLOYMENT_PATH)
    request = MockRequest(SERVER, method, path, data=b"{}")
    body = [{"message": "Service is unavailable; retry later."}]
    openapi.validate_response(request, respond(503, body, headers={"Retry-After": "5"}))
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(request, respond(503, body))


@PREFIXES
def test_accepts_stored_deployment_for_get(openapi: OpenAPI, prefix: str) -> None:
    request = MockRequest(SERVER, "get", prefix + DEPLOYMENT_PATH)
    openapi.validate_response(request, respond(200, stored_deployment()))


def test_get_answers_404_with_error_messages(openapi: OpenAPI) -> None:
    request = MockRequest(SERVER, "get", REST + DEPLOYMENT_PATH)
    body = [{"message": "No data found for the given deployment ID."}]
    openapi.validate_response(request, respond(404, body))


@pytest.mark.parametrize(
    "changes",
    [{"label": None}, {"schemaVersion": None}, {"state": "done"}, {"associations": []}],
    ids=["null-optional-field", "null-schema-version", "unknown-state", "empty-associations"],
)
def test_rejects_stored_deployment_that_breaks_the_response_schema(
    openapi: OpenAPI, changes: dict[str, Any]
) -> None:
    request = MockRequest(SERVER, "get", REST + DEPLOYMENT_PATH)
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(request, respond(200, stored_deployment(**changes)))


def test_stored_deployment_without_schema_version_breaks_the_response_schema(
    openapi: OpenAPI,
) -> None:
    body = stored_deployment()
    del body["schemaVersion"]
    request = MockRequest(SERVER, "get", REST + DEPLOYMENT_PATH)
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(request, respond(200, body))


@pytest.mark.parametrize("field", ["deploymentSequenceNumber", "updateSequenceNumber", "duration"])
def test_stored_deployment_integers_must_be_json_integers(spec: dict[str, Any], field: str) -> None:
    assert strict_errors(spec, "DeploymentData", stored_deployment()) == []
    assert strict_errors(spec, "DeploymentData", stored_deployment(**{field: "47"})) != []
    assert strict_errors(spec, "DeploymentData", stored_deployment(**{field: 2**63})) != []


@PREFIXES
def test_delete_answers_202_without_a_body(openapi: OpenAPI, prefix: str) -> None:
    request = MockRequest(SERVER, "delete", prefix + DEPLOYMENT_PATH)
    openapi.validate_response(request, respond(202))


def test_health_readiness_and_metrics_responses(openapi: OpenAPI) -> None:
    openapi.validate_response(
        MockRequest(SERVER, "get", "/healthz"), respond(200, {"status": "ok"})
    )
    readyz = MockRequest(SERVER, "get", "/readyz")
    fresh = {"caughtUp": True, "lag": 0, "known": 3}
    loading = {"caughtUp": False, "lag": None, "known": 0}
    openapi.validate_response(
        readyz, respond(200, {"status": "ready", "kafka": True, "registry": True, "issues": fresh})
    )
    openapi.validate_response(
        readyz,
        respond(503, {"status": "not ready", "kafka": True, "registry": True, "issues": loading}),
    )
    with pytest.raises(ResponseValidationError):
        openapi.validate_response(readyz, respond(503, {"status": "not ready", "kafka": False}))
    metrics = MockResponse(
        b"# HELP up Up.\n# TYPE up gauge\nup 1.0\n",
        status_code=200,
        content_type="text/plain; version=1.0.0; charset=utf-8",
    )
    openapi.validate_response(MockRequest(SERVER, "get", "/metrics"), metrics)
