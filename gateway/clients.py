"""The clients file: who may call the gateway, with which credentials and scopes.

```yaml
clients:
  jenkins-prod:                      # client id = tenant (Connect client key / OAuth client id)
    scopes: [READ, WRITE, DELETE]    # and APPROVE_GATING for gating approvers
    sharedSecret: "..."              # Connect JWT (HS256): HMAC needs the secret itself
    clientSecretHash: "sha256:..."   # OAuth client credentials, stored hashed
    apiTokenHashes: ["sha256:..."]   # Basic auth (client id + API token), stored hashed
    approvesFor: [team-a]            # with APPROVE_GATING: tenants whose gates it decides
    rateLimitPerSecond: 50           # optional: overrides DEPLOYSTREAM_RATE_LIMIT_PER_S
    rateLimitBurst: 100              # optional: overrides DEPLOYSTREAM_RATE_LIMIT_BURST
    issueRegistry: true              # optional: check issue keys against the issue registry
    webhookSecret: "..."             # optional: secret of the tenant's Jira issue webhook
```

Client secrets and API tokens are generated, high-entropy values (``deploystream secret``), so
a plain SHA-256 digest is a sufficient one-way store; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import GatewayError

__all__ = [
    "Client",
    "ClientRegistry",
    "ClientsFileError",
    "Scope",
    "all_scopes_entry",
    "development_clients_yaml",
    "hash_secret",
    "new_secret",
    "verify_secret",
]

_HASH_PREFIX = "sha256:"


class Scope(StrEnum):
    """What a client may do. Values are the Connect scope names."""

    READ = "READ"
    WRITE = "WRITE"
    DELETE = "DELETE"
    APPROVE_GATING = "APPROVE_GATING"

    @property
    def oauth(self) -> str:
        """The granular OAuth 2.0 scope of this permission."""
        return _OAUTH[self]

    @classmethod
    def parse(cls, name: str) -> Scope:
        """A Connect name (``READ``), an OAuth scope (``read:deployment-info:jira``) or its
        older name (``read:deployment:jira-software``)."""
        for scope, oauth in _OAUTH.items():
            if name in (scope.value, oauth) or _LEGACY.get(name) is scope:
                return scope
        msg = f"unknown scope {name!r}"
        raise ValueError(msg)


_OAUTH = {
    Scope.READ: "read:deployment-info:jira",
    Scope.WRITE: "write:deployment-info:jira",
    Scope.DELETE: "delete:deployment-info:jira",
    Scope.APPROVE_GATING: "approve:deployment-gating:deploystream",
}
#: The OAuth 2.0 scope names of Jira Software's older documents, still sent by older tools.
_LEGACY = {
    "read:deployment:jira-software": Scope.READ,
    "write:deployment:jira-software": Scope.WRITE,
    "delete:deployment:jira-software": Scope.DELETE,
}


class ClientsFileError(GatewayError):
    """The clients file is missing or invalid; the gateway does not start."""


def new_secret() -> str:
    """A fresh random secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a client secret or API token."""
    return _HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison of ``secret`` with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored)


class Client(BaseModel):
    """One configured client."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    scopes: frozenset[Scope]
    shared_secret: str | None = Field(None, alias="sharedSecret", min_length=32)
    client_secret_hash: str | None = Field(None, alias="clientSecretHash")
    api_token_hashes: tuple[str, ...] = Field((), alias="apiTokenHashes")
    approves_for: frozenset[str] = Field(frozenset(), alias="approvesFor")
    rate_limit_per_s: float | None = Field(None, alias="rateLimitPerSecond", gt=0)
    rate_limit_burst: int | None = Field(None, alias="rateLimitBurst", gt=0)
    issue_registry: bool = Field(False, alias="issueRegistry")
    # HMAC-SHA256 of Jira's webhook deliveries needs the secret itself, like sharedSecret.
    webhook_secret: str | None = Field(None, alias="webhookSecret", min_length=16)

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> object:
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(Scope.parse(str(v)) for v in value)
        return value

    @field_validator("client_secret_hash")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_HASH_PREFIX):
            msg = f"must be a '{_HASH_PREFIX}<hex>' digest (see `deploystream secret`)"
            raise ValueError(msg)
        return value

    @field_validator("api_token_hashes")
    @classmethod
    def _hashes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for digest in value:
            cls._hash(digest)
        return value


class ClientRegistry:
    """Lookup of clients by id."""

    def __init__(self, clients: list[Client]) -> None:
        self._clients = {c.id: c for c in clients}
        if len(self._clients) != len(clients):
            msg = "client ids must be unique"
            raise ClientsFileError(msg)

    def get(self, client_id: str) -> Client | None:
        """The client with this id, if configured."""
        return self._clients.get(client_id)

    def __len__(self) -> int:
        return len(self._clients)

    @classmethod
    def from_file(cls, path: Path) -> ClientRegistry:
        """Load and validate the clients file."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            msg = f"cannot read clients file {path}: {exc}"
            raise ClientsFileError(msg) from exc
        entries = document.get("clients") if isinstance(document, dict) else None
        if not isinstance(entries, dict) or not entries:
            msg = f"{path}: expected a non-empty 'clients' mapping"
            raise ClientsFileError(msg)
        try:
            clients = [
                Client.model_validate({"id": str(k), **(v or {})}) for k, v in entries.items()
            ]
        except ValidationError as exc:
            msg = f"{path}: invalid client entry: {exc}"
            raise ClientsFileError(msg) from exc
        return cls(clients)

    @classmethod
    def development(cls, client_id: str, secret: str) -> ClientRegistry:
        """One client with every scope, usable with each authentication style."""
        return cls([Client.model_validate({"id": client_id, **all_scopes_entry(secret)})])


def all_scopes_entry(secret: str, **settings: Any) -> dict[str, Any]:
    """A clients-file entry with every scope and every credential style for ``secret``;
    ``settings`` adds entry fields as the file spells them (``rateLimitPerSecond``...)."""
    return {
        "scopes": [s.value for s in Scope],
        "sharedSecret": secret,
        "clientSecretHash": hash_secret(secret),
        "apiTokenHashes": [hash_secret(secret)],
        **settings,
    }


def development_clients_yaml(client_id: str, secret: str, **settings: Any) -> str:
    """A clients file holding one client with every scope (see :func:`all_scopes_entry`)."""
    entry = all_scopes_entry(secret, **settings)
    return yaml.safe_dump({"clients": {client_id: entry}}, sort_keys=False)
