"""The issue registry in memory: lookups by tenant and issue key (or issue id), no I/O."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gateway.issues.records import IssueInfo

__all__ = ["IssueIndex", "TenantIssues"]


@dataclass(slots=True)
class TenantIssues:
    """The known issues of one tenant."""

    by_key: dict[str, IssueInfo] = field(default_factory=dict)
    #: Issue id → its current key (associations may name issues by id).
    key_of_id: dict[str, str] = field(default_factory=dict)

    def knows(self, value: str) -> bool:
        """Whether ``value`` is the key or the numeric id of a known issue."""
        return value in self.by_key or value in self.key_of_id


_NONE = TenantIssues()


class IssueIndex:
    """Every tenant's known issues, as the registry topic states them (its latest record per
    key; a tombstone removes the key).

    Writers (the replica's consumer, a webhook applying what it just wrote) take a lock;
    readers do not need one: each read is a single dictionary operation, which the GIL makes
    atomic, so a reader may see a record a moment after it was produced, never half of one.
    """

    def __init__(self) -> None:
        self._tenants: dict[str, TenantIssues] = {}
        self._writing = threading.Lock()

    def known(self, tenant: str, issue_key: str) -> IssueInfo | None:
        """The issue ``issue_key`` of ``tenant``'s site, or None when it is not known."""
        return self.tenant(tenant).by_key.get(issue_key)

    def tenant(self, tenant: str) -> TenantIssues:
        """The known issues of ``tenant`` (empty when it has none)."""
        return self._tenants.get(tenant, _NONE)

    def apply(self, tenant: str, issue_key: str, issue: IssueInfo | None) -> None:
        """Apply one record of the topic: ``issue`` is now known under ``issue_key``, or (None)
        the key is no longer an issue."""
        with self._writing:
            self._apply(tenant, issue_key, issue)

    def _apply(self, tenant: str, issue_key: str, issue: IssueInfo | None) -> None:
        issues = self._tenants.get(tenant)
        if issues is None:
            if issue is None:
                return
            issues = self._tenants.setdefault(tenant, TenantIssues())
        previous = issues.by_key.get(issue_key)
        if issue is None:
            issues.by_key.pop(issue_key, None)
        else:
            issues.by_key[issue_key] = issue
            if issue.id is not None:
                issues.key_of_id[issue.id] = issue_key
        stale_id = previous.id if previous is not None else None
        # The key's old id is forgotten only if it still points here: after a move it points
        # to the new key.
        if (
            stale_id is not None
            and (issue is None or issue.id != stale_id)
            and issues.key_of_id.get(stale_id) == issue_key
        ):
            issues.key_of_id.pop(stale_id, None)

    def __len__(self) -> int:
        return sum(len(issues.by_key) for issues in list(self._tenants.values()))
