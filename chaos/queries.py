"""The query API (``/rest/deploystream/1/``) against what the lookups answered, exactly.

After a run the lookups are compared with the reference model (``chaos.verify``); where the
model allows several outcomes (an unknown write), the lookups tell which one the stack took.
The answers every query must give follow from those lookups alone, and are checked page by
page, every page, with small limits so that most answers take several pages:

- ``pipelines``: every pipeline with a stored deployment, with exactly the environments that
  have one, ordered by their encoded ids (an Avro string: length, then bytes);
- ``pipelines/{p}/environments``: per environment, the deployment with the highest
  ``deploymentSequenceNumber`` stored, as its lookup answers it;
- ``pipelines/{p}/environments/{e}/deployments``: every stored deployment of the
  environment, highest ``deploymentSequenceNumber`` first;
- ``issues/{issue}/deployments``: every stored deployment that names the issue (``issueKeys``
  or an ``issueKeys`` / ``issueIdOrKeys`` association; matched exactly, case included),
  newest ``lastUpdated`` first, equal ones in the order of their keys (the Avro
  ``DeploymentKey`` as an Avro ``bytes`` value: length, then bytes), which is how the
  worker's index ranks them.

Each value must be the lookup's answer plus ``pipelineId`` and ``environmentId``. Runs that
share a stack use environments of their own: values of other environments are left out
before comparing. The orders are computed here independently of the worker's index code.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastavro import schemaless_writer
from fastavro.schema import load_schema

from chaos.model import Key, LaneModel

__all__ = [
    "DEPLOYMENT_PAGE",
    "LIST_PAGE",
    "Q",
    "Query",
    "QueryCheck",
    "Walk",
    "compare",
    "expected_queries",
    "issue_mismatches",
    "named_issues",
    "places_of",
    "query_mismatches",
    "walk",
]

Q = "/rest/deploystream/1"
#: Page sizes of the walks: small, so that cursors carry most answers.
DEPLOYMENT_PAGE = 7
LIST_PAGE = 2
#: The API's page size when a request names none.
DEFAULT_LIMIT = 50
#: How long one page keeps retrying 503s (a rebalance) before it counts as an answer.
QUERY_RETRY_S = 60.0
ISSUE_ASSOCIATIONS = frozenset({"issueKeys", "issueIdOrKeys"})

_KEY_SCHEMA = load_schema(
    str(Path(__file__).resolve().parents[1] / "schemas" / "deploystream.DeploymentKey.avsc")
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

#: A deployment as its lookup answers it (the contract's DeploymentData).
Body = dict[str, Any]
#: One value of a query's answer.
Row = dict[str, Any]
#: ``fetch(path, params)``: the status and decoded JSON body of one request.
Fetch = Callable[[str, dict[str, str]], tuple[int, Any]]


def named_issues(deployment: Mapping[str, Any]) -> tuple[str, ...]:
    """The issues a deployment names (sorted): its ``issueKeys`` and the values of its
    ``issueKeys`` and ``issueIdOrKeys`` associations."""
    found = set(deployment.get("issueKeys") or ())
    for association in deployment.get("associations") or ():
        if association["associationType"] in ISSUE_ASSOCIATIONS:
            found.update(value for value in association["values"] if isinstance(value, str))
    return tuple(sorted(found))


def encoded_id(text: str) -> bytes:
    """The sort key of a pipeline or environment id: its Avro encoding."""
    out = io.BytesIO()
    schemaless_writer(out, "string", text)
    return out.getvalue()


def key_bytes(tenant: str, key: Key) -> bytes:
    """A deployment's key as the topics carry it (schemaless Avro ``DeploymentKey``)."""
    out = io.BytesIO()
    record = {
        "tenant": tenant,
        "pipelineId": key.pipeline,
        "environmentId": key.environment,
        "deploymentSequenceNumber": key.number,
    }
    schemaless_writer(out, _KEY_SCHEMA, record)
    return out.getvalue()


def tie_break(tenant: str, key: Key) -> bytes:
    """What orders deployments of equal rank: their key as the index entry holds it (an Avro
    ``bytes`` field: its length, then the key)."""
    out = io.BytesIO()
    schemaless_writer(out, "bytes", key_bytes(tenant, key))
    return out.getvalue()


def _millis(timestamp: str) -> int:
    """An RFC 3339 timestamp in whole milliseconds since the epoch (exact integers)."""
    return (datetime.fromisoformat(timestamp) - _EPOCH) // _MILLISECOND


def listed(key: Key, body: Body) -> Row:
    """How a query lists a deployment: its lookup answer with its pipeline and environment."""
    return {**body, "pipelineId": key.pipeline, "environmentId": key.environment}


@dataclass(frozen=True)
class Query:
    """One query to walk page by page, and the values it must answer, in order."""

    kind: str  # pipelines, environments, history or issue
    path: str
    limit: int | None  # None: the API's default
    expected: list[Row]

    @property
    def name(self) -> str:
        """The query as a reader of the report would type it."""
        return self.path if self.limit is None else f"{self.path}?limit={self.limit}"


