"""Unit tests for ``gateway.validation``: POST /rest/deployments/0.1/bulk bodies.

Whole-request problems raise ``BadRequest`` (400) or ``PayloadTooLarge`` (413); each invalid
deployment becomes an ``ItemRejected`` with every error it has, each naming its field in
Jira's words (``'url' is required``), while the valid ones in the same request are accepted.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.contract import (
    AssociatedEntity,
    CommitAssociation,
    DeploymentData,
    IssueIdOrKeysAssociation,
    IssueKeysAssociation,
    ProviderMetadata,
    RepositoryAssociation,
    ServiceIdOrKeysAssociation,
)
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.validation import (
    INT64_MAX,
    INT64_MIN,
    DeploymentKey,
    ItemRejected,
    SubmitDeployments,
    parse_submission,
)

MAX_DEPLOYMENTS = 100
Path = tuple[str | int, ...]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def deployment(**overrides: Any) -> dict[str, Any]:
    """A fresh, valid deployment (only required fields plus issueKeys), with overrides applied."""
    data: dict[str, Any] = {
        "deploymentSequenceNumber": 1,
        "updateSequenceNumber": 2,
        "displayName": "Deploy #1",
        "url": "https://ci.example.com/deploy/1",
        "description": "Deploy to production",
        "lastUpdated": "2018-01-20T23:27:25.000Z",
        "state": "successful",
        "pipeline": {"id": "pipe-1", "displayName": "Pipeline", "url": "https://ci.example.com/p"},
        "environment": {"id": "env-1", "displayName": "Production", "type": "production"},
        "issueKeys": ["ABC-1"],
    }
    data.update(overrides)
    return data


def with_value(data: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with the value at ``path`` replaced."""
    result = copy.deepcopy(data)
    target: Any = result
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return result


