"""docker-compose.yml against the Dockerfile, the commands and the settings classes the services
really run with.

No Docker engine is needed: the compose file is parsed; the kafka and registry services'
commands are parsed by the very click commands they name and turned into the broker and the
registry those commands would start; the worker's and gateway's environment is fed to
``GatewaySettings`` / ``WorkerSettings`` exactly as a container would see it.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from pydantic_settings import BaseSettings

from deploystream.kafka.broker import LocalKafka
from deploystream.registry.apicurio import CCOMPAT_PATH, JAVA_MINIMUM, LocalRegistry
from deploystream.services import broker_of, registry_of
from deploystream.services import kafka as kafka_command
from deploystream.services import registry as registry_command
from gateway.settings import GatewaySettings
from streams.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"

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


def build_of(svc: dict[str, Any]) -> tuple[Path, str | None]:
    """(Dockerfile, target) a service is built from."""
    build = svc["build"]
    if isinstance(build, str):
        return (ROOT / build / "Dockerfile").resolve(), None
    dockerfile = build.get("dockerfile", "Dockerfile")
    return (ROOT / build["context"] / dockerfile).resolve(), build.get("target")


def command_of(svc: dict[str, Any]) -> list[str]:
    command = svc.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def options_of(compose: dict[str, Any], name: str, command: click.Command) -> dict[str, Any]:
    """The options ``command`` parses from the service's command line, which must run it."""
    args = command_of(service(compose, name))
    assert args[:4] == ["python", "-m", "deploystream", command.name], args
    return command.make_context(str(command.name), args[4:]).params


def compose_broker(compose: dict[str, Any]) -> LocalKafka:
    """The broker the kafka service's command would start."""
    return broker_of(lambda: Path("/jars"), **options_of(compose, "kafka", kafka_command))


def compose_registry(compose: dict[str, Any]) -> LocalRegistry:
    """The registry the registry service's command would start (Java and management port
    given, so that nothing is looked up)."""
    built = registry_of(Path("/app"), **options_of(compose, "registry", registry_command))
    built.java, built.management_port = Path("/usr/bin/java"), 9000
    return built


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


@dataclass
class Stage:
    """A stage of the Dockerfile: its name, what it is built FROM, its other instructions
    (continuation lines joined, comments dropped)."""

    name: str | None
    base: str
    instructions: list[str] = field(default_factory=list)

    def runs(self) -> str:
        return " ".join(i for i in self.instructions if i.upper().startswith("RUN "))

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.instructions:
            if instruction.upper().startswith("ENV "):
                values |= dict(item.split("=", 1) for item in shlex.split(instruction[4:]))
        return values


def dockerfile_stages() -> list[Stage]:
    stages: list[Stage] = []
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0].upper() == "FROM":
            named = len(words) == 4 and words[2].upper() == "AS"
            stages.append(Stage(words[3] if named else None, words[1]))
        else:
            stages[-1].instructions.append(line)
    return stages


def stage(name: str) -> Stage:
    found = [s for s in dockerfile_stages() if s.name == name]
    assert len(found) == 1, f"the Dockerfile needs exactly one stage {name!r}"
    return found[0]


def effective_user(name: str) -> str:
    """The USER a target runs as, inherited from its base stage when it sets none."""
    current: Stage | None = stage(name)
    while current is not None:
        users = [i.split(None, 1)[1] for i in current.instructions if i.upper().startswith("USER ")]
        if users:
            return users[-1]
        names = {s.name for s in dockerfile_stages()}
        current = stage(current.base) if current.base in names else None
    return "root"


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
    endpoints = {listener.advertised for listener in compose_broker(compose).client_listeners()}
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


