"""Deployments as CI fleets send them, deterministic from one seed.

Pipelines with several environments (production among them), deployments that go pending →
in_progress → a final state with rising ``updateSequenceNumber``s, payloads from a few hundred
bytes to tens of kilobytes (labels, descriptions, issue keys, associations, gating commands), a
few sloppy-but-valid values (numeric strings, ``null`` optionals), and a configurable fraction
of updates that arrive *after* a newer update of the same deployment (out of order). The same
seed gives the same deployments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAX_OUT_OF_ORDER", "DeploymentGenerator", "GeneratorConfig", "iter_bodies"]

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
    #: Issue keys are ``<PROJECT>-<n>`` with ``n`` up to this: fewer, and more deployments
    #: name each issue (its query lists more of them).
    issues_per_project: int = 9999

    def __post_init__(self) -> None:
        if not 0.0 <= self.out_of_order <= MAX_OUT_OF_ORDER:
            msg = f"out_of_order must be between 0 and {MAX_OUT_OF_ORDER}"
            raise ValueError(msg)
        if self.pipelines < 1 or not 1 <= self.environments_per_pipeline <= len(_ENVIRONMENTS):
            msg = f"need >= 1 pipeline and 1..{len(_ENVIRONMENTS)} environments per pipeline"
            raise ValueError(msg)
        if self.issues_per_project < 1:
            msg = "issues_per_project must be at least 1"
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

    def deployment_for(
        self,
        pipeline_id: str,
        environment_id: str,
        number: int,
        usn: int,
        display_name: str,
        *,
        environment_type: str = "production",
    ) -> dict[str, Any]:
        """A deployment in a final state whose key, ``updateSequenceNumber`` and display name
        the caller chooses; the rest is generated as for :meth:`deployment`.

        For callers that keep their own model of keys and numbers (the chaos load). Outside
        the generator's lifecycle: never late, never gated, not counted as ``created``.
        """
        rng = self._rng
        self.generated += 1
        self._clock_ms += rng.randint(1, 4000)
        base = self._base(
            (pipeline_id, pipeline_id),
            (environment_id, environment_id, environment_type),
            number,
            display_name,
        )
        return self._render(base, rng.choices(_FINAL_STATES, _FINAL_WEIGHTS)[0], usn)

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

    def _base(
        self,
        pipeline: tuple[str, str],
        environment: tuple[str, str, str],
        number: int,
        display_name: str,
    ) -> dict[str, Any]:
        """What stays the same across a deployment's updates: its key, names and links."""
        rng = self._rng
        pipeline_id, pipeline_name = pipeline
        env_id, env_name, env_type = environment
        base: dict[str, Any] = {
            "deploymentSequenceNumber": number,
            "displayName": display_name,
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
        return base

    def _new(self, *, final: bool = False) -> dict[str, Any]:
        rng = self._rng
        pipeline = rng.randrange(len(self._pipelines))
        environment = rng.choice(self._environments[pipeline])
        number = self._numbers.get((pipeline, environment), 0) + 1
        self._numbers[pipeline, environment] = number
        self.created += 1
        pipeline_id, pipeline_name = self._pipelines[pipeline]
        env_id, env_name, env_type = _ENVIRONMENTS[environment]
        base = self._base(
            (pipeline_id, pipeline_name),
            (env_id, env_name, env_type),
            number,
            f"{pipeline_name} #{number} to {env_name}",
        )
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
        return (
            f"{self._rng.choice(_PROJECTS)}-{self._rng.randint(1, self.config.issues_per_project)}"
        )

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


def iter_bodies(generator: DeploymentGenerator, bulk_size: int) -> Iterator[bytes]:
    """Endless encoded bodies of ``bulk_size`` deployments."""
    while True:
        yield generator.encoded_body(bulk_size)