def without(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """A deep copy of ``data`` with the key at ``path`` removed."""
    result = copy.deepcopy(data)
    target: Any = result
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return result


def dotted(path: Path) -> str:
    """``("pipeline", "id")`` -> ``pipeline.id``; ``("issueKeys", 0)`` -> ``issueKeys[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def to_json(value: Any) -> bytes:
    """JSON encoding that, unlike orjson, allows integers of any size."""
    if isinstance(value, dict):
        members = (orjson.dumps(str(k)) + b":" + to_json(v) for k, v in value.items())
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(to_json(v) for v in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return orjson.dumps(value)


def body(*deployments: Any, **top: Any) -> bytes:
    """A request body with the given deployments and extra top-level members."""
    content = {"deployments": list(deployments), **top}
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson refuses integers outside [-2**63, 2**64)
        return to_json(content)


def submit(*deployments: Any, **top: Any) -> SubmitDeployments:
    return parse_submission(body(*deployments, **top), max_deployments=MAX_DEPLOYMENTS)


def accepted(data: dict[str, Any]) -> DeploymentData:
    """Submit one deployment and return it, failing if it was rejected."""
    result = submit(data)
    assert result.rejected == (), result.rejected
    assert len(result.deployments) == 1
    return result.deployments[0]


def rejected(data: Any) -> ItemRejected:
    """Submit one deployment and return its rejection, failing if it was accepted."""
    result = submit(data)
    assert result.deployments == (), result.deployments
    assert len(result.rejected) == 1
    return result.rejected[0]


def assert_rejected_for(data: Any, field: str, *rule: str) -> ItemRejected:
    """The deployment is rejected with one error, which names ``field`` first (Jira's
    ``'url' is required``) and contains ``rule``; ``field=""`` for rules of the deployment
    as a whole."""
    rejection = rejected(data)
    assert len(rejection.errors) == 1, rejection.errors
    message = rejection.errors[0]
    if field:
        assert message.startswith(f"'{field}' "), message
    for fragment in rule:
        assert fragment in message, message
    return rejection


def bad_request(raw: bytes, max_deployments: int = MAX_DEPLOYMENTS) -> str:
    """Parse ``raw`` expecting BadRequest; the error's single message."""
    with pytest.raises(BadRequest) as caught:
        parse_submission(raw, max_deployments=max_deployments)
    assert type(caught.value) is BadRequest
    assert len(caught.value.messages) == 1
    return caught.value.messages[0]


def uri_of_length(length: int) -> str:
    prefix = "https://ci.example.com/"
    return prefix + "a" * (length - len(prefix))


def association(kind: str, values: list[Any]) -> dict[str, Any]:
    return {"associationType": kind, "values": values}


def values_for(kind: str, count: int) -> list[Any]:
    """``count`` valid values for an association of type ``kind``."""
    if kind in ("issueKeys", "issueIdOrKeys"):
        return [f"ABC-{i}" for i in range(count)]
    if kind == "serviceIdOrKeys":
        return [f"service-{i}" for i in range(count)]
    return [{"repositoryId": f"repo-{i}", "commitHash": f"{i:040x}"} for i in range(count)]


ASSOCIATION_KINDS = ["issueKeys", "issueIdOrKeys", "serviceIdOrKeys", "commit", "repository"]
INT_FIELDS = ["deploymentSequenceNumber", "updateSequenceNumber", "duration"]


# --------------------------------------------------------------------------------------------
# Valid submissions
# --------------------------------------------------------------------------------------------


def test_minimal_valid_deployment_is_accepted_with_its_values() -> None:
    result = submit(deployment())

    assert result.rejected == ()
    assert result.properties == {}
    assert result.provider_metadata is None
    (d,) = result.deployments
    assert d.deploymentSequenceNumber == 1
    assert d.updateSequenceNumber == 2
    assert d.displayName == "Deploy #1"
    assert d.url == "https://ci.example.com/deploy/1"
    assert d.description == "Deploy to production"
    assert d.lastUpdated == "2018-01-20T23:27:25.000Z"
    assert d.state == "successful"
    assert (d.pipeline.id, d.pipeline.displayName, d.pipeline.url) == (
        "pipe-1",
        "Pipeline",
        "https://ci.example.com/p",
    )
    assert (d.environment.id, d.environment.displayName, d.environment.type) == (
        "env-1",
        "Production",
        "production",
    )
    assert d.issueKeys == ["ABC-1"]
    assert d.associations is None
    assert (d.label, d.duration, d.commands, d.schemaVersion) == (None, None, None, None)


def test_fully_populated_submission_is_accepted_with_every_value() -> None:
    data = deployment(
        label="v1.2.3",
        duration=42,
        commands=[{"command": "initiate_deployment_gating"}],
        schemaVersion="1.0",
        associations=[
            association("issueIdOrKeys", ["ABC-2", "10001"]),
            association("serviceIdOrKeys", ["svc-1"]),
            association("commit", [{"repositoryId": "repo", "commitHash": "abc123"}]),
        ],
    )
    result = submit(
        data,
        properties={"accountId": "account-234", "projectId": "project-123"},
        providerMetadata={"product": "Bamboo 6.10.2"},
    )

    assert result.rejected == ()
    (d,) = result.deployments
    assert d.label == "v1.2.3"
    assert d.duration == 42
    assert d.commands is not None
    assert [c.command for c in d.commands] == ["initiate_deployment_gating"]
    assert d.schemaVersion == "1.0"
    assert d.associations == [
        IssueIdOrKeysAssociation(values=["ABC-2", "10001"]),
        ServiceIdOrKeysAssociation(values=["svc-1"]),
        CommitAssociation(values=[AssociatedEntity(repositoryId="repo", commitHash="abc123")]),
    ]
    assert result.properties == {"accountId": "account-234", "projectId": "project-123"}
    assert result.provider_metadata == ProviderMetadata(product="Bamboo 6.10.2")


@pytest.mark.parametrize(
    ("kind", "expected_type"),
    [
        ("issueKeys", IssueKeysAssociation),
        ("issueIdOrKeys", IssueIdOrKeysAssociation),
        ("serviceIdOrKeys", ServiceIdOrKeysAssociation),
        ("commit", CommitAssociation),
        ("repository", RepositoryAssociation),
    ],
)
def test_each_association_type_decodes_to_its_own_kind(kind: str, expected_type: type) -> None:
    values = values_for(kind, 2)
    d = accepted(deployment(issueKeys=None, associations=[association(kind, values)]))

    assert d.associations is not None
    (decoded,) = d.associations
    assert type(decoded) is expected_type
    if kind in ("commit", "repository"):
        assert decoded.values == [
            AssociatedEntity(repositoryId=v["repositoryId"], commitHash=v["commitHash"])
            for v in values
        ]
    else:
        assert decoded.values == values


# --------------------------------------------------------------------------------------------
# Lenient: integers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", INT_FIELDS)
def test_numeric_string_integer_field_is_accepted_as_int(field: str) -> None:
    d = accepted(deployment(**{field: "42"}))

    value = getattr(d, field)
    assert value == 42
    assert type(value) is int


def test_numeric_string_sequence_number_is_accepted_as_int() -> None:
    d = accepted(deployment(deploymentSequenceNumber="1234567"))

    assert d.deploymentSequenceNumber == 1234567


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("as_string", [False, True], ids=["number", "string"])
def test_integer_beyond_2_pow_53_is_kept_exact(field: str, as_string: bool) -> None:
    big = 2**62 + 1  # not representable as a double
    d = accepted(deployment(**{field: str(big) if as_string else big}))

    assert getattr(d, field) == 4611686018427387905


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", [INT64_MAX, INT64_MIN, str(INT64_MAX), str(INT64_MIN), 0, -1])
def test_int64_boundaries_are_accepted(field: str, value: int | str) -> None:
    d = accepted(deployment(**{field: value}))

    assert getattr(d, field) == int(value)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", ["+42", "-42", "0042", "-0"])
def test_signed_or_zero_padded_digit_string_is_accepted_as_int(field: str, value: str) -> None:
    assert getattr(accepted(deployment(**{field: value})), field) == int(value)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize(
    "value", [INT64_MAX + 1, str(INT64_MAX + 1), INT64_MIN - 1, str(INT64_MIN - 1), "9" * 5000]
)
def test_integer_outside_int64_range_is_rejected(field: str, value: int | str) -> None:
    assert_rejected_for(
        deployment(**{field: value}),
        field,
        "must be between -9223372036854775808 and 9223372036854775807",
    )


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        1.5,
        "1.5",
        "forty-two",
        "",
        True,
        [1],
        {"n": 1},
        "1e3",
        "1.5e1",
        " 42",
        "42 ",
        "42\n",
        "4_2",
        "0x2a",
        "\u0664\u0662",  # Arabic-Indic digits, which int() would read as 42
        "++42",
    ],
    ids=repr,
)
def test_non_integer_value_for_integer_field_is_rejected(field: str, value: Any) -> None:
    assert_rejected_for(deployment(**{field: value}), field, "must be an integer")


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("number", [b"1e3", b"1.5e1", b"42.0", b"1E2", b"-0.0", b"1e400"])
def test_json_number_with_fraction_or_exponent_is_rejected_for_integer_field(
    field: str, number: bytes
) -> None:
    raw = body(deployment(**{field: 7})).replace(
        f'"{field}":7'.encode(), f'"{field}":'.encode() + number
    )
    assert number in raw
    result = parse_submission(raw, max_deployments=MAX_DEPLOYMENTS)

    (rejection,) = result.rejected
    assert rejection.errors == (f"'{field}' must be an integer",)


@pytest.mark.parametrize("field", ["deploymentSequenceNumber", "updateSequenceNumber"])
def test_null_for_required_integer_field_is_rejected(field: str) -> None:
    assert_rejected_for(deployment(**{field: None}), field, "is required")


# --------------------------------------------------------------------------------------------
# Lenient: nulls, unknown fields
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["label", "duration", "commands", "schemaVersion"])
def test_null_optional_field_is_accepted_as_absent(field: str) -> None:
    d = accepted(deployment(**{field: None}))

    assert getattr(d, field) is None


def test_null_issue_keys_is_accepted_when_associations_are_given() -> None:
    d = accepted(deployment(issueKeys=None, associations=[association("issueKeys", ["ABC-9"])]))

    assert d.issueKeys is None
    assert d.associations == [IssueKeysAssociation(values=["ABC-9"])]


def test_null_associations_is_accepted_when_issue_keys_are_given() -> None:
    d = accepted(deployment(associations=None))

    assert d.associations is None
    assert d.issueKeys == ["ABC-1"]


def test_null_commit_hash_and_null_command_are_accepted() -> None:
    d = accepted(
        deployment(
            commands=[{"command": None}],
            associations=[association("commit", [{"repositoryId": "r", "commitHash": None}])],
        )
    )

    assert d.commands is not None
    assert d.commands[0].command is None
    assert d.associations == [CommitAssociation(values=[AssociatedEntity("r", None)])]


