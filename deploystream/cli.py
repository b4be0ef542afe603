"""``deploystream``: the operator's command line (``run`` starts the whole stack)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
import httpx

from deploystream.credentials import DEV_CLIENT, compose_secrets, development_credentials
from deploystream.issues import issues
from deploystream.kafka.acls import kafka_acls_commands, service_acls
from deploystream.kafka.provision import provide_broker
from deploystream.load import load
from deploystream.migrate import frame_topics_command
from deploystream.registry.provision import provide_registry
from deploystream.services import kafka, registry, stop_on_signals
from deploystream.stack import StackConfig, start_services
from deploystream.tail import tail
from gateway.clients import hash_secret, new_secret

__all__ = ["main"]

logger = logging.getLogger("deploystream")

SAMPLE = {
    "deployments": [
        {
            "deploymentSequenceNumber": 1,
            "updateSequenceNumber": 1,
            "displayName": "Deploy #1",
            "url": "https://ci.example.com/deploy/1",
            "description": "First deployment",
            "lastUpdated": "2026-01-01T12:00:00Z",
            "state": "successful",
            "issueKeys": ["OPS-1"],
            "pipeline": {"id": "web", "displayName": "Web", "url": "https://ci.example.com/web"},
            "environment": {"id": "prod", "displayName": "Production", "type": "production"},
        }
    ]
}


#: How long `run` waits for each service to stop before it kills it: above the worker's own
#: bound (DEPLOYSTREAM_SHUTDOWN_TIMEOUT_S, 8 s) and the gateway's drain.
STOP_TIMEOUT_S = 12.0


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """deploystream: Jira Deployments API on Kafka."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@main.command()
@click.option("--kafka-port", default=9092, show_default=True, help="Broker port.")
@click.option("--gateway-port", default=8080, show_default=True, help="Gateway HTTP port.")
@click.option("--worker-port", default=6066, show_default=True, help="Worker HTTP port.")
@click.option(
    "--registry-port", default=8081, show_default=True, help="Schema registry port (Apicurio)."
)
@click.option("--partitions", default=8, show_default=True, help="Partitions of the topic.")
@click.option(
    "--var-dir",
    default=Path("var"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Broker data, registry logs, worker RocksDB data and logs.",
)
def run(
    kafka_port: int,
    gateway_port: int,
    worker_port: int,
    registry_port: int,
    partitions: int,
    var_dir: Path,
) -> None:
    """Start broker, schema registry, worker and gateway on 127.0.0.1 until Ctrl-C or
    SIGTERM."""
    stop = stop_on_signals()
    var_dir = var_dir.resolve()
    credentials, secret = development_credentials(var_dir)
    with (
        provide_broker(port=kafka_port, work_dir=var_dir / "kafka") as broker,
        provide_registry(
            broker.bootstrap, port=registry_port, work_dir=var_dir / "registry"
        ) as registry,
    ):
        config = StackConfig(
            bootstrap=broker.bootstrap,
            registry_url=registry.url,
            gateway_port=gateway_port,
            worker_ports=[worker_port],
            data_dir=var_dir / "data",
            log_dir=var_dir / "logs",
            partitions=partitions,
            extra_env=credentials,
        )
        services = start_services(config, worker_timeout=90, gateway_timeout=90)
        try:
            base = services.base_url
            click.echo(
                f"\ndeploystream is running ({broker.kind} broker at {broker.bootstrap}).\n"
                f"  gateway  {base}   (/healthz /readyz /metrics)\n"
                f"  worker   http://127.0.0.1:{worker_port}   (/healthz /readyz /metrics)\n"
                f"  registry {registry.url}   ({registry.kind}; Confluent-compatible API)\n"
                f"  logs     {config.log_dir}\n\n"
                f"Development client '{DEV_CLIENT}' (every scope), secret: {secret}\n"
                f"  (clients file {credentials['DEPLOYSTREAM_CLIENTS_FILE']};"
                " set DEPLOYSTREAM_DEV_SECRET to choose the secret)\n\n"
                "Try:\n\n"
                f"  curl -sS -u {DEV_CLIENT}:{secret} -X POST {base}/rest/deployments/0.1/bulk \\\n"
                f"    -H 'Content-Type: application/json' -d '{json.dumps(SAMPLE)}'\n"
                f"  curl -sS -u {DEV_CLIENT}:{secret} {base}/rest/deployments/0.1/pipelines/web"
                "/environments/prod/deployments/1\n"
                f"  TOKEN=$(.venv/bin/deploystream token)   # a Bearer token for scripts\n\n"
                f"  .venv/bin/deploystream tail --registry-url {registry.url} --follow\n\n"
                "Ctrl-C stops everything.\n"
            )
            while not stop.wait(1.0):
                for service in services.processes:
                    if service.process is not None and service.process.poll() is not None:
                        logger.error("%s exited; see %s", service.name, service.log_path)
                        stop.set()
                if registry.local is not None and not registry.local.running():
                    logger.error("the schema registry exited; see %s", registry.local.log_file)
                    stop.set()
        finally:
            # Gateway, then worker (it bounds its own stop), then the broker on leaving the
            # `with`: each still has what it needs while it stops.
            for name, code in services.stop(timeout=STOP_TIMEOUT_S).items():
                logger.info("%s stopped (exit %s)", name, code)


@main.command()
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Gateway URL.")
@click.option("--client-id", envvar="DEPLOYSTREAM_CLIENT_ID", help="Default: the dev client.")
@click.option("--client-secret", envvar="DEPLOYSTREAM_CLIENT_SECRET", help="Default: dev secret.")
@click.option("--scope", multiple=True, help="OAuth scope to ask for (repeatable).")
@click.option("--var-dir", default=Path("var"), type=click.Path(path_type=Path), show_default=True)
def token(
    url: str,
    client_id: str | None,
    client_secret: str | None,
    scope: tuple[str, ...],
    var_dir: Path,
) -> None:
    """Print an OAuth access token (client credentials) for scripts."""
    if client_id is None or client_secret is None:
        dev_file = var_dir / "dev-client.json"
        if not dev_file.exists():
            msg = "give --client-id/--client-secret, or start `make run` for the dev client"
            raise click.UsageError(msg)
        dev = json.loads(dev_file.read_text())
        client_id, client_secret = client_id or dev["id"], client_secret or dev["secret"]
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if scope:
        form["scope"] = " ".join(scope)
    try:
        response = httpx.post(f"{url.rstrip('/')}/oauth/token", data=form, timeout=10)
    except httpx.HTTPError as exc:
        msg = f"cannot reach {url}: {exc}"
        raise click.ClickException(msg) from exc
    if response.status_code != 200:
        msg = f"token request failed ({response.status_code}): {response.text}"
        raise click.ClickException(msg)
    click.echo(response.json()["access_token"])


@main.command()
def secret() -> None:
    """Generate a client secret / API token and the hash to put in the clients file."""
    value = new_secret()
    click.echo(f"secret: {value}\nhash:   {hash_secret(value)}")


@main.command("compose-secrets")
@click.argument("folder", type=click.Path(path_type=Path))
def compose_secrets_command(folder: Path) -> None:
    """Create the secrets of a compose installation under FOLDER once (existing ones are kept);
    prints file names, never their contents."""
    for path in compose_secrets(folder):
        click.echo(str(path))


@main.command("kafka-acls")
@click.option("--gateway-user", default="deploystream-gateway", show_default=True)
@click.option("--worker-user", default="deploystream-worker", show_default=True)
@click.option("--deployments-topic", default="deployments", show_default=True)
@click.option("--state-topic", default="deployments-state", show_default=True)
@click.option("--dead-letter-topic", default="deployments-dead-letter", show_default=True)
@click.option("--issues-topic", default="deployments-issues", show_default=True)
@click.option("--app-id", default="deploystream", show_default=True)
@click.option("--bootstrap", default="BROKER:9093", show_default=True)
def kafka_acls(
    gateway_user: str,
    worker_user: str,
    deployments_topic: str,
    state_topic: str,
    dead_letter_topic: str,
    issues_topic: str,
    app_id: str,
    bootstrap: str,
) -> None:
    """Print the kafka-acls.sh commands granting the services exactly what they need."""
    acls = service_acls(
        gateway_user,
        worker_user,
        deployments_topic=deployments_topic,
        state_topic=state_topic,
        dead_letter_topic=dead_letter_topic,
        issues_topic=issues_topic,
        app_id=app_id,
    )
    click.echo(kafka_acls_commands(acls, bootstrap))


main.add_command(kafka)
main.add_command(registry)
main.add_command(load)
main.add_command(issues)
main.add_command(tail)
main.add_command(frame_topics_command)


if __name__ == "__main__":
    sys.exit(main())
