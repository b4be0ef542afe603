"""Seeded histories of submissions and deletes, and the reference model they must end in.

The model follows the documented semantics (``streams/deployments/records.py``,
DESIGN.md "Semantics"): stored data is replaced only by a higher ``updateSequenceNumber``; an
equal number replaces nothing unless the content is identical (then it is re-written, which is
no change); a delete by key removes the key when it has no limit or the stored number is at most
the limit; a delete by properties removes the keys whose stored properties match every given
property (and the limit, as for a delete by key).

Only what the gateway acknowledged with 202 is certain. A request that got no answer (the
gateway was killed, the connection broke) or a 503 (Kafka did not acknowledge *in time*, but
may still have written it) is *unknown*: it may or may not have happened. The model therefore
keeps, for each key, the set of states the key may be in, and an unknown operation adds both
outcomes. Every lane of the load owns its keys and sends one request at a time, so the order
of the operations on a key is the order in which they were acknowledged.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BIG_SEQUENCE_BASE",
    "DeleteByKey",
    "DeleteByProperties",
    "HistoryConfig",
    "Key",
    "LaneHistory",
    "LaneModel",
    "Operation",
    "Outcome",
    "State",
    "Submit",
    "SubmitItem",
    "environments_of",
    "issue_pool",
]

#: Odd lanes number their updates from 2**53 up: above it a float cannot tell n from n + 1,
#: so any conversion to floating point on the way would show up as a wrong winner.
BIG_SEQUENCE_BASE = 2**53
#: A key whose possible states grow past this (many unknown outcomes) gets no more operations.
MAX_POSSIBLE_STATES = 8


@dataclass(frozen=True, order=True)
class Key:
    """A deployment of the load: pipeline ``chaos-<lane>``, an environment, a number."""

    lane: int
    number: int
    environment: str = "prod"

    @property
    def pipeline(self) -> str:
        """The pipeline id (one per lane)."""
        return f"chaos-{self.lane}"


@dataclass(frozen=True, order=True)
class State:
    """What is stored for a key: its number, the (unique) name of the submission that wrote
    it, the properties that came with it (sorted pairs) and the issues it names (sorted)."""

    usn: int
    name: str
    properties: tuple[tuple[str, str], ...]
    issues: tuple[str, ...] = ()


class Outcome(enum.Enum):
    """What the gateway's answer says about an operation."""

    ACKED = "acked"  # 202: durably in Kafka
    NOT_APPLIED = "not-applied"  # refused before anything was produced (e.g. 429, refused)
    UNKNOWN = "unknown"  # no answer, or 503: may or may not have been written


@dataclass(frozen=True)
class SubmitItem:
    """One deployment of a submission, and the issues it names (sorted)."""

    key: Key
    usn: int
    name: str
    issues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Submit:
    """``POST /bulk`` with deployments of distinct keys and the request's properties."""

    items: tuple[SubmitItem, ...]
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DeleteByKey:
    """``DELETE .../deployments/{n}``, optionally with ``_updateSequenceNumber``."""

    key: Key
    limit: int | None


@dataclass(frozen=True)
class DeleteByProperties:
    """``DELETE /bulkByProperties?...`` over the lane's own properties."""

    lane: int
    properties: tuple[tuple[str, str], ...]
    limit: int | None


Operation = Submit | DeleteByKey | DeleteByProperties


def _submitted(state: State | None, incoming: State) -> State | None:
    if state is None or state.usn < incoming.usn:
        return incoming
    # Equal and identical: re-written, i.e. unchanged. Equal and different, or older: kept.
    return state


def _deleted(state: State | None, limit: int | None) -> State | None:
    if state is None or limit is None or state.usn <= limit:
        return None
    return state


def _deleted_by_properties(
    state: State | None, properties: Mapping[str, str], limit: int | None
) -> State | None:
    if state is None:
        return None
    have = dict(state.properties)
    if any(have.get(name) != value for name, value in properties.items()):
        return state
    return _deleted(state, limit)


