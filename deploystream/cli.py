"""``deploystream``: the operator's command line (``run`` starts the whole stack)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from deploystream.kafka.broker import free_port
from deploystream.kafka.provision import provide_broker
from deploystream.stack import StackConfig, gateway_process, worker_process
from streams.settings import WorkerSettings
from streams.topics import ensure_topic

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


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """deploystream: Jira Deployments API on Kafka."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@main.command()
@click.option("--kafka-port", default=9092, show_default=True, help="Broker port (Maven/Docker).")
@click.option("--gateway-port", default=8080, show_default=True, help="Gateway HTTP port.")
@click.option("--worker-port", default=6066, show_default=True, help="Worker HTTP port.")
@click.option("--partitions", default=8, show_default=True, help="Partitions of the topic.")
@click.option(
    "--var-dir",
    default=Path("var"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Broker data, worker RocksDB data and logs.",
)
def run(
    kafka_port: int, gateway_port: int, worker_port: int, partitions: int, var_dir: Path
) -> None:
    """Start broker, worker and gateway on 127.0.0.1 until Ctrl-C or SIGTERM."""
    stop = _stop_on_signals()
    var_dir = var_dir.resolve()
    with provide_broker(port=kafka_port, work_dir=var_dir / "kafka") as broker:
        settings = WorkerSettings(kafka_bootstrap=broker.bootstrap, partitions=partitions)
        ensure_topic(broker.bootstrap, settings.deployments_topic, partitions, 1)
        config = StackConfig(
            bootstrap=broker.bootstrap,
            gateway_port=gateway_port,
            worker_ports=[worker_port],
            data_dir=var_dir / "data",
            log_dir=var_dir / "logs",
            partitions=partitions,
            extra_env={"DEPLOYSTREAM_DEV_MODE": "true"},
        )
        worker = worker_process(config).start()
        gateway = gateway_process(config).start()
        try:
            worker.wait_ready()
            gateway.wait_ready()
            base = f"http://127.0.0.1:{gateway_port}"
            click.echo(
                f"\ndeploystream is running ({broker.kind} broker at {broker.bootstrap}).\n"
                f"  gateway  {base}   (/healthz /readyz /metrics)\n"
                f"  worker   http://127.0.0.1:{worker_port}   (/healthz /readyz /metrics)\n"
                f"  logs     {config.log_dir}\n\n"
                "Development mode: requests are not authenticated; all data belongs to the\n"
                "'dev' tenant. Try:\n\n"
                f"  curl -sS -X POST {base}/rest/deployments/0.1/bulk \\\n"
                f"    -H 'Content-Type: application/json' -d '{json.dumps(SAMPLE)}'\n"
                f"  curl -sS {base}/rest/deployments/0.1/pipelines/web/environments/prod"
                "/deployments/1\n\nCtrl-C stops everything.\n"
            )
            while not stop.wait(1.0):
                for service in (worker, gateway):
                    if service.process is not None and service.process.poll() is not None:
                        logger.error("%s exited; see %s", service.name, service.log_path)
                        stop.set()
        finally:
            for service in (gateway, worker):
                code = service.stop()
                logger.info("%s stopped (exit %s)", service.name, code)


@main.command()
@click.option("--port", default=None, type=int, help="Broker port (default: a free one).")
def kafka(port: int | None) -> None:
    """Run only the broker (Maven jars or Docker) until Ctrl-C."""
    stop = _stop_on_signals()
    with provide_broker(port=port or free_port()) as broker:
        click.echo(f"Kafka ({broker.kind}) at {broker.bootstrap}; Ctrl-C stops it.")
        stop.wait()


if __name__ == "__main__":
    sys.exit(main())
