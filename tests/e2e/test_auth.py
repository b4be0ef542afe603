"""Authentication, scopes, tenancy and rate limits through the running gateway."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth import query_string_hash
from gateway.clients import hash_secret
from tests.e2e.conftest import API, Stack, secret_of
from tests.e2e.test_deployments_api import deployment


def connect_jwt(
    client: str, method: str, path: str, query: list[tuple[str, str]] | None = None
) -> str:
    now = int(time.time())
    claims = {
        "iss": client,
        "iat": now,
        "exp": now + 60,
        "qsh": query_string_hash(method, path, query or []),
    }
    return jwt.encode(claims, secret_of(client), algorithm="HS256")


def test_request_without_credentials_is_401_with_a_json_body(stack: Stack) -> None:
    with stack.client() as anonymous:
        response = anonymous.post(f"{API}/bulk", json={"deployments": [deployment()]})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert isinstance(response.json()[0]["message"], str)


def test_connect_jwt_with_matching_qsh_submits_and_reads(stack: Stack) -> None:
    path = f"{API}/bulk"
    with stack.client() as anonymous:
        token = connect_jwt("alpha", "POST", path)
        response = anonymous.post(
            path,
            json={"deployments": [deployment(number=300)]},
            headers={"Authorization": f"JWT {token}"},
        )
        assert response.status_code == 202
        lookup = stack.path("web", "prod", 300)
        token = connect_jwt("alpha", "GET", lookup)
        found = stack.wait_for(lookup, lambda r: r.status_code == 200)
        assert found.status_code == 200
        assert anonymous.get(lookup, headers={"Authorization": f"JWT {token}"}).status_code == 200
        # The same token for another path fails its qsh check.
        other = stack.path("web", "prod", 301)
        assert anonymous.get(other, headers={"Authorization": f"JWT {token}"}).status_code == 401


@pytest.mark.parametrize("as_form", [False, True])
def test_oauth_client_credentials_token_works_as_bearer(stack: Stack, as_form: bool) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "alpha",
        "client_secret": secret_of("alpha"),
    }
    with stack.client() as anonymous:
        issued = (
            anonymous.post("/oauth/token", data=form)
            if as_form
            else anonymous.post("/oauth/token", json=form)
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        assert issued.json()["expires_in"] > 0
        bearer = {"Authorization": f"Bearer {token}"}
        response = anonymous.post(
            f"{API}/bulk", json={"deployments": [deployment(number=310)]}, headers=bearer
        )
        assert response.status_code == 202


def test_token_with_fewer_scopes_is_refused_the_others(stack: Stack) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "alpha",
        "client_secret": secret_of("alpha"),
        "scope": "read:deployment-info:jira",
    }
    with stack.client() as anonymous:
        token = anonymous.post("/oauth/token", json=form).json()["access_token"]
        response = anonymous.delete(
            stack.path("web", "prod", 1), headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 403
    assert "DELETE" in response.json()[0]["message"]


def test_legacy_scope_names_are_accepted_as_aliases(stack: Stack) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "alpha",
        "client_secret": secret_of("alpha"),
        "scope": "read:deployment:jira-software write:deployment:jira-software",
    }
    with stack.client() as anonymous:
        issued = anonymous.post("/oauth/token", data=form)
        assert issued.status_code == 200, issued.text
        # Granted under today's names (RFC 6749 section 3.3 lets the server say which).
        assert issued.json()["scope"] == "read:deployment-info:jira write:deployment-info:jira"
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        submitted = anonymous.post(
            f"{API}/bulk", json={"deployments": [deployment(number=330)]}, headers=bearer
        )
        deleted = anonymous.delete(stack.path("web", "prod", 330), headers=bearer)
    assert submitted.status_code == 202
    assert deleted.status_code == 403


def test_on_premise_set_up_discovers_the_cloud_id_and_submits_on_its_path(stack: Stack) -> None:
    # Atlassian's Jenkins plugin: tenant_info from the site URL, a token, then the OAuth path.
    with stack.client() as anonymous:
        info = anonymous.get("/_edge/tenant_info")
        assert info.status_code == 200
        cloud_id = info.json()["cloudId"]
        assert cloud_id == "6f8d8a2c-3c1e-4b5e-9a57-0d3e5c1f2b7a"  # the default
        form = {
            "grant_type": "client_credentials",
            "client_id": "alpha",
            "client_secret": secret_of("alpha"),
        }
        token = anonymous.post("/oauth/token", data=form).json()["access_token"]
        response = anonymous.post(
            f"/jira/deployments/0.1/cloud/{cloud_id}/bulk",
            json={"deployments": [deployment(number=331)]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 202
    assert len(response.json()["acceptedDeployments"]) == 1


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (
            {"grant_type": "client_credentials", "client_id": "alpha", "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "ghost", "client_secret": "x"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "password", "client_id": "alpha", "client_secret": "x"},
            400,
            "unsupported_grant_type",
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "reader",
                "client_secret": secret_of("reader"),
                "scope": "write:deployment-info:jira",
            },
            400,
            "invalid_scope",
        ),
        ({"grant_type": "client_credentials"}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors_use_the_oauth_shape(
    stack: Stack, form: dict[str, str], status: int, error: str
) -> None:
    with stack.client() as anonymous:
        response = anonymous.post("/oauth/token", json=form)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_missing_scope_is_403_per_operation(stack: Stack) -> None:
    with stack.client("reader") as reader:
        assert reader.post(f"{API}/bulk", json={"deployments": [deployment()]}).status_code == 403
        assert reader.delete(stack.path("web", "prod", 1)).status_code == 403
        assert reader.get(stack.path("web", "prod", 1)).status_code in (200, 404)


def test_tenants_cannot_see_or_change_each_others_deployments(stack: Stack) -> None:
    path = stack.path("shared-pipeline", "prod", 7)
    mine = deployment(
        number=7,
        usn=5,
        displayName="alpha's",
        pipeline={"id": "shared-pipeline", "displayName": "S", "url": "https://s"},
    )
    assert stack.submit(mine).status_code == 202
    assert stack.wait_for(path, lambda r: r.status_code == 200).json()["displayName"] == "alpha's"
    with stack.client("beta") as beta:
        assert beta.get(path).status_code == 404
        assert beta.delete(path).status_code == 202
        theirs = {**mine, "updateSequenceNumber": 99, "displayName": "beta's"}
        assert beta.post(f"{API}/bulk", json={"deployments": [theirs]}).status_code == 202
        stack.wait_caught_up()
        assert beta.get(path).json()["displayName"] == "beta's"
    # Neither beta's delete nor its newer update with the same triple touched alpha's.
    assert stack.http.get(path).json()["displayName"] == "alpha's"
    assert stack.http.get(path).json()["updateSequenceNumber"] == 5


def test_rate_limited_client_gets_429_with_headers(stack: Stack) -> None:
    with stack.client("throttled") as throttled:
        responses = [throttled.get(stack.path("web", "prod", 1)) for _ in range(5)]
    statuses = [r.status_code for r in responses]
    assert statuses[:3] == [404, 404, 404]
    assert statuses[3:] == [429, 429]
    refused = responses[3]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in refused.headers
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"


def test_unknown_client_and_wrong_secret_get_the_same_answer(stack: Stack) -> None:
    with stack.client() as anonymous:
        unknown = anonymous.get(stack.path("web", "prod", 1), auth=("ghost", "x" * 40))
        wrong = anonymous.get(stack.path("web", "prod", 1), auth=("alpha", "x" * 40))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    value=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
        st.from_regex(r"(JWT|Bearer|Basic) [A-Za-z0-9+/=._\-]{0,300}", fullmatch=True),
    )
)
def test_fuzzed_authorization_headers_never_succeed_or_crash(stack: Stack, value: str) -> None:
    with stack.client() as anonymous:
        try:
            response = anonymous.get(stack.path("web", "prod", 1), headers={"Authorization": value})
        except httpx.LocalProtocolError:
            return  # httpx refused to send it: nothing reached the gateway
    assert 400 <= response.status_code < 500, (value, response.status_code)
    assert response.status_code != 404


def from_address(stack: Stack, address: str, **kwargs: Any) -> httpx.Client:
    """A client of the gateway whose connections come from ``address`` (127/8 is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=stack.base_url, timeout=30, transport=transport, **kwargs)


