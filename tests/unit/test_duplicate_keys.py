"""Duplicate keys: a repeated key inside one deployment rejects that deployment (per item means
per item); a repeated key anywhere else in the body fails the request with 400."""

from __future__ import annotations

import json

import pytest

from gateway.duplicates import Duplicates, find_duplicates
from gateway.errors import BadRequest
from gateway.validation import DeploymentKey, parse_submission
from tests.unit.test_validation import deployment


def item(number: int, extra: str = "") -> str:
    """One deployment's JSON, with ``extra`` members appended inside its object."""
    text = json.dumps(deployment(deploymentSequenceNumber=number))
    return text[:-1] + extra + "}"


def submission(*items: str, extra: str = "") -> bytes:
    return ('{"deployments": [' + ", ".join(items) + "]" + extra + "}").encode()


def parse(raw: bytes):  # type: ignore[no-untyped-def]
    return parse_submission(raw, max_deployments=100)


def test_a_body_without_duplicates_has_none() -> None:
    assert not find_duplicates(submission(item(1), item(2)).decode())


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        (', "state": "failed"', "state"),
        (
            ', "pipeline": {"id": "a", "id": "pipe-1", "displayName": "P", "url": "https://p"}',
            "pipeline.id",
        ),
        (', "surprise": {"x": [{"y": 1, "y": 2}]}', "surprise.x[0].y"),
        (
            ', "associations": [{"associationType": "x", "associationType": "y"}]',
            "associations[0].associationType",
        ),
    ],
    ids=["top-level field", "nested field", "inside an unknown field", "inside an array"],
)
def test_a_repeated_key_in_one_deployment_rejects_only_that_deployment(
    extra: str, path: str
) -> None:
    result = parse(submission(item(1), item(2, extra), item(3)))

    assert [d.deploymentSequenceNumber for d in result.deployments] == [1, 3]
    (rejection,) = result.rejected
    assert rejection.key == DeploymentKey("pipe-1", "env-1", 2)
    assert f"'{path}' is given more than once" in rejection.errors


def test_a_repeated_key_is_reported_with_the_deployments_other_errors() -> None:
    extra = ', "state": "failed", "displayName": "' + "x" * 256 + '"'

    (rejection,) = parse(submission(item(1, extra))).rejected

    assert rejection.errors == (
        "'state' is given more than once",
        "'displayName' is given more than once",
        "'displayName' must be at most 255 characters",
    )


def test_a_key_repeated_three_times_is_reported_once() -> None:
    (rejection,) = parse(submission(item(1, ', "label": "a", "label": "b"'))).rejected

    assert rejection.errors == ("'label' is given more than once",)


def test_each_deployment_reports_its_own_duplicates() -> None:
    found = find_duplicates(
        submission(item(1, ', "url": "https://x"'), item(2), item(3, ', "state": "x"')).decode()
    )

    assert found == Duplicates((), {0: ("url",), 2: ("state",)})


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (submission(item(1), extra=', "deployments": []'), "deployments"),
        (submission(item(1), extra=', "properties": {"a": "1", "a": "2"}'), "properties.a"),
        (
            submission(item(1), extra=', "providerMetadata": {"product": "a", "product": "b"}'),
            "providerMetadata.product",
        ),
        (submission(item(1), extra=', "extra": 1, "extra": 2'), "extra"),
        (submission(item(1), extra=', "extra": [{"a": {"b": 1, "b": 2}}]'), "extra[0].a.b"),
    ],
    ids=["deployments", "properties", "providerMetadata", "unknown member", "nested unknown"],
)
def test_a_repeated_key_outside_the_deployments_is_a_bad_request(body: bytes, key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(body)

    assert caught.value.messages == (
        f"Request body has the key {key!r} more than once in one object",
    )


def test_duplicates_are_found_at_the_deepest_nesting_the_parser_accepts() -> None:
    depth = 900
    nested = '{"a": ' * depth + "1" + "}" * depth
    text = '{"deployments": [{"x": ' + nested + ', "x": 1}], "y": ' + nested + "}"

    assert find_duplicates(text) == Duplicates((), {0: ("x",)})
