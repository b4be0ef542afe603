"""The Deployments API through the real gateway, broker and worker."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import API, Stack


def deployment(number: int = 1, usn: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deploymentSequenceNumber": number,
        "updateSequenceNumber": usn,
        "displayName": f"Deploy {number}",
        "url": "https://ci.example.com/deploy/1",
        "description": "a deployment",
        "lastUpdated": "2026-01-01T12:00:00.123Z",
        "state": "successful",
        "issueKeys": ["OPS-1"],
        "pipeline": {"id": "web", "displayName": "Web", "url": "https://ci.example.com/web"},
        "environment": {"id": "prod", "displayName": "Production", "type": "production"},
    }
    body.update(changes)
    return body


def present(response: httpx.Response) -> bool:
    return response.status_code == 200


def test_submitted_deployment_is_accepted_and_can_be_looked_up(stack: Stack) -> None:
    sent = deployment(number=10, usn=5, label="v1.2.3", duration=42)
    response = stack.submit(sent)
    assert response.status_code == 202
    assert response.json() == {
        "acceptedDeployments": [
            {"pipelineId": "web", "environmentId": "prod", "deploymentSequenceNumber": 10}
        ],
        "rejectedDeployments": [],
        "unknownIssueKeys": [],
        "unknownAssociations": [],
    }
    found = stack.wait_for(stack.path("web", "prod", 10), present)
    assert found.status_code == 200
    assert found.json() == {**sent, "schemaVersion": "1.0"}


def test_updates_3_1_2_3_end_with_the_first_3(stack: Stack) -> None:
    for usn, name in ((3, "first three"), (1, "one"), (2, "two"), (3, "second three")):
        response = stack.submit(deployment(number=20, usn=usn, displayName=name))
        assert response.status_code == 202
        assert response.json()["acceptedDeployments"] == [
            {"pipelineId": "web", "environmentId": "prod", "deploymentSequenceNumber": 20}
        ]
    stack.wait_caught_up()
    found = stack.http.get(stack.path("web", "prod", 20))
    assert found.json()["displayName"] == "first three"
    assert found.json()["updateSequenceNumber"] == 3


def test_valid_deployments_are_accepted_beside_invalid_ones(stack: Stack) -> None:
    bad = deployment(number=31, state="exploded")
    response = stack.submit(deployment(number=30), bad)
    assert response.status_code == 202
    body = response.json()
    assert body["acceptedDeployments"] == [
        {"pipelineId": "web", "environmentId": "prod", "deploymentSequenceNumber": 30}
    ]
    [rejected] = body["rejectedDeployments"]
    assert rejected["key"] == {
        "pipelineId": "web",
        "environmentId": "prod",
        "deploymentSequenceNumber": 31,
    }
    assert "state" in rejected["errors"][0]["message"]
    assert stack.wait_for(stack.path("web", "prod", 30), present).status_code == 200
    assert stack.http.get(stack.path("web", "prod", 31)).status_code == 404


def test_lenient_input_is_stored_normalised(stack: Stack) -> None:
    big = 2**62 + 7
    sent = deployment(number=40, issueKeys=["OPS-2"], label=None, extra={"ignored": True})
    sent["deploymentSequenceNumber"] = "40"
    sent["updateSequenceNumber"] = str(big)
    response = stack.submit(sent, properties={"buildNumber": 17})
    assert response.status_code == 202
    assert response.json()["acceptedDeployments"][0]["deploymentSequenceNumber"] == 40
    found = stack.wait_for(stack.path("web", "prod", 40), present).json()
    assert found["deploymentSequenceNumber"] == 40
    assert found["updateSequenceNumber"] == big
    assert "label" not in found and "extra" not in found


@pytest.mark.parametrize(
    "pipeline",
    ["team/web", "with space", "https://ci.example.com/job/1?x=y", "percent%20literal", "ünï"],
)
def test_identifiers_with_encoded_characters_round_trip(stack: Stack, pipeline: str) -> None:
    sent = deployment(number=50, pipeline={"id": pipeline, "displayName": "P", "url": "https://p"})
    assert stack.submit(sent).status_code == 202
    found = stack.wait_for(stack.path(pipeline, "prod", 50), present)
    assert found.status_code == 200
    assert found.json()["pipeline"]["id"] == pipeline


def test_unknown_deployment_is_404_in_the_error_shape(stack: Stack) -> None:
    response = stack.http.get(stack.path("nobody", "nowhere", 1))
    assert response.status_code == 404
    assert response.json() == [{"message": "No data found for the given deployment ID."}]


@pytest.mark.parametrize("number", ["abc", "1.5", "99999999999999999999"])
def test_non_integer_sequence_number_in_path_is_400(stack: Stack, number: str) -> None:
    response = stack.http.get(stack.path("web", "prod", number))
    assert response.status_code == 400
    assert "deploymentSequenceNumber" in response.json()[0]["message"]


def test_delete_removes_the_deployment(stack: Stack) -> None:
    stack.submit(deployment(number=60, usn=4))
    assert stack.wait_for(stack.path("web", "prod", 60), present).status_code == 200
    assert stack.http.delete(stack.path("web", "prod", 60)).status_code == 202
    gone = stack.wait_for(stack.path("web", "prod", 60), lambda r: r.status_code == 404)
    assert gone.status_code == 404


def test_delete_with_older_update_sequence_number_keeps_the_deployment(stack: Stack) -> None:
    stack.submit(deployment(number=61, usn=10))
    stack.wait_for(stack.path("web", "prod", 61), present)
    kept = stack.http.delete(stack.path("web", "prod", 61), params={"_updateSequenceNumber": 9})
    assert kept.status_code == 202
    stack.wait_caught_up()
    assert stack.http.get(stack.path("web", "prod", 61)).status_code == 200
    removed = stack.http.delete(
        stack.path("web", "prod", 61), params={"_updateSequenceNumber": "10"}
    )
    assert removed.status_code == 202
    assert (
        stack.wait_for(stack.path("web", "prod", 61), lambda r: r.status_code == 404).status_code
        == 404
    )


def test_delete_of_missing_key_is_accepted(stack: Stack) -> None:
    assert stack.http.delete(stack.path("never", "existed", 1)).status_code == 202


def test_delete_with_bad_update_sequence_number_is_400(stack: Stack) -> None:
    response = stack.http.delete(
        stack.path("web", "prod", 1), params={"_updateSequenceNumber": "x"}
    )
    assert response.status_code == 400
    assert "_updateSequenceNumber" in response.json()[0]["message"]


def test_oauth_path_form_behaves_identically(stack: Stack) -> None:
    oauth = "/jira/deployments/0.1/cloud/11111111-2222-3333-4444-555555555555"
    sent = deployment(number=70)
    response = stack.http.post(f"{oauth}/bulk", json={"deployments": [sent]})
    assert response.status_code == 202
    path = stack.path("web", "prod", 70).replace(API, oauth)
    assert stack.wait_for(path, present).json()["displayName"] == "Deploy 70"
    assert stack.http.delete(path).status_code == 202
    assert stack.wait_for(path, lambda r: r.status_code == 404).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"deployments": "nope"}', "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"deployments": []}', "application/json", 400),
        (b'{"deployments": [{}]}', "text/plain", 415),
        (b'{"deployments": [{}], "properties": {"_secret": "x"}}', "application/json", 400),
    ],
)
def test_malformed_requests_get_the_documented_error_body(
    stack: Stack, body: bytes, content_type: str, status: int
) -> None:
    response = stack.http.post(f"{API}/bulk", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    errors = response.json()
    assert (
        isinstance(errors, list) and errors and all(isinstance(e["message"], str) for e in errors)
    )


def test_more_than_100_deployments_is_413(stack: Stack) -> None:
    many = [deployment(number=i) for i in range(101)]
    response = stack.submit(*many)
    assert response.status_code == 413
    assert "100" in response.json()[0]["message"]


def test_oversized_body_is_413_before_parsing(stack: Stack) -> None:
    # Over the default DEPLOYSTREAM_MAX_BODY_BYTES (8 MiB).
    huge = b'{"deployments": [' + b" " * (9 * 1024 * 1024) + b"]}"
    response = stack.http.post(
        f"{API}/bulk", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_gateway_serves_health_readiness_and_metrics(stack: Stack) -> None:
    assert stack.http.get("/healthz").status_code == 200
    assert stack.http.get("/readyz").json()["status"] == "ready"
    metrics = stack.http.get("/metrics")
    assert "deploystream_gateway_deployments_total" in metrics.text


def test_unknown_route_is_404_in_the_error_shape(stack: Stack) -> None:
    response = stack.http.get("/rest/deployments/0.1/nothing-here")
    assert response.status_code == 404
    assert isinstance(response.json()[0]["message"], str)


def test_all_fields_survive_the_round_trip(stack: Stack) -> None:
    sent = deployment(
        number=80,
        issueKeys=None,
        associations=[
            {"associationType": "issueIdOrKeys", "values": ["OPS-1", "10001"]},
            {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
            {
                "associationType": "commit",
                "values": [{"commitHash": "abc123", "repositoryId": "repo"}],
            },
        ],
        commands=[{"command": "initiate_deployment_gating"}],
        schemaVersion="1.0",
    )
    assert stack.submit(sent, providerMetadata={"product": "Jenkins 2.4"}).status_code == 202
    found = stack.wait_for(stack.path("web", "prod", 80), present).json()
    expected = copy.deepcopy(sent)
    del expected["issueKeys"]
    assert found == expected
