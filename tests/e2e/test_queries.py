"""The query API against a real stack: what shipped an issue, what is where, an environment's
history, the pipelines; exact pages while writes happen; one tenant only; and the change
stream, resumable without gaps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import Stack, secret_of
from tests.e2e.test_deployments_api import deployment

Q = "/rest/deploystream/1"


def shipped(
    number: int,
    *,
    pipeline: str = "qweb",
    environment: str = "prod",
    usn: int = 1,
    issues: tuple[str, ...] = ("QRY-1",),
    minute: int = 0,
) -> dict[str, Any]:
    return deployment(
        number=number,
        usn=usn,
        issueKeys=list(issues),
        lastUpdated=f"2026-03-01T10:{minute:02d}:00Z",
        pipeline={"id": pipeline, "displayName": pipeline, "url": "https://ci.example.com"},
        environment={"id": environment, "displayName": environment, "type": "testing"},
    )


def submit(stack: Stack, *deployments: dict[str, Any], client: httpx.Client | None = None) -> None:
    http = client or stack.http
    response = http.post(
        "/rest/deployments/0.1/bulk", json={"deployments": list(deployments)}, timeout=30
    )
    assert response.status_code == 202, response.text
    assert response.json()["rejectedDeployments"] == []


def values(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    return list(response.json()["values"])


def all_pages(client: httpx.Client, path: str, limit: int, between: Any = None) -> list[Any]:
    found: list[Any] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = client.get(path, params=params)
        found += values(page)
        cursor = page.json()["next"]
        if cursor is None:
            return found
        if between is not None:
            between()
        params = {"limit": limit, "cursor": cursor}


def test_an_issue_lists_its_deployments_newest_first_across_pipelines(stack: Stack) -> None:
    submit(
        stack,
        shipped(1, minute=1),
        shipped(2, minute=5),
        shipped(1, pipeline="qapi", environment="staging", minute=3),
        shipped(3, issues=("QRY-2",), minute=9),
    )
    stack.wait_caught_up()
    listed = values(stack.http.get(f"{Q}/issues/QRY-1/deployments"))
    assert [(d["pipelineId"], d["deploymentSequenceNumber"]) for d in listed] == [
        ("qweb", 2),
        ("qapi", 1),
        ("qweb", 1),
    ]
    assert listed[0]["environmentId"] == "prod"
    assert listed[0]["issueKeys"] == ["QRY-1"]
    # The other form of the path, as OAuth clients call it.
    oauth = stack.http.get("/jira/deploystream/1/cloud/anything/issues/QRY-1/deployments")
    assert values(oauth) == listed


def test_pages_are_exact_while_writes_happen(stack: Stack) -> None:
    submit(
        stack, *(shipped(n, pipeline="qpage", issues=("QRY-9",), minute=n) for n in range(1, 21))
    )
    stack.wait_caught_up()
    written = iter(range(100, 110))

    def write_more() -> None:
        number = next(written)
        # A newer deployment sorts first: it must not shift what the next page holds.
        submit(stack, shipped(number, pipeline="qpage", issues=("QRY-9",), minute=59))

    listed = all_pages(stack.http, f"{Q}/issues/QRY-9/deployments", 3, between=write_more)
    numbers = [d["deploymentSequenceNumber"] for d in listed]
    assert len(numbers) == len(set(numbers)), "a deployment was listed twice"
    assert set(range(1, 21)) <= set(numbers), "a deployment that was there was skipped"
    old = [n for n in numbers if n < 100]
    assert old == sorted(old, reverse=True)


def test_an_environments_history_and_its_latest_deployment(stack: Stack) -> None:
    submit(stack, *(shipped(n, pipeline="qhist", environment="prod") for n in (4, 9, 1, 7)))
    submit(stack, shipped(12, pipeline="qhist", environment="qa"))
    stack.wait_caught_up()
    history = all_pages(stack.http, f"{Q}/pipelines/qhist/environments/prod/deployments", 2)
    assert [d["deploymentSequenceNumber"] for d in history] == [9, 7, 4, 1]
    latest = values(stack.http.get(f"{Q}/pipelines/qhist/environments"))
    assert {d["environmentId"]: d["deploymentSequenceNumber"] for d in latest} == {
        "prod": 9,
        "qa": 12,
    }

    assert stack.http.delete(stack.path("qhist", "prod", 9)).status_code == 202
    stack.wait_caught_up()
    history = values(stack.http.get(f"{Q}/pipelines/qhist/environments/prod/deployments"))
    assert [d["deploymentSequenceNumber"] for d in history] == [7, 4, 1]
    latest = values(stack.http.get(f"{Q}/pipelines/qhist/environments"))
    assert {d["environmentId"]: d["deploymentSequenceNumber"] for d in latest}["prod"] == 7


def test_an_update_moves_a_deployment_between_issues(stack: Stack) -> None:
    submit(stack, shipped(1, pipeline="qmove", issues=("QRY-5",)))
    stack.wait_caught_up()
    submit(stack, shipped(1, pipeline="qmove", usn=2, issues=("QRY-6",)))
    stack.wait_caught_up()
    assert values(stack.http.get(f"{Q}/issues/QRY-5/deployments")) == []
    moved = values(stack.http.get(f"{Q}/issues/QRY-6/deployments"))
    assert [(d["pipelineId"], d["updateSequenceNumber"]) for d in moved] == [("qmove", 2)]


def test_pipelines_and_environments_of_the_caller_only(stack: Stack) -> None:
    submit(stack, shipped(1, pipeline="qlist-a", environment="dev"))
    submit(stack, shipped(2, pipeline="qlist-a", environment="prod"))
    with stack.client("beta") as beta:
        submit(stack, shipped(1, pipeline="qlist-secret", issues=("SECRET-1",)), client=beta)
        stack.wait_caught_up()
        mine = all_pages(stack.http, f"{Q}/pipelines", 2)
        theirs = values(beta.get(f"{Q}/pipelines"))
        assert values(beta.get(f"{Q}/issues/QRY-1/deployments")) == []
    pipelines = {p["pipelineId"]: p["environments"] for p in mine}
    assert pipelines["qlist-a"] == ["dev", "prod"]
    assert "qlist-secret" not in pipelines
    assert [p["pipelineId"] for p in theirs] == ["qlist-secret"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_pages_are_400(stack: Stack, query: dict[str, str], message: str) -> None:
    response = stack.http.get(f"{Q}/pipelines", params=query)
    assert response.status_code == 400
    assert message in response.json()[0]["message"]


def test_a_cursor_of_another_query_or_tenant_is_refused(stack: Stack) -> None:
    submit(stack, *(shipped(n, pipeline="qcur", issues=("QRY-7",)) for n in range(1, 4)))
    stack.wait_caught_up()
    cursor = stack.http.get(f"{Q}/issues/QRY-7/deployments", params={"limit": 1}).json()["next"]
    assert cursor is not None
    other = stack.http.get(f"{Q}/issues/QRY-8/deployments", params={"cursor": cursor})
    assert other.status_code == 400
    with stack.client("beta") as beta:
        stolen = beta.get(f"{Q}/issues/QRY-7/deployments", params={"cursor": cursor})
    assert stolen.status_code == 400


def test_queries_need_credentials_and_the_read_scope(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as anonymous:
        assert anonymous.get(f"{Q}/pipelines").status_code == 401
    with stack.client("approver") as approver:
        assert approver.get(f"{Q}/pipelines").status_code == 200  # READ, nothing of its own


class Listener:
    """Reads a change stream in a thread; events as (name, id, data)."""

    def __init__(self, stack: Stack, client_id: str, last_id: str | None = None) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.status = 0
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self._client = httpx.Client(
            base_url=stack.base_url,
            auth=(client_id, secret_of(client_id)),
            timeout=httpx.Timeout(30, read=None),
        )
        self._thread = threading.Thread(target=self._read, args=(headers,), daemon=True)
        self._thread.start()
        assert self.ready.wait(30)

    def _read(self, headers: dict[str, str]) -> None:
        with self._client.stream("GET", f"{Q}/changes", headers=headers) as response:
            self.status = response.status_code
            self.ready.set()
            name = ident = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    self.events.append((name, ident, orjson.loads(line[6:])))

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[str, str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.events)

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        listener.close()


def test_the_change_stream_delivers_the_callers_changes_and_resumes(
    stack: Stack, listeners: list[Listener]
) -> None:
    alpha = Listener(stack, "alpha")
    beta = Listener(stack, "beta")
    listeners += [alpha, beta]
    assert alpha.status == 200
    time.sleep(1)  # the streams are placed at the end of the topic
    submit(stack, shipped(1, pipeline="qsse"))
    submit(stack, shipped(2, pipeline="qsse"))
    events = alpha.wait_for(2)
    # Order holds per deployment (per partition); these two may come either way round.
    assert {(n, d["pipelineId"], d["deploymentSequenceNumber"]) for n, _, d in events} == {
        ("deployment", "qsse", 1),
        ("deployment", "qsse", 2),
    }
    assert stack.http.delete(stack.path("qsse", "prod", 1)).status_code == 202
    events = alpha.wait_for(3)
    assert events[2][0] == "deleted"
    assert events[2][2] == {
        "pipelineId": "qsse",
        "environmentId": "prod",
        "deploymentSequenceNumber": 1,
    }
    assert beta.events == [], "another tenant's changes must never show"

    # A client that saw only the first event resumes after it and misses nothing.
    resumed = Listener(stack, "alpha", last_id=events[0][1])
    listeners.append(resumed)
    again = resumed.wait_for(2)
    assert sorted((n, d["deploymentSequenceNumber"]) for n, _, d in again) == sorted(
        (n, d["deploymentSequenceNumber"]) for n, _, d in events[1:]
    )


def test_a_foreign_event_id_is_refused(stack: Stack) -> None:
    response = stack.http.get(f"{Q}/changes", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 400
