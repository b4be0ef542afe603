"""``deploystream load``: realistic deployment traffic against any deploystream (or Jira) URL.

Two parts, usable on their own:

- :class:`DeploymentGenerator` makes deployments as CI fleets send them: pipelines with
  several environments (production among them), deployments that go pending → in_progress →
  a final state with rising ``updateSequenceNumber``s, payloads from a few hundred bytes to
  tens of kilobytes (labels, descriptions, issue keys, associations, gating commands), a few
  sloppy-but-valid values (numeric strings, ``null`` optionals), and a configurable fraction
  of updates that arrive *after* a newer update of the same deployment (out of order).
  Everything derives from one seed: the same seed gives the same deployments.
- :func:`drive` sends requests with aiohttp, closed loop (``concurrency`` requests in
  flight) or open loop (``rate`` requests per second, latency measured from the scheduled
  send time so a slow server cannot hide its queueing), bounded by a request count and a
  duration, and returns a :class:`LoadResult` (status counts, latency percentiles, client
  CPU).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import click
import orjson

__all__ = [
    "API",
    "Auth",
    "DeploymentGenerator",
    "GeneratorConfig",
    "LoadResult",
    "Request",
    "drive",
    "load",
    "lookup_path",
    "percentile",
]

API = "/rest/deployments/0.1"
#: Hard upper bound of one load run, whatever the options say.
MAX_DURATION_S = 3600.0
#: Above this the pool of in-flight deployments runs dry and fewer updates can arrive late.
MAX_OUT_OF_ORDER = 0.25

# 2026-01-01T00:00:00Z in milliseconds: the generator's clock starts here, so sequence
# numbers look like the epoch-millisecond values CI tools send.
_EPOCH_MS = 1_767_225_600_000
_FINAL_STATES = ("successful", "failed", "rolled_back", "cancelled", "unknown")
_FINAL_WEIGHTS = (85, 8, 4, 2, 1)
_ENVIRONMENTS = (
    ("dev", "Development", "development"),
    ("test", "Test", "testing"),
    ("qa", "QA", "testing"),
    ("staging", "Staging", "staging"),
    ("prod-eu-west-1", "Production EU", "production"),
    ("prod-us-east-1", "Production US", "production"),
    ("sandbox", "Sandbox", "unmapped"),
)
_SERVICES = (
    "checkout",
    "payments",
    "search",
    "catalog",
    "identity",
    "notifications",
    "billing",
    "gateway",
    "reporting",
    "inventory",
    "shipping",
    "recommendations",
)
_PROJECTS = ("OPS", "WEB", "API", "PAY", "SEC", "DATA", "MOB", "INFRA", "CORE", "UX")
_PRODUCTS = ("Jenkins 2.452", "GitLab 17.3", "GitHub Actions", "CircleCI", "Octopus Deploy")
_WORDS = (
    "deploy",
    "release",
    "hotfix",
    "rollout",
    "canary",
    "blue-green",
    "migration",
    "config",
    "feature",
    "flag",
    "patch",
    "security",
    "update",
    "dependency",
    "bump",
    "schema",
    "cache",
    "warmup",
    "traffic",
    "shift",
)
# Descriptions are slices of this text: varied and cheap to make.
_TEXT = " ".join(random.Random(7).choices(_WORDS, k=2000))  # noqa: S311 (test data)


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generated traffic looks like.

    ``out_of_order`` is the fraction of generated deployments that carry an
    ``updateSequenceNumber`` lower than one already generated for the same deployment: an
    update delivered late, after a newer one.
    """

    seed: int = 0
    pipelines: int = 24
    environments_per_pipeline: int = 5
    out_of_order: float = 0.05
    gating: float = 0.03
    large: float = 0.03
    sloppy: float = 0.02
    open_deployments: int = 64
    properties: float = 0.3
    provider_metadata: float = 0.7
    #: False: every deployment once, in a final state (a backfill of history).
    lifecycle: bool = True
    #: Prefix of every pipeline id: generators with different namespaces never share a key.
    namespace: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.out_of_order <= MAX_OUT_OF_ORDER:
            msg = f"out_of_order must be between 0 and {MAX_OUT_OF_ORDER}"
            raise ValueError(msg)
        if self.pipelines < 1 or not 1 <= self.environments_per_pipeline <= len(_ENVIRONMENTS):
            msg = f"need >= 1 pipeline and 1..{len(_ENVIRONMENTS)} environments per pipeline"
            raise ValueError(msg)


