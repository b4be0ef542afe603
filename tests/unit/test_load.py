"""The load generator's deployments: valid, varied, out of order as configured, reproducible."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from deploystream.load import (
    MAX_OUT_OF_ORDER,
    DeploymentGenerator,
    GeneratorConfig,
    LoadResult,
    lookup_path,
    percentile,
)
from gateway.validation import ItemRejected, parse_submission, validate_deployment

Key = tuple[str, str, int]


def late_fraction(items: list[dict[str, Any]]) -> float:
    """Share of items whose updateSequenceNumber is below one seen before for the same key."""
    highest: dict[Key, int] = {}
    late = 0
    for item in items:
        key = DeploymentGenerator.key_of(item)
        usn = int(item["updateSequenceNumber"])
        if key in highest and usn < highest[key]:
            late += 1
        highest[key] = max(usn, highest.get(key, usn))
    return late / len(items)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_generated_deployment_is_valid(seed: int) -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=seed))
    for item in generator.deployments(3000):
        outcome = validate_deployment(orjson.dumps(item))
        assert not isinstance(outcome, ItemRejected), (outcome.errors, item)


@pytest.mark.parametrize("bulk", [1, 10, 100])
def test_every_body_is_accepted_whole(bulk: int) -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=bulk))
    for _ in range(max(3, 300 // bulk)):
        body = generator.encoded_body(bulk)
        assert len(body) < 1_048_576  # under the gateway's default body limit
        submission = parse_submission(body, max_deployments=100)
        assert submission.rejected == ()
        assert len(submission.deployments) == bulk


def test_backfill_mode_is_valid_and_each_key_appears_once() -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=5, lifecycle=False, namespace="b-"))
    items = generator.deployments(2000)
    keys = [DeploymentGenerator.key_of(item) for item in items]
    assert len(set(keys)) == len(keys)
    assert all(item["pipeline"]["id"].startswith("b-") for item in items)
    assert {item["state"] for item in items} <= {
        "successful",
        "failed",
        "rolled_back",
        "cancelled",
        "unknown",
    }
    for item in items:
        assert not isinstance(validate_deployment(orjson.dumps(item)), ItemRejected)


def test_deployments_vary_like_real_traffic() -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=7))
    items = generator.deployments(5000)
    sizes = sorted(len(orjson.dumps(item)) for item in items)
    assert sizes[len(sizes) // 2] < 2_000 < sizes[-1]  # mostly small, some large
    environment_types = Counter(item["environment"]["type"] for item in items)
    assert environment_types["production"] > 0
    assert len(environment_types) >= 3
    states = Counter(item["state"] for item in items)
    assert {"pending", "in_progress", "successful"} <= set(states)
    assert any(item.get("associations") for item in items)
    assert any(item.get("issueKeys") for item in items)
    assert any(item.get("label") for item in items)
    assert any(item.get("commands") for item in items)  # gating, on production
    assert any(isinstance(item["updateSequenceNumber"], str) for item in items)  # sloppy
    assert len({item["pipeline"]["id"] for item in items}) > 10


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.2])
def test_out_of_order_fraction_is_roughly_as_configured(fraction: float) -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=11, out_of_order=fraction))
    items = generator.deployments(20_000)
    measured = late_fraction(items)
    assert measured == pytest.approx(fraction, abs=0.015)
    assert generator.late / generator.generated == pytest.approx(measured, abs=1e-9)


def test_update_sequence_numbers_rise_per_deployment_when_in_order() -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=3, out_of_order=0.0))
    assert late_fraction(generator.deployments(5000)) == 0.0


def test_out_of_order_is_bounded() -> None:
    with pytest.raises(ValueError, match="out_of_order"):
        GeneratorConfig(out_of_order=MAX_OUT_OF_ORDER + 0.01)


def test_same_seed_same_deployments_other_seed_others() -> None:
    def bodies(seed: int) -> list[bytes]:
        generator = DeploymentGenerator(GeneratorConfig(seed=seed))
        return [generator.encoded_body(10) for _ in range(50)]

    assert bodies(42) == bodies(42)
    assert bodies(42) != bodies(43)


def test_deployment_for_a_chosen_key_is_valid_and_keeps_the_callers_identity() -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=9))
    big = 2**53 + 1  # beyond a float's exact range: must survive as an int64
    items = [
        generator.deployment_for("chaos-1", "prod", n, big + n, f"lane 1 step {n}")
        for n in range(1, 500)
    ]
    for n, item in enumerate(items, start=1):
        assert DeploymentGenerator.key_of(item) == ("chaos-1", "prod", n)
        assert int(item["updateSequenceNumber"]) == big + n
        assert item["displayName"] == f"lane 1 step {n}"
        assert item["state"] in {"successful", "failed", "rolled_back", "cancelled", "unknown"}
        assert "commands" not in item  # never gated: the caller's model knows nothing of it
        assert not isinstance(validate_deployment(orjson.dumps(item)), ItemRejected)
    assert len({orjson.dumps(item) for item in items}) == len(items)  # varied content
    again = DeploymentGenerator(GeneratorConfig(seed=9))
    assert again.deployment_for("chaos-1", "prod", 1, big + 1, "lane 1 step 1") == items[0]


def test_lookup_path_encodes_identifiers() -> None:
    path = lookup_path("web app", "prod/eu", 7)
    assert path.endswith("/pipelines/web%20app/environments/prod%2Feu/deployments/7")


def test_percentile_and_result_summary() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN
    values = [i / 1000 for i in range(1, 101)]
    assert percentile(values, 50) == 0.05
    assert percentile(values, 99) == 0.099
    result = LoadResult(requests=10, items=100, ok_items=90, elapsed_s=2.0, latencies_s=values)
    summary = result.summary()
    assert summary["requestsPerS"] == 5.0
    assert summary["deploymentsPerS"] == 45.0
    assert summary["latencyMs"]["p50"] == 50.0


def test_issue_keys_can_be_drawn_from_fewer_issues_per_project() -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=1, issues_per_project=5))
    keys = {key for item in generator.deployments(300) for key in item.get("issueKeys", ())}
    assert len(keys) > 10
    assert all(1 <= int(key.rsplit("-", 1)[1]) <= 5 for key in keys)
    with pytest.raises(ValueError, match="issues_per_project"):
        GeneratorConfig(issues_per_project=0)
