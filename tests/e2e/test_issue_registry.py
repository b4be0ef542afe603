"""The issue registry through the running stack: fed by `deploystream issues import` and by
signed Jira webhooks, checked on every submission of a registry tenant (gamma) exactly as Jira
answers, while other tenants (alpha) keep accepting any well-formed key."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from deploystream.cli import main
from gateway.issues.check import NO_VALID_ISSUES
from gateway.issues.webhook import signature_of
from tests.e2e.conftest import API, Stack, webhook_secret_of
from tests.e2e.test_deployments_api import deployment

NUMBERS = itertools.count(1)
WEBHOOK = "/rest/deploystream/1/jira-webhook"


def search_page(*issues: tuple[str, str, str]) -> dict[str, Any]:
    """A page of GET /rest/api/3/search with (id, key, status) issues."""
    return {
        "startAt": 0,
        "maxResults": 50,
        "total": len(issues),
        "issues": [
            {
                "id": issue_id,
                "key": key,
                "self": f"https://site.atlassian.net/rest/api/3/issue/{issue_id}",
                "fields": {
                    "summary": f"Summary of {key}",
                    "status": {"name": status, "statusCategory": {"key": "new"}},
                    "project": {"key": key.split("-")[0], "name": "A project"},
                    "updated": "2026-01-01T10:00:00.000+0000",
                },
            }
            for issue_id, key, status in issues
        ],
    }


def import_pages(stack: Stack, tmp_path: Path, tenant: str, *pages: dict[str, Any]) -> str:
    files = []
    for n, page in enumerate(pages):
        path = tmp_path / f"page-{n}.json"
        path.write_text(json.dumps(page))
        files.append(str(path))
    result = CliRunner().invoke(
        main,
        ["issues", "import", "--tenant", tenant, *files],
        env={
            "DEPLOYSTREAM_KAFKA_BOOTSTRAP": stack.config.bootstrap,
            "DEPLOYSTREAM_ISSUES_TOPIC": stack.config.issues_topic,
            "DEPLOYSTREAM_SCHEMA_REGISTRY_URL": stack.config.registry_url,
        },
    )
    assert result.exit_code == 0, result.output
    return result.output


def webhook_event(
    event: str, key: str, issue_id: str, *, timestamp: int | None = None, **extra: Any
) -> bytes:
    body = {
        "timestamp": timestamp or int(time.time() * 1000),
        "webhookEvent": event,
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Someone"},
        "issue": {
            "id": issue_id,
            "key": key,
            "fields": {
                "summary": f"Summary of {key}",
                "status": {"name": "In Progress"},
                "project": {"key": key.split("-", maxsplit=1)[0]},
                "customfield_10010": None,
            },
        },
        **extra,
    }
    return json.dumps(body).encode()


def deliver(stack: Stack, body: bytes, tenant: str = "gamma", **headers: str) -> httpx.Response:
    """POST a webhook delivery as Jira does, signed with the tenant's webhook secret."""
    signed = {"X-Hub-Signature": signature_of(webhook_secret_of(tenant), body)}
    with stack.client() as jira:
        return jira.post(
            f"{WEBHOOK}/{tenant}",
            content=body,
            headers={"Content-Type": "application/json", **signed, **headers},
        )