def test_services_start_after_kafka_and_the_registry_are_healthy_and_gateway_after_worker(
    compose: dict[str, Any],
) -> None:
    for name in ("kafka", "registry"):
        assert service(compose, name).get("healthcheck", {}).get("test"), name
    assert service(compose, "registry")["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in SETTINGS_OF_SERVICE:
        depends = service(compose, name).get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("kafka", {}).get("condition") == "service_healthy", name
        assert depends.get("registry", {}).get("condition") == "service_healthy", name
    assert "worker" in service(compose, "gateway")["depends_on"]


@pytest.mark.parametrize(("name", "module"), [("worker", "streams"), ("gateway", "gateway")])
def test_service_runs_its_module_from_the_repository_image(
    compose: dict[str, Any], name: str, module: str
) -> None:
    svc = service(compose, name)
    assert build_of(svc) == (DOCKERFILE, "runtime")
    assert command_of(svc) == ["python", "-m", module]


def test_worker_data_dir_is_a_named_volume(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = str(settings_from_compose(compose, "worker", monkeypatch).data_dir)
    sources = [
        src for src, target in volume_mounts(service(compose, "worker")) if target == data_dir
    ]
    assert sources, f"nothing is mounted on the worker's data_dir {data_dir}"
    assert set(sources) <= set(compose.get("volumes") or {}), f"not named volumes: {sources}"


def test_every_image_compose_runs_is_a_non_root_user(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        _, target = build_of(svc)
        assert target is not None, f"{name}: name the Dockerfile target"
        user = effective_user(target)
        assert user.split(":")[0] not in {"root", "0"}, f"{name} ({target}) runs as {user}"


def test_every_service_is_built_from_the_project_dockerfile_or_pinned_by_digest(
    compose: dict[str, Any],
) -> None:
    targets = {s.name for s in dockerfile_stages()}
    for name, svc in compose["services"].items():
        if "build" not in svc:
            assert re.search(r"@sha256:[0-9a-f]{64}$", svc.get("image", "")), name
            continue
        dockerfile, target = build_of(svc)
        assert dockerfile == DOCKERFILE, name
        assert target in targets, f"{name}: {target!r} is not a stage of the Dockerfile"
        # An image name beside build is pulled when a registry has it.
        assert "image" not in svc, name


def test_the_dockerfile_pulls_one_base_image_of_a_named_debian_release_the_readme_names() -> None:
    stages, external = dockerfile_stages(), set()
    for index, each in enumerate(stages):
        if each.base not in {s.name for s in stages[:index]}:
            external.add(each.base)
    assert len(external) == 1, external
    (base,) = external
    # The release is in the tag: the Debian package names in the java stage depend on it.
    assert re.fullmatch(r"python:3\.11-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base)
    assert f"`{base}`" in README.read_text(encoding="utf-8")


def test_the_broker_and_registry_run_the_java_image_with_a_debian_java_new_enough(
    compose: dict[str, Any],
) -> None:
    for name in ("kafka", "registry"):
        assert build_of(service(compose, name)) == (DOCKERFILE, "java"), name
    java = stage("java")
    assert java.base == "runtime"
    # Apicurio 3.3's minimum; Kafka 4 needs 17.
    majors = [int(m) for m in re.findall(r"\bopenjdk-(\d+)-jre-headless\b", java.runs())]
    assert majors, "the java stage installs no Debian openjdk"
    assert min(majors) >= JAVA_MINIMUM
    # Nothing there could fetch an artifact at run time.
    assert "maven" not in java.runs()


def test_the_java_image_holds_the_artifacts_checked_when_it_was_built() -> None:
    artifacts, java = stage("artifacts"), stage("java")
    # The checked fetch of `make kafka-jars` and `make registry-app`.
    assert "from deploystream.kafka.jars import ensure_libs; print(ensure_libs())" in (
        artifacts.runs()
    )
    assert "from deploystream.registry.apicurio import ensure_app; print(ensure_app())" in (
        artifacts.runs()
    )
    # Readable by the unprivileged user the java image runs as, not only by the builder.
    assert "chmod -R a+rX /opt/deploystream" in artifacts.runs()
    assert "COPY --from=artifacts /opt/deploystream /opt/deploystream" in java.instructions
    for variable in ("DEPLOYSTREAM_KAFKA_CACHE", "DEPLOYSTREAM_REGISTRY_CACHE"):
        assert java.env()[variable] == artifacts.env()[variable]
        assert java.env()[variable].startswith("/opt/deploystream/")


def test_the_compose_broker_is_make_runs_broker_but_for_its_listeners(
    compose: dict[str, Any],
) -> None:
    ours = compose_broker(compose)
    theirs = LocalKafka(
        Path("/jars"), work_dir=ours.work_dir, port=9092, controller_port=ours.controller_port
    )
    mine, make_run = properties(ours.properties()), properties(theirs.properties())
    differing = {k for k in mine.keys() | make_run.keys() if mine.get(k) != make_run.get(k)}
    assert differing == {"listeners", "advertised.listeners", "listener.security.protocol.map"}
    assert mine["auto.create.topics.enable"] == "false"
    assert ours.console, "the service logs to the container's output"


def test_the_compose_broker_serves_its_network_and_the_published_host_port_only(
    compose: dict[str, Any],
) -> None:
    broker = compose_broker(compose)
    internal, *others = broker.client_listeners()
    assert (internal.host, internal.advertised) == ("0.0.0.0", f"kafka:{internal.port}")
    published = published_ports(service(compose, "kafka"))
    assert published, "the host listener must be published"
    for _, host_port, container_port in published:
        matching = [each for each in others if str(each.port) == container_port]
        assert matching, f"container port {container_port} is no host listener"
        # Host clients are told the address they dialled.
        assert matching[0].advertised == f"127.0.0.1:{host_port}"
    assert str(broker.controller_port) not in {target for _, _, target in published}
    assert str(internal.port) not in {target for _, _, target in published}


def test_kafka_data_is_a_named_volume_the_image_lets_its_user_write(
    compose: dict[str, Any],
) -> None:
    data_dir = str(compose_broker(compose).work_dir)
    sources = [s for s, target in volume_mounts(service(compose, "kafka")) if target == data_dir]
    assert sources, f"nothing is mounted on the broker's data dir {data_dir}"
    assert set(sources) <= set(compose.get("volumes") or {}), f"not named volumes: {sources}"
    chowned = re.search(r"chown -R deploystream:deploystream ([^&]+)", stage("runtime").runs())
    assert chowned is not None
    assert data_dir in chowned[1].split()


def test_the_broker_and_registry_health_checks_probe_their_own_port_from_python(
    compose: dict[str, Any],
) -> None:
    kafka = service(compose, "kafka")["healthcheck"]["test"]
    assert kafka[:3] == ["CMD", "python", "-c"], "no second JVM for a health check"
    assert f"metadata_ready('127.0.0.1', {compose_broker(compose).port})" in kafka[3]
    registry = service(compose, "registry")["healthcheck"]["test"]
    assert registry[:3] == ["CMD", "python", "-c"]
    assert f"'{compose_registry(compose).url}/subjects'" in registry[3]


@pytest.mark.parametrize("name", ["kafka", "registry"])
def test_compose_lets_the_command_stop_its_jvm_before_killing_it(
    compose: dict[str, Any], name: str
) -> None:
    grace = re.fullmatch(r"(\d+)s", str(service(compose, name).get("stop_grace_period", "10s")))
    assert grace is not None
    waits = [inspect.signature(k.stop).parameters["timeout"].default for k in (LocalKafka,)]
    waits.append(inspect.signature(LocalRegistry.stop).parameters["timeout"].default)
    assert int(grace[1]) > max(waits)


def test_services_register_with_the_compose_registry_on_its_container_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = compose_registry(compose)
    command = registry.command()
    assert "-Dapicurio.storage.kind=kafkasql" in command
    assert registry.compatibility == "BACKWARD"
    # Reachable on the compose network; its management listener is not.
    assert "-Dquarkus.http.host=0.0.0.0" in command
    assert "-Dquarkus.management.host=127.0.0.1" in command
    advertised = {each.advertised for each in compose_broker(compose).client_listeners()}
    assert registry.bootstrap in advertised
    container_ports = {target for _, _, target in published_ports(service(compose, "registry"))}
    assert str(registry.port) in container_ports
    for name in SETTINGS_OF_SERVICE:
        url = urlsplit(settings_from_compose(compose, name, monkeypatch).schema_registry_url)
        assert url.hostname == "registry"
        assert url.port == registry.port
        assert url.path == CCOMPAT_PATH