def test_null_properties_and_provider_metadata_are_accepted_as_absent() -> None:
    result = submit(deployment(), properties=None, providerMetadata=None)

    assert result.properties == {}
    assert result.provider_metadata is None
    assert len(result.deployments) == 1


def test_null_provider_metadata_product_is_accepted() -> None:
    result = submit(deployment(), providerMetadata={"product": None})

    assert result.provider_metadata == ProviderMetadata(product=None)


@pytest.mark.parametrize(
    "path",
    [
        ("surprise",),
        ("pipeline", "surprise"),
        ("environment", "surprise"),
        ("commands", 0, "surprise"),
        ("associations", 0, "surprise"),
        ("associations", 1, "values", 0, "surprise"),
    ],
    ids=dotted,
)
def test_unknown_fields_in_a_deployment_are_ignored(path: Path) -> None:
    data = deployment(
        commands=[{"command": "initiate_deployment_gating"}],
        associations=[
            association("issueKeys", ["ABC-2"]),
            association("repository", [{"repositoryId": "repo"}]),
        ],
    )
    d = accepted(with_value(data, path, {"nested": [1, "two", None]}))

    assert d.pipeline.id == "pipe-1"
    assert d.associations == [
        IssueKeysAssociation(values=["ABC-2"]),
        RepositoryAssociation(values=[AssociatedEntity("repo")]),
    ]
    assert d.commands is not None
    assert d.commands[0].command == "initiate_deployment_gating"


def test_unknown_top_level_and_provider_metadata_fields_are_ignored() -> None:
    result = submit(
        deployment(),
        surprise={"x": [1, 2]},
        providerMetadata={"product": "Jenkins", "version": 2},
    )

    assert len(result.deployments) == 1
    assert result.provider_metadata == ProviderMetadata(product="Jenkins")


# --------------------------------------------------------------------------------------------
# Lenient: timestamps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "2018-01-20T23:27:25Z",
        "2018-01-20T23:27:25.1Z",
        "2018-01-20T23:27:25.000Z",
        "2018-01-20T23:27:25.123456Z",
        "2018-01-20T23:27:25.123456789Z",
        "2018-01-20T23:27:25+05:30",
        "2018-01-20T23:27:25.5-08:00",
        "2018-01-20T23:27:25-00:00",
        "2020-08-16T16:08:13.814+00:00",
        "2018-01-20t23:27:25z",
        "2016-12-31T23:59:60Z",
        "0001-01-01T00:00:00Z",
    ],
)
def test_rfc3339_timestamp_is_accepted_verbatim(timestamp: str) -> None:
    d = accepted(deployment(lastUpdated=timestamp))

    assert d.lastUpdated == timestamp


@pytest.mark.parametrize(
    "timestamp",
    [
        "2018-01-20T23:27:25.1234567890Z",  # 10 fraction digits
        "2018-01-20T23:27:25.Z",  # fraction separator without digits
        "2018-01-20T23:27:25",  # no offset
        "2018-01-20T23:27:25.000",  # no offset
        "2018-01-20T23:27:25+0530",  # offset without colon
        "2018-01-20T23:27:25+24:00",  # offset hour out of range
        "2018-01-20",  # date only
        "2018-01-20 23:27:25Z",  # not separated by T
        "2018-13-01T00:00:00Z",  # month 13
        "2018-01-32T00:00:00Z",  # day 32
        "2018-01-20T24:00:00Z",  # hour 24
        "2018-01-20T23:60:00Z",  # minute 60
        "20/01/2018 23:27",
        "",
        " 2018-01-20T23:27:25Z",
    ],
)
def test_malformed_timestamp_is_rejected(timestamp: str) -> None:
    assert_rejected_for(
        deployment(lastUpdated=timestamp), "lastUpdated", "must be an RFC 3339 date-time"
    )


@pytest.mark.parametrize(
    "timestamp",
    ["2018-01-20T23:27:25Z\n", "2018-01-20T23:27:25.000Z\n", "2018-01-20T23:27:25+01:00\n"],
    ids=repr,
)
def test_timestamp_with_a_trailing_newline_is_rejected(timestamp: str) -> None:
    assert_rejected_for(
        deployment(lastUpdated=timestamp), "lastUpdated", "must be an RFC 3339 date-time"
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "2018-02-31T00:00:00Z",
        "2018-02-30T00:00:00Z",
        "2019-02-29T12:00:00Z",  # not a leap year
        "1900-02-29T12:00:00Z",  # divisible by 100, not by 400
        "2018-04-31T00:00:00Z",
        "2018-06-31T00:00:00+02:00",
        "2018-09-31T00:00:00Z",
        "2018-11-31T00:00:00Z",
    ],
)
def test_impossible_calendar_date_is_rejected(timestamp: str) -> None:
    rejection = assert_rejected_for(
        deployment(lastUpdated=timestamp), "lastUpdated", "is not a real date"
    )

    assert timestamp[:10] in rejection.errors[0]


@pytest.mark.parametrize(
    "timestamp",
    [
        "2020-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2018-01-31T00:00:00Z",
        "2018-12-31T23:59:59Z",
    ],
)
def test_leap_days_and_month_ends_are_accepted(timestamp: str) -> None:
    assert accepted(deployment(lastUpdated=timestamp)).lastUpdated == timestamp


def test_timestamp_sent_as_number_is_rejected() -> None:
    assert_rejected_for(deployment(lastUpdated=1516490845), "lastUpdated", "must be a string")