@pytest.fixture(scope="module")
def gamma(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client("gamma") as client:
        yield client


def submit(client: httpx.Client, *deployments: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/bulk", json={"deployments": list(deployments)})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def unknown_of(client: httpx.Client, *keys: str) -> list[str]:
    """The keys of ``keys`` a submission reports unknown (one deployment per call)."""
    sent = deployment(number=next(NUMBERS), issueKeys=list(keys))
    return list(submit(client, sent)["unknownIssueKeys"])


def test_readiness_reports_the_registry_replica_caught_up(stack: Stack) -> None:
    ready = stack.http.get("/readyz")
    assert ready.status_code == 200
    issues = ready.json()["issues"]
    assert issues["caughtUp"] is True
    assert isinstance(issues["lag"], int) and issues["lag"] >= 0
    assert isinstance(issues["known"], int)


def test_import_backfills_the_registry_and_is_idempotent(
    stack: Stack, gamma: httpx.Client, tmp_path: Path
) -> None:
    page_one = search_page(("20001", "IMP-1", "To Do"), ("20002", "IMP-2", "Done"))
    page_two = search_page(("20003", "IMP-3", "In Progress"))
    first = import_pages(stack, tmp_path, "gamma", page_one, page_two)
    assert "3 issues for tenant 'gamma': 3 recorded, 0 unchanged" in first
    again = import_pages(stack, tmp_path, "gamma", page_one, page_two)
    assert "3 issues for tenant 'gamma': 0 recorded, 3 unchanged" in again
    deadline = time.monotonic() + 15
    while unknown_of(gamma, "IMP-1", "IMP-3") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unknown_of(gamma, "IMP-1", "IMP-2", "IMP-3", "IMP-4") == ["IMP-4"]


def test_unknown_keys_are_reported_and_the_deployment_stored_against_known_ones(
    stack: Stack, gamma: httpx.Client, tmp_path: Path
) -> None:
    import_pages(stack, tmp_path, "gamma", search_page(("21001", "KEEP-1", "Done")))
    number = next(NUMBERS)
    sent = deployment(
        number=number,
        issueKeys=["KEEP-1", "TYPO-1"],
        associations=[
            {"associationType": "issueIdOrKeys", "values": ["21001", "KEEP-1", "TYPO-2", "999"]},
            {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
        ],
    )
    deadline = time.monotonic() + 15
    while unknown_of(gamma, "KEEP-1") and time.monotonic() < deadline:
        time.sleep(0.2)
    body = submit(gamma, sent)
    assert body["acceptedDeployments"] == [
        {"pipelineId": "web", "environmentId": "prod", "deploymentSequenceNumber": number}
    ]
    assert body["rejectedDeployments"] == []
    assert body["unknownIssueKeys"] == ["TYPO-1"]
    assert body["unknownAssociations"] == [
        {"associationType": "issueIdOrKeys", "values": ["TYPO-2", "999"]}
    ]
    with stack.client("gamma") as reader:
        stored = reader.get(stack.path("web", "prod", number))
        deadline = time.monotonic() + 30
        while stored.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.1)
            stored = reader.get(stack.path("web", "prod", number))
    assert stored.status_code == 200
    assert stored.json()["issueKeys"] == ["KEEP-1"]
    assert stored.json()["associations"] == [
        {"associationType": "issueIdOrKeys", "values": ["21001", "KEEP-1"]},
        {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
    ]


def test_a_deployment_with_only_unknown_keys_is_rejected_as_jira_does(
    stack: Stack, gamma: httpx.Client
) -> None:
    number = next(NUMBERS)
    body = submit(gamma, deployment(number=number, issueKeys=["NOPE-1", "NOPE-2"]))
    assert body["acceptedDeployments"] == []
    assert body["rejectedDeployments"] == [
        {
            "key": {
                "pipelineId": "web",
                "environmentId": "prod",
                "deploymentSequenceNumber": number,
            },
            "errors": [{"message": NO_VALID_ISSUES}],
        }
    ]
    assert body["unknownIssueKeys"] == ["NOPE-1", "NOPE-2"]
    stack.wait_caught_up()
    with stack.client("gamma") as reader:
        assert reader.get(stack.path("web", "prod", number)).status_code == 404


def test_a_tenant_without_a_registry_keeps_accepting_any_key(stack: Stack) -> None:
    body = submit(stack.http, deployment(number=next(NUMBERS), issueKeys=["NOPE-1"]))
    assert len(body["acceptedDeployments"]) == 1
    assert body["unknownIssueKeys"] == []
    assert body["unknownAssociations"] == []


def test_a_signed_webhook_makes_an_issue_known_at_once(gamma: httpx.Client, stack: Stack) -> None:
    assert unknown_of(gamma, "HOOK-1") == ["HOOK-1"]
    response = deliver(stack, webhook_event("jira:issue_created", "HOOK-1", "30001"))
    assert response.status_code == 202, response.text
    assert response.json()["recorded"] == ["HOOK-1"]
    assert unknown_of(gamma, "HOOK-1") == []


def test_a_moved_issue_is_known_under_its_new_key_only(gamma: httpx.Client, stack: Stack) -> None:
    assert deliver(stack, webhook_event("jira:issue_created", "OLD-7", "30002")).status_code == 202
    moved = webhook_event(
        "jira:issue_updated",
        "NEW-3",
        "30002",
        changelog={
            "id": "10100",
            "items": [
                {"field": "Key", "fieldtype": "jira", "fromString": "OLD-7", "toString": "NEW-3"},
                {"field": "project", "fieldtype": "jira", "fromString": "Old", "toString": "New"},
            ],
        },
    )
    response = deliver(stack, moved)
    assert response.status_code == 202, response.text
    assert response.json()["deleted"] == ["OLD-7"]
    assert response.json()["recorded"] == ["NEW-3"]
    assert unknown_of(gamma, "OLD-7", "NEW-3") == ["OLD-7"]


def test_a_deleted_issue_is_unknown_again(gamma: httpx.Client, stack: Stack) -> None:
    assert deliver(stack, webhook_event("jira:issue_created", "GONE-1", "30003")).status_code == 202
    assert unknown_of(gamma, "GONE-1") == []
    response = deliver(stack, webhook_event("jira:issue_deleted", "GONE-1", "30003"))
    assert response.status_code == 202
    assert response.json()["deleted"] == ["GONE-1"]
    assert unknown_of(gamma, "GONE-1") == ["GONE-1"]


def test_an_older_event_never_replaces_a_newer_one(gamma: httpx.Client, stack: Stack) -> None:
    now = int(time.time() * 1000)
    newer = webhook_event("jira:issue_updated", "LATE-1", "30004", timestamp=now)
    older = webhook_event("jira:issue_updated", "LATE-1", "30004", timestamp=now - 60_000)
    assert deliver(stack, newer).json()["outcome"] == "recorded"
    response = deliver(stack, older)
    assert response.status_code == 202
    assert response.json() == {
        "event": "jira:issue_updated",
        "outcome": "stale",
        "recorded": [],
        "deleted": [],
    }


@pytest.mark.parametrize(
    ("tenant", "signature"),
    [
        ("gamma", None),
        ("gamma", "sha256=" + "0" * 64),
        ("gamma", "sha1=" + "0" * 40),
        ("gamma", "garbage"),
        ("alpha", "own"),  # a tenant without a webhook secret
        ("nobody", "own"),  # a tenant that does not exist
    ],
    ids=["missing", "wrong", "other method", "malformed", "no secret", "unknown tenant"],
)
def test_an_unsigned_or_wrongly_signed_webhook_is_401_and_records_nothing(
    stack: Stack, gamma: httpx.Client, tenant: str, signature: str | None
) -> None:
    body = webhook_event("jira:issue_created", "FORGED-1", "30005")
    headers = {"Content-Type": "application/json"}
    if signature == "own":
        headers["X-Hub-Signature"] = signature_of(f"{tenant}-webhook-secret-0123456789", body)
    elif signature is not None:
        headers["X-Hub-Signature"] = signature
    with stack.client() as anyone:
        response = anyone.post(f"{WEBHOOK}/{tenant}", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Unauthorized: the X-Hub-Signature signature is missing or wrong."}
    ]
    assert unknown_of(gamma, "FORGED-1") == ["FORGED-1"]


def test_a_signature_over_another_body_is_refused(stack: Stack) -> None:
    body = webhook_event("jira:issue_created", "SWAP-1", "30006")
    signature = signature_of(webhook_secret_of("gamma"), body)
    tampered = body.replace(b"SWAP-1", b"SWAP-2")
    with stack.client() as anyone:
        response = anyone.post(
            f"{WEBHOOK}/gamma", content=tampered, headers={"X-Hub-Signature": signature}
        )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"webhookEvent": "jira:issue_created"}',
        b'{"webhookEvent": "jira:issue_created", "issue": {"id": "1", "key": "not a key"}}',
        b'{"webhookEvent": "jira:issue_created", "issue": {"id": "1", "key": "A-1\\n"}}',
    ],
    ids=["not json", "no issue", "bad key", "key with newline"],
)
def test_a_signed_delivery_that_is_not_an_issue_event_is_400(stack: Stack, body: bytes) -> None:
    response = deliver(stack, body)
    assert response.status_code == 400
    assert isinstance(response.json()[0]["message"], str)


def test_other_events_are_accepted_and_change_nothing(stack: Stack) -> None:
    body = json.dumps({"timestamp": 1, "webhookEvent": "comment_created", "comment": {}}).encode()
    response = deliver(stack, body)
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"


def test_one_tenants_issues_are_not_known_to_another(
    stack: Stack, gamma: httpx.Client, tmp_path: Path
) -> None:
    known_before = stack.http.get("/readyz").json()["issues"]["known"]
    output = import_pages(stack, tmp_path, "someone-else", search_page(("40001", "ELSE-1", "Done")))
    assert "1 recorded" in output
    deadline = time.monotonic() + 15
    while stack.http.get("/readyz").json()["issues"]["known"] == known_before:
        assert time.monotonic() < deadline, "the gateway's replica never read the import"
        time.sleep(0.1)
    assert unknown_of(gamma, "ELSE-1") == ["ELSE-1"]
