"""``deploystream kafka`` and ``deploystream registry``: the broker and the schema registry as
long-lived services in the foreground (what the compose file's ``kafka`` and ``registry``
services run).

They are the :class:`LocalKafka` and :class:`LocalRegistry` that ``make run`` and the tests
start, from the same checked artifacts, with the addresses a service needs and their output on
the standard output. Nothing is downloaded when the artifacts are in their caches (the image
bakes them in); a service whose JVM exits makes the command exit 1, for a supervisor to restart.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from deploystream.kafka.broker import BrokerError, LocalKafka
from deploystream.kafka.jars import KAFKA_VERSION, ensure_libs
from deploystream.kafka.properties import Listener, ListenerError, parse_listeners
from deploystream.registry.apicurio import (
    APICURIO_VERSION,
    LocalRegistry,
    RegistryError,
    ensure_app,
)
from deploystream.registry.java import JavaNotFound

__all__ = ["broker_of", "kafka", "registry", "registry_of", "stop_on_signals"]

logger = logging.getLogger("deploystream")

#: A first start in a container on a busy host (a KafkaSQL registry took 27 s on 2 cores).
START_TIMEOUT_S = 180.0
#: Apicurio's global compatibility rules.
COMPATIBILITY = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM (Ctrl-C, ``docker stop``), instead of dying."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _serve(service: LocalKafka | LocalRegistry, name: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(1.0):
            if not service.running():
                msg = f"{name} exited on its own"
                raise click.ClickException(msg)
    finally:
        service.stop()


def broker_of(
    libs: Callable[[], Path],
    *,
    port: int | None,
    listeners: str | None,
    advertised_listeners: str | None,
    controller_port: int | None,
    data_dir: Path | None,
    heap: str,
) -> LocalKafka:
    """The broker ``deploystream kafka`` runs with these options, not started; ``libs``
    provides the jars once the options are known to be valid."""
    if listeners is None:
        if advertised_listeners is not None:
            msg = "--advertised-listeners needs --listeners"
            raise click.UsageError(msg)
        parsed: tuple[Listener, ...] = ()
    elif port is not None:
        msg = "give --port or --listeners, not both"
        raise click.UsageError(msg)
    else:
        try:
            parsed = parse_listeners(listeners, advertised_listeners or listeners)
        except ListenerError as exc:
            raise click.BadParameter(str(exc), param_hint="--listeners") from exc
    return LocalKafka(
        libs(),
        work_dir=data_dir,
        port=port,
        controller_port=controller_port,
        heap=heap,
        listeners=parsed,
        console=True,
    )


@click.command()
@click.option(
    "--port", type=int, help="One PLAINTEXT listener on 127.0.0.1:PORT (default: a free port)."
)
@click.option(
    "--listeners",
    help="Client listeners instead, in Kafka's notation: NAME://HOST:PORT[,...], all PLAINTEXT;"
    " the first is also the inter-broker listener.",
)
@click.option(
    "--advertised-listeners",
    help="What clients are told for each listener: NAME://HOST:PORT[,...] (default: --listeners).",
)
@click.option(
    "--controller-port", type=int, help="The controller's port, on 127.0.0.1 (default: a free one)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data, kept across restarts (formatted on first use). Default: a temporary folder,"
    " removed on exit.",
)
@click.option("--heap", default="512m", show_default=True, help="JVM heap (-Xms and -Xmx).")
def kafka(
    port: int | None,
    listeners: str | None,
    advertised_listeners: str | None,
    controller_port: int | None,
    data_dir: Path | None,
    heap: str,
) -> None:
    """Run a single-node Kafka broker (KRaft, from the checked Maven jars) until Ctrl-C or
    SIGTERM; its log on the standard output."""
    try:
        broker = broker_of(
            ensure_libs,
            port=port,
            listeners=listeners,
            advertised_listeners=advertised_listeners,
            controller_port=controller_port,
            data_dir=data_dir,
            heap=heap,
        )
        stop = stop_on_signals()
        broker.start(START_TIMEOUT_S)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    for listener in broker.client_listeners():
        click.echo(
            f"Kafka {KAFKA_VERSION}: {listener.name} on {listener.host}:{listener.port},"
            f" advertised as {listener.advertised}"
        )
    click.echo("Kafka is ready; Ctrl-C or SIGTERM stops it.")
    _serve(broker, "the broker", stop)


def registry_of(
    app: Path, *, bootstrap: str, host: str, port: int, compatibility: str, topic_prefix: str
) -> LocalRegistry:
    """The registry ``deploystream registry`` runs with these options (nothing is started)."""
    return LocalRegistry(
        app,
        bootstrap=bootstrap,
        host=host,
        port=port,
        compatibility=compatibility,
        topic_prefix=topic_prefix,
        console=True,
    )


@click.command()
@click.option(
    "--bootstrap",
    default="127.0.0.1:9092",
    show_default=True,
    help="The Kafka cluster that stores the schemas (KafkaSQL).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the API.")
@click.option("--port", default=8081, show_default=True, help="Port of the API.")
@click.option(
    "--compatibility",
    type=click.Choice(COMPATIBILITY),
    default="BACKWARD",
    show_default=True,
    help="Global compatibility rule (Apicurio's own default is NONE).",
)
@click.option(
    "--topic-prefix",
    default="deploystream-registry",
    show_default=True,
    help="Its topics: PREFIX-journal, PREFIX-snapshots, PREFIX-events.",
)
def registry(bootstrap: str, host: str, port: int, compatibility: str, topic_prefix: str) -> None:
    """Run Apicurio Registry (from the checked Maven Central archive), its schemas in Kafka,
    until Ctrl-C or SIGTERM; its Confluent-compatible API at /apis/ccompat/v7."""
    try:
        service = registry_of(
            ensure_app(),
            bootstrap=bootstrap,
            host=host,
            port=port,
            compatibility=compatibility,
            topic_prefix=topic_prefix,
        )
        stop = stop_on_signals()
        service.start(START_TIMEOUT_S)
    except (RegistryError, JavaNotFound) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Apicurio Registry {APICURIO_VERSION} ready on {host}:{port}, API at"
        f" {service.url}, schemas on {bootstrap}, compatibility {compatibility};"
        " Ctrl-C or SIGTERM stops it."
    )
    _serve(service, "the registry", stop)
