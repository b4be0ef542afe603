"""docker-compose.yml against the settings classes the services really read.

No Docker engine is needed: the compose file is parsed and its environment is fed to
``GatewaySettings`` / ``WorkerSettings`` exactly as a container would see it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploystream.kafka.provision import docker_broker
from gateway.settings import GatewaySettings
from streams.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SETTINGS_OF_SERVICE: dict[str, type[BaseSettings]] = {
    "worker": WorkerSettings,
    "gateway": GatewaySettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"service {name!r} missing from docker-compose.yml"
    return services[name]


def environment(compose: dict[str, Any], name: str) -> dict[str, Any]:
    """A service's environment as a mapping; compose allows a mapping or a list of K=V."""
    env = service(compose, name).get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    """The variables a settings class reads: its env_prefix plus each field name."""
    prefix = settings_class.model_config.get("env_prefix", "")
    return {f"{prefix}{field}".upper() for field in settings_class.model_fields}


def settings_from_compose(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Build the service's settings with exactly the compose environment (nothing inherited)."""
    settings_class = SETTINGS_OF_SERVICE[name]
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    for key in list(os.environ):
        if key.upper().startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in environment(compose, name).items():
        monkeypatch.setenv(key, str(value))
    return settings_class()


def published_ports(svc: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """(host_ip, host port, container port) of each ``ports`` entry, short or long syntax."""
    result: list[tuple[str | None, str, str]] = []
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            published = str(entry.get("published", ""))
            result.append((entry.get("host_ip"), published, str(entry["target"])))
            continue
        parts = str(entry).split("/", 1)[0].rsplit(":", 2)
        ip = parts[0] if len(parts) == 3 else None
        host = parts[-2] if len(parts) >= 2 else ""
        result.append((ip, host, parts[-1]))
    return result


def volume_mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each ``volumes`` entry, short or long syntax."""
    mounts = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            mounts.append((source, target))
    return mounts


def test_compose_file_defines_kafka_worker_and_gateway(compose: dict[str, Any]) -> None:
    assert {"kafka", "worker", "gateway"} <= set(compose.get("services") or {})


@pytest.mark.parametrize("name", sorted(SETTINGS_OF_SERVICE))
def test_service_environment_only_sets_variables_its_settings_read(
    compose: dict[str, Any], name: str
) -> None:
    valid = env_names(SETTINGS_OF_SERVICE[name])
    unknown = sorted(key for key in environment(compose, name) if key.upper() not in valid)
    # extra="ignore" in the settings classes would silently drop a misspelt variable.
    assert not unknown, f"{name} sets variables its settings never read: {unknown}"


@pytest.mark.parametrize("name", sorted(SETTINGS_OF_SERVICE))
def test_service_environment_values_are_strings(compose: dict[str, Any], name: str) -> None:
    # Unquoted YAML scalars are retyped before compose sees them (yes/on -> boolean, 0x1F or
    # 1e3 -> number); only a quoted string reaches the container exactly as written.
    bad = {k: v for k, v in environment(compose, name).items() if not isinstance(v, str)}
    assert not bad, f"{name} has non-string environment values: {bad}"


def test_worker_settings_from_compose_bind_all_interfaces_and_advertise_service_url(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from_compose(compose, "worker", monkeypatch)
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.worker_host == "0.0.0.0"
    assert settings.worker_port == 6066
    assert isinstance(settings.worker_port, int)
    assert settings.worker_url == "http://worker:6066"
    assert settings.data_dir == Path("/data")


def test_gateway_settings_from_compose_listen_publicly_and_know_the_worker(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from_compose(compose, "gateway", monkeypatch)
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.gateway_host == "0.0.0.0"
    assert settings.gateway_port == 8080
    assert isinstance(settings.gateway_port, int)
    assert settings.worker_urls == ["http://worker:6066"]


def test_gateway_runs_with_a_clients_file_and_secrets_not_in_dev_mode(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from_compose(compose, "gateway", monkeypatch)
    assert settings.dev_mode is False
    assert settings.dev_secret is None
    assert settings.clients_file is not None
    assert settings.secrets_dir is not None
    assert settings.clients_file.parent == settings.secrets_dir
    # Secrets come from files in the secrets folder, never from the compose file itself.
    env = environment(compose, "gateway")
    for name in ("DEPLOYSTREAM_TOKEN_SIGNING_KEY", "DEPLOYSTREAM_INTERNAL_SECRET"):
        assert name not in env


def test_services_read_credentials_the_credentials_service_made(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    maker = service(compose, "credentials")
    assert maker["command"] == ["python", "-m", "deploystream", "compose-secrets", "/secrets"]
    made = dict((target, source) for source, target in volume_mounts(maker))
    for name in ("gateway", "worker"):
        settings = settings_from_compose(compose, name, monkeypatch)
        mounts = dict((target, source) for source, target in volume_mounts(service(compose, name)))
        assert mounts[str(settings.secrets_dir)] == made[str(settings.secrets_dir)]
        depends = service(compose, name)["depends_on"]["credentials"]
        assert depends["condition"] == "service_completed_successfully"
        entries = [str(e) for e in service(compose, name)["volumes"]]
        assert any(e.endswith(f"{settings.secrets_dir}:ro") for e in entries), entries


def test_the_worker_never_sees_client_credentials(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = settings_from_compose(compose, "worker", monkeypatch)
    gateway = settings_from_compose(compose, "gateway", monkeypatch)
    worker_sources = {src for src, _ in volume_mounts(service(compose, "worker"))}
    gateway_secrets = {
        src
        for src, target in volume_mounts(service(compose, "gateway"))
        if target == str(gateway.secrets_dir)
    }
    assert worker.secrets_dir != gateway.secrets_dir
    assert not worker_sources & gateway_secrets


def test_gateway_worker_urls_point_at_the_worker_service_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = settings_from_compose(compose, "worker", monkeypatch)
    gateway = settings_from_compose(compose, "gateway", monkeypatch)
    assert worker.worker_url in gateway.worker_urls
    for url in gateway.worker_urls:
        parts = urlsplit(url)
        assert parts.hostname in compose["services"], f"{url} is not a compose service"
        assert parts.port == worker.worker_port


def test_kafka_bootstrap_of_services_is_an_advertised_listener(compose: dict[str, Any]) -> None:
    advertised = str(environment(compose, "kafka")["KAFKA_ADVERTISED_LISTENERS"])
    endpoints = {item.split("://", 1)[1] for item in advertised.split(",")}
    for name in SETTINGS_OF_SERVICE:
        bootstrap = environment(compose, name)["DEPLOYSTREAM_KAFKA_BOOTSTRAP"]
        assert set(bootstrap.split(",")) <= endpoints, f"{name}: {bootstrap} not in {endpoints}"


def test_gateway_is_published_only_on_loopback_at_its_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = published_ports(service(compose, "gateway"))
    gateway = settings_from_compose(compose, "gateway", monkeypatch)
    assert ports, "the gateway must be published"
    assert all(ip == "127.0.0.1" for ip, _, _ in ports), ports
    assert ("127.0.0.1", "8080", str(gateway.gateway_port)) in ports


def test_no_service_publishes_beyond_loopback(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for ip, _, _ in published_ports(svc):
            assert ip == "127.0.0.1", f"{name} publishes on {ip or 'all interfaces'}"


def test_worker_web_port_is_not_published(compose: dict[str, Any]) -> None:
    assert not service(compose, "worker").get("ports")


def test_kafka_image_is_an_apache_kafka_4_release_pinned_by_digest(
    compose: dict[str, Any],
) -> None:
    image = service(compose, "kafka").get("image", "")
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image


def test_every_pulled_image_is_pinned_by_digest(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if "image" in svc:
            assert re.search(r"@sha256:[0-9a-f]{64}$", svc["image"]), (name, svc["image"])


def test_the_docker_broker_of_make_run_is_the_compose_image_published_on_loopback() -> None:
    spec = docker_broker(19092)
    assert spec.image == service(yaml.safe_load(COMPOSE_FILE.read_text()), "kafka")["image"]
    assert spec.ports == {"9092/tcp": ("127.0.0.1", 19092)}


def test_kafka_does_not_auto_create_topics(compose: dict[str, Any]) -> None:
    assert environment(compose, "kafka").get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"


def test_services_start_after_kafka_is_healthy_and_gateway_after_worker(
    compose: dict[str, Any],
) -> None:
    assert service(compose, "kafka").get("healthcheck", {}).get("test")
    for name in SETTINGS_OF_SERVICE:
        depends = service(compose, name).get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("kafka", {}).get("condition") == "service_healthy", name
    assert "worker" in service(compose, "gateway")["depends_on"]


@pytest.mark.parametrize(("name", "module"), [("worker", "streams"), ("gateway", "gateway")])
def test_service_runs_its_module_from_the_repository_image(
    compose: dict[str, Any], name: str, module: str
) -> None:
    svc = service(compose, name)
    build = svc.get("build")
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build["context"], build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    command = svc.get("command")
    command = command.split() if isinstance(command, str) else command
    assert command == ["python", "-m", module]


def test_worker_data_dir_is_a_named_volume(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = str(settings_from_compose(compose, "worker", monkeypatch).data_dir)
    sources = [
        src for src, target in volume_mounts(service(compose, "worker")) if target == data_dir
    ]
    assert sources, f"nothing is mounted on the worker's data_dir {data_dir}"
    assert set(sources) <= set(compose.get("volumes") or {}), f"not named volumes: {sources}"


def test_image_runs_as_a_non_root_user() -> None:
    users = [
        line.split(None, 1)[1].strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip().upper().startswith("USER ")
    ]
    assert users, "Dockerfile never switches away from root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_services_register_with_the_compose_registry_on_its_container_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = service(compose, "registry")
    assert str(registry["image"]).startswith("apicurio/apicurio-registry:3.")
    env = environment(compose, "registry")
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert env["APICURIO_RULES_GLOBAL_COMPATIBILITY"] == "BACKWARD"
    container_ports = {target for _, _, target in published_ports(registry)}
    for name in SETTINGS_OF_SERVICE:
        url = urlsplit(settings_from_compose(compose, name, monkeypatch).schema_registry_url)
        assert url.hostname == "registry"
        assert str(url.port) in container_ports
        assert url.path == "/apis/ccompat/v7"
        assert "registry" in service(compose, name)["depends_on"]
