"""Validation of submissions, each deployment on its own, against :mod:`gateway.contract`.

The fast path is msgspec's strict decoder: per-field work (types, lengths, whole-value
patterns, enums, int64 range) in C, then the few rules that span fields or need arithmetic
(issueKeys-or-associations, the 500-value cap, real calendar dates) in Python. Valid
deployments, nearly all of them, never leave it.

A deployment the fast path refuses goes the slow way: decoded as plain JSON, integer fields
given as digit strings (``"42"``, as real clients send them) made integers, then either
accepted or rejected with *every* error it has, each naming its field in Jira's words
(:mod:`gateway.explain`). Duplicate keys are found by :mod:`gateway.duplicates`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import Struct

from gateway.contract import (
    INTEGER_FIELDS,
    MAX_ASSOCIATION_VALUES,
    DeploymentData,
    DigitString,
    Long,
    PropertyValue,
    ProviderMetadata,
)
from gateway.duplicates import Duplicates, find_duplicates
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.explain import schema_errors
from gateway.formats import (
    INT64_MAX,
    INT64_MIN,
    int64_of,
    is_digit_string,
    is_real_date,
    is_rfc3339,
)

# DeploymentData and ProviderMetadata are what a valid submission is made of.
__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "DeploymentData",
    "DeploymentKey",
    "ItemRejected",
    "ProviderMetadata",
    "SubmitDeployments",
    "deployment_errors",
    "parse_submission",
    "reject_duplicate_keys",
    "validate_deployment",
]

MAX_PROPERTIES = 5


def _with_digit_strings() -> type[msgspec.Struct]:
    """DeploymentData whose integer fields also take digit strings: a second fast decoder
    for clients that send them, so that they do not pay for the slow path."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(DeploymentData):
        kind = info.type
        if info.name in INTEGER_FIELDS:
            kind = Long | DigitString if info.required else Long | DigitString | None
        fields.append((info.name, kind) if info.required else (info.name, kind, info.default))
    return msgspec.defstruct("DeploymentDataWithDigitStrings", fields)


class SubmitEnvelope(Struct):
    """The request body with each deployment kept raw, so each is validated on its own."""

    deployments: list[msgspec.Raw]
    properties: dict[str, PropertyValue | None] | None = None
    providerMetadata: ProviderMetadata | None = None


@dataclass(frozen=True, slots=True)
class DeploymentKey:
    """(pipelineId, environmentId, deploymentSequenceNumber), as reported back to clients."""

    pipelineId: str | None
    environmentId: str | None
    deploymentSequenceNumber: int | None

    def as_json(self) -> dict[str, Any]:
        """The contract's ``DeploymentKey`` object."""
        return {
            "pipelineId": self.pipelineId,
            "environmentId": self.environmentId,
            "deploymentSequenceNumber": self.deploymentSequenceNumber,
        }

    @classmethod
    def of(cls, deployment: DeploymentData) -> DeploymentKey:
        """The key of a valid deployment."""
        return cls(
            deployment.pipeline.id, deployment.environment.id, deployment.deploymentSequenceNumber
        )


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A deployment that failed validation, with its errors."""

    key: DeploymentKey
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubmitDeployments:
    """The command a valid submission becomes: validated deployments plus rejections, and
    (for tenants with an issue registry) the issue keys and associations found unknown."""

    deployments: tuple[DeploymentData, ...]
    rejected: tuple[ItemRejected, ...]
    properties: dict[str, str]
    provider_metadata: ProviderMetadata | None
    unknown_issue_keys: tuple[str, ...] = ()
    unknown_associations: tuple[dict[str, Any], ...] = field(default=())


_ENVELOPE_DECODER = msgspec.json.Decoder(SubmitEnvelope)
_ITEM_DECODER = msgspec.json.Decoder(DeploymentData)
_DIGIT_STRING_DECODER = msgspec.json.Decoder(_with_digit_strings())


# -- rules beyond the types -----------------------------------------------------------------


def _rules_hold(deployment: DeploymentData) -> bool:
    """The fast path's check of the rules the types cannot express."""
    if deployment.issueKeys is None and deployment.associations is None:
        return False
    if deployment.associations is not None:
        total = sum(len(a.values) for a in deployment.associations)
        if total > MAX_ASSOCIATION_VALUES:
            return False
    return is_real_date(deployment.lastUpdated)


