"""The record limit, enforced at the edge: what a deployment becomes on the worker must fit.

The worker stores a deployment as an Avro ``StoredDeployment`` on the state topic: the key, the
deployment, properties, provider metadata and event id (all of which the ``DeploymentSubmitted``
event already holds, in no fewer bytes), plus a gating state whose details name every issue key
with a link ``<DEPLOYSTREAM_JIRA_BASE_URL>/browse/<key>``. So its size is bounded by the
event's size, plus a detail per issue key the deployment names, plus what a gating decision
adds (approver, reason) and the record's framing. A deployment whose bound is over
``DEPLOYSTREAM_MAX_RECORD_BYTES`` is rejected on its own, before anything is written: accepting
it would give the worker a record the broker refuses.
"""

from __future__ import annotations

from gateway.contract import (
    DeploymentData,
    IssueIdOrKeysAssociation,
    IssueKeysAssociation,
)

__all__ = ["GATING_BYTES", "RECORD_OVERHEAD_BYTES", "RecordLimit"]

#: A record's framing on the broker (batch header, record varints), the worker's headers
#: (``deploystream-source-offset`` and the like) and a schema registry's 5-byte prefix.
RECORD_OVERHEAD_BYTES = 512
#: A gating state without its details: status, timestamp, union indexes, the approver's
#: client id and a decision's reason (at most 255 characters, up to 4 bytes each in UTF-8).
GATING_BYTES = 4096
#: Per detail: the ``issue`` type string, three length prefixes (up to 5 bytes each).
_DETAIL_FRAMING = 1 + 5 + 3 * 5


class RecordLimit:
    """Bounds the stored form of deployments against the record limit."""

    def __init__(self, max_record_bytes: int, jira_base_url: str) -> None:
        self.max_record_bytes = max_record_bytes
        self._link_prefix = len(f"{jira_base_url.rstrip('/')}/browse/".encode())

    def stored_bound(self, deployment: DeploymentData, key: bytes, event: bytes) -> int:
        """An upper bound of the record the worker writes for ``deployment``, whose
        ``DeploymentSubmitted`` event has ``key`` and ``event`` as its bytes."""
        details = 0
        # Every value that could be an issue key counts, matched or not, duplicated or not:
        # the bound stays an upper bound whatever the worker's matching does.
        for issue_key in deployment.issueKeys or ():
            details += self._detail(issue_key)
        for association in deployment.associations or ():
            if isinstance(association, IssueKeysAssociation | IssueIdOrKeysAssociation):
                for value in association.values:
                    details += self._detail(value)
        return RECORD_OVERHEAD_BYTES + len(key) + len(event) + GATING_BYTES + details

    def _detail(self, issue_key: str) -> int:
        size = len(issue_key.encode())
        return _DETAIL_FRAMING + size + self._link_prefix + size

    def over(self, deployment: DeploymentData, key: bytes, event: bytes) -> str | None:
        """Why ``deployment`` cannot be accepted, or ``None`` when it fits."""
        bound = self.stored_bound(deployment, key, event)
        if bound <= self.max_record_bytes:
            return None
        return (
            f"the deployment would be stored as a record of up to {bound} bytes, over the "
            f"{self.max_record_bytes}-byte record limit (DEPLOYSTREAM_MAX_RECORD_BYTES); "
            "send fewer or shorter issue keys, associations or commands"
        )
