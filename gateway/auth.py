"""Who is calling: every ``Authorization`` style real Jira clients send.

- ``JWT <token>``: Atlassian Connect. HS256 with the client's shared secret, ``iss`` = client
  key, ``iat``/``exp`` and ``qsh`` (hash of the canonical request) verified.
- ``Bearer <token>``: an access token from ``POST /oauth/token`` (client credentials), or a
  Connect JWT sent as a bearer token.
- ``Basic <client id:API token>``.

The authenticated client is the tenant. Failures never reveal whether a client id exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jwt

from gateway.clients import Client, ClientRegistry, ClientsFileError, Scope, hash_secret
from gateway.errors import Unauthorized
from gateway.settings import GatewaySettings

__all__ = ["Authenticator", "Principal", "query_string_hash", "required_scope", "requires"]

TOKEN_ISSUER = "deploystream"  # noqa: S105 (a name, not a secret)
TOKEN_AUDIENCE = "deploystream-api"  # noqa: S105
# Compared against when the client id is unknown, so both paths cost the same.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(32))
_MAX_HEADER = 8192
#: Access tokens verified recently (a client reuses its token for its whole lifetime).
VERIFIED_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a verified access token grants, until when."""

    client_id: str
    scopes: frozenset[Scope]
    expires: float


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client and what it may do."""

    client_id: str
    scopes: frozenset[Scope]
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None
    approves_for: frozenset[str] = frozenset()
    issue_registry: bool = False

    @classmethod
    def of(cls, client: Client, scopes: frozenset[Scope] | None = None) -> Principal:
        """The principal of ``client``, optionally with fewer scopes (an access token's)."""
        return cls(
            client.id,
            client.scopes if scopes is None else scopes & client.scopes,
            client.rate_limit_per_s,
            client.rate_limit_burst,
            client.approves_for,
            client.issue_registry,
        )

    @property
    def tenant(self) -> str:
        """Data belongs to the client that wrote it."""
        return self.client_id


Handler = Callable[..., Awaitable[Any]]


def requires(scope: Scope) -> Callable[[Handler], Handler]:
    """Mark a handler as needing an authenticated client with ``scope``."""

    def mark(handler: Handler) -> Handler:
        handler.required_scope = scope  # type: ignore[attr-defined]
        return handler

    return mark


def required_scope(handler: object) -> Scope | None:
    """The scope a handler needs; ``None`` for public routes (health, token endpoint)."""
    scope = getattr(handler, "required_scope", None)
    return scope if isinstance(scope, Scope) else None


def _encode(value: str) -> str:
    # RFC 3986 percent-encoding, as Atlassian's canonical request uses.
    return quote(value, safe="-_.~")


def query_string_hash(method: str, raw_path: str, query: Iterable[tuple[str, str]]) -> str:
    """The Connect ``qsh``: SHA-256 of ``METHOD&path&sorted-query`` (``jwt`` excluded)."""
    path = raw_path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    path = path.replace("&", "%26")
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        if key != "jwt":
            grouped.setdefault(_encode(key), []).append(_encode(value))
    canonical_query = "&".join(
        f"{key}={','.join(sorted(values))}" for key, values in sorted(grouped.items())
    )
    canonical = f"{method.upper()}&{path}&{canonical_query}"
    return hashlib.sha256(canonical.encode()).hexdigest()


class Authenticator:
    """Verifies credentials against the clients file and issues access tokens."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._leeway = settings.jwt_leeway_s
        self._ttl = settings.token_ttl_s
        self._max_lifetime = settings.jwt_max_lifetime_s
        self.clients_file = settings.clients_file
        if settings.clients_file is not None:
            self.registry = ClientRegistry.from_file(settings.clients_file)
        elif settings.dev_mode:
            if settings.dev_secret is None:
                # A random secret would have to be shown to be of use, and a log line is no
                # place for a credential.
                msg = "DEPLOYSTREAM_DEV_MODE needs DEPLOYSTREAM_DEV_SECRET (32+ characters)"
                raise ClientsFileError(msg)
            self.registry = ClientRegistry.development(
                settings.dev_client_id, settings.dev_secret.get_secret_value()
            )
        else:
            msg = (
                "DEPLOYSTREAM_CLIENTS_FILE is required (or DEPLOYSTREAM_DEV_MODE=true for a "
                "development client)"
            )
            raise ClientsFileError(msg)
        if settings.token_signing_key is not None:
            self._signing_key = settings.token_signing_key.get_secret_value()
        elif settings.dev_mode:
            self._signing_key = secrets.token_urlsafe(32)
        else:
            msg = "DEPLOYSTREAM_TOKEN_SIGNING_KEY is required outside development mode"
            raise ClientsFileError(msg)
        if len(self._signing_key) < 32:
            msg = "DEPLOYSTREAM_TOKEN_SIGNING_KEY must be at least 32 characters"
            raise ClientsFileError(msg)
        # Verifying a token is two PyJWT parses and an HMAC (≈70 µs, a third of a lookup's
        # gateway CPU): a token seen verified is trusted until it expires. Only tokens that
        # verified get in, and the cache is bounded: nobody can grow it at will.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def reload(self) -> None:
        """Read the clients file again; on any error the clients in use stay (and the error
        is raised). Requests after this use the new clients: a removed client's credentials
        and access tokens stop working at once."""
        if self.clients_file is not None:
            self.registry = ClientRegistry.from_file(self.clients_file)

    # -- authentication -------------------------------------------------------------------

    def authenticate(
        self,
        authorization: str | None,
        method: str,
        raw_path: str,
        query: Iterable[tuple[str, str]],
    ) -> Principal:
        """The caller of a request, or Unauthorized."""
        if not authorization:
            msg = "Unauthorized: the Authorization header is missing."
            raise Unauthorized(msg)
        if len(authorization) > _MAX_HEADER:
            raise Unauthorized
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        scheme = scheme.lower()
        if not credentials:
            raise Unauthorized
        if scheme == "jwt":
            return self._connect_jwt(credentials, method, raw_path, query)
        if scheme == "bearer":
            return self._bearer(credentials, method, raw_path, query)
        if scheme == "basic":
            return self._basic(credentials)
        msg = "Unauthorized: use a JWT, Bearer or Basic Authorization header."
        raise Unauthorized(msg)

    def _unverified_claims(self, token: str) -> Mapping[str, object]:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized from exc
        if header.get("alg") != "HS256" or not isinstance(claims, dict):
            raise Unauthorized
        return claims

    def _bearer(
        self, token: str, method: str, raw_path: str, query: Iterable[tuple[str, str]]
    ) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if time.time() <= known.expires:
                client = self.registry.get(known.client_id)
                if client is None:  # removed from the clients file since it was verified
                    raise Unauthorized
                self._verified.move_to_end(token)
                return Principal.of(client, known.scopes)
            del self._verified[token]  # expired: verified again, and refused as such
        claims = self._unverified_claims(token)
        if claims.get("iss") == TOKEN_ISSUER:
            return self._access_token(token)
        return self._connect_jwt(token, method, raw_path, query)

    def _access_token(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=["HS256"],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                leeway=self._leeway,
                options={"require": ["iss", "sub", "aud", "iat", "exp", "scope"]},
            )
        except jwt.ExpiredSignatureError as exc:
            msg = "Unauthorized: the access token has expired."
            raise Unauthorized(msg) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized from exc
        client = self.registry.get(str(claims["sub"]))
        if client is None:  # removed from the clients file since the token was issued
            raise Unauthorized
        granted = set()
        for name in str(claims["scope"]).split():
            try:
                granted.add(Scope.parse(name))
            except ValueError:
                continue
        scopes = frozenset(granted)
        expires = float(claims["exp"]) + self._leeway
        self._verified[token] = _Verified(client.id, scopes, expires)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return Principal.of(client, scopes)

    def _connect_jwt(
        self, token: str, method: str, raw_path: str, query: Iterable[tuple[str, str]]
    ) -> Principal:
        claims = self._unverified_claims(token)
        issuer = claims.get("iss")
        client = self.registry.get(issuer) if isinstance(issuer, str) else None
        # Unknown clients are verified against a throwaway key: same cost, same answer.
        key = client.shared_secret if client and client.shared_secret else _DUMMY_HASH
        try:
            verified = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                leeway=self._leeway,
                options={"require": ["iss", "iat", "exp", "qsh"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            if client is None:
                raise Unauthorized from exc
            msg = "Unauthorized: the JWT has expired."
            raise Unauthorized(msg) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized from exc
        if client is None or client.shared_secret is None:
            raise Unauthorized
        lifetime = int(verified["exp"]) - int(verified["iat"])
        if lifetime > self._max_lifetime:
            # Connect tokens are minted per request; a long-lived one is a stolen or
            # misissued credential waiting to be replayed.
            msg = (
                f"Unauthorized: the JWT's lifetime (exp - iat) is {lifetime} s, "
                f"over the {self._max_lifetime} s allowed."
            )
            raise Unauthorized(msg)
        expected = query_string_hash(method, raw_path, query)
        if not secrets.compare_digest(str(verified["qsh"]), expected):
            msg = "Unauthorized: the JWT's qsh does not match this request."
            raise Unauthorized(msg)
        return Principal.of(client)

    def _basic(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise Unauthorized from exc
        client_id, separator, token = decoded.partition(":")
        if not separator:
            raise Unauthorized
        client = self.registry.get(client_id)
        stored = client.api_token_hashes if client else (_DUMMY_HASH,)
        presented = hash_secret(token)
        matched = False
        for digest in stored or (_DUMMY_HASH,):
            matched |= secrets.compare_digest(presented, digest)
        if client is None or not matched:
            raise Unauthorized
        return Principal.of(client)

    # -- OAuth 2.0 client credentials -----------------------------------------------------

    def client_credentials(self, client_id: str, client_secret: str) -> Client | None:
        """The client when ``client_secret`` is its OAuth secret, else ``None``."""
        client = self.registry.get(client_id)
        stored = client.client_secret_hash if client and client.client_secret_hash else None
        matched = secrets.compare_digest(hash_secret(client_secret), stored or _DUMMY_HASH)
        return client if client is not None and stored is not None and matched else None

    def issue_token(self, client: Client, scopes: frozenset[Scope]) -> dict[str, object]:
        """A signed, short-lived access token for ``scopes`` (a subset of the client's)."""
        now = int(time.time())
        scope = " ".join(sorted(s.oauth for s in scopes))
        token = jwt.encode(
            {
                "iss": TOKEN_ISSUER,
                "sub": client.id,
                "aud": TOKEN_AUDIENCE,
                "iat": now,
                "exp": now + self._ttl,
                "jti": str(uuid.uuid4()),
                "scope": scope,
            },
            self._signing_key,
            algorithm="HS256",
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._ttl,
            "scope": scope,
        }