def _rule_errors(item: dict[str, Any]) -> list[str]:
    """The same rules as :func:`_rules_hold`, as messages, for plain JSON data."""
    errors = []
    if item.get("issueKeys") is None and item.get("associations") is None:
        errors.append("'issueKeys' or 'associations' is required")
    associations = item.get("associations")
    if isinstance(associations, list):
        total = sum(
            len(a["values"])
            for a in associations
            if isinstance(a, dict) and isinstance(a.get("values"), list)
        )
        if total > MAX_ASSOCIATION_VALUES:
            errors.append(
                f"'associations' must have at most {MAX_ASSOCIATION_VALUES} values across all "
                f"associations, got {total}"
            )
    timestamp = item.get("lastUpdated")
    if isinstance(timestamp, str) and is_rfc3339(timestamp) and not is_real_date(timestamp):
        errors.append(f"'lastUpdated' is not a real date: {timestamp[:10]}")
    return errors


# -- one deployment -------------------------------------------------------------------------


def _plain(raw: msgspec.Raw | bytes) -> Any:
    """The deployment as plain JSON data; a repeated key keeps its last value, as msgspec
    does. The standard parser reads what msgspec refuses to (integers of any size, 1e400)."""
    return json.loads(bytes(raw))


def _with_integers(item: Any) -> Any:
    """``item`` with digit strings in integer fields made integers (out-of-range ones too,
    so that the error says so)."""
    if not isinstance(item, dict):
        return item
    changes = {}
    for name in INTEGER_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and is_digit_string(value) and len(value) <= 100:
            changes[name] = int(value)
    return {**item, **changes} if changes else item


def _key_of(item: Any) -> DeploymentKey:
    """Best-effort key of an invalid deployment, so a rejection can still be matched up."""
    if not isinstance(item, dict):
        return DeploymentKey(None, None, None)
    pipeline, environment = item.get("pipeline"), item.get("environment")
    pipeline_id = pipeline.get("id") if isinstance(pipeline, dict) else None
    environment_id = environment.get("id") if isinstance(environment, dict) else None
    number = item.get("deploymentSequenceNumber")
    if isinstance(number, str):
        number = int64_of(number)
    in_range = type(number) is int and INT64_MIN <= number <= INT64_MAX
    return DeploymentKey(
        pipeline_id if isinstance(pipeline_id, str) else None,
        environment_id if isinstance(environment_id, str) else None,
        number if in_range else None,
    )


def _decode_fast(raw: msgspec.Raw | bytes) -> DeploymentData | None:
    """The deployment when msgspec's decoders take it whole, else None."""
    try:
        return _ITEM_DECODER.decode(raw)
    except msgspec.ValidationError:
        pass
    try:
        lenient = _DIGIT_STRING_DECODER.decode(raw)
    except msgspec.ValidationError:
        return None
    values = msgspec.structs.asdict(lenient)
    for name in INTEGER_FIELDS:
        value = values[name]
        if type(value) is str:
            values[name] = int64_of(value)
            if values[name] is None:  # out of range: the slow path says so
                return None
    return DeploymentData(**values)


def validate_deployment(
    raw: msgspec.Raw | bytes, *, duplicates: tuple[str, ...] = ()
) -> DeploymentData | ItemRejected:
    """Validate one deployment: the typed deployment, or its rejection with every error.
    ``duplicates`` are the paths of keys it repeats (each an error of its own)."""
    if not duplicates:
        deployment = _decode_fast(raw)
        if deployment is not None and _rules_hold(deployment):
            return deployment
    item = _with_integers(_plain(raw))
    errors = [f"'{path}' is given more than once" for path in duplicates]
    errors += deployment_errors(item)
    if errors:
        return ItemRejected(_key_of(item), tuple(errors))
    return msgspec.convert(item, DeploymentData, strict=True)


