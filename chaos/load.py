"""Steady load from a few lanes, each a thread sending its own seeded history one request at a
time, recording every answer in its lane's model and in a shared log of samples; and a reader
that looks up the lanes' keys and reads pages of their queries meanwhile.

What the reader is answered is not checked against the model (the writes go on), only that
it is an answer the API documents. It makes the workers render and keep listings of values
that are then changed, deleted, restored from the changelog or moved to another worker, so
that the checks after the run find any listing kept past its value.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from chaos.model import (
    DeleteByKey,
    HistoryConfig,
    Key,
    LaneHistory,
    Operation,
    Outcome,
    Submit,
    SubmitItem,
    issue_pool,
)
from chaos.queries import Q
from deploystream.load import API, DeploymentGenerator, GeneratorConfig, lookup_path

__all__ = ["API", "LoadRunner", "Sample", "deployment_path"]

#: After an answer that asks to retry (503, 429, no connection), a lane waits this long.
BACKOFF_S = 0.1
#: No lane runs longer than this, whatever the caller forgets to stop.
MAX_RUN_S = 3600.0
#: What a read may be answered while the stack is under faults: found, not found (not
#: written yet, or deleted), no owner right now (a rebalance), too many requests.
READ_STATUSES = frozenset({200, 404, 429, 503})


def deployment_path(key: Key) -> str:
    """The API path of ``key``, percent-encoded as clients do."""
    return lookup_path(key.pipeline, key.environment, key.number)


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent and answered, its kind, and the answer."""

    started: float
    finished: float
    kind: str
    status: int | None  # None: no HTTP answer (see ``error``)
    error: str | None = None
    retry_after: str | None = None


def _links(item: SubmitItem) -> dict[str, Any]:
    """``issueKeys`` and ``associations`` naming exactly the item's issues, each through one
    of the three ways a deployment can name an issue (by its position and the item's number),
    and a commit, so that an item that names no issue is still valid."""
    routes: tuple[list[str], list[str], list[str]] = ([], [], [])
    for position, issue in enumerate(item.issues):
        # A numeric issue id is only valid in an issueIdOrKeys association.
        route = (position + item.usn) % 3 if "-" in issue else 2
        routes[route].append(issue)
    top, by_key, by_id = routes
    commit = hashlib.sha1(item.name.encode(), usedforsecurity=False).hexdigest()
    associations: list[dict[str, Any]] = [
        {"associationType": "commit", "values": [{"commitHash": commit, "repositoryId": "chaos"}]}
    ]
    if by_key:
        associations.append({"associationType": "issueKeys", "values": by_key})
    if by_id:
        associations.append({"associationType": "issueIdOrKeys", "values": by_id})
    return (
        {"issueKeys": top, "associations": associations} if top else {"associations": associations}
    )


def _deployment(item: SubmitItem, payloads: DeploymentGenerator) -> dict[str, Any]:
    """A generated payload with the model's key, number, name and issues. ``lastUpdated`` is
    cut to whole seconds: deployments of different lanes then often share one, and the
    order of an issue's deployments with equal ``lastUpdated`` is checked too."""
    key = item.key
    sent = payloads.deployment_for(key.pipeline, key.environment, key.number, item.usn, item.name)
    sent.pop("issueKeys", None)
    sent.pop("associations", None)
    sent.update(_links(item))
    sent["lastUpdated"] = sent["lastUpdated"][:19] + "Z"
    return sent


def _submission(submit: Submit, payloads: DeploymentGenerator) -> dict[str, Any]:
    """The ``POST /bulk`` body: the model's keys, numbers, names and issues in realistic
    payloads."""
    deployments = [_deployment(item, payloads) for item in submit.items]
    return {"deployments": deployments, "properties": dict(submit.properties)}


def _request(
    operation: Operation, payloads: DeploymentGenerator
) -> tuple[str, str, str, dict[str, Any] | None]:
    """(kind, method, url, JSON body) of an operation."""
    if isinstance(operation, Submit):
        return "submit", "POST", f"{API}/bulk", _submission(operation, payloads)
    if isinstance(operation, DeleteByKey):
        url = deployment_path(operation.key)
        if operation.limit is not None:
            url += f"?_updateSequenceNumber={operation.limit}"
        return "delete", "DELETE", url, None
    query = dict(operation.properties)
    if operation.limit is not None:
        query["_updateSequenceNumber"] = str(operation.limit)
    return "delete-by-properties", "DELETE", f"{API}/bulkByProperties?{urlencode(query)}", None


def classify(status: int | None, error: BaseException | None) -> Outcome:
    """What an answer says about whether the operation happened.

    202 is certain. 429 is refused before the handler runs. A refused connection never
    reached a gateway. Everything else (503, a broken or timed-out exchange) is unknown.
    """
    if status == 202:
        return Outcome.ACKED
    if status == 429 or isinstance(error, httpx.ConnectError):
        return Outcome.NOT_APPLIED
    return Outcome.UNKNOWN


