"""Credentials files are private from their first byte, and the compose secrets are made
once, split between gateway and worker, and never printed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deploystream.cli import main
from deploystream.credentials import compose_secrets, development_credentials
from gateway.settings import GatewaySettings
from streams.settings import WorkerSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_run_credentials_are_created_private_not_restricted_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were a file written with the default mode and chmod-ed after, it would be readable by
    # others in between; with chmod unavailable that shows as a world-readable file.
    previous = os.umask(0o022)
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    try:
        env, secret = development_credentials(tmp_path)
    finally:
        os.umask(previous)
    files = [Path(env["DEPLOYSTREAM_CLIENTS_FILE"]), tmp_path / "dev-client.json"]
    for path in files:
        assert mode(path) == 0o600, path
    assert secret in (tmp_path / "dev-client.json").read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_compose_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    first = {p: p.read_text() for p in compose_secrets(tmp_path)}
    second = {p: p.read_text() for p in compose_secrets(tmp_path)}
    assert first == second
    assert all(mode(p) == 0o600 for p in first)
    names = {p.relative_to(tmp_path).as_posix() for p in first}
    assert names == {
        "gateway/DEPLOYSTREAM_TOKEN_SIGNING_KEY",
        "gateway/DEPLOYSTREAM_INTERNAL_SECRET",
        "gateway/clients.yaml",
        "gateway/admin-client-secret",
        "worker/DEPLOYSTREAM_INTERNAL_SECRET",
    }


def test_services_load_their_compose_secrets_from_their_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose_secrets(tmp_path)
    for key in list(os.environ):
        if key.startswith("DEPLOYSTREAM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DEPLOYSTREAM_SECRETS_DIR", str(tmp_path / "gateway"))
    gateway = GatewaySettings.load()
    monkeypatch.setenv("DEPLOYSTREAM_SECRETS_DIR", str(tmp_path / "worker"))
    worker = WorkerSettings.load()
    assert gateway.internal_secret is not None and worker.internal_secret is not None
    assert gateway.internal_secret.get_secret_value() == worker.internal_secret.get_secret_value()
    assert gateway.token_signing_key is not None
    assert len(gateway.token_signing_key.get_secret_value()) >= 32
    clients = yaml.safe_load((tmp_path / "gateway" / "clients.yaml").read_text())
    assert set(clients["clients"]) == {"admin"}


def test_the_compose_secrets_command_prints_names_never_secrets(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compose-secrets", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            assert path.read_text().strip() not in result.output