def deployment_errors(item: Any) -> list[str]:
    """Every error of one deployment given as plain JSON data (integer fields already made
    integers from digit strings); empty when it is valid."""
    errors = schema_errors(item, DeploymentData)
    if isinstance(item, dict):
        errors += _rule_errors(item)
    return errors


# -- the whole request ----------------------------------------------------------------------


def _property_value(key: str, value: PropertyValue | None) -> str:
    if value is None:
        msg = f"properties.{key}: must be a string"
        raise BadRequest(msg)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    if len(text) > 255:
        msg = f"properties.{key}: must be at most 255 characters"
        raise BadRequest(msg)
    return text


def validate_properties(raw: dict[str, PropertyValue | None] | None) -> dict[str, str]:
    """The request's properties: at most 5, keys without ':' and not starting with '_'."""
    if not raw:
        return {}
    if len(raw) > MAX_PROPERTIES:
        msg = f"properties: at most {MAX_PROPERTIES} properties are allowed, got {len(raw)}"
        raise BadRequest(msg)
    properties: dict[str, str] = {}
    for key, value in raw.items():
        if not key or ":" in key or key.startswith("_"):
            msg = (
                f"properties: key {key!r} must be non-empty, contain no ':' and not start with '_'"
            )
            raise BadRequest(msg)
        properties[key] = _property_value(key, value)
    return properties


def reject_duplicate_keys(text: str) -> None:
    """BadRequest when any object of the JSON ``text`` repeats a key (small bodies whose
    every part belongs to the request, e.g. a gating decision)."""
    duplicates = find_duplicates(text)
    paths = [*duplicates.envelope, *(p for ps in duplicates.items.values() for p in ps)]
    if paths:
        msg = f"Request body has the key {paths[0]!r} more than once in one object"
        raise BadRequest(msg)


def _envelope_of(body: bytes) -> tuple[SubmitEnvelope, Duplicates]:
    try:
        # msgspec does not check the encoding of skipped or Raw values, so check it once here.
        text = body.decode("utf-8")
        envelope = _ENVELOPE_DECODER.decode(body)
        duplicates = find_duplicates(text)
    except RecursionError as exc:
        msg = "Request body is not valid JSON: nested too deeply"
        raise BadRequest(msg) from exc
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "missing required field `deployments`" in text:
            msg = "deployments: is required"
            raise BadRequest(msg) from exc
        msg = f"Request has incorrect format: {text}"
        raise BadRequest(msg) from exc
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
        msg = f"Request body is not valid JSON: {exc}"
        raise BadRequest(msg) from exc
    if duplicates.envelope:
        msg = f"Request body has the key {duplicates.envelope[0]!r} more than once in one object"
        raise BadRequest(msg)
    return envelope, duplicates


def parse_submission(body: bytes, *, max_deployments: int) -> SubmitDeployments:
    """Parse a ``POST .../bulk`` body; whole-request problems raise BadRequest/PayloadTooLarge."""
    envelope, duplicates = _envelope_of(body)
    if not envelope.deployments:
        msg = "deployments: at least one deployment is required"
        raise BadRequest(msg)
    if len(envelope.deployments) > max_deployments:
        msg = (
            f"Data is too large: {len(envelope.deployments)} deployments, at most "
            f"{max_deployments} per request. Submit fewer deployments in each payload."
        )
        raise PayloadTooLarge(msg)
    properties = validate_properties(envelope.properties)
    accepted: list[DeploymentData] = []
    rejected: list[ItemRejected] = []
    repeated = duplicates.items
    for index, raw in enumerate(envelope.deployments):
        outcome = validate_deployment(raw, duplicates=repeated.get(index, ()))
        if isinstance(outcome, ItemRejected):
            rejected.append(outcome)
        else:
            accepted.append(outcome)
    return SubmitDeployments(
        tuple(accepted), tuple(rejected), properties, envelope.providerMetadata
    )