# --------------------------------------------------------------------------------------------
# Lenient: properties and provider metadata
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("account-234", "account-234"),
        ("007", "007"),
        ("true", "true"),
        ("", ""),
        (1, "1"),
        (-3, "-3"),
        (2**62 + 1, "4611686018427387905"),
        (1.5, "1.5"),
        (2.0, "2"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_property_value_is_normalised_to_string(value: Any, expected: str) -> None:
    result = submit(deployment(), properties={"accountId": value})

    assert result.properties == {"accountId": expected}
    assert len(result.deployments) == 1


@pytest.mark.parametrize("properties", [{}, None])
def test_empty_or_null_properties_give_no_properties(properties: Any) -> None:
    result = submit(deployment(), properties=properties)

    assert result.properties == {}


def test_five_properties_are_accepted() -> None:
    properties = {f"key{i}": f"value{i}" for i in range(5)}

    assert submit(deployment(), properties=properties).properties == properties


def test_more_than_five_properties_is_bad_request() -> None:
    properties = {f"key{i}": f"value{i}" for i in range(6)}

    message = bad_request(body(deployment(), properties=properties))

    assert message.startswith("properties:")
    assert "at most 5" in message


def test_property_value_of_255_characters_is_accepted() -> None:
    result = submit(deployment(), properties={"k": "v" * 255})

    assert result.properties == {"k": "v" * 255}


def test_property_value_over_255_characters_is_bad_request() -> None:
    message = bad_request(body(deployment(), properties={"k": "v" * 256}))

    assert message.startswith("properties.k:")
    assert "255" in message


@pytest.mark.parametrize("key", ["account:id", ":", "_private", "_", ""])
def test_property_key_with_colon_or_leading_underscore_is_bad_request(key: str) -> None:
    message = bad_request(body(deployment(), properties={key: "v"}))

    assert message.startswith("properties:")
    assert repr(key) in message


def test_property_key_with_inner_underscore_is_accepted() -> None:
    result = submit(deployment(), properties={"account_id": "a"})

    assert result.properties == {"account_id": "a"}


@pytest.mark.parametrize("value", [None, [1], {"a": "b"}])
def test_property_value_that_is_not_scalar_is_bad_request(value: Any) -> None:
    message = bad_request(body(deployment(), properties={"k": value}))

    assert "properties" in message


def test_properties_that_are_not_an_object_is_bad_request() -> None:
    message = bad_request(body(deployment(), properties=["a", "b"]))

    assert "properties" in message


def test_invalid_properties_fail_the_whole_request_even_with_valid_deployments() -> None:
    with pytest.raises(BadRequest):
        parse_submission(
            body(deployment(), deployment(deploymentSequenceNumber=2), properties={"_x": "1"}),
            max_deployments=MAX_DEPLOYMENTS,
        )


# --------------------------------------------------------------------------------------------
# Strict: required fields, lengths, formats, enums
# --------------------------------------------------------------------------------------------

REQUIRED_PATHS: list[Path] = [
    ("deploymentSequenceNumber",),
    ("updateSequenceNumber",),
    ("displayName",),
    ("url",),
    ("description",),
    ("lastUpdated",),
    ("state",),
    ("pipeline",),
    ("environment",),
    ("pipeline", "id"),
    ("pipeline", "displayName"),
    ("pipeline", "url"),
    ("environment", "id"),
    ("environment", "displayName"),
    ("environment", "type"),
]


@pytest.mark.parametrize("path", REQUIRED_PATHS, ids=dotted)
def test_missing_required_field_is_rejected(path: Path) -> None:
    rejection = assert_rejected_for(without(deployment(), path), dotted(path))

    assert rejection.errors == (f"'{dotted(path)}' is required",)


@pytest.mark.parametrize("path", REQUIRED_PATHS, ids=dotted)
def test_null_required_field_is_rejected(path: Path) -> None:
    rejection = assert_rejected_for(with_value(deployment(), path, None), dotted(path))

    assert rejection.errors == (f"'{dotted(path)}' is required",)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (("associations", 0, "associationType"), "issueKeys"),
        (("associations", 0, "values"), "issueKeys"),
        (("associations", 0, "values"), "serviceIdOrKeys"),
        (("associations", 0, "values"), "commit"),
        (("associations", 0, "values", 0, "repositoryId"), "commit"),
        (("associations", 0, "values", 0, "repositoryId"), "repository"),
    ],
    ids=lambda value: dotted(value) if isinstance(value, tuple) else value,
)
def test_missing_required_association_field_is_rejected(path: Path, kind: str) -> None:
    data = deployment(associations=[association(kind, values_for(kind, 1))])

    assert_rejected_for(without(data, path), dotted(path), "is required")


STRING_LIMITS: list[tuple[Path, int]] = [
    (("displayName",), 255),
    (("description",), 255),
    (("label",), 255),
    (("pipeline", "id"), 255),
    (("pipeline", "displayName"), 255),
    (("environment", "id"), 255),
    (("environment", "displayName"), 255),
    (("url",), 2000),
    (("pipeline", "url"), 2000),
]


def long_value(path: Path, length: int) -> str:
    return uri_of_length(length) if path[-1] == "url" else "x" * length


@pytest.mark.parametrize(("path", "limit"), STRING_LIMITS, ids=str)
def test_string_at_maximum_length_is_accepted(path: Path, limit: int) -> None:
    value = long_value(path, limit)
    d = accepted(with_value(deployment(), path, value))

    target: Any = d
    for part in path:
        target = getattr(target, str(part))
    assert target == value
    assert len(target) == limit


@pytest.mark.parametrize(("path", "limit"), STRING_LIMITS, ids=str)
def test_string_over_maximum_length_is_rejected(path: Path, limit: int) -> None:
    data = with_value(deployment(), path, long_value(path, limit + 1))

    assert_rejected_for(data, dotted(path), f"must be at most {limit} characters")


def test_string_length_counts_characters_not_bytes() -> None:
    d = accepted(deployment(displayName="é" * 255, description="😀" * 255))

    assert d.displayName == "é" * 255
    assert d.description == "😀" * 255


@pytest.mark.parametrize("field", ["displayName", "description", "label"])
def test_number_for_string_field_is_rejected(field: str) -> None:
    assert_rejected_for(deployment(**{field: 123}), field, "must be a string")


@pytest.mark.parametrize("path", [("url",), ("pipeline", "url")], ids=dotted)
@pytest.mark.parametrize(
    "url",
    [
        "ci.example.com/deploy/1",
        "https:",
        "https://",
        "https:///path",
        "https://ci.example.com/a b",
        "",
        "1http://x",
        "javascript:alert(document.cookie)",
        "JavaScript://%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "ftp://ci.example.com/x",
        "urn:isbn:0451450523",
        "mailto:ci@example.com",
        "//ci.example.com/x",
        "https://ci.example.com/x\n",
        "https://ci.example.com/x\r\n",
        "https://ci.example.com/\x00",
    ],
    ids=repr,
)
def test_url_that_is_not_an_http_url_is_rejected(path: Path, url: str) -> None:
    assert_rejected_for(
        with_value(deployment(), path, url), dotted(path), "must be an absolute http or https URL"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://ci.example.com/x?y=1#z",
        "http://localhost:8080/",
        "HTTPS://CI.EXAMPLE.COM/Job/1",
        "http://[::1]:8080/x",
        "https://user@ci.example.com/%20x",
    ],
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert accepted(deployment(url=url)).url == url
    pipeline = {"id": "p", "displayName": "P", "url": url}
    assert accepted(deployment(pipeline=pipeline)).pipeline.url == url