@dataclass
class Walk:
    """Every value of every page of one query, and what went wrong on the way."""

    rows: list[Row] = field(default_factory=list)
    pages: int = 0
    problems: list[str] = field(default_factory=list)


def _path(*parts: str) -> str:
    return "/".join([Q, *(quote(part, safe="") for part in parts)])


def places_of(keys: Iterable[Key], bodies: Mapping[Key, Body | None]) -> set[tuple[str, str]]:
    """The run's (pipeline, environment) pairs: its keys', and any a lookup found."""
    found = {key for key, body in bodies.items() if body is not None}
    return {(k.pipeline, k.environment) for k in (*keys, *found)}


def expected_queries(
    tenant: str,
    bodies: Mapping[Key, Body | None],
    keys: Iterable[Key],
    issues: Iterable[str],
) -> list[Query]:
    """Every query of the run's pipelines, environments and ``issues``, with the values it
    must answer given what the lookups of ``bodies`` answered (``None``: absent). ``keys``
    are the run's keys: each of their pipelines and environments is queried, stored
    deployments or none."""
    present = {key: listed(key, body) for key, body in bodies.items() if body is not None}
    places = places_of(keys, bodies)
    by_place: dict[tuple[str, str], list[Key]] = {}
    for key in present:
        by_place.setdefault((key.pipeline, key.environment), []).append(key)
    for found in by_place.values():
        found.sort(key=lambda k: k.number, reverse=True)
    pipelines = sorted({p for p, _ in places}, key=encoded_id)
    listing = []
    for pipeline in pipelines:
        environments = [e for p, e in places if p == pipeline and by_place.get((p, e))]
        if environments:
            listing.append({"pipelineId": pipeline, "environments": sorted(environments)})
    queries = [
        Query("pipelines", _path("pipelines"), LIST_PAGE, listing),
        Query("pipelines", _path("pipelines"), None, listing),
    ]
    for pipeline in pipelines:
        environments = sorted((e for p, e in places if p == pipeline), key=encoded_id)
        latest = [
            present[by_place[pipeline, e][0]] for e in environments if by_place.get((pipeline, e))
        ]
        path = _path("pipelines", pipeline, "environments")
        queries.append(Query("environments", path, LIST_PAGE, latest))
        for environment in environments:
            history = [present[k] for k in by_place.get((pipeline, environment), [])]
            path = _path("pipelines", pipeline, "environments", environment, "deployments")
            queries.append(Query("history", path, DEPLOYMENT_PAGE, history))
    naming: dict[str, list[Key]] = {issue: [] for issue in issues}
    for key, row in present.items():
        for issue in named_issues(row):
            naming.setdefault(issue, []).append(key)
    for issue, found in sorted(naming.items()):
        found.sort(key=lambda k: (-_millis(present[k]["lastUpdated"]), tie_break(tenant, k)))
        path = _path("issues", issue, "deployments")
        queries.append(Query("issue", path, DEPLOYMENT_PAGE, [present[k] for k in found]))
    return queries


def walk(fetch: Fetch, query: Query, max_pages: int) -> Walk:
    """Read every page of ``query``, following ``next`` until it is null."""
    result = Walk()
    size = query.limit or DEFAULT_LIMIT
    first = {} if query.limit is None else {"limit": str(query.limit)}
    params = dict(first)
    cursors: set[str] = set()
    while result.pages < max_pages:
        status, body = fetch(query.path, params)
        result.pages += 1
        if status != 200:
            result.problems.append(f"page {result.pages} answered {status}: {body!r:.300}")
            return result
        values, cursor = body["values"], body["next"]
        if len(values) > size:
            result.problems.append(f"page {result.pages} holds {len(values)} values, limit {size}")
        result.rows.extend(values)
        if cursor is None:
            return result
        if cursor in cursors:
            result.problems.append(f"page {result.pages} repeats an earlier cursor")
            return result
        cursors.add(cursor)
        params = {**first, "cursor": cursor}
    result.problems.append(f"still a next page after {max_pages} pages")
    return result


def _identity(kind: str, row: Row) -> Any:
    if kind == "pipelines":
        return row.get("pipelineId")
    return (row.get("pipelineId"), row.get("environmentId"), row.get("deploymentSequenceNumber"))


def _relevant(kind: str, row: Row, places: set[tuple[str, str]]) -> Row | None:
    """``row`` as far as it concerns this run's pipelines and environments (None: not)."""
    if kind == "pipelines":
        pipeline = row.get("pipelineId")
        environments = [e for e in row.get("environments", ()) if (pipeline, e) in places]
        return {**row, "environments": environments} if environments else None
    return row if (row.get("pipelineId"), row.get("environmentId")) in places else None


def _differences(expected: Row, actual: Row) -> dict[str, Any]:
    names = sorted(set(expected) | set(actual))
    return {
        name: {"expected": f"{expected.get(name)!r:.120}", "actual": f"{actual.get(name)!r:.120}"}
        for name in names
        if expected.get(name) != actual.get(name)
    }