@dataclass
class LoadRunner:
    """``lanes`` threads of seeded operations against the gateway at ``base_url``."""

    base_url: str
    auth: tuple[str, str]
    lanes: int = 4
    seed: int = 0
    history: HistoryConfig = field(default_factory=HistoryConfig)
    #: The environment of every key (runs sharing a stack use different ones).
    environment: str = "prod"
    #: Pause between two requests of a lane (0: as fast as the gateway answers).
    pause_s: float = 0.0
    #: Pause of the reader between two reads (None: no reader).
    read_pause_s: float | None = 0.02
    samples: list[Sample] = field(default_factory=list, init=False)
    unexpected: list[str] = field(default_factory=list, init=False)
    #: The reader's answers by status (or error type).
    reads: Counter[str] = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        self.histories = [
            LaneHistory(lane, self.seed, self.history, self.environment)
            for lane in range(self.lanes)
        ]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads = [
            threading.Thread(target=self._run, args=(h,), name=f"lane-{h.lane}", daemon=True)
            for h in self.histories
        ]
        if self.read_pause_s is not None:
            self._threads.append(threading.Thread(target=self._read, name="reader", daemon=True))

    # -- control ------------------------------------------------------------------------------

    def start(self) -> LoadRunner:
        """Start every lane."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the lanes after their current request and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            msg = f"load lanes did not stop within {timeout:.0f}s: {alive}"
            raise TimeoutError(msg)

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return self._in_flight

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate()`` holds (polling), or fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                msg = f"timed out after {timeout:.0f}s waiting for {what}"
                raise TimeoutError(msg)
            time.sleep(0.02)

    def acked_since(self, moment: float) -> int:
        """Requests sent at or after ``moment`` that were answered 202."""
        count = 0
        with self._lock:
            # Samples are appended as they finish: only the tail can have started later.
            for sample in reversed(self.samples):
                if sample.finished < moment:
                    break
                count += sample.started >= moment and sample.status == 202
        return count

    def statuses(self) -> Counter[str]:
        """Answers so far by status (or error type)."""
        with self._lock:
            return Counter(
                str(s.status) if s.status is not None else (s.error or "error")
                for s in self.samples
            )

    def outcomes(self) -> Counter[str]:
        """Operations so far by outcome (acked, not applied, unknown)."""
        total: Counter[str] = Counter()
        for history in self.histories:
            total.update(history.model.counts)
        return total

    # -- lanes --------------------------------------------------------------------------------

    def _run(self, history: LaneHistory) -> None:
        deadline = time.monotonic() + MAX_RUN_S
        # One generator per lane: it is not thread-safe, and each lane's payloads then
        # follow from the run's seed alone.
        payloads = DeploymentGenerator(GeneratorConfig(seed=self.seed * self.lanes + history.lane))
        with httpx.Client(
            base_url=self.base_url, auth=self.auth, timeout=httpx.Timeout(30.0)
        ) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                operation = history.next()
                if operation is None:
                    return
                outcome = self._send(client, operation, payloads)
                history.model.record(operation, outcome)
                if outcome is not Outcome.ACKED:
                    self._stop.wait(BACKOFF_S)
                elif self.pause_s:
                    self._stop.wait(self.pause_s)

    def _reads(self) -> list[str]:
        """Paths the reader picks from: every key's lookup, its environment's history and
        the issues' deployments (small pages, so that later pages are read too)."""
        keys = [key for history in self.histories for key in history.keys]
        places = sorted({(key.pipeline, key.environment) for key in keys})
        return [
            *(deployment_path(key) for key in keys),
            *(
                f"{Q}/pipelines/{quote(p, safe='')}/environments/{quote(e, safe='')}"
                "/deployments?limit=10"
                for p, e in places
            ),
            *(
                f"{Q}/issues/{quote(issue, safe='')}/deployments?limit=10"
                for issue in issue_pool(self.history)
            ),
        ]

    def _read(self) -> None:
        assert self.read_pause_s is not None
        rng = random.Random(self.seed)  # noqa: S311 (test data)
        paths = self._reads()
        deadline = time.monotonic() + MAX_RUN_S
        with httpx.Client(
            base_url=self.base_url, auth=self.auth, timeout=httpx.Timeout(30.0)
        ) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                path = rng.choice(paths)
                try:
                    response = client.get(path)
                except httpx.TransportError as exc:
                    self.reads[type(exc).__name__] += 1
                else:
                    self.reads[str(response.status_code)] += 1
                    if response.status_code not in READ_STATUSES:
                        self.unexpected.append(
                            f"GET {path} -> {response.status_code}: {response.text[:300]}"
                        )
                self._stop.wait(self.read_pause_s)

    def _send(
        self, client: httpx.Client, operation: Operation, payloads: DeploymentGenerator
    ) -> Outcome:
        kind, method, url, body = _request(operation, payloads)
        status: int | None = None
        error: BaseException | None = None
        retry_after: str | None = None
        with self._lock:
            self._in_flight += 1
        started = time.monotonic()
        try:
            response = client.request(method, url, json=body)
            status = response.status_code
            retry_after = response.headers.get("Retry-After")
            if status not in (202, 429, 503) or (
                status == 202 and kind == "submit" and response.json()["rejectedDeployments"]
            ):
                self.unexpected.append(f"{method} {url} -> {status}: {response.text[:300]}")
        except httpx.TransportError as exc:
            error = exc
        finally:
            finished = time.monotonic()
            with self._lock:
                self._in_flight -= 1
        sample = Sample(
            started,
            finished,
            kind,
            status,
            type(error).__name__ if error is not None else None,
            retry_after,
        )
        with self._lock:
            self.samples.append(sample)
        return classify(status, error)
