"""Jira's issue JSON, as its webhooks and its search API send it, read leniently: only the
fields the registry keeps are typed, everything else (custom fields, avatars…) is ignored."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from msgspec import Struct

from gateway.formats import is_issue_key
from gateway.issues.records import IssueInfo

__all__ = [
    "ISSUE_CREATED",
    "ISSUE_DELETED",
    "ISSUE_UPDATED",
    "JiraIssue",
    "JiraPayloadError",
    "SearchResults",
    "WebhookEvent",
    "decode_search_results",
    "decode_webhook_event",
]

ISSUE_CREATED = "jira:issue_created"
ISSUE_UPDATED = "jira:issue_updated"
ISSUE_DELETED = "jira:issue_deleted"


class Named(Struct):
    """``{"name": ...}`` (a status)."""

    name: str | None = None


class Keyed(Struct):
    """``{"key": ...}`` (a project)."""

    key: str | None = None


class IssueFields(Struct):
    """The fields of an issue the registry keeps."""

    summary: str | None = None
    status: Named | None = None
    project: Keyed | None = None
    updated: str | None = None


class JiraIssue(Struct):
    """An issue as ``GET /rest/api/3/search`` and the issue webhooks render it."""

    key: str
    id: str | int | None = None
    fields: IssueFields | None = None

    def info(self, updated: datetime | None = None) -> IssueInfo:
        """What the registry keeps of it; ``updated`` stands in for a missing or unreadable
        ``fields.updated``."""
        fields = self.fields or IssueFields()
        return IssueInfo(
            key=self.key,
            id=None if self.id is None else str(self.id),
            summary=fields.summary,
            status=fields.status.name if fields.status else None,
            project=fields.project.key if fields.project else None,
            updated=_jira_time(fields.updated) or updated,
        )


class ChangelogItem(Struct):
    """One changed field; a move changes ``Key`` (and ``project``)."""

    field: str | None = None
    fromString: str | None = None
    toString: str | None = None


class Changelog(Struct):
    """What an ``issue_updated`` event changed."""

    items: list[ChangelogItem] | None = None


class WebhookEvent(Struct):
    """A delivery of a Jira webhook (issue events; others are ignored)."""

    webhookEvent: str
    timestamp: int | None = None
    issue: JiraIssue | None = None
    changelog: Changelog | None = None

    @property
    def when(self) -> datetime | None:
        """When the event happened, from its ``timestamp`` (epoch milliseconds)."""
        if self.timestamp is None or not 0 <= self.timestamp < 2**53:
            return None
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)

    def previous_keys(self) -> list[str]:
        """Keys the issue had before this event (an issue moved to another project)."""
        items = self.changelog.items if self.changelog and self.changelog.items else []
        return [
            item.fromString
            for item in items
            if (item.field or "").lower() == "key"
            and item.fromString
            and is_issue_key(item.fromString)
            and (self.issue is None or item.fromString != self.issue.key)
        ]


class SearchResults(Struct):
    """A page of ``GET /rest/api/3/search`` (or ``/search/jql``): ``{"issues": [...], ...}``."""

    issues: list[JiraIssue]


class JiraPayloadError(ValueError):
    """Not the JSON Jira sends."""


_WEBHOOK = msgspec.json.Decoder(WebhookEvent)
_SEARCH = msgspec.json.Decoder(SearchResults)


def decode_webhook_event(body: bytes) -> WebhookEvent:
    """A webhook delivery; JiraPayloadError when it is not one, or its issue key is not a key."""
    try:
        event = _WEBHOOK.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        msg = f"not a Jira webhook event: {exc}"
        raise JiraPayloadError(msg) from exc
    if event.issue is not None and not is_issue_key(event.issue.key):
        msg = f"not a Jira webhook event: issue.key {event.issue.key!r} is not an issue key"
        raise JiraPayloadError(msg)
    return event


def decode_search_results(body: bytes) -> SearchResults:
    """A page of search results; JiraPayloadError when it is not one."""
    try:
        results = _SEARCH.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        msg = f"not Jira search results: {exc}"
        raise JiraPayloadError(msg) from exc
    wrong = [issue.key for issue in results.issues if not is_issue_key(issue.key)]
    if wrong:
        msg = f"not Jira search results: {wrong[0]!r} is not an issue key"
        raise JiraPayloadError(msg)
    return results


def _jira_time(text: str | None) -> datetime | None:
    """Jira's ``2024-05-01T10:15:30.000+0000``; None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