def test_wrong_secrets_from_elsewhere_never_lock_the_client_out(stack: Stack) -> None:
    # The review's probe: 450 wrong secrets for a real client id, then the real client.
    with from_address(stack, "127.0.0.2") as attacker:
        statuses = {
            attacker.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "alpha",
                    "client_secret": f"guess-{n}",
                },
            ).status_code
            for n in range(450)
        }
    assert statuses == {401, 429}
    form = {
        "grant_type": "client_credentials",
        "client_id": "alpha",
        "client_secret": secret_of("alpha"),
    }
    # From an address of its own: 127.0.0.1 is this module's, and may be throttled by the
    # fuzzed headers of other tests.
    with from_address(stack, "127.0.0.8") as real:
        assert real.post("/oauth/token", data=form).status_code == 200


def test_the_clients_file_is_reloaded_without_a_restart(stack: Stack) -> None:
    path = Path(stack.config.extra_env["DEPLOYSTREAM_CLIENTS_FILE"])
    original = path.read_text()
    document = yaml.safe_load(original)
    document["clients"]["late"] = {
        "scopes": ["READ"],
        "apiTokenHashes": [hash_secret(secret_of("late"))],
    }
    lookup = stack.path("web", "prod", 1)
    try:
        # A new client works within seconds of the file changing ...
        path.write_text(yaml.safe_dump(document))
        with from_address(stack, "127.0.0.9", auth=("late", secret_of("late"))) as late:
            status = late.get(lookup).status_code
            deadline = time.monotonic() + 10
            while status == 401 and time.monotonic() < deadline:
                time.sleep(0.2)
                status = late.get(lookup).status_code
            assert status in (200, 404)
            # ... and a revoked one stops working at once on SIGHUP.
            path.write_text(original)
            assert stack.gateway.process is not None
            stack.gateway.process.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            assert late.get(lookup).status_code == 401
    finally:
        path.write_text(original)
