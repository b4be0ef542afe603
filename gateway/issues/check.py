"""A submission checked against the tenant's issue registry, answered as Jira answers it.

Issue keys (``issueKeys``) and issue associations (``issueKeys`` / ``issueIdOrKeys`` values,
keys or numeric ids) that the registry does not know are listed in ``unknownIssueKeys`` and
``unknownAssociations``, and the deployment is stored against its known issues only. A
deployment left with no association at all ("only associated with issue keys deemed to be
invalid", in the contract's words) is rejected, with the message Jira gives for builds, and its
keys are listed as unknown too. Service, commit and repository associations are not checked
(there is no registry of them) and keep a deployment.

The check is a few dictionary lookups per deployment; a deployment whose issues are all known
is passed on as it is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec

from gateway.contract import ISSUE_ASSOCIATIONS, Association, DeploymentData
from gateway.errors import ServiceUnavailable
from gateway.issues.index import TenantIssues
from gateway.issues.replica import IssueReplica
from gateway.validation import DeploymentKey, ItemRejected, SubmitDeployments

__all__ = ["NO_VALID_ISSUES", "check_issues", "check_submission", "require_loaded"]

#: The contract's fixture says "No valid issues found for build" on the builds API.
NO_VALID_ISSUES = "No valid issues found for deployment"


class _Unknown:
    """Unknown issue references of one request, each listed once, in order."""

    def __init__(self) -> None:
        self.issue_keys: dict[str, None] = {}
        self.associations: dict[str, dict[str, None]] = {}

    def associations_json(self) -> tuple[dict[str, Any], ...]:
        return tuple(
            {"associationType": kind, "values": list(values)}
            for kind, values in self.associations.items()
        )


def _known_issues(
    deployment: DeploymentData, issues: TenantIssues, unknown: _Unknown
) -> DeploymentData | None:
    """``deployment`` with unknown issue references taken out (itself when there were none);
    None when no association is left."""
    knows = issues.knows
    keys = deployment.issueKeys
    missing_keys = [k for k in keys if not knows(k)] if keys else []
    associations = deployment.associations or []
    missing_values = [
        [v for v in a.values if not knows(v)] if isinstance(a, ISSUE_ASSOCIATIONS) else []
        for a in associations
    ]
    if not missing_keys and not any(missing_values):
        return deployment
    unknown.issue_keys.update(dict.fromkeys(missing_keys))
    kept: list[Association] = []
    for association, missing in zip(associations, missing_values, strict=True):
        if not missing:
            kept.append(association)
            continue
        kind = association.__struct_config__.tag
        assert isinstance(kind, str)
        unknown.associations.setdefault(kind, {}).update(dict.fromkeys(missing))
        gone = set(missing)
        values = [v for v in association.values if v not in gone]
        if values:
            kept.append(msgspec.structs.replace(association, values=values))
    known_keys = [k for k in keys if k not in missing_keys] if keys else []
    if not known_keys and not kept:
        return None
    return msgspec.structs.replace(
        deployment, issueKeys=known_keys or None, associations=kept or None
    )


def require_loaded(replica: IssueReplica, retry_after_s: int) -> None:
    """503 until this gateway has read the registry once: an answer from half of it would
    call known keys unknown, and let an old webhook event overwrite a newer state."""
    if not replica.caught_up:
        msg = "The issue registry is still loading; retry later."
        raise ServiceUnavailable(msg, headers={"Retry-After": str(retry_after_s)})


def check_submission(
    replica: IssueReplica, tenant: str, command: SubmitDeployments, retry_after_s: int
) -> SubmitDeployments:
    """``command`` checked against ``tenant``'s registry (once it is loaded)."""
    require_loaded(replica, retry_after_s)
    return check_issues(command, replica.index.tenant(tenant))


def check_issues(command: SubmitDeployments, issues: TenantIssues) -> SubmitDeployments:
    """``command`` as Jira would take it from a tenant whose known issues are ``issues``."""
    unknown = _Unknown()
    accepted: list[DeploymentData] = []
    rejected = list(command.rejected)
    for deployment in command.deployments:
        checked = _known_issues(deployment, issues, unknown)
        if checked is None:
            rejected.append(ItemRejected(DeploymentKey.of(deployment), (NO_VALID_ISSUES,)))
        else:
            accepted.append(checked)
    if not unknown.issue_keys and not unknown.associations:
        return command
    return replace(
        command,
        deployments=tuple(accepted),
        rejected=tuple(rejected),
        unknown_issue_keys=tuple(unknown.issue_keys),
        unknown_associations=unknown.associations_json(),
    )
