"""Records of the issue registry topic, and what a lookup answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.events import OutgoingEvent, Tombstone
from schemas import AvroCodec
from schemas.registry import RecordCodec

__all__ = ["IssueCodecs", "IssueInfo", "Source"]

Source = Literal["webhook", "import"]


@dataclass(frozen=True, slots=True)
class IssueInfo:
    """An issue known on a tenant's Jira site: what the query API shows next to a key."""

    key: str
    id: str | None = None
    summary: str | None = None
    status: str | None = None
    project: str | None = None
    #: When Jira last changed the issue, as far as the source said.
    updated: datetime | None = None

    def is_older_than(self, other: IssueInfo) -> bool:
        """Whether this state of the issue predates ``other`` (both timestamps known)."""
        if self.updated is None or other.updated is None:
            return False
        return self.updated < other.updated


class IssueCodecs:
    """Avro codecs of the topic's keys (schemaless, like every key) and values (``value``:
    KnownIssue in the Confluent wire format, through the schema registry)."""

    def __init__(self, value: RecordCodec) -> None:
        self.key = AvroCodec("IssueKey")
        self.value = value

    def encode_key(self, tenant: str, issue_key: str) -> bytes:
        """Key bytes of one issue key of one tenant."""
        return self.key.encode({"tenant": tenant, "issueKey": issue_key})

    def record(self, tenant: str, issue: IssueInfo, source: Source) -> OutgoingEvent:
        """The record stating that ``issue`` is known."""
        key = {"tenant": tenant, "issueKey": issue.key}
        value = {
            "key": key,
            "issueId": issue.id,
            "summary": issue.summary,
            "status": issue.status,
            "project": issue.project,
            "updated": issue.updated,
            "source": source,
            "recordedAt": datetime.now(UTC),
        }
        return OutgoingEvent(self.key.encode(key), self.value.encode(value))

    def tombstone(self, tenant: str, issue_key: str) -> Tombstone:
        """The record stating that ``issue_key`` is no longer an issue."""
        return Tombstone(self.encode_key(tenant, issue_key))

    def decode(self, key: bytes, value: bytes | None) -> tuple[str, str, IssueInfo | None]:
        """(tenant, issue key, the issue or None for a tombstone) of one record.

        Raises ``schemas.AvroDecodeError`` for bytes that are not such a record.
        """
        decoded = self.key.decode(key)
        tenant, issue_key = decoded["tenant"], decoded["issueKey"]
        if value is None:
            return tenant, issue_key, None
        record: dict[str, Any] = self.value.decode(value)
        info = IssueInfo(
            key=issue_key,
            id=record["issueId"],
            summary=record["summary"],
            status=record["status"],
            project=record["project"],
            updated=record["updated"],
        )
        return tenant, issue_key, info