@pytest.mark.parametrize(
    "state",
    ["unknown", "pending", "in_progress", "cancelled", "failed", "rolled_back", "successful"],
)
def test_every_contract_state_is_accepted(state: str) -> None:
    assert accepted(deployment(state=state)).state == state


@pytest.mark.parametrize("state", ["done", "SUCCESSFUL", "in-progress", ""])
def test_unknown_state_is_rejected(state: str) -> None:
    assert_rejected_for(deployment(state=state), "state", "must be one of:", "in_progress")


@pytest.mark.parametrize(
    "environment_type", ["unmapped", "development", "testing", "staging", "production"]
)
def test_every_contract_environment_type_is_accepted(environment_type: str) -> None:
    data = with_value(deployment(), ("environment", "type"), environment_type)

    assert accepted(data).environment.type == environment_type


@pytest.mark.parametrize("environment_type", ["prod", "Production", "qa", ""])
def test_unknown_environment_type_is_rejected(environment_type: str) -> None:
    data = with_value(deployment(), ("environment", "type"), environment_type)

    assert_rejected_for(data, "environment.type", "must be one of:", "production")


def test_schema_version_1_0_is_accepted() -> None:
    assert accepted(deployment(schemaVersion="1.0")).schemaVersion == "1.0"


@pytest.mark.parametrize("version", ["2.0", "1", 1.0, "1.0\n"], ids=repr)
def test_schema_version_other_than_1_0_is_rejected(version: Any) -> None:
    assert_rejected_for(deployment(schemaVersion=version), "schemaVersion", "must be one of: 1.0")


def test_command_that_is_not_a_string_is_rejected() -> None:
    assert_rejected_for(
        deployment(commands=[{"command": 5}]), "commands[0].command", "must be a string"
    )


# --------------------------------------------------------------------------------------------
# Strict: issueKeys
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"issueKeys": None},
        {"issueKeys": None, "associations": None},
    ],
    ids=["issueKeys-null", "both-null"],
)
def test_deployment_without_issue_keys_or_associations_is_rejected(
    overrides: dict[str, Any],
) -> None:
    rejection = assert_rejected_for(deployment(**overrides), "")

    assert rejection.errors == ("'issueKeys' or 'associations' is required",)

    assert rejection.key == DeploymentKey("pipe-1", "env-1", 1)


def test_deployment_with_neither_field_present_is_rejected() -> None:
    rejection = assert_rejected_for(without(deployment(), ("issueKeys",)), "")

    assert rejection.errors == ("'issueKeys' or 'associations' is required",)


def test_deployment_with_only_associations_is_accepted() -> None:
    data = without(deployment(), ("issueKeys",))
    data["associations"] = [association("serviceIdOrKeys", ["svc"])]

    d = accepted(data)

    assert d.issueKeys is None
    assert d.associations == [ServiceIdOrKeysAssociation(values=["svc"])]


def test_deployment_with_both_issue_keys_and_associations_is_accepted() -> None:
    d = accepted(deployment(associations=[association("issueKeys", ["ABC-2"])]))

    assert d.issueKeys == ["ABC-1"]
    assert d.associations == [IssueKeysAssociation(values=["ABC-2"])]


def test_empty_issue_keys_is_rejected() -> None:
    assert_rejected_for(deployment(issueKeys=[]), "issueKeys", "must have at least 1 item")


def test_one_hundred_issue_keys_are_accepted() -> None:
    keys = [f"ABC-{i}" for i in range(100)]

    assert accepted(deployment(issueKeys=keys)).issueKeys == keys


def test_more_than_one_hundred_issue_keys_is_rejected() -> None:
    keys = [f"ABC-{i}" for i in range(101)]

    assert_rejected_for(deployment(issueKeys=keys), "issueKeys", "must have at most 100 items")


@pytest.mark.parametrize("key", ["ABC-1", "a_b9-0001", "X-" + "9" * 255, "A" * 255 + "-1"])
def test_issue_key_matching_pattern_is_accepted(key: str) -> None:
    assert accepted(deployment(issueKeys=[key])).issueKeys == [key]


@pytest.mark.parametrize(
    "key",
    [
        "ABC",
        "ABC-",
        "-1",
        "12345",
        "ABC-1x",
        " ABC-1",
        "ABC-1 ",
        "AB C-1",
        "ABC_1",
        "",
        "ABC-1\n",
        "ABC-1\r\n",
        "\u00c4BC-1",  # Java's \w, which the contract's pattern means, is ASCII
        "ABC-\uff11",  # a fullwidth digit
        "A" * 256 + "-1",
    ],
    ids=repr,
)
def test_issue_key_not_matching_the_whole_pattern_is_rejected(key: str) -> None:
    assert_rejected_for(
        deployment(issueKeys=["OK-1", key]), "issueKeys[1]", "must be an issue key such as ABC-123"
    )


def test_issue_key_that_is_not_a_string_is_rejected() -> None:
    assert_rejected_for(deployment(issueKeys=[123]), "issueKeys[0]", "must be a string")


# --------------------------------------------------------------------------------------------
# Strict: associations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["issueKeys", "issueIdOrKeys"])
@pytest.mark.parametrize("value", ["ABC-1", "10001", "a_b9-0001", "A" * 255 + "-1", "9" * 255])
def test_issue_association_value_that_is_a_key_or_an_id_is_accepted(kind: str, value: str) -> None:
    d = accepted(deployment(associations=[association(kind, [value])]))

    assert d.associations is not None
    assert d.associations[0].values == [value]


@pytest.mark.parametrize("kind", ["issueKeys", "issueIdOrKeys"])
@pytest.mark.parametrize(
    "value",
    [
        "ABC",
        "ABC-",
        "",
        "no digits at all",
        "-",
        # The contract's pattern is unanchored; Jira matches it against the whole value.
        "see ABC-1 here",
        "id:42",
        "\u00c4BC-1",
        "x" * 300 + "-1",
        "ABC-1\n",
        "10001\n",
    ],
    ids=repr,
)
def test_issue_association_value_that_is_not_wholly_a_key_or_id_is_rejected(
    kind: str, value: str
) -> None:
    data = deployment(associations=[association(kind, ["ABC-1", value])])

    assert_rejected_for(data, "associations[0].values[1]", "must be an issue key such as ABC-123")


