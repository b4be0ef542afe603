"""Credentials files: what ``make run`` and ``docker compose`` start the services with.

Every file here is created with mode 0600 from the start (never written, then restricted)
and replaced atomically, so no other user can read a secret even for a moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from gateway.clients import development_clients_yaml, new_secret

__all__ = [
    "COMPOSE_CLIENT",
    "DEV_CLIENT",
    "compose_secrets",
    "development_credentials",
    "write_private",
]

DEV_CLIENT = "dev"
#: The first client of a compose installation (every scope); edit clients.yaml for more.
COMPOSE_CLIENT = "admin"
#: File names under a secrets folder are the variables they set (DEPLOYSTREAM_SECRETS_DIR).
SIGNING_KEY_FILE = "DEPLOYSTREAM_TOKEN_SIGNING_KEY"
INTERNAL_SECRET_FILE = "DEPLOYSTREAM_INTERNAL_SECRET"  # noqa: S105 (a file name)


def write_private(path: Path, content: str) -> None:
    """Write ``content`` to ``path``, readable by its owner only from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content)
    os.replace(staging, path)


def development_credentials(var_dir: Path) -> tuple[dict[str, str], str]:
    """A clients file with the development client and a token signing key, both under
    ``var_dir``; the secret is DEPLOYSTREAM_DEV_SECRET or a fresh random one."""
    secret = os.environ.get("DEPLOYSTREAM_DEV_SECRET") or new_secret()
    clients = var_dir / "clients.yaml"
    write_private(clients, development_clients_yaml(DEV_CLIENT, secret))
    write_private(var_dir / "dev-client.json", json.dumps({"id": DEV_CLIENT, "secret": secret}))
    env = {
        "DEPLOYSTREAM_CLIENTS_FILE": str(clients),
        "DEPLOYSTREAM_TOKEN_SIGNING_KEY": secrets.token_urlsafe(48),
    }
    return env, secret


def _keep_or_write(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    write_private(path, make)
    return make


def compose_secrets(folder: Path) -> list[Path]:
    """The secrets of a compose installation, made once (existing files are kept):

    - ``gateway/``: the token signing key, the internal secret, ``clients.yaml`` with one
      client ``admin`` (every scope) and that client's secret in ``admin-client-secret``;
    - ``worker/``: the internal secret only (the worker never sees client credentials).
    """
    gateway, worker = folder / "gateway", folder / "worker"
    _keep_or_write(gateway / SIGNING_KEY_FILE, secrets.token_urlsafe(48))
    internal = _keep_or_write(gateway / INTERNAL_SECRET_FILE, secrets.token_urlsafe(32))
    _keep_or_write(worker / INTERNAL_SECRET_FILE, internal)
    client_secret = _keep_or_write(gateway / f"{COMPOSE_CLIENT}-client-secret", new_secret())
    _keep_or_write(
        gateway / "clients.yaml", development_clients_yaml(COMPOSE_CLIENT, client_secret)
    )
    return sorted(p for p in folder.rglob("*") if p.is_file())
