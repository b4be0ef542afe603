"""Compare what the stack holds with the reference model: through lookups at the gateway, and
by rebuilding current state from the public state topic."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastavro import schemaless_reader
from fastavro.schema import load_schema

from chaos.load import deployment_path
from chaos.model import Key, LaneModel, State
from chaos.queries import Body, named_issues
from schemas.registry import FramedCodec, SchemaRegistry

__all__ = [
    "Mismatch",
    "lookup_mismatches",
    "read_state_topic",
    "seen_of",
    "state_topic_mismatches",
    "table_differences",
]

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
#: How long one key's lookup keeps retrying 503s (rebalance, recovery) before it counts.
LOOKUP_RETRY_S = 60.0

#: What a lookup can see of a state: its number and name (properties are not served).
Seen = tuple[int, str] | None


@dataclass(frozen=True)
class Mismatch:
    """A key whose stored state is none of the states the model allows.

    ``kind``: ``lost`` (absent, but an acknowledged write must be there), ``stale`` (an
    older state than every allowed one), ``resurrected`` (present, but every allowed state is
    absent) or ``wrong`` (anything else, e.g. the loser of an equal-number conflict).
    """

    key: Key
    kind: str
    actual: object
    allowed: tuple[object, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "lane": self.key.lane,
            "environment": self.key.environment,
            "number": self.key.number,
            "kind": self.kind,
            "actual": repr(self.actual),
            "allowed": [repr(a) for a in self.allowed],
        }


def _usn(state: object) -> int:
    assert isinstance(state, State | tuple)
    return state.usn if isinstance(state, State) else int(state[0])


def _mismatch(key: Key, actual: object, allowed: set[Any]) -> Mismatch | None:
    if actual in allowed:
        return None
    present = [a for a in allowed if a is not None]
    if actual is None:
        kind = "lost"
    elif not present:
        kind = "resurrected"
    elif _usn(actual) < min(_usn(a) for a in present):
        kind = "stale"
    else:
        kind = "wrong"
    ordered = tuple(sorted(allowed, key=lambda a: (a is not None, repr(a))))
    return Mismatch(key, kind, actual, ordered)


def _keys(models: Iterable[tuple[Iterable[Key], LaneModel]]) -> list[tuple[Key, LaneModel]]:
    return [(key, model) for keys, model in models for key in keys]


def seen_of(body: Body | None) -> Seen:
    """What the lookup check compares of a looked-up deployment."""
    if body is None:
        return None
    return int(body["updateSequenceNumber"]), str(body["displayName"])


def _lookup(client: httpx.Client, key: Key) -> Body | None:
    deadline = time.monotonic() + LOOKUP_RETRY_S
    while True:
        response = client.get(deployment_path(key))
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            body: Body = response.json()
            return body
        if response.status_code != 503 or time.monotonic() > deadline:
            msg = f"lookup of {key} answered {response.status_code}: {response.text[:300]}"
            raise AssertionError(msg)
        time.sleep(0.2)


def lookup_all(
    base_url: str, auth: tuple[str, str], keys: Iterable[Key], threads: int = 4
) -> dict[Key, Body | None]:
    """What the gateway answers for each key (``None``: 404)."""
    wanted = list(keys)
    with (
        httpx.Client(base_url=base_url, auth=auth, timeout=30.0) as client,
        ThreadPoolExecutor(threads) as pool,
    ):
        return dict(zip(wanted, pool.map(lambda key: _lookup(client, key), wanted), strict=True))


def lookup_mismatches(
    base_url: str,
    auth: tuple[str, str],
    models: Iterable[tuple[Iterable[Key], LaneModel]],
    threads: int = 4,
) -> tuple[int, list[Mismatch], dict[Key, Body | None]]:
    """Look every key up through the gateway: (keys checked, mismatches, the answers)."""
    pairs = _keys(models)
    bodies = lookup_all(base_url, auth, (key for key, _ in pairs), threads)
    found = []
    for key, model in pairs:
        allowed = {None if s is None else (s.usn, s.name) for s in model.states(key)}
        mismatch = _mismatch(key, seen_of(bodies[key]), allowed)
        if mismatch is not None:
            found.append(mismatch)
    return len(pairs), sorted(found, key=lambda m: m.key), bodies


def table_differences(seen: dict[Key, Seen], rebuilt: dict[Key, State]) -> list[dict[str, Any]]:
    """Keys whose state the tables (by lookup) and the state topic (rebuilt from scratch)
    disagree on, whatever the model allows: the two must be equal key for key."""
    differences = []
    for key in sorted(set(seen) | set(rebuilt)):
        table = seen.get(key)
        state = rebuilt.get(key)
        topic = None if state is None else (state.usn, state.name)
        if table != topic:
            differences.append(
                {
                    "lane": key.lane,
                    "environment": key.environment,
                    "number": key.number,
                    "table": table,
                    "stateTopic": topic,
                }
            )
    return differences


def read_state_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[bytes, bytes]:
    """Current state from the state topic: the latest value of every key (tombstones drop
    the key), read from the beginning up to the end offsets of the moment."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    state: dict[bytes, bytes] = {}
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends: dict[int, int] = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                msg = f"state topic not read to its end within {timeout:.0f}s: {ends}"
                raise TimeoutError(msg)
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                msg = f"reading the state topic failed: {message.error()}"
                raise RuntimeError(msg)
            key, value = message.key(), message.value()
            partition, offset = message.partition(), message.offset()
            assert key is not None and partition is not None and offset is not None
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()
    return state


_KEY_SCHEMA = load_schema(str(SCHEMAS / "deploystream.DeploymentKey.avsc"))


def _decode(schema: Any, data: bytes) -> dict[str, Any]:
    decoded = schemaless_reader(io.BytesIO(data), schema, None)
    assert isinstance(decoded, dict)
    return decoded


def state_topic_mismatches(
    bootstrap: str,
    registry_url: str,
    topic: str,
    tenant: str,
    models: Iterable[tuple[Iterable[Key], LaneModel]],
) -> tuple[int, list[Mismatch], dict[Key, State]]:
    """Rebuild current state from the state topic (values read through the registry, keys
    plain Avro) and compare every key, properties and issues included: (keys checked,
    mismatches, the rebuilt state)."""
    pairs = _keys(models)
    environments = {key.environment for key, _ in pairs}
    rebuilt: dict[Key, State] = {}
    with SchemaRegistry(registry_url) as registry:
        values = FramedCodec("StoredDeployment", registry)
        records = {k: values.decode(v) for k, v in read_state_topic(bootstrap, topic).items()}
    for raw_key, value in records.items():
        fields = _decode(_KEY_SCHEMA, raw_key)
        if (
            fields["tenant"] != tenant
            or not fields["pipelineId"].startswith("chaos-")
            or fields["environmentId"] not in environments
        ):
            continue
        lane = int(fields["pipelineId"].removeprefix("chaos-"))
        deployment = value["deployment"]
        rebuilt[Key(lane, fields["deploymentSequenceNumber"], fields["environmentId"])] = State(
            deployment["updateSequenceNumber"],
            deployment["displayName"],
            tuple(sorted((value["properties"] or {}).items())),
            named_issues(deployment),
        )
    found = []
    unwritten = dict(rebuilt)
    for key, model in pairs:
        mismatch = _mismatch(key, unwritten.pop(key, None), set(model.states(key)))
        if mismatch is not None:
            found.append(mismatch)
    # Keys nobody wrote must not be there either.
    found.extend(Mismatch(key, "resurrected", state, (None,)) for key, state in unwritten.items())
    return len(pairs), sorted(found, key=lambda m: m.key), rebuilt
