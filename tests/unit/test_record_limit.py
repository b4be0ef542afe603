"""The gateway's bound on what a deployment becomes on the worker, against what the worker's
own code really stores; and the defaults fit the contract's scale."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contract import DeploymentData, ProviderMetadata
from gateway.events import EventCodecs, deployment_submitted
from gateway.limits import RecordLimit
from gateway.settings import GatewaySettings
from gateway.validation import parse_submission
from schemas import AvroCodec
from streams.deployments.gating import GatingPolicy, decide
from streams.deployments.records import Put, apply_event
from tests.e2e.test_deployments_api import deployment

CODECS = EventCodecs(AvroCodec("DeploymentEvent"))
EVENT = AvroCodec("DeploymentEvent")
STORED = AvroCodec("StoredDeployment")
BASE_URL = "https://jira.example.com/some/long/context/path"


def one(body: dict[str, Any]) -> DeploymentData:
    command = parse_submission(
        orjson_dumps({"deployments": [body], "properties": {"a": "b" * 255}}),
        max_deployments=100,
    )
    assert command.rejected == (), command.rejected
    return command.deployments[0]


def orjson_dumps(value: Any) -> bytes:
    import orjson  # noqa: PLC0415

    return orjson.dumps(value)


def stored_record(item: DeploymentData, tenant: str = "t" * 255) -> tuple[int, int]:
    """(bytes the worker's record really has, the gateway's bound for it)."""
    provider = ProviderMetadata(product="p" * 1000)
    event = deployment_submitted(CODECS, tenant, item, {"a": "b" * 255}, provider)
    assert event.key is not None
    policy = GatingPolicy(frozenset({"production"}), BASE_URL)
    outcome = apply_event(None, EVENT.decode(event.value), policy)
    assert isinstance(outcome, Put)
    stored = outcome.value
    if stored["gating"] is not None:
        # The largest a decision makes it: a long approver id and a 255-character reason.
        decided = decide(stored["gating"], "prevented", "a" * 255, "\U0001f600" * 255, 0)
        assert decided is not None
        stored = {**stored, "gating": decided}
    actual = len(event.key) + len(STORED.encode(stored))
    return actual, RecordLimit(1 << 30, BASE_URL).stored_bound(item, event.key, event.value)


GATED = [{"command": "initiate_deployment_gating"}]


def keys(count: int, length: int, first: int = 0) -> list[str]:
    """``count`` distinct issue keys of ``length`` characters (at most 511: 255 + 1 + 255)."""
    letters = min(255, length - 256)
    return [f"{'K' * letters}-{n:0{length - letters - 1}d}" for n in range(first, first + count)]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(deployment(), id="small"),
        pytest.param(deployment(commands=GATED), id="small-gated"),
        pytest.param(
            deployment(
                commands=[*GATED, *({"command": "x" * 1000} for _ in range(400))],
                issueKeys=keys(100, 506),
                associations=[
                    {"associationType": "issueIdOrKeys", "values": keys(500, 506, first=100)}
                ],
            ),
            id="the-review's-673KB-gated-submission",
        ),
        pytest.param(
            deployment(
                commands=GATED,
                issueKeys=["AB_C-1", "x9-2"],
                label="ÄÖÜ_ß 日本語",
                associations=[
                    {"associationType": "issueKeys", "values": ["Q-3", "Q-3"]},
                    {"associationType": "issueIdOrKeys", "values": ["12345"]},
                ],
            ),
            id="unicode-labels-duplicates-and-ids",
        ),
    ],
)
def test_the_bound_covers_the_stored_record_and_stays_close(body: dict[str, Any]) -> None:
    actual, bound = stored_record(one(body))
    assert actual <= bound
    assert bound <= actual * 1.05 + 8 * 1024


WORD = st.text(alphabet=string.ascii_letters + "éß日_", min_size=1, max_size=40)
#: Issue keys are ASCII (the contract's Java ``\w``).
KEY_WORD = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    issue_keys=st.lists(
        st.builds(lambda w, n: f"{w}-{n}", KEY_WORD, st.integers(0, 10**9)), max_size=30
    ),
    gated=st.booleans(),
    label=WORD,
)
def test_the_bound_covers_generated_deployments(
    issue_keys: list[str], gated: bool, label: str
) -> None:
    body = deployment(
        issueKeys=issue_keys or None,
        associations=[{"associationType": "issueKeys", "values": issue_keys or ["A-1"]}],
        commands=GATED if gated else None,
        label=label,
    )
    actual, bound = stored_record(one(body))
    assert actual <= bound


def test_over_the_limit_names_the_limit_and_the_setting() -> None:
    item = one(deployment(issueKeys=keys(100, 506), commands=GATED))
    event = deployment_submitted(CODECS, "t", item, {}, None)
    assert event.key is not None
    limit = RecordLimit(64 * 1024, BASE_URL)
    message = limit.over(item, event.key, event.value)
    assert message is not None
    assert "65536-byte record limit" in message
    assert "DEPLOYSTREAM_MAX_RECORD_BYTES" in message
    assert RecordLimit(1 << 20, BASE_URL).over(item, event.key, event.value) is None


def test_default_limits_take_100_deployments_with_commit_associations() -> None:
    # The contract's scale: 100 deployments, each with 500 associated commits.
    commits = [
        {"commitHash": f"{n:040x}", "repositoryId": f"org/repository-{n % 7}"} for n in range(500)
    ]
    body = {
        "deployments": [
            deployment(number=n, associations=[{"associationType": "commit", "values": commits}])
            for n in range(100)
        ]
    }
    raw = orjson_dumps(body)
    defaults = GatewaySettings()
    assert len(raw) > 4 * 1024 * 1024, "several MB, as the contract's clients send"
    assert len(raw) <= defaults.max_body_bytes
    command = parse_submission(raw, max_deployments=defaults.max_deployments)
    limit = RecordLimit(defaults.max_record_bytes, defaults.jira_base_url)
    for item in command.deployments:
        event = deployment_submitted(CODECS, "tenant", item, {}, None)
        assert event.key is not None
        assert limit.over(item, event.key, event.value) is None
    assert len(command.deployments) == 100
