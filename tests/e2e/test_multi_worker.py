"""Two workers, eight partitions: lookups are answered by the key's owner, whichever worker or
gateway is asked, and survive the loss of a worker without losing anything.

The tests of this module share one stack and run in order; the last one kills a worker.
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from gateway.events import deployment_key
from schemas.lookups import Answer, Status, decode_answers, encode_keys
from streams.internal_auth import INTERNAL_SECRET_HEADER
from tests.e2e.conftest import Stack, start_stack

PARTITIONS = 8
#: The stack's HTTP client authenticates as client "alpha"; the tenant is the client id.
TENANT = "alpha"
PIPELINES = [f"service-{i}" for i in range(10)]
ENVIRONMENTS = ["dev", "staging", "prod"]
NUMBERS = range(1, 11)
#: Short, so that the test does not wait Kafka's 45 s for the group to notice a dead worker.
SESSION_TIMEOUT_S = 6
LOOKUP = "/internal/deployments"
SERVED_BY = "X-Deploystream-Served-By"


def internal(stack: Stack) -> dict[str, str]:
    """The header a worker needs on internal calls."""
    return {INTERNAL_SECRET_HEADER: stack.config.internal_secret}


@dataclass(frozen=True)
class Key:
    pipeline: str
    environment: str
    number: int

    def encoded(self) -> bytes:
        return deployment_key(TENANT, self.pipeline, self.environment, self.number)

    def partition(self) -> int:
        return int(DefaultPartitioner()(self.encoded(), list(range(PARTITIONS)), []))


KEYS = [Key(p, e, n) for p in PIPELINES for e in ENVIRONMENTS for n in NUMBERS]


def deployment(key: Key, usn: int) -> dict[str, Any]:
    return {
        "deploymentSequenceNumber": key.number,
        "updateSequenceNumber": usn,
        "displayName": f"{key.pipeline}/{key.environment}#{key.number} v{usn}",
        "url": f"https://ci.example.com/{key.pipeline}/{key.number}",
        "description": "multi-worker",
        "lastUpdated": "2026-01-01T12:00:00Z",
        "state": "successful",
        "issueKeys": ["OPS-1"],
        "pipeline": {"id": key.pipeline, "displayName": key.pipeline, "url": "https://ci"},
        "environment": {"id": key.environment, "displayName": key.environment, "type": "testing"},
    }


def submit(stack: Stack, deployments: list[dict[str, Any]]) -> None:
    for start in range(0, len(deployments), 100):
        response = stack.submit(*deployments[start : start + 100])
        assert response.status_code == 202, response.text
        assert response.json()["rejectedDeployments"] == []


def worker_url(stack: Stack, index: int) -> str:
    return f"http://127.0.0.1:{stack.config.worker_ports[index]}"


def assignment(url: str) -> dict[str, set[int]]:
    """Table partitions a worker holds, by role, from its /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    roles: dict[str, set[int]] = {"active": set(), "standby": set()}
    pattern = r'deploystream_worker_table_partitions\{partition="(\d+)",role="(\w+)"\} 1\.0'
    for partition, role in re.findall(pattern, text):
        roles[role].add(int(partition))
    return roles


def wrong_lookups(stack: Stack, expected: dict[Key, int]) -> list[tuple[Key, int, str]]:
    """Keys whose lookup through the gateway is not the expected deployment."""
    wrong = []
    for key, usn in expected.items():
        response = stack.http.get(stack.path(key.pipeline, key.environment, key.number))
        body = response.json() if response.status_code == 200 else None
        if body != {**deployment(key, usn), "schemaVersion": "1.0"}:
            wrong.append((key, response.status_code, response.text[:200]))
    return wrong


