"""Deployment gating: which deployments wait for an approver, and what a decision does.

Rules (documented in the README):
- A deployment submitted with the ``initiate_deployment_gating`` command starts gating:
  ``awaiting`` when its environment type needs approval under the policy, else ``allowed``.
- Once requested, gating belongs to the deployment: later updates (higher
  updateSequenceNumber) keep it, with or without the command.
- A decision already taken (``allowed``/``prevented``) stays: later updates of the same
  deployment, even ones repeating the command, do not reopen it. A new deployment (another
  deploymentSequenceNumber) is gated afresh.
- Only an ``awaiting`` gate can be decided; the first decision wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["GATING_COMMAND", "GatingPolicy", "decide", "gating_after_update", "iso"]

GATING_COMMAND = "initiate_deployment_gating"
_ISSUE_KEY = re.compile(r"^\w{1,255}-\d{1,255}$")


@dataclass(frozen=True, slots=True)
class GatingPolicy:
    """Which environment types need approval, and where issue links point."""

    approval_required: frozenset[str]
    jira_base_url: str

    def issue_link(self, issue_key: str) -> str:
        """A full HTTPS link to the issue gating a deployment."""
        return f"{self.jira_base_url.rstrip('/')}/browse/{issue_key}"


def iso(moment: datetime | int) -> str:
    """RFC 3339 with milliseconds and ``Z`` (Avro timestamp-millis reads back as datetime)."""
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _issue_keys(deployment: dict[str, Any]) -> list[str]:
    keys = list(deployment.get("issueKeys") or [])
    for association in deployment.get("associations") or []:
        if association["associationType"] in ("issueKeys", "issueIdOrKeys"):
            keys.extend(v for v in association["values"] if isinstance(v, str))
    seen: dict[str, None] = {}
    for key in keys:
        if _ISSUE_KEY.match(key):
            seen.setdefault(key, None)
    return list(seen)


def _requested(deployment: dict[str, Any]) -> bool:
    return any(c.get("command") == GATING_COMMAND for c in deployment.get("commands") or [])


def gating_after_update(
    previous: dict[str, Any] | None,
    deployment: dict[str, Any],
    policy: GatingPolicy,
    recorded_at: datetime | int,
) -> dict[str, Any] | None:
    """The gating of ``deployment`` after it replaced a state whose gating was ``previous``."""
    if previous is not None and previous["status"] in ("allowed", "prevented"):
        return previous
    if previous is None and not _requested(deployment):
        return None
    details = [
        {"type": "issue", "issueKey": key, "issueLink": policy.issue_link(key)}
        for key in _issue_keys(deployment)
    ]
    if previous is not None:  # still awaiting: the newest data names the issues
        return {**previous, "details": details}
    needs_approval = deployment["environment"]["type"] in policy.approval_required
    return {
        "status": "awaiting" if needs_approval else "allowed",
        "updatedTimestamp": iso(recorded_at),
        "details": details,
        "decidedBy": None,
        "reason": None if needs_approval else "no approval required for this environment type",
    }


def decide(
    gating: dict[str, Any], decision: str, approver: str, reason: str | None, at: datetime | int
) -> dict[str, Any] | None:
    """The gating after a decision, or ``None`` when the decision changes nothing."""
    if gating["status"] != "awaiting" or decision not in ("allowed", "prevented"):
        return None
    return {
        **gating,
        "status": decision,
        "updatedTimestamp": iso(at),
        "decidedBy": approver,
        "reason": reason,
    }