@pytest.mark.parametrize("kind", ["issueKeys", "issueIdOrKeys", "serviceIdOrKeys"])
def test_association_value_that_is_not_a_string_is_rejected(kind: str) -> None:
    data = deployment(associations=[association(kind, [12345])])

    assert_rejected_for(data, "associations[0].values[0]", "must be a string")


def test_service_value_of_255_characters_is_accepted() -> None:
    value = "s" * 255
    d = accepted(deployment(associations=[association("serviceIdOrKeys", [value])]))

    assert d.associations == [ServiceIdOrKeysAssociation(values=[value])]


def test_service_value_over_255_characters_is_rejected() -> None:
    data = deployment(associations=[association("serviceIdOrKeys", ["s" * 256])])

    assert_rejected_for(data, "associations[0].values[0]", "must be at most 255 characters")


@pytest.mark.parametrize("kind", ["commit", "repository"])
def test_entity_without_commit_hash_is_accepted(kind: str) -> None:
    d = accepted(deployment(associations=[association(kind, [{"repositoryId": "repo"}])]))

    assert d.associations is not None
    assert d.associations[0].values == [AssociatedEntity(repositoryId="repo", commitHash=None)]


@pytest.mark.parametrize("kind", ["commit", "repository"])
@pytest.mark.parametrize("field", ["repositoryId", "commitHash"])
def test_entity_field_over_255_characters_is_rejected(kind: str, field: str) -> None:
    entity = {"repositoryId": "repo", "commitHash": "abc"} | {field: "x" * 256}
    data = deployment(associations=[association(kind, [entity])])

    assert_rejected_for(
        data, f"associations[0].values[0].{field}", "must be at most 255 characters"
    )


@pytest.mark.parametrize("kind", ["commit", "repository"])
def test_entity_without_repository_id_is_rejected(kind: str) -> None:
    data = deployment(associations=[association(kind, [{"commitHash": "abc"}])])

    assert_rejected_for(data, "associations[0].values[0].repositoryId", "is required")


@pytest.mark.parametrize("kind", ["commit", "repository"])
def test_entity_given_as_string_is_rejected(kind: str) -> None:
    data = deployment(associations=[association(kind, ["repo"])])

    assert_rejected_for(data, "associations[0].values[0]", "must be an object")


@pytest.mark.parametrize(
    "association_type", ["issues", "IssueKeys", "Commit", "serviceIds", "entity", ""]
)
def test_unknown_association_type_is_rejected(association_type: str) -> None:
    data = deployment(associations=[association(association_type, ["ABC-1"])])

    assert_rejected_for(
        data, "associations[0].associationType", "must be one of:", "issueIdOrKeys", "commit"
    )


@pytest.mark.parametrize(
    ("association_type", "rule"), [(None, "is required"), (1, "must be a string")]
)
def test_association_type_that_is_not_a_string_is_rejected(
    association_type: Any, rule: str
) -> None:
    data = deployment(associations=[association("issueKeys", ["ABC-1"])])
    data["associations"][0]["associationType"] = association_type

    assert_rejected_for(data, "associations[0].associationType", rule)


def test_empty_associations_is_rejected() -> None:
    assert_rejected_for(deployment(associations=[]), "associations", "must have at least 1 item")


def test_three_associations_are_accepted() -> None:
    associations = [association(kind, values_for(kind, 1)) for kind in ASSOCIATION_KINDS[2:]]

    d = accepted(deployment(associations=associations))

    assert d.associations is not None
    assert [type(a) for a in d.associations] == [
        ServiceIdOrKeysAssociation,
        CommitAssociation,
        RepositoryAssociation,
    ]


def test_more_than_three_associations_is_rejected() -> None:
    associations = [association(kind, values_for(kind, 1)) for kind in ASSOCIATION_KINDS[:4]]

    assert_rejected_for(
        deployment(associations=associations), "associations", "must have at most 3 items"
    )


@pytest.mark.parametrize("kind", ASSOCIATION_KINDS)
def test_association_with_no_values_is_rejected(kind: str) -> None:
    data = deployment(associations=[association(kind, [])])

    assert_rejected_for(data, "associations[0].values", "must have at least 1 item")


@pytest.mark.parametrize("kind", ASSOCIATION_KINDS)
def test_association_with_500_values_is_accepted(kind: str) -> None:
    d = accepted(deployment(associations=[association(kind, values_for(kind, 500))]))

    assert d.associations is not None
    assert len(d.associations[0].values) == 500


@pytest.mark.parametrize("kind", ASSOCIATION_KINDS)
def test_association_with_more_than_500_values_is_rejected(kind: str) -> None:
    data = deployment(associations=[association(kind, values_for(kind, 501))])

    rejection = rejected(data)

    # Two rules broken, two errors: the association's own limit and the cap across all.
    assert rejection.errors == (
        "'associations[0].values' must have at most 500 items, got 501",
        "'associations' must have at most 500 values across all associations, got 501",
    )


def test_500_values_summed_across_associations_are_accepted() -> None:
    associations = [
        association("issueKeys", values_for("issueKeys", 250)),
        association("serviceIdOrKeys", values_for("serviceIdOrKeys", 250)),
    ]

    d = accepted(deployment(associations=associations))

    assert d.associations is not None
    assert sum(len(a.values) for a in d.associations) == 500


@pytest.mark.parametrize(
    "kinds_and_counts",
    [
        [("issueKeys", 250), ("serviceIdOrKeys", 251)],
        [("issueIdOrKeys", 200), ("commit", 200), ("repository", 101)],
        [("issueKeys", 500), ("issueIdOrKeys", 1)],
    ],
    ids=["two-types", "with-entities", "one-full"],
)
def test_more_than_500_values_summed_across_associations_is_rejected(
    kinds_and_counts: list[tuple[str, int]],
) -> None:
    associations = [association(kind, values_for(kind, n)) for kind, n in kinds_and_counts]

    rejection = assert_rejected_for(
        deployment(associations=associations),
        "associations",
        "must have at most 500 values across all associations, got 501",
    )

    assert rejection.key == DeploymentKey("pipe-1", "env-1", 1)