@dataclass
class LaneModel:
    """The states each key of one lane may be in, after the operations recorded so far."""

    possible: dict[Key, frozenset[State | None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def states(self, key: Key) -> frozenset[State | None]:
        """Every state ``key`` may be in (absent is ``None``)."""
        return self.possible.get(key, frozenset({None}))

    def usable(self, key: Key) -> bool:
        """Whether more operations on ``key`` keep the model small enough."""
        return len(self.states(key)) <= MAX_POSSIBLE_STATES // 2

    def _change(self, keys: Iterable[Key], step: Any, outcome: Outcome) -> None:
        for key in keys:
            before = self.states(key)
            after = frozenset(step(state) for state in before)
            if outcome is Outcome.UNKNOWN:
                after |= before
            self.possible[key] = after

    def record(self, operation: Operation, outcome: Outcome) -> None:
        """Account for ``operation`` answered with ``outcome``."""
        self.counts[outcome.value] = self.counts.get(outcome.value, 0) + 1
        if outcome is Outcome.NOT_APPLIED:
            return
        if isinstance(operation, Submit):
            for item in operation.items:
                incoming = State(item.usn, item.name, operation.properties, item.issues)
                self._change([item.key], lambda s, new=incoming: _submitted(s, new), outcome)
        elif isinstance(operation, DeleteByKey):
            self._change([operation.key], lambda s: _deleted(s, operation.limit), outcome)
        else:
            properties = dict(operation.properties)
            keys = [k for k, states in self.possible.items() if any(states)]
            self._change(
                keys,
                lambda s: _deleted_by_properties(s, properties, operation.limit),
                outcome,
            )


@dataclass(frozen=True)
class HistoryConfig:
    """Shape of the generated histories."""

    keys_per_lane: int = 40
    max_batch: int = 5
    #: Spread of a submission's number around the key's running counter: out of order.
    jitter: int = 3
    delete_ratio: float = 0.15
    delete_by_properties_ratio: float = 0.03
    batches: int = 3
    #: Submissions carry properties (``lane``, ``batch``); without, no delete by properties.
    with_properties: bool = True
    #: Environments of each lane's keys, taken in turn by its key numbers.
    environments: int = 3
    #: Issues the deployments name, shared by every lane (see :func:`issue_pool`).
    issues: int = 12
    #: Most issues one deployment names.
    max_issues: int = 3


def issue_pool(config: HistoryConfig) -> tuple[str, ...]:
    """The issues a history's deployments name: keys ``CHAOS-<n>``, every fourth a numeric
    issue id instead (which only an ``issueIdOrKeys`` association can carry)."""
    return tuple(str(10_000 + n) if n % 4 == 3 else f"CHAOS-{n + 1}" for n in range(config.issues))


def environments_of(environment: str, config: HistoryConfig) -> tuple[str, ...]:
    """The environment ids of a history: ``environment``, then ``environment-2``, ..."""
    others = (f"{environment}-{n}" for n in range(2, config.environments + 1))
    return (environment, *others)


@dataclass
class LaneHistory:
    """The seeded stream of operations of one lane; each key's numbers mostly rise, with
    ``jitter`` late, equal and early values mixed in."""

    lane: int
    seed: int
    config: HistoryConfig = field(default_factory=HistoryConfig)
    #: The first environment of the keys (the others are named after it, see
    #: :func:`environments_of`): runs sharing a stack use different ones.
    environment: str = "prod"
    model: LaneModel = field(default_factory=LaneModel)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}/{self.lane}")  # noqa: S311 (test data)
        environments = environments_of(self.environment, self.config)
        self._keys = [
            Key(self.lane, n, environments[(n - 1) % len(environments)])
            for n in range(1, self.config.keys_per_lane + 1)
        ]
        self._pool = issue_pool(self.config)
        base = BIG_SEQUENCE_BASE if self.lane % 2 else 0
        self._counter = dict.fromkeys(self._keys, base)
        self._step = 0

    @property
    def keys(self) -> list[Key]:
        """Every key this lane may touch."""
        return list(self._keys)

    def _number(self, key: Key) -> int:
        self._counter[key] += 1
        return self._counter[key] + self._rng.randint(-self.config.jitter, self.config.jitter)

    def _issues(self) -> tuple[str, ...]:
        count = self._rng.randint(0, min(self.config.max_issues, len(self._pool)))
        return tuple(sorted(self._rng.sample(self._pool, count)))

    def _limit(self, key: Key) -> int | None:
        if self._rng.random() < 0.5:
            return None
        return self._counter[key] + self._rng.randint(-self.config.jitter, self.config.jitter)

    def next(self) -> Operation | None:
        """The next operation, or ``None`` when no key is usable any more."""
        usable = [k for k in self._keys if self.model.usable(k)]
        if not usable:
            return None
        self._step += 1
        rng = self._rng
        roll = rng.random()
        by_properties = self.config.delete_by_properties_ratio if self.config.with_properties else 0
        if roll < by_properties and len(usable) == len(self._keys):
            batch = f"b{rng.randrange(self.config.batches)}"
            pairs = (("batch", batch), ("lane", f"lane-{self.lane}"))
            limit = None
            if rng.random() < 0.5:
                limit = max(self._counter.values()) - rng.randint(0, 4 * self.config.jitter)
            return DeleteByProperties(self.lane, pairs, limit)
        if roll < by_properties + self.config.delete_ratio:
            key = rng.choice(usable)
            return DeleteByKey(key, self._limit(key))
        chosen = rng.sample(usable, min(len(usable), rng.randint(1, self.config.max_batch)))
        items = tuple(
            SubmitItem(
                key,
                self._number(key),
                f"lane {self.lane} step {self._step} #{i}",
                self._issues(),
            )
            for i, key in enumerate(chosen)
        )
        if not self.config.with_properties:
            return Submit(items, ())
        batch = f"b{rng.randrange(self.config.batches)}"
        return Submit(items, (("batch", batch), ("lane", f"lane-{self.lane}")))
