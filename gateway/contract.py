"""The Jira Deployments contract's ``DeploymentData`` as msgspec types.

msgspec checks every per-field rule in C when it decodes into these types: JSON types,
lengths, whole-value patterns (:mod:`gateway.formats`), enums, the int64 range, tagged
association types. :mod:`gateway.validation` adds the rules that span fields, and
:mod:`gateway.explain` reads the constraints from these same types to word every error.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from gateway.formats import INT64_MAX, INT64_MIN, ISSUE_ID_OR_KEY, ISSUE_KEY, RFC3339, URL

__all__ = [
    "INTEGER_FIELDS",
    "ISSUE_ASSOCIATIONS",
    "MAX_ASSOCIATION_VALUES",
    "AssociatedEntity",
    "Association",
    "Command",
    "CommitAssociation",
    "DeploymentData",
    "DigitString",
    "Environment",
    "IssueIdOrKeysAssociation",
    "IssueKeysAssociation",
    "Long",
    "Pipeline",
    "PropertyValue",
    "ProviderMetadata",
    "RepositoryAssociation",
    "ServiceIdOrKeysAssociation",
]

MAX_ASSOCIATION_VALUES = 500

Long = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
Str255 = Annotated[str, Meta(max_length=255)]
Url = Annotated[str, Meta(max_length=2000, pattern=URL)]
Timestamp = Annotated[str, Meta(pattern=RFC3339)]
IssueKey = Annotated[str, Meta(pattern=ISSUE_KEY)]
IssueIdOrKey = Annotated[str, Meta(pattern=ISSUE_ID_OR_KEY)]
State = Literal[
    "unknown", "pending", "in_progress", "cancelled", "failed", "rolled_back", "successful"
]
EnvironmentType = Literal["unmapped", "development", "testing", "staging", "production"]


class Pipeline(Struct):
    """The pipeline a deployment belongs to."""

    id: Str255
    displayName: Str255
    url: Url


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
ISSUE_ASSOCIATIONS = (IssueKeysAssociation, IssueIdOrKeysAssociation)


class DeploymentData(Struct):
    """One deployment of a submission (the contract's ``DeploymentData``)."""

    deploymentSequenceNumber: Long
    updateSequenceNumber: Long
    displayName: Str255
    url: Url
    description: Str255
    lastUpdated: Timestamp
    state: State
    pipeline: Pipeline
    environment: Environment
    issueKeys: Annotated[list[IssueKey], Meta(min_length=1, max_length=100)] | None = None
    associations: Annotated[list[Association], Meta(min_length=1, max_length=3)] | None = None
    label: Str255 | None = None
    duration: Long | None = None
    commands: list[Command] | None = None
    schemaVersion: Literal["1.0"] | None = None


#: Fields that take a digit string for an integer.
INTEGER_FIELDS = ("deploymentSequenceNumber", "updateSequenceNumber", "duration")
#: Real clients send ``"42"`` for integers; so does nothing else (no ``"1e3"``, no ``"4_2"``).
DigitString = Annotated[str, Meta(pattern=r"\A[+-]?[0-9]+\Z")]


class ProviderMetadata(Struct):
    """Where the data came from."""

    product: str | None = None


PropertyValue = str | int | float | bool
