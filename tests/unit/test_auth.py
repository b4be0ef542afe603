"""Authentication styles, their rejections, and what the clients file allows."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from gateway.auth import VERIFIED_TOKENS, Authenticator, Principal, query_string_hash
from gateway.clients import ClientRegistry, ClientsFileError, Scope, hash_secret
from gateway.errors import Unauthorized
from gateway.settings import GatewaySettings

SECRET = "connect-shared-secret-0123456789abcdef-0123"
TOKEN = "api-token-0123456789abcdef-0123456789abcdef"
CLIENT_SECRET = "client-secret-0123456789abcdef-0123456789ab"
SIGNING = "signing-key-0123456789abcdef-0123456789abcdef"
PATH = "/rest/deployments/0.1/pipelines/p%2F1/environments/e/deployments/1"


@pytest.fixture(scope="module")
def clients_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "clients.yaml"
    path.write_text(
        f"""
clients:
  jenkins:
    scopes: [READ, write:deployment-info:jira]
    sharedSecret: {SECRET}
    clientSecretHash: {hash_secret(CLIENT_SECRET)}
    apiTokenHashes: [{hash_secret(TOKEN)}]
  other:
    scopes: [DELETE]
    sharedSecret: other-shared-secret-0123456789abcdef-0123
"""
    )
    return path


@pytest.fixture(scope="module")
def auth(clients_file: Path) -> Authenticator:
    return Authenticator(
        GatewaySettings(clients_file=clients_file, token_signing_key=SecretStr(SIGNING))
    )


def connect_jwt(
    method: str = "GET",
    path: str = PATH,
    query: list[tuple[str, str]] | None = None,
    *,
    iss: str = "jenkins",
    secret: str = SECRET,
    exp_in: int = 180,
    **extra: Any,
) -> str:
    now = int(time.time())
    claims = {
        "iss": iss,
        "iat": now,
        "exp": now + exp_in,
        "qsh": query_string_hash(method, path, query or []),
        **extra,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def basic(client: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{client}:{token}".encode()).decode()


def test_connect_jwt_authenticates_its_issuer_with_its_scopes(auth: Authenticator) -> None:
    principal = auth.authenticate(f"JWT {connect_jwt()}", "GET", PATH, [])
    assert principal == Principal("jenkins", frozenset({Scope.READ, Scope.WRITE}))
    assert principal.tenant == "jenkins"


def test_connect_jwt_sent_as_bearer_token_is_accepted(auth: Authenticator) -> None:
    assert auth.authenticate(f"Bearer {connect_jwt()}", "GET", PATH, []).client_id == "jenkins"


def test_qsh_covers_method_path_and_query(auth: Authenticator) -> None:
    token = connect_jwt("DELETE", PATH, [("_updateSequenceNumber", "5")])
    assert auth.authenticate(f"JWT {token}", "DELETE", PATH, [("_updateSequenceNumber", "5")])
    with pytest.raises(Unauthorized, match="qsh"):
        auth.authenticate(f"JWT {token}", "DELETE", PATH, [("_updateSequenceNumber", "6")])
    with pytest.raises(Unauthorized, match="qsh"):
        auth.authenticate(f"JWT {token}", "GET", PATH, [("_updateSequenceNumber", "5")])
    with pytest.raises(Unauthorized, match="qsh"):
        auth.authenticate(f"JWT {token}", "DELETE", PATH + "2", [("_updateSequenceNumber", "5")])


def test_qsh_canonical_form_sorts_encodes_and_ignores_jwt() -> None:
    a = query_string_hash("get", "/path/", [("b", "2"), ("a", "x y"), ("b", "1"), ("jwt", "t")])
    b = query_string_hash("GET", "/path", [("a", "x y"), ("b", "1"), ("b", "2")])
    assert a == b
    expected = hashlib.sha256(b"GET&/path&a=x%20y&b=1,2").hexdigest()
    assert b == expected
    assert query_string_hash("GET", "/a&b", []) == hashlib.sha256(b"GET&/a%26b&").hexdigest()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: connect_jwt(exp_in=-3600), id="expired"),
        pytest.param(
            lambda: connect_jwt(secret="wrong-secret-0123456789abcdef-0123456"), id="bad-signature"
        ),
        pytest.param(lambda: connect_jwt(iss="nobody"), id="unknown-issuer"),
        pytest.param(
            lambda: jwt.encode(
                {"iss": "jenkins", "iat": 1, "exp": 2**40}, SECRET, algorithm="HS256"
            ),
            id="no-qsh",
        ),
        pytest.param(
            lambda: jwt.encode(
                {"iss": "jenkins", "iat": 1, "exp": 2**40, "qsh": "x"}, None, algorithm="none"
            ),
            id="alg-none",
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_connect_tokens_are_401(auth: Authenticator, token: Any) -> None:
    with pytest.raises(Unauthorized):
        auth.authenticate(f"JWT {token()}", "GET", PATH, [])


def test_unknown_client_and_wrong_signature_look_the_same(auth: Authenticator) -> None:
    messages = []
    for token in (connect_jwt(iss="nobody"), connect_jwt(secret="x" * 40)):
        with pytest.raises(Unauthorized) as caught:
            auth.authenticate(f"JWT {token}", "GET", PATH, [])
        messages.append(caught.value.messages)
    assert messages[0] == messages[1]


def test_basic_auth_with_api_token(auth: Authenticator) -> None:
    assert auth.authenticate(basic("jenkins", TOKEN), "POST", "/x", []).client_id == "jenkins"


@pytest.mark.parametrize(
    "header",
    [
        basic("jenkins", "wrong"),
        basic("nobody", TOKEN),
        basic("other", TOKEN),
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ],
)
def test_bad_basic_credentials_are_401_without_saying_why(auth: Authenticator, header: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(header, "GET", PATH, [])
    assert caught.value.messages == ("Unauthorized: missing or invalid credentials.",)


def test_missing_header_and_unknown_scheme_are_401(auth: Authenticator) -> None:
    with pytest.raises(Unauthorized, match="missing"):
        auth.authenticate(None, "GET", PATH, [])
    with pytest.raises(Unauthorized, match="JWT, Bearer or Basic"):
        auth.authenticate("Digest abc", "GET", PATH, [])


def test_client_credentials_issue_a_token_that_authenticates(auth: Authenticator) -> None:
    client = auth.client_credentials("jenkins", CLIENT_SECRET)
    assert client is not None
    issued = auth.issue_token(client, frozenset({Scope.READ}))
    assert issued["token_type"] == "Bearer" and issued["scope"] == "read:deployment-info:jira"
    principal = auth.authenticate(f"Bearer {issued['access_token']}", "GET", PATH, [])
    assert principal.client_id == "jenkins"
    assert principal.scopes == frozenset({Scope.READ})


def test_wrong_client_secret_or_client_without_secret_get_no_token(auth: Authenticator) -> None:
    assert auth.client_credentials("jenkins", "wrong") is None
    assert auth.client_credentials("nobody", CLIENT_SECRET) is None
    assert auth.client_credentials("other", CLIENT_SECRET) is None


def test_expired_or_forged_access_tokens_are_401(auth: Authenticator) -> None:
    now = int(time.time())
    claims = {
        "iss": "deploystream",
        "sub": "jenkins",
        "aud": "deploystream-api",
        "iat": now - 7200,
        "exp": now - 3600,
        "scope": "read:deployment-info:jira",
    }
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(
            "Bearer " + jwt.encode(claims, SIGNING, algorithm="HS256"), "GET", PATH, []
        )
    forged = {**claims, "exp": now + 3600}
    with pytest.raises(Unauthorized):
        auth.authenticate(
            "Bearer " + jwt.encode(forged, "f" * 40, algorithm="HS256"), "GET", PATH, []
        )


def test_access_token_cannot_grant_more_than_the_client_has(auth: Authenticator) -> None:
    now = int(time.time())
    claims = {
        "iss": "deploystream",
        "sub": "other",
        "aud": "deploystream-api",
        "iat": now,
        "exp": now + 60,
        "scope": "read:deployment-info:jira delete:deployment-info:jira",
    }
    principal = auth.authenticate(
        "Bearer " + jwt.encode(claims, SIGNING, algorithm="HS256"), "GET", PATH, []
    )
    assert principal.scopes == frozenset({Scope.DELETE})


def test_gateway_refuses_to_start_without_clients_file_outside_dev_mode() -> None:
    with pytest.raises(ClientsFileError, match="CLIENTS_FILE"):
        Authenticator(GatewaySettings(token_signing_key=SecretStr(SIGNING)))


def test_gateway_refuses_to_start_without_signing_key(clients_file: Path) -> None:
    with pytest.raises(ClientsFileError, match="SIGNING_KEY"):
        Authenticator(GatewaySettings(clients_file=clients_file))


def test_dev_mode_client_uses_the_configured_secret() -> None:
    dev = Authenticator(GatewaySettings(dev_mode=True, dev_secret=SecretStr(SECRET)))
    assert dev.authenticate(basic("dev", SECRET), "GET", PATH, []).scopes == frozenset(Scope)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "clients: []",
        "clients:\n  a:\n    scopes: [FLY]",
        "clients:\n  a:\n    scopes: [READ]\n    clientSecretHash: plain",
        "{{{",
    ],
)
def test_invalid_clients_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(content)
    with pytest.raises(ClientsFileError):
        ClientRegistry.from_file(path)


@settings(max_examples=400)
@given(
    header=st.one_of(
        st.none(),
        st.text(max_size=300),
        st.from_regex(r"(JWT|Bearer|Basic|jwt) [ -~]{0,200}", fullmatch=True),
    )
)
def test_any_header_value_is_401_and_never_an_error(
    auth: Authenticator, header: str | None
) -> None:
    with pytest.raises(Unauthorized):
        auth.authenticate(header, "GET", PATH, [])


@pytest.mark.parametrize(
    ("name", "scope"),
    [
        ("READ", Scope.READ),
        ("read:deployment-info:jira", Scope.READ),
        ("read:deployment:jira-software", Scope.READ),
        ("write:deployment:jira-software", Scope.WRITE),
        ("delete:deployment:jira-software", Scope.DELETE),
    ],
)
def test_scope_names_old_and_new_parse_to_their_permission(name: str, scope: Scope) -> None:
    assert Scope.parse(name) is scope


@pytest.mark.parametrize(
    "name", ["read:deployment:jira", "READ ", "approve:deployment:jira-software", "read"]
)
def test_unknown_scope_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        Scope.parse(name)


@pytest.mark.parametrize("lifetime", [3600 + 1, 10 * 365 * 24 * 3600])
def test_connect_jwts_living_longer_than_the_maximum_are_refused(
    auth: Authenticator, lifetime: int
) -> None:
    token = connect_jwt(exp_in=lifetime)
    with pytest.raises(Unauthorized, match="lifetime"):
        auth.authenticate(f"JWT {token}", "GET", PATH, [])


def test_the_maximum_jwt_lifetime_is_a_setting(clients_file: Path) -> None:
    strict = Authenticator(
        GatewaySettings(
            clients_file=clients_file,
            token_signing_key=SecretStr(SIGNING),
            jwt_max_lifetime_s=60,
        )
    )
    assert strict.authenticate(f"JWT {connect_jwt(exp_in=60)}", "GET", PATH, [])
    with pytest.raises(Unauthorized, match="over the 60 s allowed"):
        strict.authenticate(f"JWT {connect_jwt(exp_in=61)}", "GET", PATH, [])


def test_dev_mode_without_a_chosen_secret_does_not_start_nor_log_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A random secret would have to be logged to be usable; secrets never go to logs.
    with pytest.raises(ClientsFileError, match="DEPLOYSTREAM_DEV_SECRET"):
        Authenticator(GatewaySettings(dev_mode=True))
    assert caplog.records == []


def test_reloading_the_clients_file_revokes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    entry = f"    scopes: [READ]\n    apiTokenHashes: [{hash_secret(TOKEN)}]\n"
    path.write_text(f"clients:\n  keep:\n{entry}  revoked:\n{entry}")
    auth = Authenticator(GatewaySettings(clients_file=path, token_signing_key=SecretStr(SIGNING)))
    issued = auth.issue_token(auth.registry.get("revoked"), frozenset({Scope.READ}))  # type: ignore[arg-type]
    assert auth.authenticate(basic("revoked", TOKEN), "GET", PATH, [])
    # Verified once (and so remembered as verified) before the revocation.
    assert auth.authenticate(f"Bearer {issued['access_token']}", "GET", PATH, [])
    path.write_text(f"clients:\n  keep:\n{entry}")
    auth.reload()
    with pytest.raises(Unauthorized):
        auth.authenticate(basic("revoked", TOKEN), "GET", PATH, [])
    with pytest.raises(Unauthorized):
        auth.authenticate(f"Bearer {issued['access_token']}", "GET", PATH, [])
    assert auth.authenticate(basic("keep", TOKEN), "GET", PATH, []).client_id == "keep"


def test_a_broken_clients_file_keeps_the_clients_in_use(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(
        f"clients:\n  keep:\n    scopes: [READ]\n    apiTokenHashes: [{hash_secret(TOKEN)}]\n"
    )
    auth = Authenticator(GatewaySettings(clients_file=path, token_signing_key=SecretStr(SIGNING)))
    path.write_text("clients: {{{ half-written")
    with pytest.raises(ClientsFileError):
        auth.reload()
    assert auth.authenticate(basic("keep", TOKEN), "GET", PATH, []).client_id == "keep"


def test_a_verified_access_token_is_refused_once_it_expires(clients_file: Path) -> None:
    auth = Authenticator(
        GatewaySettings(
            clients_file=clients_file,
            token_signing_key=SecretStr(SIGNING),
            token_ttl_s=1,
            jwt_leeway_s=0,
        )
    )
    client = auth.registry.get("jenkins")
    assert client is not None
    header = f"Bearer {auth.issue_token(client, frozenset({Scope.READ}))['access_token']}"
    assert auth.authenticate(header, "GET", PATH, []).scopes == frozenset({Scope.READ})
    time.sleep(2.1)  # past its lifetime: remembered as verified, but no longer valid
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(header, "GET", PATH, [])


def test_remembered_tokens_are_bounded(clients_file: Path) -> None:
    auth = Authenticator(
        GatewaySettings(clients_file=clients_file, token_signing_key=SecretStr(SIGNING))
    )
    client = auth.registry.get("jenkins")
    assert client is not None
    first = f"Bearer {auth.issue_token(client, frozenset({Scope.READ}))['access_token']}"
    auth.authenticate(first, "GET", PATH, [])
    for _ in range(VERIFIED_TOKENS + 10):
        token = auth.issue_token(client, frozenset({Scope.READ}))["access_token"]
        auth.authenticate(f"Bearer {token}", "GET", PATH, [])
    assert len(auth._verified) == VERIFIED_TOKENS
    # Forgotten, not refused: verified again.
    assert auth.authenticate(first, "GET", PATH, []).client_id == "jenkins"
