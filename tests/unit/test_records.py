"""The sequence-number rule, given events, predicts the stored state."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.deployments.gating import GatingPolicy
from streams.deployments.records import DELETED, SUBMITTED, Delete, Keep, Put
from streams.deployments.records import apply_event as _apply

POLICY = GatingPolicy(frozenset({"production"}), "https://jira.example.com")


def apply_event(stored: dict[str, Any] | None, event: dict[str, Any]) -> Any:
    return _apply(stored, event, POLICY)


KEY = {"tenant": "t", "pipelineId": "p", "environmentId": "e", "deploymentSequenceNumber": 1}


def submitted(usn: int, name: str = "d", event_id: str = "ev") -> dict[str, Any]:
    deployment = {"updateSequenceNumber": usn, "displayName": name, "commands": None}
    payload = {"deployment": deployment, "properties": {}, "providerMetadata": None}
    return {"eventId": event_id, "recordedAt": 0, "key": KEY, "payload": (SUBMITTED, payload)}


def deleted(usn: int | None) -> dict[str, Any]:
    return {
        "eventId": "del",
        "recordedAt": 0,
        "key": KEY,
        "payload": (DELETED, {"updateSequenceNumber": usn}),
    }


def run(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    stored = None
    for event in events:
        outcome = apply_event(stored, event)
        if isinstance(outcome, Put):
            stored = outcome.value
        elif isinstance(outcome, Delete):
            stored = None
    return stored


def test_first_submission_is_stored() -> None:
    outcome = apply_event(None, submitted(5))
    assert isinstance(outcome, Put)
    assert outcome.value["deployment"]["updateSequenceNumber"] == 5


def test_newer_update_replaces_older_one() -> None:
    stored = run([submitted(1, "old"), submitted(2, "new")])
    assert stored is not None and stored["deployment"]["displayName"] == "new"


def test_older_update_changes_nothing() -> None:
    old = run([submitted(3, "three")])
    outcome = apply_event(old, submitted(2, "two"))
    assert isinstance(outcome, Keep)


def test_equal_number_with_different_content_keeps_the_first() -> None:
    stored = run([submitted(3, "first"), submitted(3, "second")])
    assert stored is not None and stored["deployment"]["displayName"] == "first"


def test_equal_number_with_identical_content_rewrites_the_stored_value() -> None:
    first = run([submitted(3, "same", event_id="a")])
    outcome = apply_event(first, submitted(3, "same", event_id="b"))
    # Re-writing puts the value back on the changelog after a crash (pitfall 10).
    assert isinstance(outcome, Put) and outcome.value is first


def test_sequence_3_1_2_3_ends_with_the_first_3() -> None:
    stored = run([submitted(3, "A", "a"), submitted(1, "B"), submitted(2, "C"), submitted(3, "D")])
    assert stored is not None and stored["deployment"]["displayName"] == "A"
    assert stored["eventId"] == "a"


def test_delete_without_number_removes_anything() -> None:
    assert isinstance(apply_event(run([submitted(9)]), deleted(None)), Delete)


def test_delete_with_number_removes_only_when_stored_is_not_newer() -> None:
    stored = run([submitted(5)])
    assert isinstance(apply_event(stored, deleted(5)), Delete)
    assert isinstance(apply_event(stored, deleted(6)), Delete)
    assert isinstance(apply_event(stored, deleted(4)), Keep)


def test_delete_of_missing_key_still_emits_a_tombstone() -> None:
    assert isinstance(apply_event(None, deleted(1)), Delete)


def test_sequence_numbers_beyond_2_53_compare_exactly() -> None:
    big = 2**53 + 1
    stored = run([submitted(big, "big"), submitted(big - 1, "smaller")])
    assert stored is not None and stored["deployment"]["displayName"] == "big"


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("s"), st.integers(0, 6)),
            st.tuples(st.just("d"), st.none() | st.integers(0, 6)),
        ),
        max_size=30,
    )
)
def test_any_history_ends_at_the_reference_model(history: list[tuple[str, int | None]]) -> None:
    # Reference: the highest-numbered submission since the last applicable delete.
    model: int | None = None
    events = []
    for kind, number in history:
        if kind == "s":
            assert number is not None
            events.append(submitted(number, f"n{number}"))
            if model is None or number > model:
                model = number
        else:
            events.append(deleted(number))
            if model is not None and (number is None or model <= number):
                model = None
    stored = run(events)
    assert (stored["deployment"]["updateSequenceNumber"] if stored else None) == model
