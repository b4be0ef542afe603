"""Every error of an invalid deployment is reported, each naming its field in Jira's words
(``'url' is required``), and the slow path that words them agrees with the fast path about
what is valid."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from gateway.validation import (
    DeploymentData,
    ItemRejected,
    deployment_errors,
    parse_submission,
    validate_deployment,
)
from tests.unit.test_validation import body, deployment, mutated_deployments, to_json, without


def test_every_error_of_a_deployment_is_reported_in_field_order() -> None:
    data = without(deployment(), ("url",))
    data["state"] = "exploded"
    data["displayName"] = "d" * 256
    data["pipeline"]["url"] = "javascript:alert(1)"
    data["environment"] = {"id": "e", "type": "prod"}
    data["issueKeys"] = ["ABC-1", "nope", 7]
    data["lastUpdated"] = "2018-02-30T00:00:00Z"
    data["duration"] = "1e3"

    (rejection,) = parse_submission(body(data), max_deployments=100).rejected

    assert rejection.errors == (
        "'displayName' must be at most 255 characters",
        "'url' is required",
        "'state' must be one of: cancelled, failed, in_progress, pending, rolled_back, "
        "successful, unknown",
        "'pipeline.url' must be an absolute http or https URL",
        "'environment.displayName' is required",
        "'environment.type' must be one of: development, production, staging, testing, unmapped",
        "'issueKeys[1]' must be an issue key such as ABC-123",
        "'issueKeys[2]' must be a string",
        "'duration' must be an integer",
        "'lastUpdated' is not a real date: 2018-02-30",
    )


def test_errors_of_nested_associations_name_their_full_path() -> None:
    data = deployment(
        issueKeys=None,
        associations=[
            {"associationType": "issueIdOrKeys", "values": ["ABC-1", "ABC"]},
            {"associationType": "commit", "values": [{"commitHash": "c"}, "repo"]},
            {"values": ["x"]},
        ],
    )

    assert validate_deployment(to_json(data)) == ItemRejected(
        validate_deployment(to_json(data)).key,  # type: ignore[union-attr]
        (
            "'associations[0].values[1]' must be an issue key such as ABC-123 or a numeric "
            "issue id",
            "'associations[1].values[0].repositoryId' is required",
            "'associations[1].values[1]' must be an object",
            "'associations[2].associationType' is required",
        ),
    )


def test_a_valid_deployment_has_no_errors() -> None:
    assert deployment_errors(deployment()) == []


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=mutated_deployments())
def test_the_fast_and_the_slow_path_agree_on_what_is_valid(item: Any) -> None:
    raw = to_json(item)
    outcome = validate_deployment(raw)
    plain = json.loads(raw)
    if isinstance(plain, dict):
        for name in ("deploymentSequenceNumber", "updateSequenceNumber", "duration"):
            value = plain.get(name)
            if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,100}", value):
                plain[name] = int(value)
    errors = deployment_errors(plain)
    assert isinstance(outcome, DeploymentData) == (errors == []), (outcome, errors)
    if isinstance(outcome, ItemRejected):
        assert list(outcome.errors) == errors