def compare(query: Query, walked: Walk, places: set[tuple[str, str]]) -> dict[str, Any] | None:
    """How the walked answer differs from the expected one (None: it does not). ``places``:
    the run's (pipeline, environment) pairs; values of others are left out first."""
    actual = [r for r in (_relevant(query.kind, row, places) for row in walked.rows) if r]
    if not walked.problems and actual == query.expected:
        return None
    wanted = [_identity(query.kind, row) for row in query.expected]
    got = [_identity(query.kind, row) for row in actual]
    by_identity = dict(zip(wanted, query.expected, strict=True))
    missing = [i for i in wanted if i not in got]
    unexpected = [i for i in got if i not in by_identity]
    repeated = [i for i, n in Counter(got).items() if n > 1]
    changed = {
        repr(i): _differences(by_identity[i], row)
        for i, row in zip(got, actual, strict=True)
        if i in by_identity and row != by_identity[i]
    }
    kinds = [
        name
        for name, found in (
            ("paging", walked.problems),
            ("missing", missing),
            ("unexpected", unexpected),
            ("repeated", repeated),
            ("content", changed),
        )
        if found
    ]
    if not kinds:
        kinds = ["order"]
    return {
        "query": query.name,
        "kinds": kinds,
        "pages": walked.pages,
        "problems": walked.problems,
        "missing": [repr(i) for i in missing[:10]],
        "unexpected": [repr(i) for i in unexpected[:10]],
        "repeated": [repr(i) for i in repeated[:10]],
        "content": dict(list(changed.items())[:5]),
        "order": None
        if kinds != ["order"]
        else {"expected": [repr(i) for i in wanted[:20]], "actual": [repr(i) for i in got[:20]]},
    }


def issue_mismatches(
    models: Iterable[tuple[Iterable[Key], LaneModel]], bodies: Mapping[Key, Body | None]
) -> list[dict[str, Any]]:
    """Keys whose looked-up deployment names other issues than the model's state of the same
    number and name: the queries' expectations rest on the lookups, so they must be right
    in this too. (Keys whose number or name is wrong are the lookup check's.)"""
    found = []
    for keys, model in models:
        for key in keys:
            body = bodies.get(key)
            if body is None:
                continue
            seen = (int(body["updateSequenceNumber"]), str(body["displayName"]))
            allowed = {
                s.issues for s in model.states(key) if s is not None and (s.usn, s.name) == seen
            }
            if allowed and named_issues(body) not in allowed:
                found.append(
                    {
                        "query": f"lookup of {key.pipeline}/{key.environment}/{key.number}",
                        "kinds": ["issues"],
                        "expected": [list(a) for a in sorted(allowed)],
                        "actual": list(named_issues(body)),
                    }
                )
    return found


def _fetcher(client: httpx.Client) -> Fetch:
    def fetch(path: str, params: dict[str, str]) -> tuple[int, Any]:
        deadline = time.monotonic() + QUERY_RETRY_S
        while True:
            response = client.get(path, params=params)
            if response.status_code != 503 or time.monotonic() > deadline:
                ok = response.status_code == 200
                return response.status_code, response.json() if ok else response.text
            time.sleep(0.2)

    return fetch


@dataclass
class QueryCheck:
    """The outcome of checking every query of a run."""

    queries: int = 0
    pages: int = 0
    values: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)


def query_mismatches(
    base_url: str,
    auth: tuple[str, str],
    models: Iterable[tuple[Iterable[Key], LaneModel]],
    bodies: Mapping[Key, Body | None],
    issues: Iterable[str],
    threads: int = 4,
) -> QueryCheck:
    """Walk every query of the run (its keys' pipelines and environments, ``issues`` and
    every issue a looked-up deployment names) and compare it with what the lookups
    (``bodies``, already compared with the model) imply."""
    pairs = [(list(keys), model) for keys, model in models]
    keys = [key for found, _ in pairs for key in found]
    check = QueryCheck(mismatches=issue_mismatches(pairs, bodies))
    queries = expected_queries(auth[0], bodies, keys, issues)
    places = places_of(keys, bodies)
    with (
        httpx.Client(base_url=base_url, auth=auth, timeout=30.0) as client,
        ThreadPoolExecutor(threads) as pool,
    ):
        fetch = _fetcher(client)

        def run(query: Query) -> tuple[Walk, dict[str, Any] | None]:
            # Runs sharing the stack add their own values: room for several times ours.
            size = query.limit or DEFAULT_LIMIT
            walked = walk(fetch, query, 4 * (len(query.expected) // size) + 20)
            return walked, compare(query, walked, places)

        for walked, mismatch in pool.map(run, queries):
            check.queries += 1
            check.pages += walked.pages
            check.values += len(walked.rows)
            if mismatch is not None:
                check.mismatches.append(mismatch)
    return check
