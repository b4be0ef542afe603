"""``server.properties`` of a local broker: where it listens, what it tells clients, where it
keeps its data. The rest of the configuration is ``server.properties.in``, the same for every
broker we start (tests, ``make run``, the compose service)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "Listener",
    "ListenerError",
    "loopback_listener",
    "parse_listeners",
    "server_properties",
]

#: The controller's listener name; client listeners may not take it.
CONTROLLER = "CONTROLLER"
_ENDPOINT = re.compile(r"^([A-Z][A-Z0-9_]*)://([^:/\s]*):(\d{1,5})$")
# Recognised, not bound: a listener on any of these is reached locally on 127.0.0.1.
_EVERY_INTERFACE = ("", "0.0.0.0", "::")  # noqa: S104


class ListenerError(ValueError):
    """A listener specification Kafka would refuse, or that leaves a listener unusable."""


@dataclass(frozen=True)
class Listener:
    """A client listener: bound to ``host:port``, announced to clients as ``advertised``."""

    name: str
    host: str
    port: int
    advertised: str
    protocol: str = "PLAINTEXT"

    @property
    def local(self) -> str:
        """``host:port`` at which a process on the same machine reaches the listener."""
        host = "127.0.0.1" if self.host in _EVERY_INTERFACE else self.host
        return f"{host}:{self.port}"


def loopback_listener(port: int, protocol: str = "PLAINTEXT") -> Listener:
    """The listener of the tests' and ``make run``'s brokers: 127.0.0.1 only, named after
    its protocol."""
    return Listener(protocol, "127.0.0.1", port, f"127.0.0.1:{port}", protocol)


def _endpoints(spec: str, option: str) -> dict[str, tuple[str, int]]:
    endpoints: dict[str, tuple[str, int]] = {}
    for item in (part.strip() for part in spec.split(",")):
        match = _ENDPOINT.match(item)
        if match is None:
            msg = f"{option}: {item!r} is not NAME://HOST:PORT (NAME in capitals)"
            raise ListenerError(msg)
        name, host, port = match[1], match[2], int(match[3])
        if name == CONTROLLER:
            msg = f"{option}: {CONTROLLER} is the controller's listener, not a client one"
            raise ListenerError(msg)
        if name in endpoints:
            msg = f"{option}: listener {name} is given twice"
            raise ListenerError(msg)
        if not 0 < port < 65536:
            msg = f"{option}: port {port} of {name} is out of range"
            raise ListenerError(msg)
        endpoints[name] = (host, port)
    return endpoints


def parse_listeners(listeners: str, advertised: str) -> tuple[Listener, ...]:
    """PLAINTEXT client listeners from Kafka's own notation: ``listeners`` and
    ``advertised_listeners`` are ``NAME://HOST:PORT,...``, each listener advertised exactly
    once, at an address clients can dial. The first is the inter-broker listener."""
    bound = _endpoints(listeners, "listeners")
    told = _endpoints(advertised, "advertised listeners")
    if bound.keys() != told.keys():
        msg = (
            f"every listener needs one advertised address: listeners {sorted(bound)}, "
            f"advertised {sorted(told)}"
        )
        raise ListenerError(msg)
    ports = [port for _, port in bound.values()]
    if len(set(ports)) != len(ports):
        msg = f"listeners share a port: {listeners}"
        raise ListenerError(msg)
    for name, (host, port) in told.items():
        if host in _EVERY_INTERFACE:
            msg = f"{name} advertises {host or 'no host'}:{port}, which no client can dial"
            raise ListenerError(msg)
    return tuple(
        Listener(name, host, port, ":".join(map(str, told[name])))
        for name, (host, port) in bound.items()
    )


def server_properties(
    listeners: Sequence[Listener],
    controller_port: int,
    log_dirs: Path,
    controller_protocol: str = "PLAINTEXT",
) -> str:
    """The broker's configuration: ``listeners`` for clients (the first one also between
    brokers), the controller on 127.0.0.1 only (one node: nobody else dials it)."""
    if not listeners:
        msg = "a broker needs at least one client listener"
        raise ListenerError(msg)
    protocols = {CONTROLLER: controller_protocol} | {item.name: item.protocol for item in listeners}
    bound = [f"{item.name}://{item.host}:{item.port}" for item in listeners]
    lines = {
        "@LISTENERS@": ",".join([*bound, f"{CONTROLLER}://127.0.0.1:{controller_port}"]),
        "@ADVERTISED@": ",".join(f"{item.name}://{item.advertised}" for item in listeners),
        "@INTER_BROKER@": listeners[0].name,
        "@PROTOCOLS@": ",".join(f"{name}:{protocol}" for name, protocol in protocols.items()),
        "@CONTROLLER_PORT@": str(controller_port),
        "@LOG_DIRS@": str(log_dirs),
    }
    text = resources.files(__package__).joinpath("server.properties.in").read_text()
    for placeholder, value in lines.items():
        text = text.replace(placeholder, value)
    return text
