"""The Jira Deployments contract as msgspec types, and per-deployment validation.

msgspec does the per-field work in C (types, lengths, patterns, enums, int64 range); the few
rules that span fields (issueKeys-or-associations, the 500-value cap) are checked after it.
``strict=False`` is what makes numeric strings acceptable for integer fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from gateway.errors import BadRequest, PayloadTooLarge

__all__ = [
    "DeploymentData",
    "DeploymentKey",
    "ItemRejected",
    "SubmitDeployments",
    "parse_submission",
    "reject_duplicate_keys",
    "validate_deployment",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_ASSOCIATION_VALUES = 500
MAX_PROPERTIES = 5

Long = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
Str255 = Annotated[str, Meta(max_length=255)]
# format: uri — a scheme followed by a non-empty, whitespace-free remainder.
Uri = Annotated[str, Meta(max_length=2000, pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")]
RFC3339 = Annotated[
    str,
    Meta(
        pattern=(
            r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:"
            r"([0-5]\d|60)(\.\d{1,9})?([Zz]|[+\-]([01]\d|2[0-3]):[0-5]\d)$"
        )
    ),
]
IssueKey = Annotated[str, Meta(pattern=r"^\w{1,255}-\d{1,255}$")]
# Unanchored on purpose: this is the contract's pattern for association values, verbatim.
IssueIdOrKey = Annotated[str, Meta(pattern=r"(\w{1,255}-\d{1,255}|\d{1,255})")]
State = Literal[
    "unknown", "pending", "in_progress", "cancelled", "failed", "rolled_back", "successful"
]
EnvironmentType = Literal["unmapped", "development", "testing", "staging", "production"]


class Pipeline(Struct):
    """The pipeline a deployment belongs to."""

    id: Str255
    displayName: Str255
    url: Uri


class Environment(Struct):
    """The environment a deployment targets."""

    id: Str255
    displayName: Str255
    type: EnvironmentType


class Command(Struct):
    """A command for Jira, e.g. ``initiate_deployment_gating``."""

    command: str | None = None


class AssociatedEntity(Struct):
    """A commit (hash + repository) or a repository."""

    repositoryId: Str255
    commitHash: Str255 | None = None


IssueValues = Annotated[list[IssueIdOrKey], Meta(min_length=1, max_length=500)]
ServiceValues = Annotated[list[Str255], Meta(min_length=1, max_length=500)]
EntityValues = Annotated[list[AssociatedEntity], Meta(min_length=1, max_length=500)]


class IssueKeysAssociation(Struct, tag_field="associationType", tag="issueKeys"):
    """Issues by key."""

    values: IssueValues


class IssueIdOrKeysAssociation(Struct, tag_field="associationType", tag="issueIdOrKeys"):
    """Issues by key or numeric id."""

    values: IssueValues


class ServiceIdOrKeysAssociation(Struct, tag_field="associationType", tag="serviceIdOrKeys"):
    """Services by id or key."""

    values: ServiceValues


class CommitAssociation(Struct, tag_field="associationType", tag="commit"):
    """Commits."""

    values: EntityValues


class RepositoryAssociation(Struct, tag_field="associationType", tag="repository"):
    """Repositories."""

    values: EntityValues


Association = (
    IssueKeysAssociation
    | IssueIdOrKeysAssociation
    | ServiceIdOrKeysAssociation
    | CommitAssociation
    | RepositoryAssociation
)


class DeploymentData(Struct):
    """One deployment of a submission (the contract's ``DeploymentData``)."""

    deploymentSequenceNumber: Long
    updateSequenceNumber: Long
    displayName: Str255
    url: Uri
    description: Str255
    lastUpdated: RFC3339
    state: State
    pipeline: Pipeline
    environment: Environment
    issueKeys: Annotated[list[IssueKey], Meta(min_length=1, max_length=100)] | None = None
    associations: Annotated[list[Association], Meta(min_length=1, max_length=3)] | None = None
    label: Str255 | None = None
    duration: Long | None = None
    commands: list[Command] | None = None
    schemaVersion: Literal["1.0"] | None = None


class ProviderMetadata(Struct):
    """Where the data came from."""

    product: str | None = None


PropertyValue = str | int | float | bool


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


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A deployment that failed validation, with its errors."""

    key: DeploymentKey
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubmitDeployments:
    """The command a valid submission becomes: validated deployments plus rejections."""

    deployments: tuple[DeploymentData, ...]
    rejected: tuple[ItemRejected, ...]
    properties: dict[str, str]
    provider_metadata: ProviderMetadata | None


_ENVELOPE_DECODER = msgspec.json.Decoder(SubmitEnvelope, strict=False)
_ITEM_DECODER = msgspec.json.Decoder(DeploymentData, strict=False)
_LOOSE_DECODER = msgspec.json.Decoder()
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(
    r"^Object missing required field `(?P<field>[^`]+)`(?: - at `\$(?P<path>[^`]*)`)?$"
)


def _describe(error: msgspec.ValidationError, index: int) -> str:
    """Turn msgspec's message into one that names the field first."""
    text = str(error)
    where = f"deployments[{index}]"
    missing = _MISSING.match(text)
    if missing:
        return f"{where}{missing.group('path') or ''}.{missing.group('field')}: is required"
    located = _PATH.search(text)
    if located:
        return f"{where}{located.group('path')}: {text[: located.start()]}"
    return f"{where}: {text}"


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


def _loose_key(raw: msgspec.Raw) -> DeploymentKey:
    """Best-effort key of an invalid deployment, so a rejection can still be matched up."""
    try:
        item = _LOOSE_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return DeploymentKey(None, None, None)
    if not isinstance(item, dict):
        return DeploymentKey(None, None, None)
    pipeline, environment = item.get("pipeline"), item.get("environment")
    pipeline_id = pipeline.get("id") if isinstance(pipeline, dict) else None
    environment_id = environment.get("id") if isinstance(environment, dict) else None
    number = item.get("deploymentSequenceNumber")
    if isinstance(number, str):
        try:
            number = int(number)
        except ValueError:  # "²", "--5", or more digits than int() will parse
            number = None
    in_range = isinstance(number, int) and INT64_MIN <= number <= INT64_MAX
    return DeploymentKey(
        pipeline_id if isinstance(pipeline_id, str) else None,
        environment_id if isinstance(environment_id, str) else None,
        number if in_range and not isinstance(number, bool) else None,
    )


def cross_field_errors(deployment: DeploymentData, index: int) -> list[str]:
    """Rules of the contract that a per-field schema cannot express."""
    where = f"deployments[{index}]"
    errors = []
    if not deployment.issueKeys and not deployment.associations:
        errors.append(f"{where}: must specify one of 'issueKeys' or 'associations'")
    total = sum(len(a.values) for a in deployment.associations or ())
    if total > MAX_ASSOCIATION_VALUES:
        errors.append(
            f"{where}.associations: at most {MAX_ASSOCIATION_VALUES} values across all "
            f"associations are allowed, got {total}"
        )
    return errors


def validate_deployment(raw: msgspec.Raw | bytes, index: int = 0) -> DeploymentData | ItemRejected:
    """Validate one deployment; the result is either the typed deployment or its rejection."""
    try:
        deployment = _ITEM_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        return ItemRejected(_loose_key(msgspec.Raw(raw)), (_describe(exc, index),))
    errors = cross_field_errors(deployment, index)
    if errors:
        key = DeploymentKey(
            deployment.pipeline.id, deployment.environment.id, deployment.deploymentSequenceNumber
        )
        return ItemRejected(key, tuple(errors))
    return deployment


class _DuplicateKeyError(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        msg = f"Request body has the key {duplicate!r} twice in one object"
        raise _DuplicateKeyError(msg)
    return result


def reject_duplicate_keys(text: str) -> None:
    """RFC 8259 leaves duplicate keys undefined and msgspec keeps the last: refuse them, so
    what we store is never a guess between two values the client sent."""
    try:
        json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKeyError as exc:
        raise BadRequest(str(exc)) from exc


def parse_submission(body: bytes, *, max_deployments: int) -> SubmitDeployments:
    """Parse a ``POST .../bulk`` body; whole-request problems raise BadRequest/PayloadTooLarge."""
    try:
        # msgspec does not check the encoding of skipped or Raw values, so check it once here.
        text = body.decode("utf-8")
        envelope = _ENVELOPE_DECODER.decode(body)
        reject_duplicate_keys(text)
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
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        msg = f"Request body is not valid JSON: {exc}"
        raise BadRequest(msg) from exc
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
    for index, raw in enumerate(envelope.deployments):
        outcome = validate_deployment(raw, index)
        if isinstance(outcome, ItemRejected):
            rejected.append(outcome)
        else:
            accepted.append(outcome)
    return SubmitDeployments(
        tuple(accepted), tuple(rejected), properties, envelope.providerMetadata
    )