@dataclass
class _Open:
    """A deployment that has not reached a final state yet."""

    pipeline: int
    environment: int
    number: int
    state: str
    usn: int
    base: dict[str, Any]


class DeploymentGenerator:
    """Deterministic stream of realistic deployments (see the module docstring)."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self._rng = random.Random(self.config.seed)  # noqa: S311 (test data, not secrets)
        rng = self._rng
        self._pipelines = [
            (
                f"{self.config.namespace}{_SERVICES[i % len(_SERVICES)]}-{i // len(_SERVICES) + 1}",
                f"{_SERVICES[i % len(_SERVICES)].title()} pipeline {i // len(_SERVICES) + 1}",
            )
            for i in range(self.config.pipelines)
        ]
        # Every pipeline deploys to production; the other environments are a fixed sample.
        self._environments: list[list[int]] = []
        non_prod = [i for i, env in enumerate(_ENVIRONMENTS) if env[2] != "production"]
        for _ in self._pipelines:
            prod = rng.choice([4, 5])
            others = rng.sample(non_prod, self.config.environments_per_pipeline - 1)
            self._environments.append(sorted([prod, *others]))
        self._numbers: dict[tuple[int, int], int] = {}
        self._open: list[_Open] = []
        self._late: list[tuple[int, dict[str, Any]]] = []
        self._clock_ms = _EPOCH_MS
        self._step = 0
        # s swaps per non-late step give s/(1+s) late deployments among all generated.
        self._swap = self.config.out_of_order / (1.0 - self.config.out_of_order)
        self.generated = 0
        self.late = 0
        self.created = 0

    # -- public ---------------------------------------------------------------------------

    def deployment(self) -> dict[str, Any]:
        """The next deployment (a JSON-ready dict)."""
        self._step += 1
        self.generated += 1
        if self._late and self._late[0][0] <= self._step:
            _, item = self._late.pop(0)
            self.late += 1
            return item
        rng = self._rng
        self._clock_ms += rng.randint(1, 4000)
        if not self.config.lifecycle:
            return self._new(final=True)
        # A fleet has many deployments in flight: keep the open pool between a few and
        # open_deployments, so that late (swapped) updates are always possible.
        opened = len(self._open)
        if opened and rng.random() < self._swap:
            return self._advance(rng.randrange(opened), swap=True)
        if opened >= self.config.open_deployments or (opened >= 4 and rng.random() < 0.55):
            return self._advance(rng.randrange(opened), swap=False)
        return self._new()

    def deployments(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` deployments."""
        return [self.deployment() for _ in range(count)]

    def body(self, count: int) -> dict[str, Any]:
        """A ``POST .../bulk`` body with the next ``count`` deployments."""
        rng = self._rng
        body: dict[str, Any] = {"deployments": self.deployments(count)}
        if rng.random() < self.config.properties:
            body["properties"] = {
                "team": rng.choice(("platform", "payments", "growth", "core", "mobile")),
                "region": rng.choice(("eu", "us", "apac")),
            }
        if rng.random() < self.config.provider_metadata:
            body["providerMetadata"] = {"product": rng.choice(_PRODUCTS)}
        return body

    def encoded_body(self, count: int) -> bytes:
        """:meth:`body` as JSON bytes."""
        return orjson.dumps(self.body(count))

    @staticmethod
    def key_of(deployment: dict[str, Any]) -> tuple[str, str, int]:
        """(pipelineId, environmentId, deploymentSequenceNumber) of a generated deployment."""
        return (
            deployment["pipeline"]["id"],
            deployment["environment"]["id"],
            int(deployment["deploymentSequenceNumber"]),
        )

    # -- internals ------------------------------------------------------------------------

    def _timestamp(self) -> str:
        seconds, millis = divmod(self._clock_ms, 1000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"

    def _new(self, *, final: bool = False) -> dict[str, Any]:
        rng = self._rng
        pipeline = rng.randrange(len(self._pipelines))
        environment = rng.choice(self._environments[pipeline])
        number = self._numbers.get((pipeline, environment), 0) + 1
        self._numbers[pipeline, environment] = number
        self.created += 1
        pipeline_id, pipeline_name = self._pipelines[pipeline]
        env_id, env_name, env_type = _ENVIRONMENTS[environment]
        base: dict[str, Any] = {
            "deploymentSequenceNumber": number,
            "displayName": f"{pipeline_name} #{number} to {env_name}",
            "url": f"https://ci.example.com/{pipeline_id}/deployments/{number}",
            "pipeline": {
                "id": pipeline_id,
                "displayName": pipeline_name,
                "url": f"https://ci.example.com/{pipeline_id}",
            },
            "environment": {"id": env_id, "displayName": env_name, "type": env_type},
        }
        base.update(self._links())
        label = self._label()
        if label is not None or rng.random() < 0.1:
            base["label"] = label  # None now and then: sloppy clients send null optionals
        if rng.random() < 0.5:
            base["schemaVersion"] = "1.0"
        state = (
            "final" if final else rng.choices(("pending", "in_progress", "final"), (30, 50, 20))[0]
        )
        if state == "final":
            state = rng.choices(_FINAL_STATES, _FINAL_WEIGHTS)[0]
        item = self._render(base, state, self._clock_ms)
        if env_type == "production" and rng.random() < self.config.gating:
            item["commands"] = [{"command": "initiate_deployment_gating"}]
        if state not in _FINAL_STATES:
            self._open.append(_Open(pipeline, environment, number, state, self._clock_ms, base))
        return item

    def _advance(self, index: int, *, swap: bool) -> dict[str, Any]:
        rng = self._rng
        current = self._open[index]
        if swap:
            # Two updates racing: the newer (final) is delivered first, the older one later.
            older = self._render(current.base, "in_progress", self._clock_ms)
            self._clock_ms += rng.randint(1, 4000)
            newer = self._render(
                current.base, rng.choices(_FINAL_STATES, _FINAL_WEIGHTS)[0], self._clock_ms
            )
            self._late.append((self._step + rng.randint(1, 16), older))
            self._late.sort(key=lambda entry: entry[0])
            self._open.pop(index)
            return newer
        if current.state == "pending":
            current.state, current.usn = "in_progress", self._clock_ms
            return self._render(current.base, "in_progress", self._clock_ms)
        self._open.pop(index)
        return self._render(
            current.base, rng.choices(_FINAL_STATES, _FINAL_WEIGHTS)[0], self._clock_ms
        )

    def _render(self, base: dict[str, Any], state: str, usn: int) -> dict[str, Any]:
        rng = self._rng
        item = dict(base)
        item["updateSequenceNumber"] = usn
        item["state"] = state
        item["lastUpdated"] = self._timestamp()
        item["description"] = self._description(state)
        if state in _FINAL_STATES:
            item["duration"] = rng.randint(20, 1800)
        if rng.random() < self.config.sloppy:
            # Numeric strings for integer fields: accepted (README: be liberal).
            item["updateSequenceNumber"] = str(usn)
            item["deploymentSequenceNumber"] = str(item["deploymentSequenceNumber"])
        return item

    def _description(self, state: str) -> str:
        rng = self._rng
        roll = rng.random()
        size = rng.randint(20, 60) if roll < 0.7 else rng.randint(60, 160) if roll < 0.95 else 255
        start = rng.randrange(len(_TEXT) - 256)
        return f"{state}: {_TEXT[start : start + size]}"[:size]

    def _label(self) -> str | None:
        rng = self._rng
        roll = rng.random()
        if roll < 0.35:
            return f"v{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 200)}"
        if roll < 0.6:
            return f"build-{rng.randint(1000, 99999)}"
        return None

    def _issue_key(self) -> str:
        return f"{self._rng.choice(_PROJECTS)}-{self._rng.randint(1, 9999)}"

    def _commit(self) -> dict[str, str]:
        rng = self._rng
        return {
            "repositoryId": f"repo-{rng.randint(1, 400)}",
            "commitHash": f"{rng.getrandbits(160):040x}",
        }

    def _links(self) -> dict[str, Any]:
        """issueKeys and/or associations, small most of the time, large now and then."""
        rng = self._rng
        large = rng.random() < self.config.large
        links: dict[str, Any] = {}
        kind = rng.choices(("keys", "associations", "both"), (60, 30, 10))[0]
        if kind in ("keys", "both"):
            count = rng.randint(20, 100) if large else rng.choice((1, 1, 1, 2, 3, 5, 8))
            links["issueKeys"] = [self._issue_key() for _ in range(count)]
        if kind in ("associations", "both"):
            associations: list[dict[str, Any]] = []
            for association in rng.sample(
                ("issueIdOrKeys", "commit", "repository", "serviceIdOrKeys"), rng.randint(1, 3)
            ):
                count = rng.randint(50, 150) if large else rng.randint(1, 6)
                values: list[Any]
                if association == "issueIdOrKeys":
                    values = [
                        self._issue_key() if rng.random() < 0.7 else str(rng.randint(10000, 99999))
                        for _ in range(count)
                    ]
                elif association == "commit":
                    values = [self._commit() for _ in range(count)]
                elif association == "repository":
                    values = [{"repositoryId": f"repo-{rng.randint(1, 400)}"} for _ in range(count)]
                else:
                    values = [f"svc-{rng.randint(1, 300)}" for _ in range(count)]
                associations.append({"associationType": association, "values": values})
            links["associations"] = associations
        return links


def lookup_path(pipeline_id: str, environment_id: str, number: int) -> str:
    """The gateway path of one deployment, identifiers percent-encoded."""
    return (
        f"{API}/pipelines/{quote(pipeline_id, safe='')}/environments/"
        f"{quote(environment_id, safe='')}/deployments/{number}"
    )


# -- sending ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of a load run; ``items`` is how many deployments it carries."""

    method: str
    path: str
    body: bytes | None = None
    items: int = 1


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) / 100) - 1))
    return ordered[rank]


