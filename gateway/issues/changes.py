"""What a fact about an issue changes in the registry: the records a webhook event or an
imported issue becomes, decided against the registry as this gateway knows it.

- A record never replaces a newer one (Jira does not promise to deliver webhooks in order, and
  an import may be older than the webhooks that followed it).
- A record equal to the registry's is not written again: an import run twice writes nothing the
  second time.
- An issue that moved (a new key for the same issue id, or a ``Key`` change in the event's
  changelog) leaves a tombstone under each old key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gateway.issues.index import TenantIssues
from gateway.issues.records import IssueInfo

__all__ = ["Change", "Outcome", "deletion", "recording"]

Outcome = Literal["recorded", "deleted", "unchanged", "stale"]


@dataclass(frozen=True, slots=True)
class Change:
    """One record to write: ``issue`` is now known under ``key``, or (None) ``key`` is gone."""

    key: str
    issue: IssueInfo | None


def recording(
    issues: TenantIssues, issue: IssueInfo, previous_keys: Iterable[str] = ()
) -> tuple[list[Change], Outcome]:
    """The changes that record ``issue``, and what they amount to."""
    current = issues.by_key.get(issue.key)
    if current is not None and issue.is_older_than(current):
        return [], "stale"
    candidates = [*previous_keys, issues.key_of_id.get(issue.id) if issue.id else None]
    moved_from = [
        key
        for key in dict.fromkeys(candidates)
        if key is not None and key != issue.key and key in issues.by_key
    ]
    changes = [Change(key, None) for key in moved_from]
    if current != issue:
        changes.append(Change(issue.key, issue))
    return changes, "recorded" if changes else "unchanged"


def deletion(issues: TenantIssues, key: str, issue_id: str | None) -> tuple[list[Change], Outcome]:
    """The changes that remove the issue ``key`` (and the key its id has, if it moved there
    without the registry hearing of it)."""
    moved_to = issues.key_of_id.get(issue_id) if issue_id else None
    keys = [k for k in dict.fromkeys([key, moved_to]) if k is not None and k in issues.by_key]
    return [Change(k, None) for k in keys], "deleted" if keys else "unchanged"
