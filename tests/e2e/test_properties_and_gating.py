"""Delete by properties and deployment gating through the real gateway and worker."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import API, Stack
from tests.e2e.test_deployments_api import deployment

BY_PROPERTIES = f"{API}/bulkByProperties"


def on(pipeline: str, number: int, usn: int = 1, **changes: Any) -> dict[str, Any]:
    return deployment(
        number=number,
        usn=usn,
        pipeline={"id": pipeline, "displayName": "P", "url": "https://p"},
        **changes,
    )


def exists(stack: Stack, pipeline: str, number: int) -> bool:
    return stack.http.get(stack.path(pipeline, "prod", number)).status_code == 200


@pytest.mark.parametrize(
    "query", [{}, {"_updateSequenceNumber": "5"}, {"_other": "x"}, {"jwt": "a1"}]
)
def test_delete_by_properties_needs_a_property(stack: Stack, query: dict[str, str]) -> None:
    response = stack.http.delete(BY_PROPERTIES, params=query)
    assert response.status_code == 400
    assert isinstance(response.json()[0]["message"], str)


def test_a_jwt_query_parameter_is_never_a_property(stack: Stack) -> None:
    # Connect clients may send their token as ?jwt=...; the token's qsh leaves it out, so
    # reading it as a property would let anyone holding the token widen the delete.
    pipeline = "props-jwt"
    assert stack.submit(on(pipeline, 1), properties={"jwt": "t1", "team": "x"}).status_code == 202
    assert stack.submit(on(pipeline, 2), properties={"jwt": "t2", "team": "x"}).status_code == 202
    stack.wait_caught_up()
    response = stack.http.delete(BY_PROPERTIES, params={"team": "x", "jwt": "t1"})
    assert response.status_code == 202
    stack.wait_caught_up()
    # "team" alone decided: both went, not only the one whose property "jwt" was t1.
    assert [n for n in (1, 2) if exists(stack, pipeline, n)] == []


def test_delete_by_properties_removes_exactly_the_matching_deployments(stack: Stack) -> None:
    pipeline = "props-and"
    assert (
        stack.submit(
            *[on(pipeline, n) for n in range(1, 21)], properties={"account": "a1", "team": "web"}
        ).status_code
        == 202
    )
    assert (
        stack.submit(
            *[on(pipeline, n) for n in range(21, 31)], properties={"account": "a1", "team": "api"}
        ).status_code
        == 202
    )
    assert (
        stack.submit(
            *[on(pipeline, n) for n in range(31, 41)], properties={"account": "a2", "team": "web"}
        ).status_code
        == 202
    )
    response = stack.http.delete(BY_PROPERTIES, params={"account": "a1", "team": "web"})
    assert response.status_code == 202
    stack.wait_caught_up()
    assert [n for n in range(1, 41) if exists(stack, pipeline, n)] == list(range(21, 41))


def test_delete_by_properties_applies_after_submissions_sent_before_it(stack: Stack) -> None:
    pipeline = "props-order"
    # Submitted and deleted back to back: the delete must still see (and remove) all of them.
    assert (
        stack.submit(
            *[on(pipeline, n) for n in range(1, 51)], properties={"batch": "b1"}
        ).status_code
        == 202
    )
    assert stack.http.delete(BY_PROPERTIES, params={"batch": "b1"}).status_code == 202
    assert stack.submit(on(pipeline, 51), properties={"batch": "b1"}).status_code == 202
    stack.wait_caught_up()
    assert [n for n in range(1, 52) if exists(stack, pipeline, n)] == [51]


def test_delete_by_properties_honours_the_update_sequence_number(stack: Stack) -> None:
    pipeline = "props-usn"
    assert (
        stack.submit(
            on(pipeline, 1, usn=5), on(pipeline, 2, usn=10), properties={"k": "v"}
        ).status_code
        == 202
    )
    assert (
        stack.http.delete(
            BY_PROPERTIES, params={"k": "v", "_updateSequenceNumber": "7"}
        ).status_code
        == 202
    )
    stack.wait_caught_up()
    assert not exists(stack, pipeline, 1)
    assert exists(stack, pipeline, 2)


def test_delete_by_properties_never_touches_another_tenant(stack: Stack) -> None:
    pipeline = "props-tenant"
    assert stack.submit(on(pipeline, 1), properties={"shared": "yes"}).status_code == 202
    with stack.client("beta") as beta:
        body = {"deployments": [on(pipeline, 1)], "properties": {"shared": "yes"}}
        assert beta.post(f"{API}/bulk", json=body).status_code == 202
        assert beta.delete(BY_PROPERTIES, params={"shared": "yes"}).status_code == 202
        stack.wait_caught_up()
        assert beta.get(stack.path(pipeline, "prod", 1)).status_code == 404
    assert exists(stack, pipeline, 1)


def test_updated_properties_move_a_deployment_out_of_a_match(stack: Stack) -> None:
    pipeline = "props-moved"
    assert stack.submit(on(pipeline, 1, usn=1), properties={"stage": "old"}).status_code == 202
    assert stack.submit(on(pipeline, 1, usn=2), properties={"stage": "new"}).status_code == 202
    assert stack.http.delete(BY_PROPERTIES, params={"stage": "old"}).status_code == 202
    stack.wait_caught_up()
    assert exists(stack, pipeline, 1)


GATED = [{"command": "initiate_deployment_gating"}]


def gating(stack: Stack, pipeline: str, number: int, client: str | None = None) -> Any:
    path = stack.path(pipeline, "prod", number) + "/gating-status"
    if client is None:
        return stack.http.get(path)
    with stack.client(client) as other:
        return other.get(path)


def decide(
    stack: Stack, pipeline: str, number: int, decision: str, client: str = "approver", **extra: Any
) -> Any:
    path = stack.path(pipeline, "prod", number) + "/gating-decision"
    with stack.client(client) as approver:
        return approver.post(path, json={"decision": decision, **extra})


def test_gated_production_deployment_awaits_then_an_approver_allows_it(stack: Stack) -> None:
    pipeline = "gate-prod"
    sent = on(pipeline, 1, commands=GATED, issueKeys=["OPS-7"])
    assert stack.submit(sent).status_code == 202
    status = stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status", lambda r: r.status_code == 200
    )
    body = status.json()
    assert body["gatingStatus"] == "awaiting"
    assert body["details"] == [
        {"type": "issue", "issueKey": "OPS-7", "issueLink": "https://jira.test/browse/OPS-7"}
    ]
    assert body["pipelineId"] == pipeline and body["deploymentSequenceNumber"] == 1
    assert "updatedTimestamp" in body
    assert decide(stack, pipeline, 1, "allowed", tenant="alpha").status_code == 202
    decided = stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status",
        lambda r: r.json()["gatingStatus"] != "awaiting",
    )
    assert decided.json()["gatingStatus"] == "allowed"
    # A later update of the same deployment, repeating the command, keeps the decision.
    assert (
        stack.submit(
            on(pipeline, 1, usn=2, commands=GATED, issueKeys=["OPS-7"], state="successful")
        ).status_code
        == 202
    )
    stack.wait_caught_up()
    assert gating(stack, pipeline, 1).json()["gatingStatus"] == "allowed"
    assert stack.http.get(stack.path(pipeline, "prod", 1)).json()["state"] == "successful"


def test_prevented_decision_and_first_decision_wins(stack: Stack) -> None:
    pipeline = "gate-prevent"
    assert stack.submit(on(pipeline, 1, commands=GATED)).status_code == 202
    stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status", lambda r: r.status_code == 200
    )
    assert (
        decide(stack, pipeline, 1, "prevented", tenant="alpha", reason="change freeze").status_code
        == 202
    )
    stack.wait_caught_up()
    assert decide(stack, pipeline, 1, "allowed", tenant="alpha").status_code == 202
    stack.wait_caught_up()
    assert gating(stack, pipeline, 1).json()["gatingStatus"] == "prevented"


def test_environment_types_without_approval_are_allowed_at_once(stack: Stack) -> None:
    pipeline = "gate-staging"
    sent = on(
        pipeline,
        1,
        commands=GATED,
        environment={"id": "prod", "displayName": "S", "type": "staging"},
    )
    assert stack.submit(sent).status_code == 202
    status = stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status", lambda r: r.status_code == 200
    )
    assert status.json()["gatingStatus"] == "allowed"


def test_ungated_deployment_is_invalid_and_unknown_is_404(stack: Stack) -> None:
    pipeline = "gate-none"
    assert stack.submit(on(pipeline, 1)).status_code == 202
    status = stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status", lambda r: r.status_code == 200
    )
    assert status.json()["gatingStatus"] == "invalid"
    assert gating(stack, pipeline, 2).status_code == 404
    assert decide(stack, pipeline, 1, "allowed", tenant="alpha").status_code == 409


def test_gating_is_private_to_the_tenant_and_decisions_need_the_scope(stack: Stack) -> None:
    pipeline = "gate-private"
    assert stack.submit(on(pipeline, 1, commands=GATED)).status_code == 202
    stack.wait_for(
        stack.path(pipeline, "prod", 1) + "/gating-status", lambda r: r.status_code == 200
    )
    assert gating(stack, pipeline, 1, client="beta").status_code == 404
    assert decide(stack, pipeline, 1, "allowed", client="alpha").status_code == 403
    assert (
        decide(stack, pipeline, 1, "allowed", client="approver", tenant="beta").status_code == 404
    )
    assert decide(stack, pipeline, 1, "maybe", tenant="alpha").status_code == 400
    stack.wait_caught_up()
    assert gating(stack, pipeline, 1).json()["gatingStatus"] == "awaiting"
