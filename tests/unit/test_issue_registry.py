"""The issue registry without Kafka: records, the in-memory index, what webhook events and
imports change, Jira's JSON, the webhook signature, and the check of a submission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gateway.contract import IssueIdOrKeysAssociation, ServiceIdOrKeysAssociation
from gateway.errors import ServiceUnavailable, Unauthorized
from gateway.issues.changes import Change, deletion, recording
from gateway.issues.check import NO_VALID_ISSUES, check_issues, check_submission
from gateway.issues.index import IssueIndex, TenantIssues
from gateway.issues.jira import JiraPayloadError, decode_search_results, decode_webhook_event
from gateway.issues.records import IssueCodecs, IssueInfo
from gateway.issues.replica import IssueReplica
from gateway.issues.webhook import _verify, signature_of
from gateway.settings import GatewaySettings
from gateway.validation import DeploymentKey, ItemRejected, parse_submission
from schemas import AvroCodec
from tests.unit.test_validation import deployment

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


def issue(key: str, issue_id: str | None = None, **fields: Any) -> IssueInfo:
    return IssueInfo(key=key, id=issue_id, **{"summary": f"about {key}", **fields})


def index_with(tenant: str, *issues: IssueInfo) -> IssueIndex:
    index = IssueIndex()
    for known in issues:
        index.apply(tenant, known.key, known)
    return index


# --------------------------------------------------------------------------------- records


def test_a_record_round_trips_through_its_avro_encoding() -> None:
    codecs = IssueCodecs(AvroCodec("KnownIssue"))
    known = IssueInfo("ABC-1", "10001", "Fix it", "In Progress", "ABC", T0)

    record = codecs.record("alpha", known, "webhook")

    assert record.key == codecs.encode_key("alpha", "ABC-1")
    assert codecs.decode(record.key, record.value) == ("alpha", "ABC-1", known)


def test_a_tombstone_decodes_as_no_issue() -> None:
    codecs = IssueCodecs(AvroCodec("KnownIssue"))
    tombstone = codecs.tombstone("alpha", "ABC-1")

    assert tombstone.value is None
    assert codecs.decode(tombstone.key, tombstone.value) == ("alpha", "ABC-1", None)


def test_keys_of_different_tenants_differ() -> None:
    codecs = IssueCodecs(AvroCodec("KnownIssue"))

    assert codecs.encode_key("alpha", "ABC-1") != codecs.encode_key("beta", "ABC-1")


# ----------------------------------------------------------------------------------- index


def test_the_index_knows_what_was_recorded_per_tenant_only() -> None:
    index = index_with("alpha", issue("ABC-1", "1"))

    assert index.known("alpha", "ABC-1") == issue("ABC-1", "1")
    assert index.known("beta", "ABC-1") is None
    assert index.known("alpha", "ABC-2") is None
    assert index.tenant("alpha").knows("1")
    assert not index.tenant("beta").knows("1")
    assert len(index) == 1


def test_a_tombstone_forgets_the_key_and_its_id() -> None:
    index = index_with("alpha", issue("ABC-1", "1"))

    index.apply("alpha", "ABC-1", None)

    assert index.known("alpha", "ABC-1") is None
    assert not index.tenant("alpha").knows("1")
    assert len(index) == 0


def test_after_a_move_the_id_points_to_the_new_key_whatever_the_order() -> None:
    # new key recorded first, old key's tombstone after: the id must survive
    index = index_with("alpha", issue("OLD-1", "7"), issue("NEW-1", "7"))
    index.apply("alpha", "OLD-1", None)

    assert index.tenant("alpha").key_of_id == {"7": "NEW-1"}
    assert index.tenant("alpha").knows("7")


def test_a_tombstone_of_an_unknown_tenant_creates_nothing() -> None:
    index = IssueIndex()

    index.apply("ghost", "ABC-1", None)

    assert index.tenant("ghost") == TenantIssues()


# --------------------------------------------------------------------------------- changes


def test_a_new_issue_is_recorded_and_an_equal_one_is_not_written_again() -> None:
    issues = index_with("alpha", issue("ABC-1", "1", updated=T0)).tenant("alpha")

    assert recording(issues, issue("ABC-2", "2")) == (
        [Change("ABC-2", issue("ABC-2", "2"))],
        "recorded",
    )
    assert recording(issues, issue("ABC-1", "1", updated=T0)) == ([], "unchanged")


def test_a_changed_issue_is_recorded_unless_it_is_older() -> None:
    issues = index_with("alpha", issue("ABC-1", "1", status="To Do", updated=T1)).tenant("alpha")
    newer = issue("ABC-1", "1", status="Done", updated=T1)
    older = issue("ABC-1", "1", status="Done", updated=T0)

    assert recording(issues, newer) == ([Change("ABC-1", newer)], "recorded")
    assert recording(issues, older) == ([], "stale")


def test_a_moved_issue_leaves_a_tombstone_under_its_old_key() -> None:
    issues = index_with("alpha", issue("OLD-1", "5"), issue("GONE-9", "9")).tenant("alpha")
    moved = issue("NEW-1", "5")

    # by its id…
    assert recording(issues, moved) == ([Change("OLD-1", None), Change("NEW-1", moved)], "recorded")
    # …and by the changelog of the event (only keys the registry has)
    without_id = issue("NEW-2")
    assert recording(issues, without_id, ["GONE-9", "NEVER-1"]) == (
        [Change("GONE-9", None), Change("NEW-2", without_id)],
        "recorded",
    )


def test_a_deletion_removes_the_key_and_where_its_id_moved() -> None:
    issues = index_with("alpha", issue("ABC-1", "1"), issue("XYZ-3", "3")).tenant("alpha")

    assert deletion(issues, "ABC-1", "1") == ([Change("ABC-1", None)], "deleted")
    assert deletion(issues, "OLD-3", "3") == ([Change("XYZ-3", None)], "deleted")
    assert deletion(issues, "NEVER-1", None) == ([], "unchanged")


# ------------------------------------------------------------------------------ Jira's JSON


def test_a_webhook_event_gives_the_issue_and_the_keys_it_had_before() -> None:
    event = decode_webhook_event(
        orjson.dumps(
            {
                "timestamp": 1767261600000,
                "webhookEvent": "jira:issue_updated",
                "issue": {
                    "id": "10001",
                    "key": "NEW-3",
                    "fields": {
                        "summary": "Moved",
                        "status": {"name": "In Progress", "id": "3"},
                        "project": {"key": "NEW", "name": "New"},
                        "customfield_10010": [1, 2],
                    },
                },
                "changelog": {
                    "items": [
                        {"field": "Key", "fromString": "OLD-7", "toString": "NEW-3"},
                        {"field": "status", "fromString": "To Do", "toString": "In Progress"},
                    ]
                },
            }
        )
    )

    assert event.issue is not None
    assert event.issue.info(event.when) == IssueInfo(
        "NEW-3", "10001", "Moved", "In Progress", "NEW", datetime(2026, 1, 1, 10, tzinfo=UTC)
    )
    assert event.previous_keys() == ["OLD-7"]


def test_search_results_give_every_issue_with_jiras_updated_time() -> None:
    page = decode_search_results(
        b'{"startAt": 0, "total": 2, "issues": ['
        b'{"id": "1", "key": "A-1", "fields": {"updated": "2026-01-01T10:00:00.000+0000"}},'
        b'{"id": 2, "key": "A-2"}]}'
    )

    assert [i.info() for i in page.issues] == [
        IssueInfo("A-1", "1", updated=T0),
        IssueInfo("A-2", "2"),
    ]


@pytest.mark.parametrize(
    "body",
    [b"[]", b"{}", b'{"issues": [{"id": "1"}]}', b'{"issues": [{"key": "A-1\\n"}]}', b"nope"],
    ids=["array", "no issues", "no key", "key with newline", "not json"],
)
def test_what_is_not_search_results_is_refused(body: bytes) -> None:
    with pytest.raises(JiraPayloadError):
        decode_search_results(body)


# ------------------------------------------------------------------------------- signature

# GitHub's documented example of the same WebSub scheme (X-Hub-Signature-256).
SECRET = "It's a Secret to Everybody"
PAYLOAD = b"Hello, World!"
EXPECTED = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_signature_is_websubs_sha256_hmac_of_the_raw_body() -> None:
    assert signature_of(SECRET, PAYLOAD) == EXPECTED


@pytest.mark.parametrize("header", [EXPECTED, EXPECTED.upper(), f"  {EXPECTED} "])
def test_a_right_signature_passes(header: str) -> None:
    _verify(header, SECRET, PAYLOAD)


@pytest.mark.parametrize(
    ("header", "secret", "payload"),
    [
        (None, SECRET, PAYLOAD),
        ("", SECRET, PAYLOAD),
        (EXPECTED, SECRET, PAYLOAD + b" "),
        (EXPECTED, SECRET + "x", PAYLOAD),
        (EXPECTED, None, PAYLOAD),
        (EXPECTED.replace("sha256=", "sha1="), SECRET, PAYLOAD),
        (EXPECTED.replace("sha256=", ""), SECRET, PAYLOAD),
        (EXPECTED[:-2], SECRET, PAYLOAD),
        ("sha256=\u00e9" + EXPECTED[8:], SECRET, PAYLOAD),
    ],
    ids=[
        "missing",
        "empty",
        "other body",
        "other secret",
        "no secret",
        "sha1",
        "no method",
        "short",
        "non-ascii",
    ],
)
def test_a_wrong_or_missing_signature_is_401(
    header: str | None, secret: str | None, payload: bytes
) -> None:
    with pytest.raises(Unauthorized):
        _verify(header, secret, payload)


# ----------------------------------------------------------------------------------- check


def submission(*deployments: dict[str, Any]):  # type: ignore[no-untyped-def]
    return parse_submission(orjson.dumps({"deployments": list(deployments)}), max_deployments=100)


KNOWN = index_with("t", issue("ABC-1", "10001"), issue("ABC-2", "10002")).tenant("t")


def test_a_submission_whose_issues_are_all_known_passes_unchanged() -> None:
    command = submission(
        deployment(issueKeys=["ABC-1"]),
        deployment(
            deploymentSequenceNumber=2,
            associations=[{"associationType": "issueIdOrKeys", "values": ["ABC-2", "10001"]}],
        ),
    )

    assert check_issues(command, KNOWN) is command


def test_unknown_keys_are_listed_and_taken_out_of_the_stored_deployment() -> None:
    command = submission(
        deployment(
            issueKeys=["ABC-1", "TYPO-1", "ABC-2"],
            associations=[
                {"associationType": "issueKeys", "values": ["NOPE-1"]},
                {"associationType": "issueIdOrKeys", "values": ["10002", "99", "NOPE-1"]},
                {"associationType": "serviceIdOrKeys", "values": ["svc-unchecked"]},
            ],
        ),
        deployment(deploymentSequenceNumber=2, issueKeys=["TYPO-1", "ABC-1"]),
    )

    checked = check_issues(command, KNOWN)

    assert checked.unknown_issue_keys == ("TYPO-1",)
    assert checked.unknown_associations == (
        {"associationType": "issueKeys", "values": ["NOPE-1"]},
        {"associationType": "issueIdOrKeys", "values": ["99", "NOPE-1"]},
    )
    first, second = checked.deployments
    assert first.issueKeys == ["ABC-1", "ABC-2"]
    assert first.associations == [
        IssueIdOrKeysAssociation(values=["10002"]),
        ServiceIdOrKeysAssociation(values=["svc-unchecked"]),
    ]
    assert second.issueKeys == ["ABC-1"]
    assert checked.rejected == ()


def test_a_deployment_left_without_any_association_is_rejected_and_its_keys_listed() -> None:
    command = submission(
        deployment(issueKeys=["NOPE-1"]),
        deployment(
            deploymentSequenceNumber=2,
            issueKeys=None,
            associations=[{"associationType": "issueKeys", "values": ["NOPE-2"]}],
        ),
        deployment(deploymentSequenceNumber=3, issueKeys=["ABC-1"]),
        {"not": "valid"},
    )

    checked = check_issues(command, KNOWN)

    assert [d.deploymentSequenceNumber for d in checked.deployments] == [3]
    assert checked.rejected[1:] == (
        ItemRejected(DeploymentKey("pipe-1", "env-1", 1), (NO_VALID_ISSUES,)),
        ItemRejected(DeploymentKey("pipe-1", "env-1", 2), (NO_VALID_ISSUES,)),
    )
    assert checked.rejected[0] == command.rejected[0]  # the invalid one, as validated
    assert checked.unknown_issue_keys == ("NOPE-1",)
    assert checked.unknown_associations == ({"associationType": "issueKeys", "values": ["NOPE-2"]},)


def test_a_deployment_kept_by_a_service_or_commit_association_is_accepted() -> None:
    command = submission(
        deployment(
            issueKeys=["NOPE-1"],
            associations=[{"associationType": "commit", "values": [{"repositoryId": "r"}]}],
        )
    )

    checked = check_issues(command, KNOWN)

    (kept,) = checked.deployments
    assert kept.issueKeys is None
    assert kept.associations is not None and len(kept.associations) == 1
    assert checked.unknown_issue_keys == ("NOPE-1",)


def test_an_empty_registry_knows_no_key() -> None:
    checked = check_issues(submission(deployment()), TenantIssues())

    assert checked.deployments == ()
    assert checked.unknown_issue_keys == ("ABC-1",)


def test_a_registry_not_read_yet_answers_503_rather_than_unknown() -> None:
    replica = IssueReplica(GatewaySettings())  # never started: it has read nothing

    with pytest.raises(ServiceUnavailable) as caught:
        check_submission(replica, "t", submission(deployment()), 7)

    assert caught.value.headers == {"Retry-After": "7"}
    assert caught.value.messages == ("The issue registry is still loading; retry later.",)