# --------------------------------------------------------------------------------------------
# Per-item semantics and rejection keys
# --------------------------------------------------------------------------------------------


def test_valid_deployments_are_accepted_alongside_an_invalid_one() -> None:
    result = submit(
        deployment(deploymentSequenceNumber=1),
        without(deployment(deploymentSequenceNumber=2), ("displayName",)),
        deployment(deploymentSequenceNumber=3),
    )

    assert [d.deploymentSequenceNumber for d in result.deployments] == [1, 3]
    (rejection,) = result.rejected
    assert rejection.key == DeploymentKey("pipe-1", "env-1", 2)
    assert rejection.errors == ("'displayName' is required",)


def test_each_invalid_deployment_gets_its_own_rejection_in_order() -> None:
    result = submit(
        deployment(deploymentSequenceNumber=10, state="done"),
        deployment(deploymentSequenceNumber=11),
        deployment(deploymentSequenceNumber=12, issueKeys=None),
    )

    assert [d.deploymentSequenceNumber for d in result.deployments] == [11]
    first, second = result.rejected
    assert first.key.deploymentSequenceNumber == 10
    assert first.errors == (
        "'state' must be one of: cancelled, failed, in_progress, pending, rolled_back, "
        "successful, unknown",
    )
    assert second.key.deploymentSequenceNumber == 12
    assert second.errors == ("'issueKeys' or 'associations' is required",)


def test_all_deployments_invalid_still_returns_rejections_not_an_error() -> None:
    result = submit({}, {"deploymentSequenceNumber": 5})

    assert result.deployments == ()
    assert len(result.rejected) == 2
    assert result.rejected[1].key == DeploymentKey(None, None, 5)


def test_rejection_key_is_recovered_from_a_partially_valid_deployment() -> None:
    data = without(deployment(deploymentSequenceNumber="77"), ("url",))
    data["pipeline"]["id"] = "pipe-x"
    data["environment"]["id"] = "env-y"

    rejection = assert_rejected_for(data, "url", "is required")

    assert rejection.errors == ("'url' is required",)
    assert rejection.key == DeploymentKey("pipe-x", "env-y", 77)
    assert rejection.key.as_json() == {
        "pipelineId": "pipe-x",
        "environmentId": "env-y",
        "deploymentSequenceNumber": 77,
    }


@pytest.mark.parametrize(
    "item",
    [
        1,
        "deployment",
        None,
        [],
        [deployment()],
        {"pipeline": "pipe-1", "environment": ["env-1"], "deploymentSequenceNumber": True},
        {"pipeline": {"id": 5}, "environment": {"id": None}, "deploymentSequenceNumber": 1.5},
        {"deploymentSequenceNumber": "²"},
        {"deploymentSequenceNumber": "--5"},
        {"deploymentSequenceNumber": "9" * 5000},
        {"deploymentSequenceNumber": str(INT64_MAX + 1)},
        {"deploymentSequenceNumber": INT64_MAX + 1},
        {"deploymentSequenceNumber": INT64_MIN - 1},
    ],
    ids=lambda item: repr(item)[:40],
)
def test_rejection_key_parts_are_none_when_not_recoverable(item: Any) -> None:
    rejection = rejected(item)

    assert rejection.key == DeploymentKey(None, None, None)
    assert rejection.errors
    assert all(message.startswith(("'", "The deployment ")) for message in rejection.errors)


def test_rejection_key_drops_sequence_number_beyond_uint64() -> None:
    number = 10**29  # beyond what orjson can write back in the 202 response

    rejection = assert_rejected_for(
        deployment(deploymentSequenceNumber=number), "deploymentSequenceNumber", "must be between"
    )

    assert rejection.key == DeploymentKey("pipe-1", "env-1", None)


@pytest.mark.parametrize("item", [1, "x", None, [1, 2]], ids=repr)
def test_deployment_that_is_not_an_object_is_rejected_not_bad_request(item: Any) -> None:
    rejection = assert_rejected_for(item, "")

    assert rejection.errors == ("The deployment must be an object",)


# --------------------------------------------------------------------------------------------
# Whole request: 400 and 413
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b'{"deployments": [}',
        b'{"deployments": []} trailing',
        b"\xff\xfe{}",
        b'{"deployments": ["\\q"]}',
        b'{"deployments": ["\\ud800"]}',
    ],
)
def test_body_that_is_not_json_is_bad_request(raw: bytes) -> None:
    message = bad_request(raw)

    assert message.startswith("Request body is not valid JSON")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"deployments":[{"displayName":"\xff"}]}',
        b'{"deployments":[{"surprise":"\xc3"}]}',
        b'{"deployments":[1],"\xff":1}',
        b'{"deployments":[1],"providerMetadata":{"product":"\xed\xa0\x80"}}',
    ],
    ids=["known-field", "unknown-field", "unknown-key", "surrogate"],
)
def test_invalid_utf8_anywhere_in_the_body_is_bad_request(raw: bytes) -> None:
    message = bad_request(raw)

    assert message.startswith("Request body is not valid JSON")


@pytest.mark.parametrize(
    "template",
    [
        b'{"deployments":[%s]}',
        b'{"deployments":[{"surprise":%s}]}',
        b'{"surprise":%s,"deployments":[{}]}',
    ],
    ids=["as-deployment", "in-deployment", "top-level"],
)
@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_body_is_bad_request(template: bytes, depth: int) -> None:
    raw = template % (b"[" * depth + b"]" * depth)

    assert "nested too deeply" in bad_request(raw)


def test_moderately_nested_unknown_field_is_ignored() -> None:
    nested: Any = "leaf"
    for _ in range(50):
        nested = [nested]

    d = accepted(deployment(surprise=nested))

    assert d.displayName == "Deploy #1"


@pytest.mark.parametrize("raw", [b"[]", b"null", b"1", b'"deployments"', b"[{}]"])
def test_body_that_is_not_an_object_is_bad_request(raw: bytes) -> None:
    message = bad_request(raw)

    assert message.startswith("Request has incorrect format")
    assert "Expected `object`" in message


@pytest.mark.parametrize("raw", [b"{}", b'{"properties":{"a":"b"}}', b'{"deployment":[{}]}'])
def test_missing_deployments_is_bad_request(raw: bytes) -> None:
    assert bad_request(raw) == "deployments: is required"


def test_empty_deployments_is_bad_request() -> None:
    assert bad_request(b'{"deployments":[]}') == "deployments: at least one deployment is required"