@dataclass
class LoadResult:
    """What one load run did and how long its requests took."""

    requests: int = 0
    items: int = 0
    ok_items: int = 0
    accepted: int = 0
    rejected: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def request_rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def item_rate(self) -> float:
        """Deployments (items) per second in requests answered 2xx."""
        return self.ok_items / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        """The ``q``-th latency percentile in milliseconds."""
        return percentile(self.latencies_s, q) * 1000

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest."""
        return {
            "requests": self.requests,
            "deployments": self.items,
            "okDeployments": self.ok_items,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "elapsedS": round(self.elapsed_s, 3),
            "requestsPerS": round(self.request_rate, 1),
            "deploymentsPerS": round(self.item_rate, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "latencyMs": {f"p{q:g}": round(self.latency_ms(q), 2) for q in (50, 90, 99, 99.9)}
            | {"max": round(max(self.latencies_s, default=float("nan")) * 1000, 2)},
            "clientCpuS": round(self.client_cpu_s, 2),
            "clientCpuPct": round(100 * self.client_cpu_s / self.elapsed_s, 1)
            if self.elapsed_s
            else 0.0,
        }


@dataclass
class Auth:
    """How requests authenticate: a fixed header, or OAuth client credentials (refreshed)."""

    header: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    _expires_at: float = 0.0

    @classmethod
    def basic(cls, client_id: str, secret: str) -> Auth:
        """``Basic client:API token``."""
        token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return cls(header=f"Basic {token}")

    @classmethod
    def bearer(cls, token: str) -> Auth:
        """A fixed ``Bearer`` token."""
        return cls(header=f"Bearer {token}")

    @classmethod
    def oauth(cls, client_id: str, secret: str) -> Auth:
        """Access tokens from ``POST /oauth/token`` (client credentials), refreshed at 80%."""
        return cls(client_id=client_id, client_secret=secret)

    async def authorization(self, session: aiohttp.ClientSession, base_url: str) -> str:
        """The ``Authorization`` header value to send now."""
        if self.client_id is None:
            assert self.header is not None
            return self.header
        if self.header is None or time.monotonic() >= self._expires_at:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            }
            async with session.post(f"{base_url}/oauth/token", data=form) as response:
                body = await response.read()
                if response.status != 200:
                    msg = f"token request failed ({response.status}): {body[:300]!r}"
                    raise click.ClickException(msg)
            answer = orjson.loads(body)
            self.header = f"Bearer {answer['access_token']}"
            self._expires_at = time.monotonic() + 0.8 * float(answer.get("expires_in", 300))
        return self.header


def _count_answer(result: LoadResult, status: int, body: bytes, items: int) -> None:
    result.statuses[str(status)] += 1
    if 200 <= status < 300:
        result.ok_items += items
    if status == 202 and body:
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
            answer = orjson.loads(body)
            result.accepted += len(answer.get("acceptedDeployments", ()))
            result.rejected += len(answer.get("rejectedDeployments", ()))


class _Driver:
    """One load run's state: the session, the request budget and the result."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        session: aiohttp.ClientSession,
        next_request: Callable[[], Request],
        max_requests: int | None,
        on_answer: Callable[[Request, int, bytes, float], None] | None,
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.session = session
        self.next_request = next_request
        self.max_requests = max_requests
        self.on_answer = on_answer
        self.issued = 0
        self.result = LoadResult()

    def take(self) -> Request | None:
        if self.max_requests is not None and self.issued >= self.max_requests:
            return None
        self.issued += 1
        return self.next_request()

    async def send(self, request: Request, started: float) -> None:
        result = self.result
        headers = {"Authorization": await self.auth.authorization(self.session, self.base_url)}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        result.requests += 1
        result.items += request.items
        try:
            async with self.session.request(
                request.method, self.base_url + request.path, data=request.body, headers=headers
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.statuses[f"error:{type(exc).__name__}"] += 1
            return
        now = time.perf_counter()
        result.latencies_s.append(now - started)
        _count_answer(result, status, body, request.items)
        if self.on_answer is not None:
            self.on_answer(request, status, body, now)

    async def closed_loop(self, concurrency: int, deadline: float) -> None:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                request = self.take()
                if request is None:
                    return
                await self.send(request, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def open_loop(
        self, rate: float, concurrency: int, t0: float, deadline: float, timeout_s: float
    ) -> None:
        slots = asyncio.Semaphore(concurrency)
        pending: set[asyncio.Task[None]] = set()

        async def scheduled(request: Request, at: float) -> None:
            async with slots:
                await self.send(request, at)

        index = 0
        while (at := t0 + index / rate) < deadline:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request = self.take()
            if request is None:
                break
            task = asyncio.create_task(scheduled(request, at))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()


async def drive(
    base_url: str,
    auth: Auth,
    next_request: Callable[[], Request],
    *,
    concurrency: int = 8,
    rate: float | None = None,
    duration_s: float = 10.0,
    max_requests: int | None = None,
    timeout_s: float = 30.0,
    on_answer: Callable[[Request, int, bytes, float], None] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> LoadResult:
    """Send ``next_request()`` requests until ``duration_s`` or ``max_requests``.

    Closed loop when ``rate`` is None: ``concurrency`` requests always in flight. Open loop
    otherwise: requests start at ``rate`` per second (at most ``concurrency`` in flight), and
    latency is counted from the scheduled start. ``on_answer(request, status, body, t)`` is
    called with the perf_counter time of each answer.
    """
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
        )
    driver = _Driver(base_url.rstrip("/"), auth, session, next_request, max_requests, on_answer)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + min(duration_s, MAX_DURATION_S)
    try:
        if rate is None:
            await driver.closed_loop(concurrency, deadline)
        else:
            await driver.open_loop(rate, concurrency, t0, deadline, timeout_s)
    finally:
        driver.result.elapsed_s = time.perf_counter() - t0
        driver.result.client_cpu_s = time.process_time() - cpu0
        if own:
            await session.close()
    return driver.result


def _format_summary(result: LoadResult, generator: DeploymentGenerator) -> str:
    s = result.summary()
    latency = s["latencyMs"]
    statuses = ", ".join(f"{k}: {v}" for k, v in s["statuses"].items()) or "none"
    late = generator.late / generator.generated if generator.generated else 0.0
    return (
        f"requests      {s['requests']} in {s['elapsedS']:.1f}s = {s['requestsPerS']:.1f}/s\n"
        f"deployments   {s['deployments']} sent, {s['okDeployments']} in 2xx answers = "
        f"{s['deploymentsPerS']:.1f}/s (accepted {s['accepted']}, rejected {s['rejected']})\n"
        f"statuses      {statuses}\n"
        f"latency ms    p50 {latency['p50']:.1f}  p90 {latency['p90']:.1f}  "
        f"p99 {latency['p99']:.1f}  p99.9 {latency['p99.9']:.1f}  max {latency['max']:.1f}\n"
        f"generated     {generator.generated} deployments, {generator.created} distinct, "
        f"{100 * late:.1f}% out of order\n"
        f"client CPU    {s['clientCpuS']:.1f}s ({s['clientCpuPct']:.0f}% of one core)"
    )


@click.command("load")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Base URL.")
@click.option("--client-id", envvar="DEPLOYSTREAM_CLIENT_ID", help="Client id (the tenant).")
@click.option(
    "--client-secret",
    envvar="DEPLOYSTREAM_CLIENT_SECRET",
    help="Client secret: OAuth client credentials (or the API token with --basic).",
)
@click.option("--token", envvar="DEPLOYSTREAM_TOKEN", help="A Bearer token to send as is.")
@click.option("--basic", is_flag=True, help="Send Basic client-id:client-secret instead of OAuth.")
@click.option("--rate", type=float, help="Requests per second (open loop); default closed loop.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight (max).")
@click.option("--duration", default=10.0, show_default=True, help="Seconds (at most 3600).")
@click.option("--requests", "max_requests", type=int, help="Stop after this many requests.")
@click.option("--bulk-size", default=10, show_default=True, help="Deployments per request.")
@click.option("--out-of-order", default=0.05, show_default=True, help="Late updates fraction.")
@click.option("--pipelines", default=24, show_default=True, help="Distinct pipelines.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same deployments.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def load(
    url: str,
    client_id: str | None,
    client_secret: str | None,
    token: str | None,
    basic: bool,
    rate: float | None,
    concurrency: int,
    duration: float,
    max_requests: int | None,
    bulk_size: int,
    out_of_order: float,
    pipelines: int,
    seed: int,
    as_json: bool,
) -> None:
    """Send realistic deployments to URL and print rate, statuses and latency percentiles."""
    if token:
        auth = Auth.bearer(token)
    elif client_id and client_secret:
        auth = (
            Auth.basic(client_id, client_secret) if basic else Auth.oauth(client_id, client_secret)
        )
    else:
        msg = "give --token, or --client-id and --client-secret"
        raise click.UsageError(msg)
    if not 1 <= bulk_size <= 100:
        msg = "--bulk-size must be between 1 and 100 (the API's limit)"
        raise click.UsageError(msg)
    if concurrency < 1 or duration <= 0 or (rate is not None and rate <= 0):
        msg = "--concurrency, --duration and --rate must be positive"
        raise click.UsageError(msg)
    if duration > MAX_DURATION_S:
        msg = f"--duration is at most {MAX_DURATION_S:.0f}s"
        raise click.UsageError(msg)
    try:
        config = GeneratorConfig(seed=seed, out_of_order=out_of_order, pipelines=pipelines)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    generator = DeploymentGenerator(config)
    path = f"{API}/bulk"

    def next_request() -> Request:
        return Request("POST", path, generator.encoded_body(bulk_size), bulk_size)

    result = asyncio.run(
        drive(
            url,
            auth,
            next_request,
            concurrency=concurrency,
            rate=rate,
            duration_s=duration,
            max_requests=max_requests,
        )
    )
    if as_json:
        late = generator.late / generator.generated if generator.generated else 0.0
        summary = result.summary() | {"outOfOrderFraction": round(late, 4)}
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(_format_summary(result, generator))


def iter_bodies(generator: DeploymentGenerator, bulk_size: int) -> Iterator[bytes]:
    """Endless encoded bodies of ``bulk_size`` deployments."""
    while True:
        yield generator.encoded_body(bulk_size)