def wait_settled(stack: Stack, timeout: float = 60) -> None:
    """Both workers ready and owning partitions. start_stack waits for each worker to be ready
    once; if they joined the group one after the other, the first may still be recovering
    from the second rebalance."""
    deadline = time.monotonic() + timeout
    while not all(
        httpx.get(f"{worker_url(stack, i)}/readyz", timeout=5).status_code == 200
        and assignment(worker_url(stack, i))["active"]
        for i in range(2)
    ):
        assert time.monotonic() < deadline, "the two workers did not settle"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    running = start_stack(
        kafka,
        schema_registry,
        tmp_path_factory.mktemp("multi"),
        workers=2,
        partitions=PARTITIONS,
        env={"DEPLOYSTREAM_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S)},
    )
    try:
        wait_settled(running)
        yield running
    finally:
        running.http.close()
        running.stop()


@pytest.fixture(scope="module")
def expected(stack: Stack) -> dict[Key, int]:
    """300 deployments over 300 keys, applied by both workers; the updateSequenceNumber each
    key should have (the failover test raises some)."""
    submit(stack, [deployment(key, 1) for key in KEYS])
    stack.wait_caught_up()
    return dict.fromkeys(KEYS, 1)


def test_keys_spread_over_every_partition() -> None:
    # Guards the premise of the other tests: both workers own keys of this data set.
    assert {key.partition() for key in KEYS} == set(range(PARTITIONS))


def test_each_worker_owns_partitions_and_stands_by_for_the_others(stack: Stack) -> None:
    first, second = (assignment(worker_url(stack, i)) for i in range(2))
    assert first["active"] and second["active"]
    assert first["active"] | second["active"] == set(range(PARTITIONS))
    assert not first["active"] & second["active"]
    # One standby replica: each worker keeps a warm copy of what the other owns.
    assert first["standby"] == second["active"]
    assert second["standby"] == first["active"]


def test_every_lookup_through_the_gateway_is_right(stack: Stack, expected: dict[Key, int]) -> None:
    assert wrong_lookups(stack, expected) == []


def test_either_worker_answers_for_keys_owned_by_each(
    stack: Stack, expected: dict[Key, int]
) -> None:
    urls = [worker_url(stack, i) for i in range(2)]
    owner_of = {p: url for url in urls for p in assignment(url)["active"]}
    served_by: set[str] = set()
    # Workers answer internal calls only with the stack's secret (forwarded ones included).
    with httpx.Client(timeout=10, headers=internal(stack)) as client:
        for key in expected:
            encoded = base64.urlsafe_b64encode(key.encoded()).decode()
            answers = [client.get(f"{url}{LOOKUP}", params={"key": encoded}) for url in urls]
            for answer in answers:
                assert answer.status_code == 200, (key, answer.text)
                assert answer.json()["deployment"] == {
                    **deployment(key, 1),
                    "schemaVersion": "1.0",
                }
                # Read from the table of the worker that owns the key's partition, whether
                # that worker was asked directly or through the other one.
                assert answer.headers[SERVED_BY] == owner_of[key.partition()]
            served_by.add(answers[0].headers[SERVED_BY])
    assert served_by == set(urls)


def test_each_worker_reports_the_partitions_it_answers_for(stack: Stack) -> None:
    # What the gateway routes lookups by: together, every partition, each exactly once.
    with httpx.Client(timeout=10, headers=internal(stack)) as client:
        said = [client.get(f"{worker_url(stack, i)}/internal/assignment").json() for i in range(2)]
    assert all(s["ready"] and s["partitionCount"] == PARTITIONS for s in said)
    first, second = (set(s["partitions"]) for s in said)
    assert first and second and not first & second
    assert first | second == set(range(PARTITIONS))
    assert first == assignment(worker_url(stack, 0))["active"]


def test_a_batch_sent_to_one_worker_is_answered_for_both(
    stack: Stack, expected: dict[Key, int]
) -> None:
    # The keys of both workers' partitions (and one absent key) in one request to each
    # worker: its own are read, the other's forwarded in one batch; answers in key order.
    keys = [*expected, Key("service-0", "dev", 999)]
    body = encode_keys([key.encoded() for key in keys])
    with httpx.Client(timeout=10, headers=internal(stack)) as client:
        for index in range(2):
            response = client.post(
                f"{worker_url(stack, index)}/internal/lookups",
                params={"view": "deployment"},
                content=body,
            )
            assert response.status_code == 200, response.text
            answers = decode_answers(response.content, len(keys))
            assert answers[-1] == Answer(Status.ABSENT)
            for key, answer in zip(keys[:-1], answers, strict=False):
                assert answer.status is Status.FOUND, (key, answer)
                assert orjson.loads(answer.body) == {
                    **deployment(key, expected[key]),
                    "schemaVersion": "1.0",
                }


def test_the_gateway_sends_each_lookup_to_the_owner_of_its_partition(
    stack: Stack, expected: dict[Key, int]
) -> None:
    def forwarded() -> float:
        text = "".join(httpx.get(f"{worker_url(stack, i)}/metrics").text for i in range(2))
        found = re.findall(r'deploystream_worker_lookups_total\{result="forwarded"\} (\S+)', text)
        return sum(float(n) for n in found)

    time.sleep(1.5)  # the gateway's view of the assignment is at most a second old
    before = forwarded()
    assert wrong_lookups(stack, expected) == []
    assert forwarded() == before, "lookups went to a worker that does not own the key"


ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|\s*$")
DITTO = "\u3003"  # faust writes 〃 for "same topic as the row above"


def recovery_table(log: str, title: str, topic: str, after: int) -> dict[int, int]:
    """The rows of ``topic`` in the last of faust's recovery log tables called ``title``
    (e.g. ``Highwater - Active``) written after offset ``after`` of the log: changelog
    partition -> offset. faust logs the last offset of each partition, and the offset it
    starts reading at (-1: nothing)."""
    start = log.rfind(f"+{title}", after)
    assert start >= 0, f"no {title!r} table in the log after offset {after}"
    rows: dict[int, int] = {}
    current = ""
    for line in log[start:].splitlines()[3:]:
        match = ROW.match(line)
        if match is None:
            break
        current = current if match[1] == DITTO else match[1]
        if current == topic:
            rows[int(match[2])] = int(match[3])
    return rows


def test_queries_read_every_partition_of_both_workers(
    stack: Stack, expected: dict[Key, int]
) -> None:
    # Each worker answers for its own partitions; the gateway merges both pages.
    listed = stack.http.get("/rest/deploystream/1/pipelines", params={"limit": 200})
    assert listed.status_code == 200
    pipelines = {p["pipelineId"]: p["environments"] for p in listed.json()["values"]}
    assert pipelines == {p: sorted(ENVIRONMENTS) for p in PIPELINES}
    history = stack.http.get(
        f"/rest/deploystream/1/pipelines/{PIPELINES[0]}/environments/prod/deployments",
        params={"limit": 4},
    ).json()
    numbers = [d["deploymentSequenceNumber"] for d in history["values"]]
    assert numbers == sorted(NUMBERS, reverse=True)[:4]
    rest = stack.http.get(
        f"/rest/deploystream/1/pipelines/{PIPELINES[0]}/environments/prod/deployments",
        params={"limit": 200, "cursor": history["next"]},
    ).json()
    assert numbers + [d["deploymentSequenceNumber"] for d in rest["values"]] == sorted(
        NUMBERS, reverse=True
    )


def test_lookups_are_right_again_after_a_worker_is_killed(
    stack: Stack, expected: dict[Key, int]
) -> None:
    survivor, victim = worker_url(stack, 0), worker_url(stack, 1)
    before = assignment(survivor)
    taken_over = assignment(victim)["active"]
    assert before["standby"] == taken_over
    log_path = stack.workers[0].log_path
    marker = len(log_path.read_text())

    stack.workers[1].kill()
    killed_at = time.monotonic()
    # Until the group notices, the survivor still routes the victim's keys to the victim:
    # it answers 503 (the gateway retries those), not a 500 or a hang.
    victim_key = next(k for k in KEYS if k.partition() in taken_over)
    encoded = base64.urlsafe_b64encode(victim_key.encoded()).decode()
    direct = httpx.get(
        f"{survivor}{LOOKUP}", params={"key": encoded}, headers=internal(stack), timeout=10
    )
    assert direct.status_code == 503, direct.text
    assert "unreachable" in direct.json()[0]["message"]
    assert direct.headers["Retry-After"]
    # Updates submitted while a worker is down are not lost either.
    updated = KEYS[::7]
    submit(stack, [deployment(key, 2) for key in updated])
    expected.update(dict.fromkeys(updated, 2))

    # Until the group notices (session timeout) and the survivor recovers, lookups of the
    # victim's keys are 503 after the gateway's retries; never a wrong answer or a 404.
    probes = {next(k for k in KEYS if k.partition() == p): p for p in range(PARTITIONS)}
    statuses: Counter[int] = Counter()
    while assignment(survivor)["active"] != set(range(PARTITIONS)):
        assert time.monotonic() - killed_at < SESSION_TIMEOUT_S + 60, "no reassignment"
        for key in probes:
            response = stack.http.get(stack.path(key.pipeline, key.environment, key.number))
            statuses[response.status_code] += 1
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                assert response.json()["updateSequenceNumber"] in (1, expected[key])
    reassigned_after = time.monotonic() - killed_at

    stack.wait_caught_up()
    assert wrong_lookups(stack, expected) == []

    # The partitions taken over were standbys: recovery started at (or next to) their last
    # offset instead of replaying the state topic from the beginning.
    log = log_path.read_text()
    topic = stack.config.state_topic
    highwaters = recovery_table(log, "Highwater - Active", topic, marker)
    starts = recovery_table(log, "Reading Starts At - Active", topic, marker)
    assert set(highwaters) == set(starts) == set(range(PARTITIONS))
    replayed = {p: highwaters[p] - starts[p] for p in sorted(taken_over)}
    print(
        f"\nreassigned {reassigned_after:.1f}s after the kill; gateway answers meanwhile "
        f"{dict(statuses)}; records replayed by partition taken over: {replayed}"
    )
    # Each taken-over partition has state (it is not a replay from -1)...
    assert all(starts[p] >= 0 for p in taken_over), starts
    # ...and the standby had applied (nearly) all of it before the kill.
    assert all(n <= 5 for n in replayed.values()), (highwaters, starts)