@pytest.mark.parametrize("value", [b"null", b"{}", b'"x"', b"1"])
def test_deployments_that_is_not_an_array_is_bad_request(value: bytes) -> None:
    message = bad_request(b'{"deployments":%s}' % value)

    assert message.startswith("Request has incorrect format")
    assert "$.deployments" in message


def test_provider_metadata_of_wrong_type_is_bad_request() -> None:
    message = bad_request(body(deployment(), providerMetadata={"product": 6}))

    assert "providerMetadata" in message


def test_exactly_max_deployments_are_accepted() -> None:
    deployments = [deployment(deploymentSequenceNumber=i) for i in range(MAX_DEPLOYMENTS)]

    result = submit(*deployments)

    assert [d.deploymentSequenceNumber for d in result.deployments] == list(range(100))
    assert result.rejected == ()


def test_more_than_max_deployments_is_payload_too_large() -> None:
    deployments = [deployment(deploymentSequenceNumber=i) for i in range(MAX_DEPLOYMENTS + 1)]

    with pytest.raises(PayloadTooLarge) as caught:
        parse_submission(body(*deployments), max_deployments=MAX_DEPLOYMENTS)

    (message,) = caught.value.messages
    assert "101 deployments" in message
    assert "at most 100" in message


def test_max_deployments_argument_sets_the_limit() -> None:
    raw = body(deployment(), deployment(), deployment())

    with pytest.raises(PayloadTooLarge):
        parse_submission(raw, max_deployments=2)
    assert len(parse_submission(raw, max_deployments=3).deployments) == 3


def test_payload_too_large_comes_before_item_and_property_validation() -> None:
    raw = body(*([{}] * (MAX_DEPLOYMENTS + 1)), properties={"_bad": "x"})

    with pytest.raises(PayloadTooLarge):
        parse_submission(raw, max_deployments=MAX_DEPLOYMENTS)


# --------------------------------------------------------------------------------------------
# Property-based: nothing but BadRequest / PayloadTooLarge ever escapes
# --------------------------------------------------------------------------------------------

FIELD_NAMES = [
    "deployments",
    "properties",
    "providerMetadata",
    "product",
    *deployment().keys(),
    "id",
    "type",
    "label",
    "duration",
    "commands",
    "command",
    "schemaVersion",
    "associations",
    "associationType",
    "values",
    "repositoryId",
    "commitHash",
]
SCALAR_STRINGS = [
    "",
    "1.0",
    "42",
    "-0",
    "²",
    "--5",
    "1e3",
    "9" * 30,
    "ABC-1",
    "issueKeys",
    "commit",
    "repository",
    "serviceIdOrKeys",
    "production",
    "successful",
    "https://x/y",
    "2018-01-20T23:27:25Z",
    "_p",
    "a:b",
]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(SCALAR_STRINGS),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=30,
)


@st.composite
def mutated_deployments(draw: st.DrawFn) -> Any:
    """A valid deployment with a few values, anywhere in it, replaced by random JSON."""
    data: Any = deployment(
        associations=[
            association("issueIdOrKeys", ["ABC-1"]),
            association("commit", [{"repositoryId": "r", "commitHash": "c"}]),
        ],
        commands=[{"command": "x"}],
    )
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        parent = data
        while True:
            keys = list(parent.keys()) if isinstance(parent, dict) else list(range(len(parent)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = parent[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                parent = child
                continue
            if draw(st.booleans()):
                parent[key] = draw(json_values)
            elif isinstance(parent, dict):
                del parent[key]
            break
    return data


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Request bodies: near-valid, random JSON, wrong types, deep nesting, invalid bytes."""
    shape = draw(st.sampled_from(["near-valid", "random-deployments", "random-body"]))
    if shape == "near-valid":
        top: dict[str, Any] = {
            "deployments": draw(st.lists(mutated_deployments(), min_size=0, max_size=4))
        }
        if draw(st.booleans()):
            top["properties"] = draw(st.dictionaries(st.text(max_size=6), json_scalars, max_size=7))
        if draw(st.booleans()):
            top["providerMetadata"] = draw(json_values)
        raw = to_json(top)
    elif shape == "random-deployments":
        raw = to_json({"deployments": draw(st.lists(json_values, max_size=6))})
    else:
        raw = to_json(draw(json_values))
    if draw(st.booleans()):  # wrap a value in deep nesting
        depth = draw(st.sampled_from([1, 10, 500, 990, 1_000, 5_000]))
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + b"[" * depth + raw[at:] + b"]" * depth
    if draw(st.booleans()):  # splice in arbitrary (often invalid UTF-8) bytes
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        junk = draw(st.one_of(st.binary(max_size=8), st.sampled_from([b"\xff", b"\xc3", b"\xed"])))
        raw = raw[:at] + junk + raw[at:]
    if draw(st.booleans()):  # truncate
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    return raw


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=bodies(), max_deployments=st.integers(min_value=1, max_value=5))
def test_random_bodies_only_ever_raise_bad_request_or_payload_too_large(
    raw: bytes, max_deployments: int
) -> None:
    try:
        result = parse_submission(raw, max_deployments=max_deployments)
    except (BadRequest, PayloadTooLarge):
        return
    assert isinstance(result, SubmitDeployments)
    assert 1 <= len(result.deployments) + len(result.rejected) <= max_deployments
    for d in result.deployments:
        assert isinstance(d, DeploymentData)
        assert INT64_MIN <= d.deploymentSequenceNumber <= INT64_MAX
    for r in result.rejected:
        assert r.errors
        # Every message names its field first, Jira's way ('url' is required).
        assert all(message.startswith(("'", "The deployment ")) for message in r.errors)
        number = r.key.deploymentSequenceNumber
        assert number is None or INT64_MIN <= number <= INT64_MAX
        orjson.dumps(r.key.as_json())  # the key must be encodable in the 202 response
    assert all(isinstance(v, str) and len(v) <= 255 for v in result.properties.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(mutated_deployments(), min_size=1, max_size=5))
def test_each_mutated_deployment_is_either_accepted_or_rejected(items: list[Any]) -> None:
    result = parse_submission(to_json({"deployments": items}), max_deployments=MAX_DEPLOYMENTS)

    assert len(result.deployments) + len(result.rejected) == len(items)
    for d in result.deployments:
        assert d.issueKeys or d.associations
