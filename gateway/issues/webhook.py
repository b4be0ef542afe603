"""Jira's issue webhooks, one URL per tenant: ``POST /rest/deploystream/1/jira-webhook/{tenant}``.

Register it in Jira (System → WebHooks, events *issue created / updated / deleted*) with the
tenant's ``webhookSecret`` from the clients file as the webhook's secret. Jira then signs each
delivery as its "secure admin webhooks" do: ``X-Hub-Signature: sha256=<hex>``, the HMAC-SHA256
of the raw body keyed with the secret (WebSub's ``method=signature``). A delivery without that
signature, with a wrong one, or for a tenant without a secret is a 401, the same answer each
time. Other events are answered 202 and change nothing, so a webhook may subscribe to more.
Until this gateway has read the registry once, deliveries get 503: deciding whether an event is
older than the registry's state needs the whole registry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from gateway.errors import BadRequest, Unauthorized
from gateway.handlers import json_response, read_body
from gateway.issues.changes import Change, Outcome, deletion, recording
from gateway.issues.check import require_loaded
from gateway.issues.jira import (
    ISSUE_CREATED,
    ISSUE_DELETED,
    ISSUE_UPDATED,
    JiraPayloadError,
    WebhookEvent,
    decode_webhook_event,
)
from gateway.issues.records import IssueCodecs
from gateway.issues.replica import IssueReplica
from gateway.keys import AUTH, ISSUES, PRODUCER, SCHEMAS, SETTINGS

__all__ = ["SIGNATURE_HEADER", "receive_jira_webhook", "signature_of"]

SIGNATURE_HEADER = "X-Hub-Signature"
_METHOD = "sha256="
# Compared against when the tenant has no secret, so that every refusal costs the same.
_NO_SECRET = secrets.token_bytes(32)


def signature_of(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Jira sends with ``body`` for a webhook with ``secret``."""
    return _METHOD + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verify(header: str | None, secret: str | None, body: bytes) -> None:
    key = secret.encode() if secret else _NO_SECRET
    expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    method, _, digest = (header or "").strip().partition("=")
    matched = hmac.compare_digest(expected, digest.lower().encode("utf-8", "replace"))
    if secret is None or method.lower() != "sha256" or not matched:
        msg = f"Unauthorized: the {SIGNATURE_HEADER} signature is missing or wrong."
        raise Unauthorized(msg)


def _changes(event: WebhookEvent, replica: IssueReplica, tenant: str) -> tuple[list[Change], str]:
    issues = replica.index.tenant(tenant)
    issue = event.issue
    if event.webhookEvent not in (ISSUE_CREATED, ISSUE_UPDATED, ISSUE_DELETED):
        return [], "ignored"
    if issue is None:
        msg = f"A {event.webhookEvent} event needs its issue."
        raise BadRequest(msg)
    outcome: Outcome
    if event.webhookEvent == ISSUE_DELETED:
        issue_id = None if issue.id is None else str(issue.id)
        changes, outcome = deletion(issues, issue.key, issue_id)
    else:
        changes, outcome = recording(issues, issue.info(event.when), event.previous_keys())
    return changes, outcome


async def receive_jira_webhook(request: web.Request) -> web.Response:
    """``POST .../jira-webhook/{tenant}``: record what an issue event says, 202 once in
    Kafka (and in this gateway's replica)."""
    app = request.app
    settings = app[SETTINGS]
    tenant = request.match_info["tenant"]
    body = await read_body(request, settings.max_body_bytes)
    client = app[AUTH].registry.get(tenant)
    secret = client.webhook_secret if client is not None else None
    _verify(request.headers.get(SIGNATURE_HEADER), secret, body)
    try:
        event = decode_webhook_event(body)
    except JiraPayloadError as exc:
        raise BadRequest(str(exc)) from exc
    replica = app[ISSUES]
    require_loaded(replica, settings.retry_after_s)
    changes, outcome = _changes(event, replica, tenant)
    codecs = IssueCodecs(app[SCHEMAS].issue_codec())
    records = [
        codecs.record(tenant, c.issue, "webhook") if c.issue else codecs.tombstone(tenant, c.key)
        for c in changes
    ]
    await app[PRODUCER].send(settings.issues_topic, records)
    for record in records:
        assert record.key is not None
        replica.apply(record.key, record.value)
    return json_response(
        {
            "event": event.webhookEvent,
            "outcome": outcome,
            "recorded": [c.key for c in changes if c.issue is not None],
            "deleted": [c.key for c in changes if c.issue is None],
        },
        status=202,
    )
